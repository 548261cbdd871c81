//! Running several methods on one dataset and split, and writing their results.

use std::path::{Path, PathBuf};

use cxr_eval::{Comparisons, EvalResults, Interval, Macros};
use serde::{Deserialize, Serialize};

use crate::config::{BootstrapUnit, Method, TrainConfig};
use crate::error::IoContext;
use crate::files::{write_atomic, write_json};
use crate::prepare::{prepare, Prepared, Split};
use crate::trainer::{train_continue, train_one, TrainOutcome};
use crate::Result;

/// One method's outcome, as stored in `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: Method,
    /// The row label in tables ([`Method::row_name`]: named after the initial weights).
    /// Results written before it existed read back as empty: the method's display name.
    #[serde(default)]
    pub name: String,
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
    /// Bootstrap CIs of the macros and the paired difference from the first method, in a
    /// comparison folder's `results.json` (its `comparisons.json` holds every pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<MethodStats>,
}

/// One method's macro CIs within a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodStats {
    /// What the bootstrap resampled and how often.
    pub bootstrap_unit: BootstrapUnit,
    pub resamples: usize,
    pub macros: Macros<Option<Interval>>,
    /// This method minus the first method, each with its paired bootstrap CI (none for the
    /// first method).
    pub vs_first: Option<Macros<Option<Interval>>>,
}

impl MethodResult {
    /// The row label in tables.
    pub fn row_name(&self) -> &str {
        if self.name.is_empty() {
            self.method.display_name()
        } else {
            &self.name
        }
    }

    fn new(cfg: &TrainConfig, out: &TrainOutcome) -> Self {
        Self {
            method: cfg.method,
            name: cfg.method.row_name(cfg),
            run_name: cfg.run_name(),
            run_dir: out.run_dir.clone(),
            best_epoch: out.best_epoch,
            steps: out.steps,
            first_loss: out.first_loss,
            last_loss: out.last_loss,
            test: out.test.clone(),
            skipped_rows: 0,
            skipped_images: 0,
            stats: None,
        }
    }
}

/// The split a config asks for on prepared data.
pub fn default_split(cfg: &TrainConfig, data: &Prepared) -> Split {
    data.patient_split(&cfg.data, cfg.seed)
}

/// Train and evaluate each method on the same data and split; write one run folder per
/// method under `out_dir` plus the comparison (`results.json`, `comparisons.json`,
/// `report.md`).
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
        let outcome = if !method.trains() {
            crate::initial::score_initial_weights(&mcfg, data, split, &run_dir)?
        } else if resume {
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
    let runs: Vec<(&str, &Path)> = results
        .iter()
        .map(|r| (r.row_name(), r.run_dir.as_path()))
        .collect();
    if cfg.eval.figures && !runs.is_empty() {
        crate::curves::redraw_comparison(out_dir, &runs);
    }
    let cmp = crate::compare::compare_runs(cfg, data, split, &runs)?;
    if let Some(cmp) = &cmp {
        attach_stats(&mut results, cmp, cfg.eval.bootstrap_unit);
        write_json(&out_dir.join("comparisons.json"), cmp)?;
    }
    write_results_with(out_dir, &results, cmp.as_ref())?;
    Ok(results)
}

/// Each method's macro CIs and its difference from the first method (`pairs` holds
/// first - other; the table shows other - first).
fn attach_stats(results: &mut [MethodResult], cmp: &Comparisons, unit: BootstrapUnit) {
    let neg = |i: Option<Interval>| {
        i.map(|i| Interval {
            estimate: -i.estimate,
            low: -i.high,
            high: -i.low,
            n_valid: i.n_valid,
        })
    };
    for (k, (r, m)) in results.iter_mut().zip(&cmp.methods).enumerate() {
        let vs_first = (k > 0).then(|| {
            // Pairs (0, j) come first, in order of j.
            cmp.pairs[k - 1].diff.map(neg)
        });
        r.stats = Some(MethodStats {
            bootstrap_unit: unit,
            resamples: cmp.resamples,
            macros: m.macros,
            vs_first,
        });
    }
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
    write_results_with(dir, results, None)
}

/// As [`write_results`], with the comparison's pairs (differences, DeLong per class) at the
/// end of `report.md`.
fn write_results_with(
    dir: &Path,
    results: &[MethodResult],
    cmp: Option<&Comparisons>,
) -> Result<()> {
    write_json(&dir.join("results.json"), &results)?;
    let mut text = render_report(results);
    if let Some(cmp) = cmp {
        text.push_str(&comparison_section(cmp));
    }
    write_atomic(&dir.join("report.md"), text.as_bytes())
}

