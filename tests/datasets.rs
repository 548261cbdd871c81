//! Training on the other label formats: synthetic images drawn for the committed CheXpert and
//! NIH ChestX-ray14 label files (`crates/cxr-data/tests/fixtures/xrv/`), read through
//! `data.dataset`, trained with the meta-label methods and scored zero-shot.

use std::path::{Path, PathBuf};

use cxr_cml::data::synth::{generate_from_labels, LabelledSynthConfig};
use cxr_cml::data::Dataset;
use cxr_cml::train::config::RareSet;
use cxr_cml::train::{run_methods, Method, TrainConfig};

use crate::common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/cxr-data/tests/fixtures/xrv")
        .join(name)
}

/// A tiny run on `patients` synthetic patients of `dataset`, drawn under `dir`.
fn config_for(dataset: Dataset, labels: &str, dir: &Path) -> anyhow::Result<TrainConfig> {
    let root = dir.join("data");
    let synth = LabelledSynthConfig {
        patients: 50,
        seed: 0,
        image_size: 64,
    };
    generate_from_labels(dataset, &fixture(labels), &root, &synth)?;
    let mut cfg = common::tiny_config(dir, 50);
    cfg.data.dataset = dataset;
    cfg.data.root = Some(root);
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 16;
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    cfg.validate()?;
    Ok(cfg)
}

fn trains_and_scores(dataset: Dataset, labels: &str, classes: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cfg = config_for(dataset, labels, tmp.path())?;
    let out = tmp.path().join("run");
    let results = run_methods(&cfg, &[Method::MetaLabels, Method::CxrCml], &out)?;
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.test.classes.len(), classes, "{dataset}: {:?}", r.method);
        let auc = r
            .test
            .macro_all
            .expect("some class has test positives and negatives");
        assert!((0.0..=1.0).contains(&auc), "{auc}");
        assert!(r.steps > 0 && r.first_loss.is_finite() && r.last_loss.is_finite());
        // The paper's rare set names CXR-LT classes: here rare means few training images.
        let rare = r
            .test
            .classes
            .iter()
            .filter(|c| c.group == cxr_cml::eval::ClassGroup::Rare);
        assert!(rare.count() > 0, "{dataset}: no rare class");
        assert!(r.run_dir.join("config.toml").is_file());
        let saved = std::fs::read_to_string(r.run_dir.join("config.toml"))?;
        assert!(
            saved.contains(&format!("dataset = \"{dataset}\"")),
            "{saved}"
        );
    }
    assert!(out.join("report.md").is_file());
    Ok(())
}

#[test]
fn chexpert_trains_the_meta_label_methods_end_to_end() -> anyhow::Result<()> {
    // CheXpert's 14 observations.
    trains_and_scores(Dataset::CheXpert, "chexpert_train.csv.gz", 14)
}

#[test]
fn nih_trains_the_meta_label_methods_end_to_end() -> anyhow::Result<()> {
    // The 14 ChestX-ray14 findings and "No Finding".
    trains_and_scores(Dataset::Nih, "Data_Entry_2017_v2020.csv.gz", 15)
}

#[test]
fn the_report_baseline_is_refused_on_a_dataset_without_reports() {
    let mut cfg = TrainConfig::demo();
    cfg.data.dataset = Dataset::Nih;
    cfg.data.rare_set = RareSet::Paper;
    cfg.method = Method::Baseline;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("report text") && e.contains("nih"), "{e}");
    assert!(e.contains("--method meta-labels"), "{e}");
    // Without a data root there is nothing to train on: the error says how to make one.
    cfg.method = Method::CxrCml;
    let e = cxr_cml::train::prepare::prepare(&cfg)
        .err()
        .expect("no root")
        .to_string();
    assert!(
        e.contains("--data-root") && e.contains("xtask synth --dataset nih"),
        "{e}"
    );
}
