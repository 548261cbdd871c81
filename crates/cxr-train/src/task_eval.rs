//! The official CXR-LT 2024 evaluation (`cargo xtask eval --task 1|2|3`): any CLIP weights
//! scored zero-shot on a task's development or test file, over the task's official classes,
//! with the challenge's ranking metric (macro mAP, scikit-learn's `average_precision_score`
//! averaged over classes) beside macro AUC, both with patient-level bootstrap CIs.
//!
//! The task file is read by `cxr_data::cxr_lt` (columns by name, class names mapped onto the
//! official ones through the alias table); the selected rows and classes are written to
//! `<out>/task<N>-<split>-labels.csv` (what was scored, in the CXR-LT layout) and evaluated by
//! [`evaluate_weights`]. `results.json` gets a `cxr_lt_task` object (task, split, label file,
//! official classes, the class mapping with any unmapped column, mAP and macro AUC with their
//! intervals) and `report.md` a section with the per-class AP and AUC.

use std::path::{Path, PathBuf};

use cxr_data::classes::ClassMapping;
use cxr_data::cxr_lt::{read_task, write_cxr_lt_csv, CxrLtSplit, CxrLtTask};
use cxr_eval::{EvalResults, Interval};

use crate::error::IoContext;
use crate::files::{write_atomic, write_json};
use crate::run_eval::{evaluate_weights, WeightsEval};
use crate::{Result, TrainError};

/// The `cxr_lt_task` object of `results.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskSummary {
    /// 1, 2 or 3.
    pub task: u8,
    pub split: CxrLtSplit,
    /// The challenge's file that was read.
    pub label_file: PathBuf,
    /// The classes scored, in order (task 1: the 40; task 2: its file's 26; task 3: the five
    /// unseen ones).
    pub classes: Vec<String>,
    /// The file's class columns against the task's classes; `unmapped` columns were not
    /// scored.
    pub class_mapping: ClassMapping,
    pub images: usize,
    /// The ranking metric: mean over classes of the per-class average precision.
    pub map: Option<f64>,
    /// Its percentile bootstrap interval (patients resampled).
    pub map_ci: Option<Interval>,
    pub macro_auc: Option<f64>,
    pub macro_auc_ci: Option<Interval>,
}

/// What [`evaluate_task`] wrote.
pub struct TaskEvaluation {
    pub dir: PathBuf,
    pub results: EvalResults,
    pub summary: TaskSummary,
}

/// Scores `base.weights` on CXR-LT 2024 `task`'s `split` file, found in `files_dir` (the
/// challenge's `cxr-lt-2024/` folder; `None`: `base.root`), with images under `base.root`
/// (required: the MIMIC-CXR-JPG root the files' `fpath`s are relative to), writing into
/// `base.out`. `base.dataset` and `base.labels` are ignored (the task decides them).
pub fn evaluate_task(
    task: CxrLtTask,
    split: CxrLtSplit,
    files_dir: Option<&Path>,
    base: &WeightsEval,
) -> Result<TaskEvaluation> {
    let root = base.root.clone().ok_or_else(|| {
        TrainError::Config(format!(
            "{task} needs --data-root: the MIMIC-CXR-JPG root the CXR-LT 2024 files' image \
             paths are relative to ({})",
            cxr_data::cxr_lt::SOURCE
        ))
    })?;
    let labels = read_task(files_dir.unwrap_or(&root), task, split)?;
    if labels.table.is_empty() {
        return Err(TrainError::Dataset(format!(
            "{} has no image to score",
            labels.file.display()
        )));
    }
    std::fs::create_dir_all(&base.out).at(&base.out)?;
    let scored = base
        .out
        .join(format!("task{}-{split}-labels.csv", task.number()));
    write_cxr_lt_csv(&scored, &labels.table)?;
    let opts = WeightsEval {
        dataset: cxr_data::Dataset::CxrLt,
        labels: Some(scored),
        ..base.clone()
    };
    let ev = evaluate_weights(&opts)?;
    let cis = ev.results.macro_cis;
    let summary = TaskSummary {
        task: task.number(),
        split,
        label_file: labels.file.clone(),
        classes: labels.table.classes.clone(),
        class_mapping: labels.mapping.clone(),
        images: ev.results.n_samples,
        map: ev.results.map_all,
        map_ci: cis.and_then(|m| m.map_all),
        macro_auc: ev.results.macro_all,
        macro_auc_ci: cis.and_then(|m| m.auc_all),
    };
    annotate_results(&ev.dir, "cxr_lt_task", &summary)?;
    let report = ev.dir.join("report.md");
    let mut md = std::fs::read_to_string(&report).at(&report)?;
    md.push_str(&render_task_section(&summary, &ev.results));
    write_atomic(&report, md.as_bytes())?;
    Ok(TaskEvaluation {
        dir: ev.dir,
        results: ev.results,
        summary,
    })
}

