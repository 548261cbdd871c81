//! Per-step and per-epoch metrics: `metrics.jsonl` (every record, tagged by kind),
//! `metrics.csv` (one row per epoch) and, with `loop.tensorboard`, the same records as
//! TensorBoard scalars ([`tensorboard_scalars`]), plus the progress bar.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::files::write_atomic;
use crate::tensorboard::EventWriter;
use crate::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub epoch: usize,
    pub step: usize,
    pub loss: f32,
    pub clip_loss: f32,
    /// The metric loss on pseudo-labels (triplet or weighted; CXR-CML only), unweighted.
    pub metric_loss: Option<f32>,
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

/// A mid-epoch validation (every `loop.validate_every` steps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub epoch: usize,
    pub step: usize,
    pub val_macro_auc: Option<f64>,
}

/// One line of `metrics.jsonl`, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsLine {
    Step(StepRecord),
    Validation(ValidationRecord),
    Epoch(EpochRecord),
}

impl MetricsLine {
    /// Whether the line was written before a checkpoint taken after `epochs_done` complete
    /// epochs and `step` steps (a resumed run keeps those and sets the others aside).
    fn precedes(&self, epochs_done: usize, step: usize) -> bool {
        match self {
            MetricsLine::Step(r) => r.step < step,
            MetricsLine::Validation(r) => r.step <= step,
            MetricsLine::Epoch(r) => r.epoch < epochs_done,
        }
    }
}

/// A record as TensorBoard scalars: its step and `(tag, value)`s (absent values left out).
///
/// The step is the index of the last optimisation step the values cover: a step record's
/// own index, and for a validation or epoch record (which count the steps done) one less.
/// So every record that a resume from a checkpoint at `step` keeps lies before `step`, and
/// every record it sets aside at `step` or later, where the resumed file's `SessionLog
/// START` makes TensorBoard drop them.
pub fn tensorboard_scalars(line: &MetricsLine) -> (usize, Vec<(&'static str, f32)>) {
    let mut v = Vec::new();
    let mut put = |tag: &'static str, x: Option<f64>| {
        if let Some(x) = x {
            v.push((tag, x as f32));
        }
    };
    let step = match line {
        MetricsLine::Step(r) => {
            put("train/loss", Some(f64::from(r.loss)));
            put("train/clip_loss", Some(f64::from(r.clip_loss)));
            put("train/metric_loss", r.metric_loss.map(f64::from));
            put("train/lr", Some(r.lr));
            put("train/grad_norm", r.grad_norm);
            put("train/images_per_sec", Some(r.images_per_sec));
            r.step
        }
        MetricsLine::Validation(r) => {
            put("val/macro_auc_every", r.val_macro_auc);
            r.step.saturating_sub(1)
        }
        MetricsLine::Epoch(r) => {
            put("epoch/epoch", Some(r.epoch as f64));
            put("epoch/train_loss", Some(r.train_loss));
            put("val/loss", Some(r.val_loss));
            put("val/macro_auc", r.val_macro_auc);
            put("epoch/lr", Some(r.lr));
            r.step.saturating_sub(1)
        }
    };
    (step, v)
}

pub struct MetricsWriter {
    jsonl: BufWriter<File>,
    csv: BufWriter<File>,
    jsonl_path: PathBuf,
    csv_path: PathBuf,
    events: Option<EventWriter<BufWriter<File>>>,
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
        Ok(Self {
            jsonl,
            csv,
            jsonl_path,
            csv_path,
            events: None,
        })
    }

    /// Also write every record as TensorBoard scalars to a new events file in `run_dir`;
    /// `resumed_at`: the step a resumed run goes on from (see [`crate::tensorboard`]).
    pub fn with_tensorboard(mut self, run_dir: &Path, resumed_at: Option<usize>) -> Result<Self> {
        let events = EventWriter::create(run_dir, resumed_at)?;
        tracing::debug!("TensorBoard scalars in {}", events.path().display());
        self.events = Some(events);
        Ok(self)
    }

    fn line(&mut self, line: &MetricsLine) -> Result<()> {
        let json = serde_json::to_string(line).expect("metrics serialise");
        writeln!(self.jsonl, "{json}").at(&self.jsonl_path)?;
        if let Some(events) = &mut self.events {
            let (step, values) = tensorboard_scalars(line);
            events.scalars(step, &values)?;
        }
        Ok(())
    }

    pub fn step(&mut self, r: &StepRecord) -> Result<()> {
        self.line(&MetricsLine::Step(r.clone()))
    }

    /// A mid-epoch validation (every `loop.validate_every` steps).
    pub fn validation(
        &mut self,
        epoch: usize,
        step: usize,
        val_macro_auc: Option<f64>,
    ) -> Result<()> {
        self.line(&MetricsLine::Validation(ValidationRecord {
            epoch,
            step,
            val_macro_auc,
        }))
    }

    /// Push the buffered lines (and events) to disk (before a checkpoint that counts them).
    pub fn flush(&mut self) -> Result<()> {
        self.jsonl.flush().at(&self.jsonl_path)?;
        match &mut self.events {
            Some(events) => events.flush(),
            None => Ok(()),
        }
    }

    pub fn epoch(&mut self, r: &EpochRecord) -> Result<()> {
        self.line(&MetricsLine::Epoch(r.clone()))?;
        self.flush()?;
        write!(self.csv, "{}", csv_row(r)).at(&self.csv_path)?;
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
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// On resume: keep the metrics up to the checkpoint (`epochs_done` complete epochs, `step`
/// steps), move later records to `metrics.discarded.jsonl` (kept, never deleted), rewrite
/// `metrics.csv`, and return the kept epoch records.
pub fn truncate_after(run_dir: &Path, epochs_done: usize, step: usize) -> Result<Vec<EpochRecord>> {
    let jsonl_path = run_dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&jsonl_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(crate::TrainError::Io {
                path: jsonl_path,
                source: e,
            })
        }
    };
    let (mut kept, mut discarded, mut epochs) = (String::new(), String::new(), Vec::new());
    for line in text.lines() {
        // A line cut by the crash does not parse and is set aside.
        let parsed = serde_json::from_str::<MetricsLine>(line).ok();
        if let Some(record) = parsed.filter(|r| r.precedes(epochs_done, step)) {
            if let MetricsLine::Epoch(r) = record {
                epochs.push(r);
            }
            kept.push_str(line);
            kept.push('\n');
        } else {
            discarded.push_str(line);
            discarded.push('\n');
        }
    }
    if !discarded.is_empty() {
        let path = run_dir.join("metrics.discarded.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at(&path)?;
        f.write_all(discarded.as_bytes()).at(&path)?;
    }
    write_atomic(&jsonl_path, kept.as_bytes())?;
    let mut csv = String::from("epoch,step,train_loss,val_loss,val_macro_auc,lr\n");
    for r in &epochs {
        csv.push_str(&csv_row(r));
    }
    write_atomic(&run_dir.join("metrics.csv"), csv.as_bytes())?;
    Ok(epochs)
}

