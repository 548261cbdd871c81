//! Chest X-ray data for cxr-cml: readers for MIMIC-CXR-JPG, CXR-LT 2024, CheXpert and NIH
//! ChestX-ray14 label files (one [`Record`] type, one class vocabulary with aliases), the CXR-LT
//! 2024 challenge's task files ([`cxr_lt`]), label
//! policies, view filters, patient-grouped splits and folds, CheXzero / CLIP image
//! preprocessing, a preprocessed u8 image cache, MIMIC report parsing, and a deterministic
//! synthetic dataset in the real formats ([`synth`]).
//!
//! Invariants: no CLI parsing and no network; every path read from a CSV stays inside its data
//! root; the same seed gives the same synthetic bytes and the same splits.

pub mod cache;
pub mod classes;
pub mod cxr_lt;
mod datasets;
mod error;
mod fastcsv;
mod fsio;
pub mod image;
pub mod npy;
mod readers;
pub mod report;
pub mod split;
pub mod synth;
mod table;

pub use datasets::{
    default_labels, find_csv, load_table, read_chexpert, read_mimic, read_mimic_root, read_nih,
    Dataset, MimicData, Summary, NIH_CLASSES,
};
pub use error::{DataError, Result};
pub use fsio::{stable_hash, sync_dir, write_atomic, StableHasher};
pub use readers::{read_cxr_lt, read_cxr_lt_lenient, read_cxr_lt_with_polars};
pub use report::read_report_impression;
pub use table::{
    checked_relative_path, mimic_image_path, mimic_study_dir, ClassCounts, LabelState, LabelTable,
    MissingPolicy, Record, SkippedRow, UncertainPolicy, ViewFilter,
};
