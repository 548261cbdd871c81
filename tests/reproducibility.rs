//! Workspace integration test: a run is a function of its config. The same seed trains and
//! evaluates CXR-CML (so the mixture runs) to identical `metrics.jsonl` and `results.json`,
//! timing and paths aside; another seed does not.

use std::path::Path;

use cxr_cml::train::{run_methods, Method, TrainConfig};
use serde_json::Value;

use crate::common;

/// Fields that are allowed to differ between two runs of one config: wall-clock timings and
/// the run folder.
fn tiny_config(root: &Path, seed: u64) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 40);
    cfg.seed = seed;
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 16;
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.optim.lr = 1e-3;
    cfg.eval.bootstrap = 20;
    cfg.eval.figures = false;
    cfg
}

/// One run's `metrics.jsonl` (one value per line) and `results.json`, volatile fields removed.
fn run(root: &Path, out: &Path, seed: u64) -> anyhow::Result<(Vec<Value>, Value)> {
    let results = run_methods(&tiny_config(root, seed), &[Method::CxrCml], out)?;
    assert_eq!(results.len(), 1);
    let dir = &results[0].run_dir;
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl"))?
        .lines()
        .map(|l| serde_json::from_str(l).map(common::strip_volatile))
        .collect::<Result<Vec<Value>, _>>()?;
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join("results.json"))?)?;
    Ok((metrics, common::strip_volatile(json)))
}

#[test]
fn one_seed_gives_identical_metrics_and_results_and_another_seed_does_not() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (m1, r1) = run(tmp.path(), &tmp.path().join("run-a"), 7)?;
    let (m2, r2) = run(tmp.path(), &tmp.path().join("run-b"), 7)?;
    assert!(
        m1.iter()
            .any(|l| l.get("metric_loss").is_some_and(|v| !v.is_null())),
        "the mixture and its metric loss ran"
    );
    assert_eq!(m1.len(), m2.len(), "metrics.jsonl line counts");
    for (i, (a, b)) in m1.iter().zip(&m2).enumerate() {
        assert_eq!(a, b, "metrics.jsonl line {} differs", i + 1);
    }
    assert_eq!(r1, r2, "results.json differs");

    let (m3, r3) = run(tmp.path(), &tmp.path().join("run-c"), 8)?;
    assert!(m1 != m3 && r1 != r3, "another seed must change the run");
    Ok(())
}
