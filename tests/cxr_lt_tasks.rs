//! The official CXR-LT 2024 evaluation (`cargo xtask eval --task 1|2|3`) on synthetic files
//! in the challenge's layouts: each task scores its official classes (task 3: the five unseen
//! ones) and reports macro mAP with a patient-level bootstrap CI beside macro AUC, and the
//! class mapping of the file's columns.

use std::path::Path;

use cxr_cml::data::cxr_lt::synth::write_task_files;
use cxr_cml::data::cxr_lt::{CxrLtSplit, CxrLtTask, UNSEEN_CLASSES};
use cxr_cml::data::synth::{generate, SynthConfig};
use cxr_cml::train::config::{Preprocessing, Views};
use cxr_cml::train::run_eval::WeightsEval;
use cxr_cml::train::task_eval::evaluate_task;

use crate::common;

fn within(lo: f64, x: f64, hi: f64) -> bool {
    (0.0..=1.0).contains(&lo) && lo <= x + 1e-12 && x <= hi + 1e-12 && hi <= 1.0
}

#[test]
fn tasks_1_2_3_score_their_official_classes_with_map_cis() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("cxr-lt-2024");
    // 60 patients: a few dozen development and test images.
    let synth = SynthConfig {
        patients: 60,
        image_size: 64,
        seed: 3,
        ..SynthConfig::default()
    };
    generate(&root, &synth)?;
    let files = write_task_files(&root, synth.seed)?;
    eprintln!(
        "development {} / test {} images, gold {:?}",
        files.development_images, files.test_images, files.gold_images
    );

    // An untrained tiny CLIP as a Hugging Face folder: the pipeline, not the numbers.
    let cfg = common::tiny_config(tmp.path(), 1);
    let (varmap, model) = cxr_cml::train::model::build_model(&cfg, &candle_core::Device::Cpu)?;
    let hf = tmp.path().join("hf");
    cxr_cml::clip::save_pretrained(&varmap, model.config(), &hf)?;

    let base = |out: &Path| WeightsEval {
        weights: hf.display().to_string(),
        dataset: cxr_cml::data::Dataset::CxrLt,
        root: Some(root.clone()),
        labels: None,
        preprocess: Preprocessing::CheXzero,
        views: Views::All,
        prompts: None,
        out: out.to_path_buf(),
        figures: false,
        device: "cpu".into(),
        bootstrap: 200,
    };
    for (task, split) in [
        (CxrLtTask::One, CxrLtSplit::Test),
        (CxrLtTask::Two, CxrLtSplit::Test),
        (CxrLtTask::Three, CxrLtSplit::Development),
    ] {
        let out = tmp.path().join(format!("eval-task{}", task.number()));
        let ev = evaluate_task(task, split, None, &base(&out))?;
        let want: Vec<String> = match task {
            CxrLtTask::One => cxr_cml::data::classes::cxr_lt_class_names(),
            CxrLtTask::Two => files.task2_classes.clone(),
            CxrLtTask::Three => UNSEEN_CLASSES.iter().map(|s| s.to_string()).collect(),
        };
        let scored: Vec<String> = ev.results.classes.iter().map(|c| c.name.clone()).collect();
        assert_eq!(scored, want, "{task}: the official classes, in order");
        assert_eq!(ev.summary.classes, want);
        assert!(ev.summary.class_mapping.unmapped.is_empty());

        // mAP and its interval, in results.json as written.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json"))?)?;
        let t = &json["cxr_lt_task"];
        assert_eq!(t["task"], task.number());
        let map = t["map"].as_f64().expect("mAP");
        let (lo, hi) = (
            t["map_ci"]["low"].as_f64().expect("mAP CI low"),
            t["map_ci"]["high"].as_f64().expect("mAP CI high"),
        );
        eprintln!("{task}: mAP {map:.3} [{lo:.3}, {hi:.3}]");
        assert!(within(lo, map, hi), "{task}: mAP {map} [{lo}, {hi}]");
        let auc = t["macro_auc"].as_f64().expect("macro AUC");
        let (alo, ahi) = (
            t["macro_auc_ci"]["low"].as_f64().unwrap(),
            t["macro_auc_ci"]["high"].as_f64().unwrap(),
        );
        assert!(within(alo, auc, ahi), "{task}: AUC {auc} [{alo}, {ahi}]");
        // The mAP is the mean of the per-class APs, each with its interval.
        let aps: Vec<f64> = ev.results.classes.iter().filter_map(|c| c.ap).collect();
        assert!((aps.iter().sum::<f64>() / aps.len() as f64 - map).abs() < 1e-12);
        for c in ev.results.classes.iter().filter(|c| c.ap.is_some()) {
            let (l, h) = (c.ap_ci_low.unwrap(), c.ap_ci_high.unwrap());
            assert!((0.0..=1.0).contains(&l) && l <= h && h <= 1.0, "{}", c.name);
        }
        assert!(t["class_mapping"]["mapped"].as_array().unwrap().len() == want.len());
        let report = std::fs::read_to_string(out.join("report.md"))?;
        assert!(report.contains(&format!("CXR-LT 2024 task {}", task.number())));
        assert!(report.contains("mAP"));
        assert!(out
            .join(format!("task{}-{split}-labels.csv", task.number()))
            .is_file());
    }

    // A column that is not one of the task's classes (here a CXR-LT class in the task 3 file)
    // is reported as unmapped in results.json, not dropped silently.
    let file = root.join("test_labeled_task3.csv");
    let text = std::fs::read_to_string(&file)?;
    let mut lines = text.lines();
    let mut extended = lines.next().unwrap().to_string() + ",Pneumonia\n";
    for (i, l) in lines.enumerate() {
        extended.push_str(&format!("{l},{}\n", i % 2));
    }
    std::fs::write(&file, extended)?;
    let out = tmp.path().join("eval-task3-extra");
    let ev = evaluate_task(CxrLtTask::Three, CxrLtSplit::Test, Some(&root), &base(&out))?;
    assert_eq!(ev.summary.class_mapping.unmapped, vec!["Pneumonia"]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json"))?)?;
    assert_eq!(
        json["cxr_lt_task"]["class_mapping"]["unmapped"][0],
        "Pneumonia"
    );
    assert_eq!(ev.results.classes.len(), 5);

    // No file for the task: the error lists the names tried and where to get them.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty)?;
    let opts = base(&tmp.path().join("eval-missing"));
    let e = format!(
        "{:#}",
        evaluate_task(CxrLtTask::Two, CxrLtSplit::Test, Some(&empty), &opts)
            .err()
            .expect("no task file")
    );
    assert!(
        e.contains("test_labeled_task2.csv") && e.contains("cxr-lt-iccv-workshop-cvamd"),
        "{e}"
    );
    Ok(())
}
