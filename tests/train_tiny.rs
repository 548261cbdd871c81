//! Workspace integration test: a tiny synthetic dataset, a tiny CLIP, two methods trained for
//! a few epochs and evaluated zero-shot on held-out patients, all in seconds.

use cxr_cml::train::config::{LabelSource, MetricLoss, MixtureModel};
use cxr_cml::train::{run_methods, Method, TrainConfig};

use crate::common;

fn tiny_config(dir: &std::path::Path) -> TrainConfig {
    let mut cfg = common::tiny_config(dir, 60);
    cfg.train_loop.epochs = 4;
    cfg.train_loop.batch_size = 16;
    cfg.mixture.k = 8;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.optim.lr = 1e-3;
    cfg.eval.bootstrap = 20;
    cfg
}

#[test]
fn tiny_train_and_eval_writes_results_and_the_loss_decreases() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny_config(tmp.path());
    cfg.train_loop.validate_every = Some(3);
    let out = tmp.path().join("run");
    let results = run_methods(&cfg, &[Method::Baseline, Method::CxrCml], &out)?;
    assert_eq!(results.len(), 2);

    for r in &results {
        assert_eq!(r.test.classes.len(), 40, "{:?}", r.method);
        // Every macro value that is defined is an AUC.
        for m in [r.test.macro_all, r.test.macro_base, r.test.macro_rare]
            .into_iter()
            .flatten()
        {
            assert!((0.0..=1.0).contains(&m), "{m}");
        }
        assert!(
            r.test.macro_all.is_some(),
            "some class must have positives and negatives"
        );
        assert!(r.steps >= 4, "{} steps", r.steps);
        for file in [
            "config.toml",
            "metrics.jsonl",
            "metrics.csv",
            "results.json",
            "report.md",
            "curves.png",
        ] {
            assert!(
                r.run_dir.join(file).is_file(),
                "{} missing in {}",
                file,
                r.run_dir.display()
            );
        }
        assert!(r
            .run_dir
            .join("checkpoints/best/model.safetensors")
            .is_file());
    }
    for file in ["results.json", "report.md", "curves.png"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json"))?)?;
    let first = &json[0]["test"];
    for key in [
        "classes",
        "macro_all",
        "macro_base",
        "macro_rare",
        "map_all",
        "map_base",
        "map_rare",
        "n_samples",
    ] {
        assert!(
            first.get(key).is_some(),
            "results.json lacks {key}: {first}"
        );
    }

    // The training loss goes down: mean of the last epoch below the first epoch's.
    for r in &results {
        let metrics = std::fs::read_to_string(r.run_dir.join("metrics.jsonl"))?;
        let epochs: Vec<serde_json::Value> = metrics
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<serde_json::Value>, _>>()?
            .into_iter()
            .filter(|v| v["kind"] == "epoch")
            .collect();
        assert_eq!(epochs.len(), 4);
        assert!(
            metrics.lines().any(|l| l.contains("\"validation\"")),
            "mid-epoch validation records"
        );
        let first = epochs[0]["train_loss"].as_f64().unwrap();
        let last = epochs[3]["train_loss"].as_f64().unwrap();
        assert!(last < first, "{:?}: train loss {first} -> {last}", r.method);
    }
    // The CXR-CML run logged a metric loss, the baseline did not.
    let cml = results.iter().find(|r| r.method == Method::CxrCml).unwrap();
    let metrics = std::fs::read_to_string(cml.run_dir.join("metrics.jsonl"))?;
    assert!(metrics
        .lines()
        .any(|l| l.contains("\"metric_loss\":") && !l.contains("\"metric_loss\":null")));
    Ok(())
}

