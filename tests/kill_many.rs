//! Kill -9, many times: a two-method run is killed with SIGKILL at random moments over its
//! whole course (before a method's first checkpoint, during steps, checkpoint writes and
//! evaluation, between methods) and resumed with `--resume latest` semantics each time, until
//! it finishes; its `metrics.jsonl` and `results.json` then equal an uninterrupted run's, apart
//! from timing fields and paths.
//!
//! `CXR_KILLS` sets how many kills at least (default 5 for CI; `CXR_KILLS=25` for the figures
//! in docs/reliability.md), spread over as many killed runs as it takes. The killed runs are
//! this test binary re-executed with `CXR_KILL_CHILD` set.

use std::path::Path;
use std::time::{Duration, Instant};

use cxr_cml::train::{prepare, run_methods, run_methods_resumable, Method, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "CXR_KILL_CHILD";
const OUT_ENV: &str = "CXR_KILL_OUT";
const TEST_NAME: &str = "a_run_killed_many_times_ends_as_an_uninterrupted_one";
const METHODS: [Method; 2] = [Method::MetaLabels, Method::CxrCml];

use crate::common;

fn config(root: &Path) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 30);
    cfg.train_loop.epochs = 3;
    cfg.train_loop.batch_size = 4;
    cfg.train_loop.keep_last = 2;
    cfg.train_loop.checkpoint_every = Some(3);
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 32;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 20;
    cfg.eval.figures = false;
    cfg
}

/// Every metrics record of a run folder without its timing field.
fn records(run_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("images_per_sec");
            v
        })
        .collect()
}

/// `results.json` without the run folders' paths.
fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for method in v.as_array_mut().unwrap() {
        method.as_object_mut().unwrap().remove("run_dir");
    }
    v
}

/// Run `out` to its end, killing it with SIGKILL after random shares (up to `share`) of a
/// clean run's time `clean`; returns the kills.
fn run_with_kills(
    root: &Path,
    out: &Path,
    clean: Duration,
    share: f64,
    rng: &mut ChaCha8Rng,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut kills = 0;
    loop {
        assert!(Instant::now() < deadline, "no finish after {kills} kills");
        let mut child = common::rerun_this_test(module_path!(), TEST_NAME)
            .env(CHILD_ENV, root)
            .env(OUT_ENV, out)
            .spawn()
            .unwrap();
        let wait = clean.mul_f64(rng.gen_range(0.0..share)) + Duration::from_millis(100);
        let t0 = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "the resumed run failed: {status}");
                return kills;
            }
            if t0.elapsed() >= wait {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn a_run_killed_many_times_ends_as_an_uninterrupted_one() {
    if let (Ok(root), Ok(out)) = (std::env::var(CHILD_ENV), std::env::var(OUT_ENV)) {
        let cfg = config(Path::new(&root));
        run_methods_resumable(&cfg, &METHODS, Path::new(&out), true).unwrap();
        return;
    }
    let kills_wanted: usize = std::env::var("CXR_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cfg = config(root);
    prepare::prepare(&cfg).unwrap(); // the dataset and image cache, outside the timing
    let reference = root.join("reference");
    let started = Instant::now();
    run_methods(&cfg, &METHODS, &reference).unwrap();
    let clean = started.elapsed();

    // Rounds of runs killed at random moments over their whole course (each child lives a
    // random share of a clean run; progress survives through the checkpoints), until enough
    // kills; every round must end as the clean run did.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut rounds) = (0usize, 0usize);
    while kills < kills_wanted {
        let out = root.join(format!("killed-{rounds}"));
        kills += run_with_kills(root, &out, clean, 0.3, &mut rng);
        rounds += 1;
        for method in METHODS {
            let mut mcfg = cfg.clone();
            mcfg.method = method;
            let name = mcfg.run_name();
            assert_eq!(
                records(&out.join(&name)),
                records(&reference.join(&name)),
                "{name}: metrics.jsonl"
            );
            assert_eq!(results(&out.join(&name)), results(&reference.join(&name)));
        }
        assert_eq!(results(&out), results(&reference), "results.json");
    }
    eprintln!(
        "survived {kills} kills in {rounds} run(s) (a clean run takes {:.1} s)",
        clean.as_secs_f64()
    );
}
