//! Running several methods on one dataset and split, and writing their results.

use std::path::{Path, PathBuf};

use cxr_eval::EvalResults;
use serde::{Deserialize, Serialize};

use crate::config::{Method, TrainConfig};
use crate::error::IoContext;
use crate::files::{write_atomic, write_json};
use crate::prepare::{prepare, Prepared, Split};
use crate::trainer::{train_continue, train_one, TrainOutcome};
use crate::Result;

/// One method's outcome, as stored in `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: Method,
    pub run_name: String,
    pub run_dir: PathBuf,
    pub best_epoch: usize,
    pub steps: usize,
    pub first_loss: f32,
    pub last_loss: f32,
    pub test: EvalResults,
    /// Malformed label rows and unreadable images left out, listed in the run folder's
    /// `skipped.tsv`.
    #[serde(default)]
    pub skipped_rows: usize,
    #[serde(default)]
    pub skipped_images: usize,
}

impl MethodResult {
    fn new(cfg: &TrainConfig, out: &TrainOutcome) -> Self {
        Self {
            method: cfg.method,
            run_name: cfg.run_name(),
            run_dir: out.run_dir.clone(),
            best_epoch: out.best_epoch,
            steps: out.steps,
            first_loss: out.first_loss,
            last_loss: out.last_loss,
            test: out.test.clone(),
            skipped_rows: 0,
            skipped_images: 0,
        }
    }
}

/// The split a config asks for on prepared data.
pub fn default_split(cfg: &TrainConfig, data: &Prepared) -> Split {
    data.patient_split(&cfg.data, cfg.seed)
}

/// Train and evaluate each method on the same data and split; write one run folder per
/// method under `out_dir` plus the comparison (`results.json`, `report.md`).
pub fn run_methods(
    cfg: &TrainConfig,
    methods: &[Method],
    out_dir: &Path,
) -> Result<Vec<MethodResult>> {
    run_methods_resumable(cfg, methods, out_dir, false)
}

/// As [`run_methods`]; with `resume`, methods that finished are read back from their
/// `results.json` and interrupted ones continue from their newest intact checkpoint (or start
/// over when they stopped before their first one).
pub fn run_methods_resumable(
    cfg: &TrainConfig,
    methods: &[Method],
    out_dir: &Path,
    resume: bool,
) -> Result<Vec<MethodResult>> {
    let data = prepare(cfg)?;
    let split = default_split(cfg, &data);
    tracing::info!(
        "{} images: {} train / {} validation / {} test (patient-level)",
        data.usable.len(),
        split.train.len(),
        split.val.len(),
        split.test.len()
    );
    run_methods_on(cfg, methods, &data, &split, out_dir, resume)
}

/// As [`run_methods`] with the data and split given (cross-validation folds).
pub fn run_methods_on(
    cfg: &TrainConfig,
    methods: &[Method],
    data: &Prepared,
    split: &Split,
    out_dir: &Path,
    resume: bool,
) -> Result<Vec<MethodResult>> {
    std::fs::create_dir_all(out_dir).at(out_dir)?;
    let mut results = Vec::new();
    for &method in methods {
        if let Some(signal) = crate::interrupt::requested() {
            // Stopped between two methods: the finished ones are in place, the rest resume.
            write_results(out_dir, &results)?;
            return Err(crate::TrainError::Interrupted {
                signal,
                step: 0,
                checkpoint: out_dir.to_path_buf(),
            });
        }
        let mut mcfg = cfg.clone();
        mcfg.method = method;
        let run_dir = out_dir.join(mcfg.run_name());
        if resume {
            if let Some(done) = read_results(&run_dir)? {
                tracing::info!(
                    "{} already finished in {}",
                    method.as_str(),
                    run_dir.display()
                );
                results.extend(done);
                continue;
            }
        }
        let outcome = if resume {
            train_continue(&mcfg, data, split, &run_dir)?
        } else {
            train_one(&mcfg, data, split, &run_dir)?
        };
        let mut result = MethodResult::new(&mcfg, &outcome);
        data.write_skipped(&run_dir.join("skipped.tsv"))?;
        result.skipped_rows = data.skipped_rows.len();
        result.skipped_images = data.cache.skipped().len();
        write_results(&run_dir, std::slice::from_ref(&result))?;
        results.push(result);
    }
    write_results(out_dir, &results)?;
    Ok(results)
}

/// The results a finished run folder holds, if any.
pub fn read_results(dir: &Path) -> Result<Option<Vec<MethodResult>>> {
    let path = dir.join("results.json");
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).at(&path)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| crate::TrainError::File {
            path,
            message: format!("not a results file: {e}"),
        })
}

/// `results.json` and `report.md` for a set of method results.
pub fn write_results(dir: &Path, results: &[MethodResult]) -> Result<()> {
    write_json(&dir.join("results.json"), &results)?;
    let md = dir.join("report.md");
    write_atomic(&md, render_report(results).as_bytes())
}

/// The macro-AUC table (Total / Base / Rare) as Markdown.
pub fn auc_table(results: &[MethodResult]) -> String {
    let rows: Vec<(&str, &EvalResults)> = results
        .iter()
        .map(|r| (r.method.display_name(), &r.test))
        .collect();
    cxr_eval::render_markdown_table(&rows)
}

pub fn render_report(results: &[MethodResult]) -> String {
    let mut s = String::from("# Zero-shot results (test split)\n\n");
    s.push_str(&auc_table(results));
    for r in results {
        s.push_str(&format!(
            "\n## {} (`{}`)\n\nBest epoch {}, {} steps, training loss {:.4} -> {:.4}.\n\n",
            r.method.display_name(),
            r.run_name,
            r.best_epoch,
            r.steps,
            r.first_loss,
            r.last_loss
        ));
        if r.skipped_rows + r.skipped_images > 0 {
            s.push_str(&format!(
                "Skipped: {} malformed label rows and {} unreadable images (listed in `skipped.tsv`).\n\n",
                r.skipped_rows, r.skipped_images
            ));
        }
        s.push_str(&cxr_eval::render_class_table(&r.test));
    }
    s
}
