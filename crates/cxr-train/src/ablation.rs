//! The paper's ablation grid: the baseline, + meta labels, and CXR-CML with the Student-t
//! degrees of freedom nu in {1, 6} or a Gaussian mixture, at batch 32; and CXR-CML (nu = 6)
//! at batch sizes 8, 16 and 64; beyond the paper, CXR-CML (nu = 6, batch 32) with the
//! multi-positive CLIP loss. All variants share one dataset and one patient split.

use std::path::Path;

use cxr_eval::EvalResults;
use serde::{Deserialize, Serialize};

use crate::config::{ClipLoss, Method, MixtureModel, TrainConfig};
use crate::files::{write_atomic, write_json};
use crate::prepare::{prepare, Prepared, Split};
use crate::report::{default_split, run_methods_on};
use crate::Result;

/// One row of the ablation table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AblationRow {
    pub label: String,
    pub method: Method,
    pub batch_size: usize,
    pub mixture: Option<MixtureModel>,
    pub test: EvalResults,
}

/// The variants of the grid, as (label, config).
pub fn grid(base: &TrainConfig) -> Vec<(String, TrainConfig)> {
    let with = |method: Method, batch: usize, mixture: Option<(MixtureModel, f64)>| {
        let mut c = base.clone();
        c.method = method;
        c.train_loop.batch_size = batch;
        if let Some((kind, nu)) = mixture {
            c.mixture.kind = kind;
            c.mixture.nu = nu;
        }
        c
    };
    let mut rows = vec![
        (
            Method::Baseline.row_name(base),
            with(Method::Baseline, 32, None),
        ),
        (
            Method::MetaLabels.row_name(base),
            with(Method::MetaLabels, 32, None),
        ),
    ];
    for (label, kind, nu) in [
        ("nu = 1", MixtureModel::StudentT, 1.0),
        ("nu = 6", MixtureModel::StudentT, 6.0),
        ("Gaussian", MixtureModel::Gaussian, 6.0),
    ] {
        rows.push((
            format!("CXR-CML ({label}, batch 32)"),
            with(Method::CxrCml, 32, Some((kind, nu))),
        ));
    }
    for batch in [8, 16, 64] {
        rows.push((
            format!("CXR-CML (nu = 6, batch {batch})"),
            with(Method::CxrCml, batch, Some((MixtureModel::StudentT, 6.0))),
        ));
    }
    // Beyond the paper: identical texts as positives of each other in the CLIP loss.
    let mut multi = with(Method::CxrCml, 32, Some((MixtureModel::StudentT, 6.0)));
    multi.loss.clip = ClipLoss::MultiPositive;
    rows.push((
        "CXR-CML (nu = 6, batch 32, multi-positive CLIP loss)".to_string(),
        multi,
    ));
    rows
}

/// Run the grid (finished variants are reused) and write `ablation.json` / `ablation.md`.
pub fn run_ablation(base: &TrainConfig, out: &Path) -> Result<Vec<AblationRow>> {
    let data = prepare(base)?;
    let split = default_split(base, &data);
    run_ablation_on(base, &data, &split, out)
}

/// As [`run_ablation`] on prepared data and a given split (the seeds module runs several seeds
/// on one split through it).
pub fn run_ablation_on(
    base: &TrainConfig,
    data: &Prepared,
    split: &Split,
    out: &Path,
) -> Result<Vec<AblationRow>> {
    let mut rows = Vec::new();
    for (label, cfg) in grid(base) {
        let results = run_methods_on(&cfg, &[cfg.method], data, split, &out.join("runs"), true)?;
        let r = results.into_iter().next().expect("one method");
        rows.push(AblationRow {
            label,
            method: cfg.method,
            batch_size: cfg.train_loop.batch_size,
            mixture: (cfg.method == Method::CxrCml).then_some(cfg.mixture.kind),
            test: r.test,
        });
    }
    write_json(&out.join("ablation.json"), &rows)?;
    write_atomic(&out.join("ablation.md"), render(&rows).as_bytes())?;
    Ok(rows)
}

pub fn render(rows: &[AblationRow]) -> String {
    let table: Vec<(&str, &EvalResults)> =
        rows.iter().map(|r| (r.label.as_str(), &r.test)).collect();
    format!(
        "# Ablation (zero-shot macro AUC, test split)\n\n{}",
        cxr_eval::render_markdown_table(&table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_the_papers() {
        let g = grid(&TrainConfig::demo());
        assert_eq!(g.len(), 9);
        let names: std::collections::HashSet<String> =
            g.iter().map(|(_, c)| c.run_name()).collect();
        assert_eq!(names.len(), 9, "every variant gets its own run folder");
        let cml: Vec<&TrainConfig> = g
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c.method == Method::CxrCml)
            .collect();
        assert_eq!(cml.len(), 7);
        let multi: Vec<&&TrainConfig> = cml
            .iter()
            .filter(|c| c.loss.clip == ClipLoss::MultiPositive)
            .collect();
        assert_eq!(multi.len(), 1, "one multi-positive variant");
        assert_eq!(
            (multi[0].train_loop.batch_size, multi[0].mixture.nu),
            (32, 6.0)
        );
        assert!(cml.iter().any(|c| c.mixture.kind == MixtureModel::Gaussian));
        assert!(cml
            .iter()
            .any(|c| c.mixture.nu == 1.0 && c.mixture.kind == MixtureModel::StudentT));
        let batches: Vec<usize> = cml.iter().map(|c| c.train_loop.batch_size).collect();
        for b in [8, 16, 32, 64] {
            assert!(batches.contains(&b), "batch {b}");
        }
    }
}
