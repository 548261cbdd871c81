//! `cargo xtask synth` writes the CXR-LT 2024 task files and `cargo xtask eval --task N`
//! scores them through the CLI; `eval --weights` on NIH lists NIH's class names against the
//! CXR-LT vocabulary in results.json. A tiny OpenAI-format checkpoint with CLIP's full
//! vocabulary (a committed cxr-clip fixture), a few dozen synthetic images.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs in `dir`: the image cache's default folder (`.cache`) is relative to the working
/// directory, and a test must not write into the source tree.
fn xtask(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run xtask");
    assert!(
        out.status.success(),
        "xtask {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn weights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/cxr-clip/tests/fixtures/full_vocab_openai.pt")
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn synth_then_eval_task_and_the_nih_class_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("synth");
    let s = |p: &Path| p.display().to_string();
    let w = s(&weights());
    xtask(
        tmp.path(),
        &[
            "synth",
            "--out",
            &s(&root),
            "--patients",
            "60",
            "--seed",
            "3",
            "--image-size",
            "64",
        ],
    );
    for f in [
        "development_labeled_task1.csv",
        "development_labeled_task2.csv",
        "development_labeled_task3.csv",
        "test_labeled_task1.csv",
        "test_labeled_task2.csv",
        "test_labeled_task3.csv",
        "labels.csv",
    ] {
        assert!(root.join(f).is_file(), "{f}");
    }

    let out = tmp.path().join("task3");
    let printed = xtask(
        tmp.path(),
        &[
            "eval",
            "--task",
            "3",
            "--split",
            "development",
            "--weights",
            &w,
            "--data-root",
            &s(&root),
            "--out",
            &s(&out),
            "--no-figures",
            "--bootstrap",
            "100",
        ],
    );
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert!(
        stdout.contains("CXR-LT 2024 task 3 (development"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mAP") && stdout.contains("| Scoliosis |"),
        "{stdout}"
    );
    let r = results(&out);
    assert_eq!(r["cxr_lt_task"]["task"], 3);
    assert_eq!(r["cxr_lt_task"]["classes"][0], "Bulla");
    assert!(r["cxr_lt_task"]["map_ci"]["low"].is_f64());

    // A wrong split and a label file instead of a folder are clear errors.
    let bad = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(tmp.path())
        .args(["eval", "--task", "1", "--split", "val", "--weights", &w])
        .args(["--data-root", &s(&root), "--out", &s(&tmp.path().join("x"))])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("development or test"));

    // NIH: "Effusion" and "Pleural_Thickening" map onto CXR-LT names, "No Finding" to Normal.
    let nih = tmp.path().join("nih");
    xtask(
        tmp.path(),
        &[
            "synth",
            "--dataset",
            "nih",
            "--patients",
            "6",
            "--out",
            &s(&nih),
            "--image-size",
            "64",
        ],
    );
    let out = tmp.path().join("nih-eval");
    let printed = xtask(
        tmp.path(),
        &[
            "eval",
            "--weights",
            &w,
            "--dataset",
            "nih",
            "--data-root",
            &s(&nih),
            "--out",
            &s(&out),
            "--no-figures",
            "--bootstrap",
            "0",
            "--no-cache",
        ],
    );
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert!(
        stdout.contains("\"Effusion\" -> \"Pleural Effusion\""),
        "{stdout}"
    );
    let mapping = &results(&out)["class_mapping"];
    let mapped = mapping["mapped"].as_array().unwrap();
    assert!(mapped
        .iter()
        .any(|m| m["from"] == "No Finding" && m["to"] == "Normal"));
    assert!(mapping["unmapped"].as_array().unwrap().is_empty());
}
