//! Workspace integration test: `loop.prefetch` (the next batch built on a second thread while
//! a step runs) changes nothing but the timing. A CXR-CML run with shuffled meta-label text
//! (each batch draws its text order from its step's RNG) writes the same `metrics.jsonl`,
//! `results.json` and checkpoint files, byte for byte, with prefetch on and off; and a
//! prefetching run interrupted after its first step (a batch in flight on the loader thread)
//! resumes to the same run.

use std::collections::BTreeMap;
use std::path::Path;

use cxr_cml::train::{
    checkpoint, interrupt, prepare, train_continue, train_one, Method, TrainConfig, TrainError,
};
use serde_json::Value;

use crate::common;

/// Fields that may differ between two runs of one config: wall-clock rates and the run folder.
fn config(root: &Path, prefetch: bool) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 40);
    cfg.method = Method::CxrCml;
    cfg.text.shuffle_order = true;
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 8;
    cfg.train_loop.validate_every = Some(4);
    cfg.train_loop.tensorboard = false;
    cfg.train_loop.prefetch = prefetch;
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 32;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 10;
    cfg.eval.figures = false;
    cfg
}

/// A finished run's `metrics.jsonl` lines and its test evaluation (`results.json`, volatile
/// fields removed, and the `scores.csv` text).
fn records(run: &Path) -> (Vec<Value>, (Value, String)) {
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| common::strip_volatile(serde_json::from_str(l).unwrap()))
        .collect();
    let test = run.join("eval/best-test");
    let results = serde_json::from_slice(&std::fs::read(test.join("results.json")).unwrap());
    let scores = std::fs::read_to_string(test.join("scores.csv")).unwrap();
    (metrics, (common::strip_volatile(results.unwrap()), scores))
}

/// Every file of every checkpoint folder of a run, by `folder/file`.
fn checkpoint_files(run: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for dir in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let name = format!(
                "{}/{}",
                dir.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            files.insert(name, std::fs::read(&file).unwrap());
        }
    }
    files
}

fn assert_same_run(reference: &Path, other: &Path, what: &str) {
    let ((m1, r1), (m2, r2)) = (records(reference), records(other));
    assert_eq!(m1.len(), m2.len(), "{what}: metrics.jsonl line counts");
    for (i, (a, b)) in m1.iter().zip(&m2).enumerate() {
        assert_eq!(a, b, "{what}: metrics.jsonl line {} differs", i + 1);
    }
    assert_eq!(r1.0, r2.0, "{what}: eval/best-test/results.json differs");
    assert!(r1.1 == r2.1, "{what}: eval/best-test/scores.csv differs");
}

#[test]
fn prefetch_on_and_off_train_identical_runs_and_an_interrupted_one_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = prepare::prepare(&config(root, false)).unwrap();
    let split = data.patient_split(&config(root, false).data, config(root, false).seed);

    // Built just before each step, on the training thread.
    let off = root.join("off");
    let outcome = train_one(&config(root, false), &data, &split, &off).unwrap();
    assert!(outcome.steps >= 8, "{} steps", outcome.steps);
    let (metrics, _) = records(&off);
    assert!(
        metrics
            .iter()
            .any(|l| l["kind"] == "step" && !l["metric_loss"].is_null()),
        "the mixture and its metric loss ran"
    );
    assert!(
        metrics.iter().any(|l| l["kind"] == "validation"),
        "a validation inside an epoch ran (the loader runs beside it)"
    );

    // Built on the loader thread one step ahead.
    let on = root.join("on");
    train_one(&config(root, true), &data, &split, &on).unwrap();
    assert_same_run(&off, &on, "prefetch on");
    let (a, b) = (checkpoint_files(&off), checkpoint_files(&on));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "checkpoint files"
    );
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "checkpoints/{name} differs with prefetch on"
        );
    }

    // Interrupted after its first step, while the loader holds the second batch; resumed
    // (with prefetch) from the mid-epoch checkpoint the interrupt wrote.
    let stopped = root.join("interrupted");
    interrupt::request(interrupt::SIGINT);
    let err = train_one(&config(root, true), &data, &split, &stopped);
    interrupt::clear();
    match err {
        Err(TrainError::Interrupted {
            step, checkpoint, ..
        }) => {
            assert_eq!(step, 1, "one step done");
            let state = checkpoint::read_state(&checkpoint).unwrap();
            assert_eq!(state.mid_epoch.map(|m| m.batches_done), Some(1));
        }
        other => panic!("expected an interrupt, got {:?}", other.err()),
    }
    train_continue(&config(root, true), &data, &split, &stopped).unwrap();
    assert_same_run(&off, &stopped, "interrupted and resumed");
    let resumed = checkpoint_files(&stopped);
    for name in ["best/model.safetensors", "best/optimizer.safetensors"] {
        assert!(a[name] == resumed[name], "{name} differs after the resume");
    }
}
