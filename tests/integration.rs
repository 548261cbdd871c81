//! The workspace's integration tests, as one test binary: each module below is one topic (its
//! own file beside this one). One binary instead of one per file: every binary links the whole
//! pipeline (candle, polars, ...), about 50 MB and a link each, so twenty of them cost about a
//! gigabyte of disk and minutes of CI. Run one topic with `cargo test --test integration
//! <module>::`, e.g. `cargo test --test integration train_tiny::`.
//!
//! `hub_download.rs` stays a binary of its own: it sets process-wide environment variables.

mod common;

mod bad_input;
mod comparisons;
mod corrupt_data;
mod cxr_lt_tasks;
mod datasets;
mod fixes;
mod kill_many;
mod module_dag;
mod multi_positive;
mod precision;
mod prefetch;
mod reliability;
mod reproducibility;
mod rescore;
mod resume;
mod seeds;
mod table2;
mod tensorboard;
mod train_tiny;
mod zero_shot;
mod zero_shot_golden;
