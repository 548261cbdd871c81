//! Training and evaluation runs for CXR-CML and the CheXzero-style baseline.
//!
//! This crate ties the layers together: it reads a dataset through `cxr-data`, writes the
//! training text with `cxr-text`, trains a `cxr-clip` model with the `cxr-losses` objective
//! (CLIP InfoNCE, plus for CXR-CML a triplet loss on `cxr-mixture` pseudo-labels), steps a
//! `cxr-optim` optimiser and scores zero-shot AUC with `cxr-eval`. It does no CLI parsing:
//! `xtask` turns flags into a [`TrainConfig`] and calls [`run_methods`] or [`train_one`].
//!
//! A run directory holds `config.toml` (written before step 0), `metrics.jsonl` and
//! `metrics.csv`, `events.out.tfevents.*` (TensorBoard scalars), `curves.png`, `checkpoints/`,
//! `results.json` and `report.md`.

pub mod ablation;
pub mod batch;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod curves;
pub mod cv;
pub mod device;
pub mod embed_cache;
mod error;
pub mod evaluate;
pub mod files;
pub mod gpu_check;
pub mod init;
pub mod initial;
pub mod interrupt;
pub mod lock;
pub mod metrics;
pub mod model;
pub mod prefetch;
pub mod prepare;
pub mod report;
pub mod run_eval;
pub mod seeds;
pub mod start;
pub mod step;
pub mod task_eval;
pub mod tensorboard;
pub mod trainer;

pub use config::{Method, TrainConfig};
pub use error::{Result, TrainError};
pub use prepare::{Prepared, Split};
pub use report::{run_methods, run_methods_resumable, MethodResult};
pub use trainer::{train_continue, train_one, train_resumable, TrainOutcome};
