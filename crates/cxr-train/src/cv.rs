//! K-fold cross-validation (the paper's 5-fold study) and its aggregation.
//!
//! Layout: `<out>/fold-<i>/` holds the fold's method runs and its `results.json`;
//! `<out>/cv-summary.json` and `<out>/cv-report.md` hold the mean ± std over the finished
//! folds in the paper's Table 2 layout. Folds are independent, so `--fold I` can run them as
//! separate jobs (e.g. a Slurm array) and `aggregate` combines whatever has finished.

use std::path::{Path, PathBuf};

use cxr_eval::FoldSummary;
use serde::{Deserialize, Serialize};

use crate::config::{Method, TrainConfig};
use crate::error::IoContext;
use crate::files::{write_atomic, write_json};
use crate::prepare::{prepare, Prepared, Split};
use crate::report::{read_results, run_methods_on};
use crate::{Result, TrainError};

/// How folds are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoldScheme {
    /// Grouped by patient, iteratively stratified over the labels (the paper's patient-level
    /// evaluation). Default.
    Patient,
    /// The released code: StratifiedKFold over the label string, NOT patient-grouped.
    LabelString,
}

/// The test indices (into the prepared records) of each fold.
pub fn folds(data: &Prepared, k: usize, seed: u64, scheme: FoldScheme) -> Result<Vec<Vec<usize>>> {
    let subjects: Vec<u64> = data
        .usable
        .iter()
        .map(|&i| data.table.records[i].subject_id)
        .collect();
    let labels = data.labels.select(ndarray::Axis(0), &data.usable);
    let local = match scheme {
        FoldScheme::Patient => cxr_data::split::patient_kfold(&subjects, labels.view(), k, seed)?,
        FoldScheme::LabelString => cxr_data::split::label_string_kfold(labels.view(), k, seed)?,
    };
    Ok(local
        .into_iter()
        .map(|f| f.into_iter().map(|p| data.usable[p]).collect())
        .collect())
}

/// The split of fold `i`: its part is the test set, the rest trains (minus a validation part).
pub fn fold_split(data: &Prepared, cfg: &TrainConfig, all_folds: &[Vec<usize>], i: usize) -> Split {
    let test = all_folds[i].clone();
    let mut is_test = vec![false; data.table.records.len()];
    for &t in &test {
        is_test[t] = true;
    }
    let trainval: Vec<usize> = data
        .usable
        .iter()
        .copied()
        .filter(|&r| !is_test[r])
        .collect();
    data.carve_validation(
        trainval,
        test,
        cfg.data.val_fraction,
        cfg.seed.wrapping_add(i as u64),
    )
}

pub fn fold_dir(out: &Path, i: usize) -> PathBuf {
    out.join(format!("fold-{i}"))
}

/// Run folds `which` (all when `None`) of a `k`-fold study, then aggregate what has finished.
pub fn run_cv(
    cfg: &TrainConfig,
    methods: &[Method],
    k: usize,
    scheme: FoldScheme,
    which: Option<usize>,
    out: &Path,
) -> Result<CvSummary> {
    check_fold(which, k)?;
    let data = prepare(cfg)?;
    let all = folds(&data, k, cfg.seed, scheme)?;
    run_folds(cfg, &data, &all, cfg.seed, methods, which, out)
}

/// `--fold i` must name one of the `k` folds.
pub(crate) fn check_fold(which: Option<usize>, k: usize) -> Result<()> {
    match which {
        Some(i) if i >= k => Err(TrainError::Config(format!(
            "--fold {i} is out of range for {k} folds (0..{})",
            k.saturating_sub(1)
        ))),
        _ => Ok(()),
    }
}