#[test]
fn an_existing_synthetic_dataset_is_reused_byte_for_byte() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny_config(tmp.path());
    cfg.data.synth_patients = 20;
    let dir = cxr_cml::train::prepare::ensure_synthetic(&cfg.data)?;
    let labels = std::fs::read(dir.join("train_labeled.csv"))?;
    let again = cxr_cml::train::prepare::ensure_synthetic(&cfg.data)?;
    assert_eq!(dir, again);
    assert_eq!(labels, std::fs::read(again.join("train_labeled.csv"))?);
    Ok(())
}

#[test]
fn cross_validation_runs_folds_and_aggregates_them() -> anyhow::Result<()> {
    use cxr_cml::train::cv::{aggregate, run_cv, FoldScheme};
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny_config(tmp.path());
    cfg.train_loop.epochs = 1;
    cfg.eval.bootstrap = 0;
    let out = tmp.path().join("cv");
    // One fold alone (as an array job would), then the rest; the first is not redone.
    let one = run_cv(
        &cfg,
        &[Method::MetaLabels],
        3,
        FoldScheme::Patient,
        Some(1),
        &out,
    )?;
    assert_eq!(one.folds_found, vec![1]);
    let stamp = std::fs::metadata(out.join("fold-1/results.json"))?.modified()?;
    let all = run_cv(
        &cfg,
        &[Method::MetaLabels],
        3,
        FoldScheme::Patient,
        None,
        &out,
    )?;
    assert_eq!(all.folds_found, vec![0, 1, 2]);
    assert_eq!(
        stamp,
        std::fs::metadata(out.join("fold-1/results.json"))?.modified()?
    );
    let (method, summary) = &all.methods[0];
    assert_eq!(*method, Method::MetaLabels);
    assert_eq!(summary.n_folds, 3);
    assert!(summary.macro_all.is_some());
    let table = all.table();
    assert!(
        table.contains("CLIP + meta labels") && table.contains('±'),
        "{table}"
    );
    assert!(out.join("cv-report.md").is_file() && out.join("cv-summary.json").is_file());
    // Aggregating again from disk gives the same summary.
    let again = aggregate(&out)?;
    assert_eq!(again.table(), table);
    // Each fold's run has its evaluation figures.
    let run = std::fs::read_dir(out.join("fold-0"))?
        .filter_map(|e| e.ok())
        .find(|e| e.path().is_dir())
        .expect("a run folder")
        .path();
    for fig in [
        "roc.png",
        "auc_by_frequency.png",
        "tsne_by_class.png",
        "tsne_by_cluster.png",
        "scores.csv",
        "labels.csv",
    ] {
        assert!(
            run.join("eval/best-test").join(fig).is_file(),
            "{fig} in {}",
            run.display()
        );
    }
    Ok(())
}

