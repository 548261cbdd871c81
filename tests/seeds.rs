//! Workspace integration test of `seeds = N` (`--seeds N`): two seeds of a tiny two-method run
//! on one split, the aggregate recomputed from each seed's own `results.json`, and a rerun that
//! skips the finished seed.

use std::path::Path;

use cxr_cml::train::prepare::SPLIT_FILE;
use cxr_cml::train::seeds::{self, seed_dir, SeedsSummary, SEEDS_FILE};
use cxr_cml::train::Method;
use serde_json::Value;

use crate::common;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Mean and sample std (n - 1), written out independently of the library.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12
}

#[test]
fn two_seeds_on_one_split_aggregate_their_results_and_resume_skips_finished_seeds(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = common::tiny_config(tmp.path(), 60);
    cfg.seed = 3;
    cfg.seeds = 2;
    cfg.train_loop.epochs = 1;
    cfg.train_loop.batch_size = 16;
    cfg.mixture.k = 8;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    let methods = [Method::MetaLabels, Method::CxrCml];
    let out = tmp.path().join("run");
    let summary = seeds::run_train(&cfg, &methods, &out, false)?;

    // Layout: one run folder per seed, the aggregate at the top, no single-run files there.
    assert!(out.join(SEEDS_FILE).is_file() && out.join("report.md").is_file());
    assert!(!out.join("results.json").exists());
    assert!(!seed_dir(&out, 2).exists());
    let mut per_seed = Vec::new(); // [seed][method] -> results.json entry
    let mut first_losses = Vec::new();
    let mut splits = Vec::new();
    for i in 0..2 {
        let dir = seed_dir(&out, i);
        assert!(dir.join("results.json").is_file() && dir.join("report.md").is_file());
        let results = read_json(&dir.join("results.json"));
        let results = results.as_array().unwrap().clone();
        assert_eq!(results.len(), 2);
        for r in &results {
            let run_dir = dir.join(r["run_name"].as_str().unwrap());
            assert!(
                run_dir.join("results.json").is_file(),
                "{}",
                run_dir.display()
            );
            let toml = std::fs::read_to_string(run_dir.join("config.toml"))?;
            assert!(toml.contains(&format!("seed = {}", 3 + i)), "{toml}");
            assert!(
                !toml.contains("seeds ="),
                "each seed is a single run: {toml}"
            );
            splits.push(std::fs::read(run_dir.join(SPLIT_FILE))?);
            first_losses.push(common::step_losses(&run_dir)[0].1);
        }
        per_seed.push(results);
    }
    // One split for every run; the seeds trained differently.
    assert!(splits.iter().all(|s| *s == splits[0]));
    assert_ne!(first_losses[0], first_losses[2], "meta-labels, seed 3 vs 4");
    assert_ne!(first_losses[1], first_losses[3], "cxr-cml, seed 3 vs 4");

    // The aggregate equals the mean / sample std recomputed from each seed's results.json.
    let written: SeedsSummary = serde_json::from_value(read_json(&out.join(SEEDS_FILE)))?;
    assert_eq!(written, summary);
    assert_eq!(
        summary.runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(summary.methods.len(), 2);
    let keys = [
        ("macro_all", "auc_all"),
        ("macro_base", "auc_base"),
        ("macro_rare", "auc_rare"),
        ("map_all", "map"),
    ];
    let summary_json = serde_json::to_value(&summary)?;
    let value = |s: usize, m: usize, key: &str| per_seed[s][m]["test"][key].as_f64();
    let mut compared = 0;
    for (m, _) in methods.iter().enumerate() {
        for (results_key, seeds_key) in keys {
            let got = &summary_json["methods"][m]["metrics"][seeds_key];
            let (Some(a), Some(b)) = (value(0, m, results_key), value(1, m, results_key)) else {
                continue;
            };
            let (mean, std) = mean_std(&[a, b]);
            assert!(
                close(got["mean"].as_f64().unwrap(), mean),
                "{got} vs {mean}"
            );
            assert!(close(got["std"].as_f64().unwrap(), std), "{got} vs {std}");
            assert_eq!(got["n"], 2);
            compared += 1;
            if m == 1 {
                // CXR-CML minus meta-labels, paired per seed.
                let d: Vec<f64> = (0..2)
                    .map(|s| value(s, 1, results_key).unwrap() - value(s, 0, results_key).unwrap())
                    .collect();
                let (dm, ds) = mean_std(&d);
                let diff = &summary_json["differences"][0]["metrics"][seeds_key];
                assert!(close(diff["mean"].as_f64().unwrap(), dm), "{diff} vs {dm}");
                assert!(close(diff["std"].as_f64().unwrap(), ds), "{diff} vs {ds}");
                let wins = d.iter().filter(|&&x| x > 0.0).count();
                assert_eq!(diff["favours_method"], wins);
            }
        }
    }
    assert!(
        compared >= 4,
        "at least the total AUC and mAP of both methods"
    );
    let report = std::fs::read_to_string(out.join("report.md"))?;
    assert!(report.contains("mean ± sample std (n - 1)"), "{report}");
    assert!(report.contains("| seed-1 |"), "{report}");

    // A rerun skips the finished seed 0 (its files are untouched) and redoes the missing seed 1
    // exactly (CPU runs are deterministic).
    let seed0 = seed_dir(&out, 0).join("results.json");
    let before = (
        std::fs::read(&seed0)?,
        std::fs::metadata(&seed0)?.modified()?,
    );
    std::fs::remove_dir_all(seed_dir(&out, 1))?;
    let again = seeds::run_train(&cfg, &methods, &out, true)?;
    assert_eq!(
        (
            std::fs::read(&seed0)?,
            std::fs::metadata(&seed0)?.modified()?
        ),
        before,
        "a finished seed is not run again"
    );
    assert_eq!(again.methods, summary.methods);
    assert_eq!(again.differences, summary.differences);
    Ok(())
}

#[test]
fn cv_with_two_seeds_keeps_the_folds_and_averages_each_seeds_fold_mean() -> anyhow::Result<()> {
    use cxr_cml::train::cv::FoldScheme;
    let tmp = tempfile::tempdir()?;
    let mut cfg = common::tiny_config(tmp.path(), 60);
    cfg.seeds = 2;
    cfg.train_loop.epochs = 1;
    cfg.train_loop.batch_size = 16;
    cfg.train_loop.max_steps = Some(2);
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    let out = tmp.path().join("cv");
    let summary = seeds::run_cv(
        &cfg,
        &[Method::MetaLabels],
        2,
        FoldScheme::Patient,
        None,
        &out,
    )?;
    let mut per_seed = Vec::new();
    for fold in 0..2 {
        let split = |i: usize| -> Vec<u8> {
            let fold_dir = seed_dir(&out, i).join(format!("fold-{fold}"));
            let results = read_json(&fold_dir.join("results.json"));
            let run = fold_dir.join(results[0]["run_name"].as_str().unwrap());
            std::fs::read(run.join(SPLIT_FILE)).unwrap()
        };
        assert_eq!(
            split(0),
            split(1),
            "fold {fold}: the same split for both seeds"
        );
    }
    for i in 0..2 {
        let s = read_json(&seed_dir(&out, i).join("cv-summary.json"));
        per_seed.push(s["methods"][0][1]["macro_all"]["mean"].as_f64().unwrap());
    }
    let (mean, std) = mean_std(&per_seed);
    let got = summary.methods[0].metrics.auc_all.unwrap();
    assert!(
        close(got.mean, mean) && close(got.std.unwrap(), std),
        "{got:?}"
    );
    assert_eq!(summary.job, seeds::Job::Cv);
    assert!(
        summary.differences.is_empty(),
        "one method: nothing to pair"
    );
    Ok(())
}
