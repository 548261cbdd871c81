//! Ctrl-C through the CLI: `cargo xtask train` interrupted by SIGINT in its first epoch
//! finishes the step, writes a mid-epoch checkpoint, prints the command that resumes and exits
//! with 130; that command finishes the run.

#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny demo run in `dir` (synthetic data, cache and output inside it).
fn train_args(dir: &Path) -> Vec<String> {
    let at = |p: &str| dir.join(p).display().to_string();
    let mut args: Vec<String> = [
        "train",
        "--method",
        "meta-labels",
        "--synth-patients",
        "30",
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "--no-progress",
    ]
    .map(String::from)
    .into();
    for set in [
        "data.synth_image_size=64".to_string(),
        "model.image_size=32".into(),
        "model.context_length=32".into(),
        "eval.bootstrap=0".into(),
        "eval.figures=false".into(),
        format!("data.synth_dir={}", at("synth")),
        format!("data.cache_dir={}", at("cache")),
    ] {
        args.extend(["--set".to_string(), set]);
    }
    args.extend(["--out".to_string(), at("run")]);
    args
}

#[test]
fn sigint_checkpoints_prints_the_resume_command_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let args = train_args(tmp.path());
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let run = tmp.path().join("run/meta-labels-tiny-bs4-e3-s0");
    let start = Instant::now();
    while !std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|t| t.contains("\"step\""))
    {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no step was logged"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Interrupted by SIGINT"), "{stderr}");
    let resume_line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("cargo xtask train"))
        .unwrap_or_else(|| panic!("no resume command in\n{stderr}"));
    assert!(resume_line.contains("--resume latest"), "{resume_line}");
    let mid: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-step-"))
        .collect();
    assert_eq!(mid.len(), 1, "one mid-epoch checkpoint: {mid:?}");
    assert!(
        !run.join(".lock").exists(),
        "the lock goes with the process"
    );

    // The printed command finishes the run.
    let mut resumed = args.clone();
    resumed.extend(["--resume".to_string(), "latest".to_string()]);
    let done = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&resumed)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(tmp.path().join("run/results.json").is_file());
}