fn csv_row(r: &EpochRecord) -> String {
    let auc = r
        .val_macro_auc
        .map(|a| format!("{a:.6}"))
        .unwrap_or_default();
    format!(
        "{},{},{:.6},{:.6},{auc},{:e}\n",
        r.epoch, r.step, r.train_loss, r.val_loss, r.lr
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensorboard::events_files;

    fn step(step: usize) -> StepRecord {
        StepRecord {
            epoch: 0,
            step,
            loss: 2.0,
            clip_loss: 1.5,
            metric_loss: None,
            lr: 1e-3,
            grad_norm: Some(0.5),
            images_per_sec: 10.0,
        }
    }

    #[test]
    fn tensorboard_events_follow_the_switch_and_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut plain = MetricsWriter::create(dir.path()).unwrap();
        plain.step(&step(0)).unwrap();
        plain.flush().unwrap();
        assert!(
            events_files(dir.path()).unwrap().is_empty(),
            "off by default"
        );

        let mut w = MetricsWriter::create(dir.path())
            .unwrap()
            .with_tensorboard(dir.path(), None)
            .unwrap();
        let before = std::fs::metadata(&events_files(dir.path()).unwrap()[0])
            .unwrap()
            .len();
        w.step(&step(1)).unwrap();
        w.flush().unwrap();
        let files = events_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        let len = std::fs::metadata(&files[0]).unwrap().len();
        // The version record (flushed only now) and one scalars record: 16 bytes of framing each.
        let payloads = crate::tensorboard::file_version_event(1.0).len()
            + crate::tensorboard::scalars_event(
                1.0,
                1,
                &tensorboard_scalars(&MetricsLine::Step(step(1))).1,
            )
            .len();
        assert_eq!(before, 0, "buffered until a flush");
        assert_eq!(len as usize, payloads + 32);
    }

    #[test]
    fn tensorboard_steps_fall_before_what_a_resume_keeps() {
        // Kept by a resume at step 4 after one epoch: tb steps < 4; set aside: >= 4.
        let epoch = |epoch, step| {
            MetricsLine::Epoch(EpochRecord {
                epoch,
                step,
                train_loss: 1.0,
                val_loss: 1.0,
                val_macro_auc: None,
                lr: 1e-3,
            })
        };
        let val = |step| {
            MetricsLine::Validation(ValidationRecord {
                epoch: 0,
                step,
                val_macro_auc: Some(0.5),
            })
        };
        for line in [
            MetricsLine::Step(step(3)),
            MetricsLine::Step(step(4)),
            epoch(0, 4),
            epoch(1, 8),
            val(4),
            val(5),
        ] {
            let (tb_step, values) = tensorboard_scalars(&line);
            assert!(!values.is_empty());
            assert_eq!(line.precedes(1, 4), tb_step < 4, "{line:?}");
        }
        let (_, values) = tensorboard_scalars(&MetricsLine::Step(step(0)));
        let tags: Vec<&str> = values.iter().map(|v| v.0).collect();
        assert_eq!(
            tags,
            [
                "train/loss",
                "train/clip_loss",
                "train/lr",
                "train/grad_norm",
                "train/images_per_sec"
            ]
        );
    }
}