/// The macro-AUC table (Total / Base / Rare, mAP) as Markdown; with the comparison's
/// statistics each value carries its 95% CI, the other methods' values are marked by whether
/// their difference from the first method is significant, and a legend line follows.
pub fn auc_table(results: &[MethodResult]) -> String {
    let rows: Vec<(&str, &EvalResults)> = results.iter().map(|r| (r.row_name(), &r.test)).collect();
    if results.is_empty() || results.iter().any(|r| r.stats.is_none()) {
        return cxr_eval::render_markdown_table(&rows);
    }
    let mut s =
        String::from("| Method | Total AUC | Base AUC | Rare AUC | mAP |\n|---|---|---|---|---|\n");
    for r in results {
        let Some(st) = &r.stats else { continue };
        let m = &st.macros;
        let d = st.vs_first.as_ref();
        let cell = |v: Option<Interval>, diff: Option<Option<Interval>>| {
            let Some(v) = v else {
                return "n/a".to_string();
            };
            let mark = match diff {
                None => "",
                Some(Some(d)) if d.excludes_zero() => " *",
                Some(_) => " ns",
            };
            format!("{:.3} ({:.3}–{:.3}){mark}", v.estimate, v.low, v.high)
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.row_name(),
            cell(m.auc_all, d.map(|d| d.auc_all)),
            cell(m.auc_base, d.map(|d| d.auc_base)),
            cell(m.auc_rare, d.map(|d| d.auc_rare)),
            cell(m.map_all, d.map(|d| d.map_all)),
        ));
    }
    let st = results[0].stats.as_ref().expect("checked above");
    s.push_str(&format!(
        "\nValues: estimate (95% CI, {}-level bootstrap, {} resamples). vs {}: * the paired \
         bootstrap 95% CI of the difference excludes 0 (significant), ns it does not.\n",
        st.bootstrap_unit,
        st.resamples,
        results[0].row_name()
    ));
    s
}

/// Per pair of methods: the macro differences with their paired CIs and DeLong's test per
/// class, as Markdown.
pub fn comparison_section(cmp: &Comparisons) -> String {
    let mut s = String::new();
    let fmt = |i: Option<Interval>| {
        i.map_or_else(
            || "n/a".to_string(),
            |i| format!("{:+.3} ({:+.3} to {:+.3})", i.estimate, i.low, i.high),
        )
    };
    for p in &cmp.pairs {
        s.push_str(&format!(
            "\n## {} vs {}\n\nDifference {} - {} (paired bootstrap 95% CI): total AUC {}, base AUC {}, rare AUC {}, mAP {}.\n\n| Class | AUC {} | AUC {} | DeLong p |\n|---|---|---|---|\n",
            p.a,
            p.b,
            p.a,
            p.b,
            fmt(p.diff.auc_all),
            fmt(p.diff.auc_base),
            fmt(p.diff.auc_rare),
            fmt(p.diff.map_all),
            p.a,
            p.b
        ));
        for (class, t) in cmp.classes.iter().zip(&p.delong) {
            match t {
                Some(t) => {
                    let p = if t.p_value < 1e-3 {
                        format!("{:.1e}", t.p_value)
                    } else {
                        format!("{:.3}", t.p_value)
                    };
                    s.push_str(&format!(
                        "| {class} | {:.3} | {:.3} | {p} |\n",
                        t.auc_a, t.auc_b
                    ));
                }
                None => s.push_str(&format!("| {class} | n/a | n/a | n/a |\n")),
            }
        }
    }
    s
}

pub fn render_report(results: &[MethodResult]) -> String {
    let mut s = String::from("# Zero-shot results (test split)\n\n");
    s.push_str(&auc_table(results));
    for r in results {
        if r.method.trains() {
            s.push_str(&format!(
                "\n## {} (`{}`)\n\nBest epoch {}, {} steps, training loss {:.4} -> {:.4}.\n\n",
                r.row_name(),
                r.run_name,
                r.best_epoch,
                r.steps,
                r.first_loss,
                r.last_loss
            ));
        } else {
            s.push_str(&format!(
                "\n## {} (`{}`)\n\nNo training: the initial weights scored zero-shot.\n\n",
                r.row_name(),
                r.run_name
            ));
        }
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
