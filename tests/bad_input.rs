//! Bad input during a run: a corrupt JPEG is skipped and counted, never fatal; a loss that
//! becomes NaN/inf stops the run with a clear error and leaves the checkpoints as they were.

use cxr_cml::train::{checkpoint, prepare, train_one, Method, TrainConfig, TrainError};

use crate::common;

fn config(root: &std::path::Path) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 30);
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 8;
    cfg.eval.bootstrap = 0;
    cfg
}

#[test]
fn a_corrupt_jpeg_is_skipped_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let (root, frontal) = common::first_frontal_image(&cfg);
    std::fs::write(root.join(&frontal), b"\xff\xd8 not really a jpeg").unwrap();

    let data = prepare::prepare(&cfg).unwrap();
    assert_eq!(
        data.usable.len() + 1,
        data.table.records.len(),
        "exactly the corrupt image is dropped"
    );
    assert_eq!(data.cache.skipped().len(), 1);
    assert!(
        data.cache.skipped()[0].0.ends_with(&frontal),
        "{:?}",
        data.cache.skipped()
    );
    let split = data.patient_split(&cfg.data, cfg.seed);
    let out = train_one(&cfg, &data, &split, &tmp.path().join("run")).unwrap();
    assert!(out.steps > 0);
}

#[test]
fn a_diverging_loss_stops_with_a_clear_error_and_keeps_the_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.optim.lr = 1e30; // guaranteed to overflow after the first update
    cfg.optim.grad_clip = None;
    let data = prepare::prepare(&cfg).unwrap();
    let split = data.patient_split(&cfg.data, cfg.seed);
    let run = tmp.path().join("run");
    let err = train_one(&cfg, &data, &split, &run)
        .err()
        .expect("the run must stop");
    assert!(matches!(err, TrainError::NonFiniteLoss { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("optim.lr"),
        "the message says what to do: {msg}"
    );
    // Nothing half-written: every checkpoint folder present is complete.
    for dir in checkpoint::list(&run).unwrap() {
        assert!(dir.join("model.safetensors").is_file() && dir.join("state.json").is_file());
    }
    assert!(
        !run.join("results.json").exists(),
        "no results for a failed run"
    );
}
