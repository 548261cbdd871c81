//! Zero-shot evaluation outside a run (`cargo xtask eval --weights`): any CLIP weights on
//! every image of a label file, for CXR-LT, CheXpert and NIH; and the "Normal" class scored
//! the right way round by the demo's "{} is present" / "{} is absent" prompts.

use std::path::{Path, PathBuf};

use cxr_cml::data::synth::{generate_from_labels, LabelledSynthConfig};
use cxr_cml::data::{load_table, Dataset};
use cxr_cml::train::config::{Preprocessing, Views};
use cxr_cml::train::run_eval::{evaluate_weights, WeightsEval, ID_COLUMN};
use cxr_cml::train::{run_methods, Method, TrainConfig};

use crate::common;

/// A tiny run of the meta-label method; returns its folder.
fn tiny_run(cfg: &TrainConfig, out: &Path) -> anyhow::Result<PathBuf> {
    let results = run_methods(cfg, &[Method::MetaLabels], out)?;
    Ok(results[0].run_dir.clone())
}

fn weights_eval(weights: &Path, dataset: Dataset, root: &Path, out: &Path) -> WeightsEval {
    WeightsEval {
        weights: weights.display().to_string(),
        dataset,
        root: Some(root.to_path_buf()),
        labels: None,
        preprocess: Preprocessing::CheXzero,
        views: Views::All,
        prompts: None,
        out: out.to_path_buf(),
        figures: false,
        device: "cpu".into(),
        bootstrap: 0,
    }
}

/// A `scores.csv` / `labels.csv`: its ids, class names and rows.
type IdCsv = (Vec<String>, Vec<String>, Vec<Vec<f32>>);

/// The `id` column and the numbers of a `scores.csv` / `labels.csv`.
fn read_csv(path: &Path) -> anyhow::Result<IdCsv> {
    let text = std::fs::read_to_string(path)?;
    let header = cxr_cml::eval::parse_csv_header(&text)?;
    assert_eq!(header[0], ID_COLUMN, "{}", path.display());
    let (names, m) = cxr_cml::eval::parse_matrix_csv_columns(&text, Some(&header[1..]))?;
    // Synthetic ids hold no comma or quote: the first field of each line is the id.
    let ids = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().to_string())
        .collect();
    Ok((
        ids,
        names,
        m.rows().into_iter().map(|r| r.to_vec()).collect(),
    ))
}

/// Every image of the label file is scored, ids first, probabilities in [0, 1].
fn check_output(out: &Path, dataset: Dataset, root: &Path) -> anyhow::Result<()> {
    let table = load_table(dataset, root, None)?;
    let want: Vec<String> = table.records.iter().map(|r| r.dicom_id.clone()).collect();
    let (ids, names, scores) = read_csv(&out.join("scores.csv"))?;
    let (label_ids, label_names, labels) = read_csv(&out.join("labels.csv"))?;
    assert_eq!(ids, want, "{dataset}: scores.csv ids are the label file's");
    assert_eq!(label_ids, want);
    assert_eq!(names, table.classes);
    assert_eq!(label_names, table.classes);
    assert_eq!(labels.len(), scores.len());
    for row in &scores {
        assert!(row.iter().all(|p| (0.0..=1.0).contains(p)), "{row:?}");
    }
    assert!(out.join("results.json").is_file() && out.join("report.md").is_file());
    let results: cxr_cml::eval::EvalResults =
        serde_json::from_slice(&std::fs::read(out.join("results.json"))?)?;
    assert_eq!(results.n_samples, want.len());
    Ok(())
}

#[test]
fn any_checkpoint_scores_every_image_of_a_label_file() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = common::tiny_config(tmp.path(), 40);
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 1;
    cfg.train_loop.max_steps = Some(2);
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    let run = tiny_run(&cfg, &tmp.path().join("run"))?;
    let root = tmp.path().join("synth");

    // One of our checkpoints (no config.json: the run's config.toml builds it).
    let out = tmp.path().join("eval-ckpt");
    let ev = evaluate_weights(&weights_eval(
        &run.join("checkpoints/best"),
        Dataset::CxrLt,
        &root,
        &out,
    ))?;
    assert_eq!(ev.dir, out);
    check_output(&out, Dataset::CxrLt, &root)?;

    // The run's own evaluation writes the same layout, id first.
    let (ids, _, _) = read_csv(&run.join("eval/best-test/scores.csv"))?;
    assert!(!ids.is_empty());

    // A Hugging Face folder (config.json + model.safetensors): its input size, 32 px here.
    let (varmap, model) = cxr_cml::train::model::build_model(&cfg, &candle_core::Device::Cpu)?;
    let hf = tmp.path().join("hf");
    cxr_cml::clip::save_pretrained(&varmap, model.config(), &hf)?;
    let out = tmp.path().join("eval-hf");
    let mut opts = weights_eval(&hf, Dataset::CxrLt, &root, &out);
    opts.prompts = Some(cxr_cml::text::PromptSet::present_absent());
    evaluate_weights(&opts)?;
    check_output(&out, Dataset::CxrLt, &root)?;

    // CheXpert and NIH label files, images drawn for them.
    for (dataset, file) in [
        (Dataset::CheXpert, "chexpert_train.csv.gz"),
        (Dataset::Nih, "Data_Entry_2017_v2020.csv.gz"),
    ] {
        let root = tmp.path().join(format!("{dataset}"));
        let labels = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/cxr-data/tests/fixtures/xrv")
            .join(file);
        let synth = LabelledSynthConfig {
            patients: 12,
            seed: 0,
            image_size: 64,
        };
        generate_from_labels(dataset, &labels, &root, &synth)?;
        let out = tmp.path().join(format!("eval-{dataset}"));
        evaluate_weights(&weights_eval(&hf, dataset, &root, &out))?;
        check_output(&out, dataset, &root)?;
    }
    Ok(())
}

/// The demo's negative prompt "normal is absent" uses a negation a CLIP trained from scratch
/// never learns: it embeds as a finding-free text, nearer normal images than "normal is
/// present", and Normal's AUC came out far below chance (0.07 in the demo). Scored from its
/// positive prompts alone ("normal is present" and a report's "no acute cardiopulmonary
/// process", which the report-text model knows), it is above chance for the meta-label and
/// the report-text model (the report-text model was at 0.21 with the meta-label prompt
/// alone, scored against the other classes' prompts).
#[test]
fn normal_is_scored_the_right_way_round() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    // The demo's data and model (400 patients, 128 px drawings, 64 px CLIP, 77 tokens),
    // three epochs instead of eight.
    let mut cfg = common::tiny_config(tmp.path(), 400);
    cfg.data.synth_image_size = 128;
    cfg.model.image_size = 64;
    cfg.model.context_length = 77;
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 3;
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    let methods = [Method::MetaLabels, Method::Baseline];
    let results = run_methods(&cfg, &methods, &tmp.path().join("run"))?;
    // Measured here: 0.77 (meta-labels) and 0.52 (report text, which learns Normal more
    // slowly: 0.76-0.90 after the demo's eight epochs, where the old rule gave it 0.21).
    for ((method, result), floor) in methods.iter().zip(&results).zip([0.6, 0.5]) {
        let normal = result.test.class("Normal").expect("a Normal class");
        let auc = normal.auc.expect("Normal has test positives and negatives");
        eprintln!("{method:?}: Normal AUC {auc:.3}");
        assert!(auc > floor, "{method:?}: Normal AUC {auc:.3}: inverted");
    }
    Ok(())
}
