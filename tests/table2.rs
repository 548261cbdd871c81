//! The paper's Table 2 by the paper's recipe: `cargo xtask train --preset paper --weights
//! CHEXZERO.pt` compares, all from that one checkpoint and on the same test images, the
//! weights scored zero-shot as released, the weights fine-tuned on meta-labels, and CXR-CML.
//!
//! End to end on synthetic data with the tiny OpenAI-format checkpoint that has CLIP's full
//! 49,408-token vocabulary and 77 positions (`crates/cxr-clip/tests/fixtures/
//! full_vocab_openai.pt`, made by `scripts/goldens/cxr-clip/make_full_vocab_fixture.py`), so
//! that the real prompts and meta-label texts tokenize; the paper preset is shrunk to one
//! epoch on a few images by overrides.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cxr_cml::data::Dataset;
use cxr_cml::train::config::{Preprocessing, Views};
use cxr_cml::train::run_eval::{evaluate_weights, WeightsEval};
use cxr_cml::train::{run_methods, Method, TrainConfig};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/cxr-clip/tests/fixtures/full_vocab_openai.pt")
}

/// A `scores.csv`: its class names and each id's row.
type ScoresById = (Vec<String>, HashMap<String, Vec<f64>>);

/// `scores.csv` as id -> row.
fn scores_by_id(path: &Path) -> anyhow::Result<ScoresById> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .skip(1)
        .map(str::to_string)
        .collect();
    let mut rows = HashMap::new();
    for line in lines {
        let mut fields = line.split(',');
        let id = fields.next().unwrap_or_default().to_string();
        let row = fields.map(str::parse).collect::<Result<Vec<f64>, _>>()?;
        rows.insert(id, row);
    }
    Ok((header, rows))
}

#[test]
fn paper_preset_from_one_pt_checkpoint_gives_the_three_table2_rows() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = TrainConfig::preset("paper")?;
    let e = cfg.require_weights("paper").unwrap_err().to_string();
    assert!(e.contains("--weights"), "{e}");
    cfg.model.weights = Some(fixture().display().to_string());
    cfg.require_weights("paper")?;
    for o in [
        "loop.epochs=1",
        "loop.batch_size=16",
        "loop.progress=false",
        "mixture.k=4",
        "data.synth_patients=60",
        "data.synth_image_size=64",
        "eval.bootstrap=50",
        "eval.figures=false",
    ] {
        cfg.set(o)?;
    }
    cfg.data.synth_dir = Some(tmp.path().join("synth"));
    cfg.data.cache_dir = Some(tmp.path().join("cache"));
    let methods = cfg.default_methods();
    assert_eq!(
        methods,
        [Method::ZeroShot, Method::MetaLabels, Method::CxrCml]
    );

    let out = tmp.path().join("table2");
    let results = run_methods(&cfg, &methods, &out)?;
    let names: Vec<&str> = results.iter().map(|r| r.row_name()).collect();
    assert_eq!(
        names,
        [
            "CheXzero (as released)",
            "CheXzero + meta labels",
            "CXR-CML"
        ]
    );
    assert_eq!(results[0].steps, 0, "the zero-shot row is not trained");
    assert!(results[1].steps > 0 && results[2].steps > 0);

    // The table has exactly the three rows, with CIs and the paired marks against the first.
    let table = cxr_cml::train::report::auc_table(&results);
    eprintln!("{table}");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Method"))
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    for (row, name) in rows.iter().zip(&names) {
        assert!(row.starts_with(&format!("| {name} |")), "{table}");
    }
    assert!(table.contains("vs CheXzero (as released)"), "{table}");
    let report = std::fs::read_to_string(out.join("report.md"))?;
    assert!(report.contains("No training: the initial weights scored zero-shot."));
    assert!(out.join("comparisons.json").is_file());
    // The cross-validation summary (the paper's 5-fold averages) names the rows the same way.
    let cv = tmp.path().join("cv");
    std::fs::create_dir_all(cv.join("fold-0"))?;
    std::fs::copy(out.join("results.json"), cv.join("fold-0/results.json"))?;
    let summary = cxr_cml::train::cv::aggregate(&cv)?;
    let cv_names: Vec<&str> = (0..summary.methods.len())
        .map(|i| summary.row_name(i))
        .collect();
    assert_eq!(cv_names, names);

    // Every method was scored on the same test images.
    let scores: Vec<ScoresById> = results
        .iter()
        .map(|r| scores_by_id(&r.run_dir.join("eval/best-test/scores.csv")))
        .collect::<anyhow::Result<_>>()?;
    let (classes, zero_shot) = &scores[0];
    assert_eq!(classes.len(), 40, "the CXR-LT classes");
    for (_, other) in &scores[1..] {
        let mut a: Vec<&String> = zero_shot.keys().collect();
        let mut b: Vec<&String> = other.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
    // Real class names tokenize into distinct prompts: the classes' scores differ.
    let first = zero_shot.values().next().expect("test images");
    assert!(
        first.iter().any(|&p| (p - first[0]).abs() > 1e-4),
        "{first:?}"
    );

    // The zero-shot row is `cargo xtask eval --weights` of the same checkpoint on those images.
    let root = cxr_cml::train::prepare::ensure_synthetic(&cfg.data)?;
    let eval_out = tmp.path().join("eval-weights");
    evaluate_weights(&WeightsEval {
        weights: fixture().display().to_string(),
        dataset: Dataset::CxrLt,
        root: Some(root),
        labels: None,
        preprocess: Preprocessing::CheXzero,
        views: Views::Frontal,
        prompts: None,
        out: eval_out.clone(),
        figures: false,
        device: "cpu".into(),
        bootstrap: 0,
    })?;
    let (eval_classes, all) = scores_by_id(&eval_out.join("scores.csv"))?;
    assert_eq!(&eval_classes, classes);
    for (id, row) in zero_shot {
        let want = &all[id];
        for (a, b) in row.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{id}: {a} vs {b}");
        }
    }
    Ok(())
}
