//! Per-step and per-epoch metrics: `metrics.jsonl` (every record, tagged by kind) and
//! `metrics.csv` (one row per epoch), plus the progress bar.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub epoch: usize,
    pub step: usize,
    pub loss: f32,
    pub clip_loss: f32,
    pub triplet_loss: Option<f32>,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub images_per_sec: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Optimiser steps taken by the end of this epoch.
    pub step: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_macro_auc: Option<f64>,
    pub lr: f64,
}

pub struct MetricsWriter {
    jsonl: BufWriter<File>,
    csv: BufWriter<File>,
    jsonl_path: PathBuf,
    csv_path: PathBuf,
}

impl MetricsWriter {
    /// Open (appending) `metrics.jsonl` and `metrics.csv` in `run_dir`.
    pub fn create(run_dir: &Path) -> Result<Self> {
        let jsonl_path = run_dir.join("metrics.jsonl");
        let csv_path = run_dir.join("metrics.csv");
        let new_csv = !csv_path.exists();
        let open = |p: &Path| OpenOptions::new().create(true).append(true).open(p).at(p);
        let jsonl = BufWriter::new(open(&jsonl_path)?);
        let mut csv = BufWriter::new(open(&csv_path)?);
        if new_csv {
            writeln!(csv, "epoch,step,train_loss,val_loss,val_macro_auc,lr").at(&csv_path)?;
        }
        Ok(Self { jsonl, csv, jsonl_path, csv_path })
    }

    pub fn step(&mut self, r: &StepRecord) -> Result<()> {
        let mut v = serde_json::to_value(r).expect("serialises");
        v["kind"] = "step".into();
        writeln!(self.jsonl, "{v}").at(&self.jsonl_path)
    }

    pub fn epoch(&mut self, r: &EpochRecord) -> Result<()> {
        let mut v = serde_json::to_value(r).expect("serialises");
        v["kind"] = "epoch".into();
        writeln!(self.jsonl, "{v}").at(&self.jsonl_path)?;
        self.jsonl.flush().at(&self.jsonl_path)?;
        let auc = r.val_macro_auc.map(|a| format!("{a:.6}")).unwrap_or_default();
        writeln!(self.csv, "{},{},{:.6},{:.6},{auc},{:e}", r.epoch, r.step, r.train_loss, r.val_loss, r.lr).at(&self.csv_path)?;
        self.csv.flush().at(&self.csv_path)
    }
}

/// A step progress bar (hidden when disabled, e.g. in tests).
pub fn progress_bar(enabled: bool, total: u64, prefix: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}
