//! What the bootstrap of a test evaluation resamples (patients by default), and the paired
//! comparison of methods evaluated on the same test images: their scores read back from each
//! run's `eval/best-test/scores.csv` (methods restored on resume included), the labels those of
//! the split, compared by `cxr_eval::compare_methods`.

use std::path::Path;

use cxr_eval::{BootstrapConfig, Comparisons, TestSet};
use ndarray::{Array2, Axis};

use crate::config::{BootstrapUnit, TrainConfig};
use crate::error::IoContext;
use crate::prepare::{Prepared, Split};
use crate::Result;

/// The group id of every evaluated record for the bootstrap: its patient under
/// `eval.bootstrap_unit = "patient"`, none (images resampled) under `"image"`.
pub fn bootstrap_groups(cfg: &TrainConfig, data: &Prepared, idx: &[usize]) -> Option<Vec<u64>> {
    match cfg.eval.bootstrap_unit {
        BootstrapUnit::Patient => Some(
            idx.iter()
                .map(|&i| data.table.records[i].subject_id)
                .collect(),
        ),
        BootstrapUnit::Image => None,
    }
}

/// The test scores of a run, as its best checkpoint's evaluation wrote them.
fn test_scores(run_dir: &Path, classes: &[String]) -> Result<Option<Array2<f32>>> {
    let path = run_dir.join("eval").join("best-test").join("scores.csv");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).at(&path)?;
    let (names, m) = cxr_eval::parse_matrix_csv_columns(&text, Some(classes))?;
    Ok((names == classes).then_some(m))
}

/// Bootstrap CIs of every method's macros and the paired comparison of every pair, from the
/// test scores each run wrote (`runs`: display name and run folder, in order). `None` without
/// bootstrap resamples, or when a run's scores are missing or were not computed on the test
/// split's images (the comparison then needs a rerun of that method's evaluation).
pub fn compare_runs(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    runs: &[(&str, &Path)],
) -> Result<Option<Comparisons>> {
    if cfg.eval.bootstrap == 0 || runs.is_empty() || split.test.is_empty() {
        return Ok(None);
    }
    let classes = data.classes();
    let mut scores = Vec::new();
    for (name, dir) in runs {
        let Some(s) = test_scores(dir, classes)? else {
            tracing::warn!(
                "no comparison: {name} has no test scores in {}",
                dir.display()
            );
            return Ok(None);
        };
        if s.nrows() != split.test.len() {
            tracing::warn!("no comparison: {name}'s test scores are not of this test split");
            return Ok(None);
        }
        scores.push((*name, s));
    }
    // Every run was scored on the same test images: their labels are the split's.
    let labels = data.labels.select(Axis(0), &split.test);
    let groups = data.class_groups(&cfg.data, &split.train);
    let ids = bootstrap_groups(cfg, data, &split.test);
    let test = TestSet {
        labels: labels.view(),
        class_names: classes,
        groups: &groups,
        row_groups: ids.as_deref(),
    };
    let methods: Vec<(&str, _)> = scores.iter().map(|(n, s)| (*n, s.view())).collect();
    let boot = BootstrapConfig {
        resamples: cfg.eval.bootstrap,
        seed: cfg.seed,
        level: 0.95,
    };
    Ok(Some(cxr_eval::compare_methods(&methods, &test, &boot)?))
}
