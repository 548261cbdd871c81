//! What a crash or a mistake leaves behind: a run killed before its first checkpoint resumes
//! with `--resume latest`; a second writer is refused while a run is in use; a damaged
//! checkpoint is skipped for the one before it; a truncated JPEG is skipped and listed.
//!
//! The killed run is this test binary re-executed with `CXR_RELIABILITY_CHILD` set, so the kill
//! is a real SIGKILL of a process in the middle of its first epoch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cxr_cml::train::lock::RunLock;
use cxr_cml::train::{
    checkpoint, prepare, run_methods, run_methods_resumable, train_continue, train_one, Method,
    TrainConfig,
};

const CHILD_ENV: &str = "CXR_RELIABILITY_CHILD";
const KILL_TEST: &str = "a_run_killed_before_its_first_checkpoint_resumes";

use crate::common;

fn config(root: &Path) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 40);
    cfg.method = Method::MetaLabels;
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 4;
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = false;
    cfg
}

#[test]
fn a_run_killed_before_its_first_checkpoint_resumes() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let root = PathBuf::from(dir);
        let _ = run_methods(&config(&root), &[Method::MetaLabels], &root.join("killed"));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cfg = config(root);
    let reference = root.join("reference");
    run_methods(&cfg, &[Method::MetaLabels], &reference).unwrap();
    let run_name = cfg.run_name();
    let expected = common::step_losses(&reference.join(&run_name));

    // Killed once its first steps are logged, long before the epoch's checkpoint.
    let killed = root.join("killed");
    let run_dir = killed.join(&run_name);
    let child = common::rerun_this_test(module_path!(), KILL_TEST)
        .env(CHILD_ENV, root)
        .spawn()
        .unwrap();
    let metrics = run_dir.join("metrics.jsonl");
    common::kill_when(
        child,
        Duration::from_millis(1),
        "child made no step",
        || std::fs::read_to_string(&metrics).is_ok_and(|t| t.contains("\"step\"")),
    );
    assert!(
        checkpoint::latest(&run_dir).unwrap().is_none(),
        "killed too late: a checkpoint exists"
    );
    assert!(run_dir.join("config.toml").is_file());

    // `--resume latest` starts the method over; the unfinished files are kept aside.
    let results = run_methods_resumable(&cfg, &[Method::MetaLabels], &killed, true).unwrap();
    assert_eq!(results.len(), 1);
    assert!(run_dir.join("unfinished-0/config.toml").is_file());
    assert!(run_dir.join("unfinished-0/metrics.jsonl").is_file());
    // Its TensorBoard file went aside too: the restart's file is the run folder's only one.
    let events = |d: &Path| cxr_cml::train::tensorboard::events_files(d).unwrap().len();
    assert_eq!(events(&run_dir.join("unfinished-0")), 1);
    assert_eq!(events(&run_dir), 1);
    assert_eq!(
        common::step_losses(&run_dir),
        expected,
        "the restarted run equals a clean one"
    );
    assert!(!run_dir.join(cxr_cml::train::lock::LOCK_FILE).exists());
}

#[test]
fn a_second_writer_is_refused_with_the_owners_process_id() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.train_loop.epochs = 1;
    let data = prepare::prepare(&cfg).unwrap();
    let split = data.patient_split(&cfg.data, cfg.seed);
    let run = tmp.path().join("run");
    train_one(&cfg, &data, &split, &run).unwrap();

    // Another process holds the folder: training and evaluation both refuse.
    let held = RunLock::acquire(&run).unwrap();
    let pid = std::process::id().to_string();
    let e = train_continue(&cfg, &data, &split, &run)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("in use by process") && e.contains(&pid), "{e}");
    let e = cxr_cml::train::run_eval::evaluate_run(&run, "best", "test", false, None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("in use by process") && e.contains(&pid), "{e}");
    drop(held);
    cxr_cml::train::run_eval::evaluate_run(&run, "best", "test", false, None, None).unwrap();
}

#[test]
fn a_damaged_checkpoint_is_skipped_for_the_one_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.train_loop.epochs = 3;
    cfg.train_loop.batch_size = 8;
    cfg.train_loop.keep_last = 2;
    let data = prepare::prepare(&cfg).unwrap();
    let split = data.patient_split(&cfg.data, cfg.seed);
    let run = tmp.path().join("run");
    train_one(&cfg, &data, &split, &run).unwrap();
    let expected = common::step_losses(&run);
    let newest = checkpoint::latest(&run).unwrap().unwrap();
    assert!(newest.ends_with("epoch-0002"), "{}", newest.display());
    checkpoint::verify(&newest).unwrap();

    // A flipped byte in the newest weights.
    let model = newest.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x40;
    std::fs::write(&model, &bytes).unwrap();
    let e = checkpoint::verify(&newest).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("damaged"),
        "{e}"
    );
    let good = checkpoint::latest_good(&run).unwrap().unwrap();
    assert!(good.ends_with("epoch-0001"), "{}", good.display());
    // A truncated file is caught as well.
    let optim = good.join("optimizer.safetensors");
    let whole = std::fs::read(&optim).unwrap();
    std::fs::write(&optim, &whole[..whole.len() / 2]).unwrap();
    assert!(checkpoint::verify(&good).is_err());
    std::fs::write(&optim, &whole).unwrap();

    // Resuming redoes the last epoch from epoch 1 and reproduces the clean run.
    let outcome = train_continue(&cfg, &data, &split, &run).unwrap();
    assert_eq!(outcome.epochs.len(), 3);
    assert_eq!(common::step_losses(&run), expected);
}

#[test]
fn a_truncated_jpeg_is_skipped_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let (root, frontal) = common::first_frontal_image(&cfg);
    let path = root.join(&frontal);
    let bytes = std::fs::read(&path).unwrap();
    // An interrupted download: the first third of the file.
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let data = prepare::prepare(&cfg).unwrap();
    assert_eq!(data.usable.len() + 1, data.table.records.len());
    let skipped = data.cache.skipped();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].0.ends_with(&frontal), "{skipped:?}");
    assert!(format!("{skipped:?}").contains("truncated"), "{skipped:?}");
}