#[test]
fn gradient_accumulation_reproduces_the_full_batch_steps() -> anyhow::Result<()> {
    use cxr_cml::train::{prepare, train_one};
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny_config(tmp.path());
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 1;
    cfg.train_loop.max_steps = Some(3);
    cfg.eval.figures = false;
    let data = prepare::prepare(&cfg)?;
    let split = data.patient_split(&cfg.data, cfg.seed);
    let losses = |cfg: &TrainConfig, name: &str| -> anyhow::Result<Vec<f64>> {
        let run = tmp.path().join(name);
        train_one(cfg, &data, &split, &run)?;
        let text = std::fs::read_to_string(run.join("metrics.jsonl"))?;
        Ok(text
            .lines()
            .map(serde_json::from_str::<serde_json::Value>)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|v| v["kind"] == "step")
            .map(|v| v["loss"].as_f64().unwrap())
            .collect())
    };
    // Same data, same weights after each step: equal up to float summation order.
    let assert_same_steps = |full: &[f64], micro: &[f64], what: &str| {
        assert_eq!(full.len(), 3);
        for (a, b) in full.iter().zip(micro) {
            assert!(
                (a - b).abs() < 1e-4 * a.abs().max(1.0),
                "{what}: full batch {a} vs 4 micro-batches {b}"
            );
        }
    };
    let full = losses(&cfg, "full")?;
    cfg.train_loop.accumulate = 4;
    let micro = losses(&cfg, "micro")?;
    assert_same_steps(&full, &micro, "meta-labels");
    // CXR-CML (triplet loss on pseudo-labels) runs with accumulation too.
    cfg.method = Method::CxrCml;
    let cml = losses(&cfg, "cml-micro")?;
    assert!(cml.iter().all(|l| l.is_finite()));

    // The released code's weighted metric loss (soft pseudo-labels, learnable temperature) on
    // its one-pass Student-t posteriors of per-batch fits with its K rule (5 at batch 16):
    // accumulation is exact for it too, temperature gradient included.
    cfg.loss.metric = MetricLoss::Weighted;
    cfg.mixture.kind = MixtureModel::StudentTOnePass;
    cfg.mixture.nu = 8.0;
    cfg.mixture.source = LabelSource::PerBatch;
    cfg.mixture.k_rule = cxr_cml::mixture::ComponentRule::ReleasedCode;
    cfg.loss.margin = 0.3;
    cfg.train_loop.accumulate = 1;
    let full = losses(&cfg, "weighted-full")?;
    cfg.train_loop.accumulate = 4;
    let micro = losses(&cfg, "weighted-micro")?;
    assert_same_steps(&full, &micro, "weighted");
    // The temperature is a trained, checkpointed parameter (initialised at ln 1 = 0).
    let ckpt = cxr_cml::train::checkpoint::latest(&tmp.path().join("weighted-full"))?
        .expect("a checkpoint");
    let tensors =
        candle_core::safetensors::load(ckpt.join("model.safetensors"), &candle_core::Device::Cpu)?;
    let log_t = tensors[cxr_cml::train::trainer::METRIC_LOG_TEMPERATURE].to_scalar::<f32>()?;
    assert!(log_t != 0.0 && log_t.is_finite(), "log temperature {log_t}");
    let metrics = std::fs::read_to_string(tmp.path().join("weighted-full/metrics.jsonl"))?;
    assert!(metrics
        .lines()
        .any(|l| l.contains("\"metric_loss\":") && !l.contains("\"metric_loss\":null")));
    Ok(())
}

#[test]
fn a_class_never_seen_in_training_is_scored_from_its_prompts() -> anyhow::Result<()> {
    use cxr_cml::train::{prepare, run_eval::evaluate_run, train_one};
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny_config(tmp.path());
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 1;
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    let data = prepare::prepare(&cfg)?;
    let split = data.patient_split(&cfg.data, cfg.seed);
    let run = tmp.path().join("run");
    train_one(&cfg, &data, &split, &run)?;

    // A test label file with one more class, "Bulla" (CXR-LT task 3), absent from training.
    let root = prepare::synth_dir(&cfg.data);
    let csv = std::fs::read_to_string(root.join("train_labeled.csv"))?;
    let mut out = String::new();
    for (i, line) in csv.lines().enumerate() {
        let extra = if i == 0 {
            "Bulla"
        } else if i % 3 == 0 {
            "1"
        } else {
            "0"
        };
        out.push_str(&format!("{line},{extra}\n"));
    }
    let test_csv = root.join("test_with_bulla.csv");
    std::fs::write(&test_csv, out)?;

    let ev = evaluate_run(&run, "best", "test", false, Some(&test_csv), None)?;
    assert_eq!(ev.results.classes.len(), 41);
    let bulla = ev
        .results
        .class("Bulla")
        .expect("the unseen class is scored");
    assert!(
        bulla.auc.is_some_and(|a| (0.0..=1.0).contains(&a)),
        "{bulla:?}"
    );
    assert!(bulla.n_pos > 0 && bulla.n_neg > 0);
    assert!(
        ev.dir.ends_with("eval/best-test_with_bulla-test"),
        "{}",
        ev.dir.display()
    );
    Ok(())
}