/// As [`run_cv`] on prepared data and the given folds, whose validation parts are drawn from
/// `split_seed` rather than `cfg.seed` (the seeds module trains several seeds on one set
/// of folds through it).
pub fn run_folds(
    cfg: &TrainConfig,
    data: &Prepared,
    all: &[Vec<usize>],
    split_seed: u64,
    methods: &[Method],
    which: Option<usize>,
    out: &Path,
) -> Result<CvSummary> {
    let k = all.len();
    let mut split_cfg = cfg.clone();
    split_cfg.seed = split_seed;
    std::fs::create_dir_all(out).at(out)?;
    for i in 0..k {
        if which.is_some_and(|w| w != i) {
            continue;
        }
        let dir = fold_dir(out, i);
        // A finished fold is skipped; an interrupted one resumes its runs.
        if dir.join("results.json").is_file() {
            tracing::info!("fold {i} already finished in {}; skipping", dir.display());
            continue;
        }
        let split = fold_split(data, &split_cfg, all, i);
        tracing::info!(
            "fold {i}/{k}: {} train / {} validation / {} test",
            split.train.len(),
            split.val.len(),
            split.test.len()
        );
        run_methods_on(cfg, methods, data, &split, &dir, true)?;
    }
    aggregate(out)
}

/// Mean ± std per method over the finished folds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CvSummary {
    pub folds_found: Vec<usize>,
    pub methods: Vec<(Method, FoldSummary)>,
    /// Each method's row label (named after the initial weights, `Method::row_name`), in the
    /// order of `methods`; summaries written before it existed fall back to the display names.
    #[serde(default)]
    pub names: Vec<String>,
}

impl CvSummary {
    /// The row label of the `i`-th method.
    pub fn row_name(&self, i: usize) -> &str {
        match self.names.get(i).filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => self.methods[i].0.display_name(),
        }
    }

    /// The paper's Table 2: Total / Base / Rare AUC per method, mean ± std over folds.
    pub fn table(&self) -> String {
        let rows: Vec<(&str, &FoldSummary)> = self
            .methods
            .iter()
            .enumerate()
            .map(|(i, (_, s))| (self.row_name(i), s))
            .collect();
        cxr_eval::render_fold_table(&rows)
    }
}

/// Combine the `fold-*/results.json` under `out` into `cv-summary.json` and `cv-report.md`.
pub fn aggregate(out: &Path) -> Result<CvSummary> {
    let mut folds_found = Vec::new();
    let mut per_method: Vec<(Method, Vec<cxr_eval::EvalResults>)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let entries = std::fs::read_dir(out).at(out)?;
    let mut dirs: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let i = p
                .file_name()?
                .to_str()?
                .strip_prefix("fold-")?
                .parse()
                .ok()?;
            Some((i, p))
        })
        .collect();
    dirs.sort();
    for (i, dir) in dirs {
        let Some(results) = read_results(&dir)? else {
            continue;
        };
        folds_found.push(i);
        for r in results {
            match per_method.iter_mut().find(|(m, _)| *m == r.method) {
                Some((_, v)) => v.push(r.test),
                None => {
                    names.push(r.row_name().to_string());
                    per_method.push((r.method, vec![r.test]));
                }
            }
        }
    }
    if folds_found.is_empty() {
        return Err(TrainError::Dataset(format!(
            "no finished fold (fold-*/results.json) under {}",
            out.display()
        )));
    }
    let methods = per_method
        .into_iter()
        .map(|(m, rs)| Ok((m, cxr_eval::aggregate_folds(&rs)?)))
        .collect::<Result<Vec<_>>>()?;
    let summary = CvSummary {
        folds_found,
        methods,
        names,
    };
    write_json(&out.join("cv-summary.json"), &summary)?;
    let rows: Vec<(&str, &FoldSummary)> = summary
        .methods
        .iter()
        .enumerate()
        .map(|(i, (_, s))| (summary.row_name(i), s))
        .collect();
    let md = format!(
        "# Cross-validation ({} folds finished: {:?})\n\nZero-shot macro AUC, mean ± std over folds.\n\n{}\n## Per class\n\n{}",
        summary.folds_found.len(),
        summary.folds_found,
        summary.table(),
        cxr_eval::render_fold_class_table(&rows)
    );
    write_atomic(&out.join("cv-report.md"), md.as_bytes())?;
    Ok(summary)
}
