//! Kill-and-resume: a run killed with SIGKILL after a checkpoint resumes from the newest
//! complete checkpoint and, on CPU with the same seed, reproduces the per-step losses of an
//! uninterrupted run exactly.
//!
//! The killed run is this same test binary re-executed with `CXR_RESUME_CHILD` set, so the
//! kill is a real `kill -9` of a process in the middle of training.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cxr_cml::train::{checkpoint, prepare, train_one, train_resumable, Method, TrainConfig};

const CHILD_ENV: &str = "CXR_RESUME_CHILD";
const TEST_NAME: &str = "killed_run_resumes_and_reproduces_the_losses";

use crate::common;

fn config(root: &Path) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 40);
    cfg.method = Method::CxrCml;
    cfg.train_loop.epochs = 4;
    cfg.train_loop.batch_size = 8;
    cfg.train_loop.keep_last = 2;
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 32;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 0;
    cfg
}

#[test]
fn killed_run_resumes_and_reproduces_the_losses() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        // The child: train until killed.
        let root = PathBuf::from(dir);
        let cfg = config(&root);
        let data = prepare::prepare(&cfg).unwrap();
        let split = data.patient_split(&cfg.data, cfg.seed);
        let _ = train_one(&cfg, &data, &split, &root.join("killed"));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cfg = config(root);
    let data = prepare::prepare(&cfg).unwrap();
    let split = data.patient_split(&cfg.data, cfg.seed);

    // The reference: one uninterrupted run.
    let reference = root.join("reference");
    train_one(&cfg, &data, &split, &reference).unwrap();
    let expected = common::step_losses(&reference);
    assert!(expected.len() >= 8, "{} steps", expected.len());

    // The victim: killed with SIGKILL once its second epoch checkpoint is on disk.
    let killed = root.join("killed");
    let child = common::rerun_this_test(module_path!(), TEST_NAME)
        .env(CHILD_ENV, root)
        .spawn()
        .unwrap();
    let marker = killed.join("checkpoints/epoch-0001/state.json");
    common::kill_when(
        child,
        Duration::from_millis(5),
        "child made no checkpoint",
        || marker.exists(),
    );

    let from = checkpoint::latest(&killed)
        .unwrap()
        .expect("a complete checkpoint");
    let state = checkpoint::read_state(&from).unwrap();
    assert!(state.epoch >= 1, "{state:?}");
    let outcome = train_resumable(&cfg, &data, &split, &killed, Some(&from)).unwrap();
    assert_eq!(outcome.epochs.len(), cfg.train_loop.epochs);

    let resumed = common::step_losses(&killed);
    assert_eq!(resumed.len(), expected.len(), "step records after resume");
    for ((s1, l1), (s2, l2)) in expected.iter().zip(&resumed) {
        assert_eq!(s1, s2);
        assert_eq!(l1, l2, "step {s1}: uninterrupted {l1} vs resumed {l2}");
    }
    // The per-epoch records (validation loss and AUC included) agree too.
    let reference_csv = std::fs::read_to_string(reference.join("metrics.csv")).unwrap();
    let resumed_csv = std::fs::read_to_string(killed.join("metrics.csv")).unwrap();
    assert_eq!(reference_csv, resumed_csv, "per-epoch metrics differ");
}

#[test]
fn a_fresh_run_refuses_a_folder_that_holds_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.train_loop.epochs = 1;
    cfg.method = Method::MetaLabels;
    let data = prepare::prepare(&cfg).unwrap();
    let split = data.patient_split(&cfg.data, cfg.seed);
    let run = tmp.path().join("run");
    train_one(&cfg, &data, &split, &run).unwrap();
    let before = std::fs::read(run.join("checkpoints/best/model.safetensors")).unwrap();
    let err = train_one(&cfg, &data, &split, &run)
        .err()
        .expect("must refuse")
        .to_string();
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(
        before,
        std::fs::read(run.join("checkpoints/best/model.safetensors")).unwrap()
    );
}