/// Adds `key: value` to the `results.json` in `dir` (other keys kept).
pub fn annotate_results<T: serde::Serialize>(dir: &Path, key: &str, value: &T) -> Result<()> {
    let path = dir.join("results.json");
    let bytes = std::fs::read(&path).at(&path)?;
    let bad = |e: serde_json::Error| TrainError::File {
        path: path.clone(),
        message: format!("cannot update results.json: {e}"),
    };
    let mut json: serde_json::Value = serde_json::from_slice(&bytes).map_err(bad)?;
    let value = serde_json::to_value(value).map_err(bad)?;
    match json.as_object_mut() {
        Some(obj) => {
            obj.insert(key.to_string(), value);
        }
        None => {
            return Err(TrainError::File {
                path: path.clone(),
                message: "results.json is not a JSON object".into(),
            })
        }
    }
    write_json(&path, &json)
}

fn fmt_ci(point: Option<f64>, ci: Option<(f64, f64)>) -> String {
    match (point, ci) {
        (Some(p), Some((lo, hi))) => format!("{p:.3} [{lo:.3}, {hi:.3}]"),
        (Some(p), None) => format!("{p:.3}"),
        _ => "n/a".into(),
    }
}

/// The headline lines (also printed by the CLI): mAP and macro AUC with their CIs, and the
/// class mapping.
pub fn render_task_headline(s: &TaskSummary) -> String {
    let iv = |i: Option<Interval>| i.map(|i| (i.low, i.high));
    let mut out = format!(
        "CXR-LT 2024 task {} ({}, {} images, {} classes): mAP {} (ranking metric), macro AUC {} \
         (95% patient-level bootstrap CIs)\n",
        s.task,
        s.split,
        s.images,
        s.classes.len(),
        fmt_ci(s.map, iv(s.map_ci)),
        fmt_ci(s.macro_auc, iv(s.macro_auc_ci)),
    );
    let renamed: Vec<_> = s.class_mapping.renamed().collect();
    if renamed.is_empty() && s.class_mapping.unmapped.is_empty() {
        out.push_str("class mapping: every column of the file is an official class, by name\n");
    } else {
        out.push_str("class mapping (file column -> official class):\n");
        out.push_str(&s.class_mapping.describe());
    }
    out
}

fn render_task_section(s: &TaskSummary, r: &EvalResults) -> String {
    format!(
        "\n## CXR-LT 2024 task {} ({})\n\nLabel file: `{}`\n\n```\n{}```\n\n{}",
        s.task,
        s.split,
        s.label_file.display(),
        render_task_headline(s),
        render_task_classes(r)
    )
}

/// Per-class positives, AP and AUC with their CIs, as a Markdown table (also printed by the
/// CLI).
pub fn render_task_classes(r: &EvalResults) -> String {
    let mut md =
        String::from("| class | positives | AP [95% CI] | AUC [95% CI] |\n|---|---|---|---|\n");
    for c in &r.classes {
        let ap_ci = c.ap_ci_low.zip(c.ap_ci_high);
        let auc_ci = c.ci_low.zip(c.ci_high);
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.name,
            c.n_pos,
            fmt_ci(c.ap, ap_ci),
            fmt_ci(c.auc, auc_ci)
        ));
    }
    md
}
