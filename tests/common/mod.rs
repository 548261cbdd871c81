//! Shared setup of the workspace integration tests (`tests/integration.rs`).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cxr_cml::train::TrainConfig;
use serde_json::Value;

/// The demo config shrunk for tests: `patients` synthetic patients generated under `root`,
/// 32 px images, 32-token texts, no progress bars. Each test sets the rest.
pub fn tiny_config(root: &Path, patients: usize) -> TrainConfig {
    let mut cfg = TrainConfig::demo();
    cfg.data.synth_patients = patients;
    cfg.data.synth_image_size = 64;
    cfg.data.synth_dir = Some(root.join("synth"));
    cfg.data.cache_dir = Some(root.join("cache"));
    cfg.model.image_size = 32;
    cfg.model.context_length = 32;
    cfg.train_loop.progress = false;
    cfg
}

/// `(step, loss)` of every step record in a run folder's `metrics.jsonl`.
pub fn step_losses(run_dir: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step")
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

/// The image path (relative to the data root) of the first frontal record of the synthetic
/// CXR-LT dataset `cfg` points at (generated if needed), and that root.
pub fn first_frontal_image(cfg: &TrainConfig) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = cxr_cml::train::prepare::ensure_synthetic(&cfg.data).unwrap();
    let table = cxr_cml::data::read_cxr_lt(&root.join("train_labeled.csv")).unwrap();
    let frontal = table
        .records
        .iter()
        .find(|r| matches!(r.view_position.as_deref(), Some("PA" | "AP")))
        .unwrap();
    let path = frontal.path.clone();
    (root, path)
}

/// Fields of `metrics.jsonl` / `results.json` that differ between identical runs (timing, the
/// run's own folder).
const VOLATILE: [&str; 2] = ["images_per_sec", "run_dir"];

/// `v` without its volatile fields, at any depth.
pub fn strip_volatile(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k, strip_volatile(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_volatile).collect()),
        v => v,
    }
}

/// This test binary, set to run only the test `function` of the calling module (pass
/// `module_path!()`), on one thread: the kill tests re-execute themselves this way to get a real
/// process to SIGKILL. libtest names a test by its path without the crate's name.
pub fn rerun_this_test(module_path: &str, function: &str) -> Command {
    let name = match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{function}"),
        None => function.to_string(),
    };
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", &name, "--test-threads", "1"]);
    command
}

/// Kills `child` with SIGKILL as soon as `ready()` holds, polling every `poll`, and reaps it.
/// Fails if the child ends on its own first, or if `ready()` has not held after 300 s
/// (`not_ready` says what never happened).
pub fn kill_when(mut child: Child, poll: Duration, not_ready: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended ({status}) before it could be killed");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{not_ready}");
        std::thread::sleep(poll);
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}
