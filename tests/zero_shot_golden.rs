//! Zero-shot scoring of weights never trained here, against an independent pipeline.
//!
//! `scripts/goldens/cxr-clip/zero_shot_golden.py` scored the images of
//! `tests/fixtures/zero_shot_golden/` with the tiny full-vocabulary OpenAI-format checkpoint
//! `crates/cxr-clip/tests/fixtures/full_vocab_openai.pt` through Hugging Face `CLIPModel`
//! (float64, weights renamed in Python), Pillow / torchvision CheXzero preprocessing,
//! CheXzero's "{}" / "no {}" softmax and scikit-learn's AUC, and committed the scores and
//! AUCs (`goldens.json`). Here `evaluate_weights` (what `cargo xtask eval --weights` runs)
//! scores the same files; per class the scores must correlate at >= 0.99 and the AUCs agree.
//! Our pipeline caches the preprocessed images as 8-bit pixels and runs in float32, the
//! reference resizes normalised floats in float64: the scores are close, not identical.

use std::path::{Path, PathBuf};

use cxr_cml::data::Dataset;
use cxr_cml::train::config::{Preprocessing, Views};
use cxr_cml::train::run_eval::{evaluate_weights, WeightsEval, ID_COLUMN};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// A `scores.csv`: ids, class names, rows.
type Scores = (Vec<String>, Vec<String>, Vec<Vec<f64>>);

fn read_scores(path: &Path) -> anyhow::Result<Scores> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], ID_COLUMN);
    let (mut ids, mut rows) = (Vec::new(), Vec::new());
    for line in lines {
        let mut fields = line.split(',');
        ids.push(fields.next().unwrap_or_default().to_string());
        rows.push(
            fields
                .map(|v| v.parse::<f64>())
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok((ids, header[1..].to_vec(), rows))
}

#[test]
fn pt_weights_score_like_transformers_and_sklearn() -> anyhow::Result<()> {
    let root = repo().join("tests/fixtures/zero_shot_golden");
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("goldens.json"))?)?;
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("eval");
    let weights = repo().join("crates/cxr-clip/tests/fixtures/full_vocab_openai.pt");
    let ev = evaluate_weights(&WeightsEval {
        weights: weights.display().to_string(),
        dataset: Dataset::CxrLt,
        root: Some(root.clone()),
        labels: Some(root.join("labels.csv")),
        preprocess: Preprocessing::CheXzero,
        views: Views::All,
        prompts: None,
        out: out.clone(),
        figures: false,
        device: "cpu".into(),
        bootstrap: 0,
    })?;

    let (ids, classes, ours) = read_scores(&out.join("scores.csv"))?;
    let want_ids: Vec<String> = serde_json::from_value(golden["ids"].clone())?;
    let want_classes: Vec<String> = serde_json::from_value(golden["classes"].clone())?;
    let reference: Vec<Vec<f64>> = serde_json::from_value(golden["scores"].clone())?;
    assert_eq!(ids, want_ids);
    assert_eq!(classes, want_classes);
    assert_eq!(golden["image_size"], 64, "the weights' own input size");
    for (j, class) in classes.iter().enumerate() {
        let a: Vec<f64> = ours.iter().map(|r| r[j]).collect();
        let b: Vec<f64> = reference.iter().map(|r| r[j]).collect();
        let r = pearson(&a, &b);
        let max_diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        let auc = ev.results.class(class).and_then(|c| c.auc);
        let want_auc = golden["auc"][class].as_f64().expect("a golden AUC");
        eprintln!(
            "{class}: r = {r:.5}, max |diff| {max_diff:.2e}, AUC {auc:?} vs sklearn {want_auc:.4}"
        );
        assert!(r >= 0.99, "{class}: score correlation {r:.4} < 0.99");
        let auc = auc.expect("every class has positives and negatives");
        assert!(
            (auc - want_auc).abs() <= 0.02,
            "{class}: AUC {auc:.4} vs scikit-learn {want_auc:.4}"
        );
    }
    Ok(())
}
