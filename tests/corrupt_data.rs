//! Workspace integration test: a dataset with damaged parts still trains. Garbage and
//! truncated JPEGs, deleted images and malformed label rows are skipped, and every skipped
//! item is listed with its reason in the run folder's `skipped.tsv`, with the same counts in
//! `results.json` and `report.md`. An output folder that cannot be created is an error before
//! any training.

use std::path::{Path, PathBuf};

use cxr_cml::train::config::Views;
use cxr_cml::train::{prepare, run_methods, Method, TrainConfig};

use crate::common;

fn tiny_config(root: &Path) -> TrainConfig {
    let mut cfg = common::tiny_config(root, 40);
    // Lateral images too: every damaged file is then one the run reads.
    cfg.data.views = Views::All;
    cfg.train_loop.epochs = 1;
    cfg.train_loop.batch_size = 16;
    cfg.mixture.k = 4;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 10;
    cfg.eval.figures = false;
    cfg
}

/// Every `.jpg` under `dir`, sorted.
fn jpegs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jpg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn damaged_images_and_label_rows_are_skipped_listed_and_counted() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cfg = tiny_config(tmp.path());
    let dir = prepare::ensure_synthetic(&cfg.data)?;

    // 5% of the images damaged (half truncated, half garbage), 3 deleted.
    let images = jpegs(&dir);
    assert!(images.len() >= 60, "{} images", images.len());
    let mut damaged = 0;
    for (i, p) in images.iter().enumerate().filter(|(i, _)| i % 20 == 3) {
        let bytes = std::fs::read(p)?;
        if i % 40 == 3 {
            std::fs::write(p, &bytes[..bytes.len() / 3])?;
        } else {
            std::fs::write(p, b"this is not a JPEG at all, just text")?;
        }
        damaged += 1;
    }
    let deleted = 3;
    for p in images.iter().filter(|p| !p.exists()).chain(
        images
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 20 == 11)
            .map(|(_, p)| p)
            .take(deleted),
    ) {
        std::fs::remove_file(p)?;
    }

    // Two malformed label rows: too few fields, and a label that is not a number.
    let csv = dir.join("train_labeled.csv");
    let text = std::fs::read_to_string(&csv)?;
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let mut not_a_label = row.clone();
    not_a_label[0] = "bad-label-row";
    *not_a_label.last_mut().unwrap() = "maybe";
    let short = format!("{},{},{}", "short-row", row[1], row[2]);
    std::fs::write(&csv, format!("{text}{short}\n{}\n", not_a_label.join(",")))?;

    let out = tmp.path().join("run");
    let results = run_methods(&cfg, &[Method::CxrCml], &out)?;
    let r = &results[0];
    assert!(r.steps >= 1 && r.test.macro_all.is_some());

    let list = std::fs::read_to_string(r.run_dir.join("skipped.tsv"))?;
    let lines: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert!(
        lines.iter().all(|l| l.len() == 3 && !l[2].is_empty()),
        "{list}"
    );
    let rows = lines.iter().filter(|l| l[0] == "row").count();
    let imgs = lines.iter().filter(|l| l[0] == "image").count();
    assert_eq!(rows, 2, "{list}");
    assert_eq!(imgs, damaged + deleted, "{list}");
    assert_eq!((r.skipped_rows, r.skipped_images), (rows, imgs));

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.run_dir.join("results.json"))?)?;
    assert_eq!(json[0]["skipped_rows"], rows);
    assert_eq!(json[0]["skipped_images"], imgs);
    let report = std::fs::read_to_string(r.run_dir.join("report.md"))?;
    assert!(
        report.contains(&format!(
            "{rows} malformed label rows and {imgs} unreadable images"
        )),
        "{report}"
    );
    Ok(())
}

#[test]
fn an_output_folder_that_cannot_be_created_is_an_error_before_training() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = tiny_config(tmp.path());
    cfg.data.synth_patients = 12;
    // Not a permission test (CI runs as root): a folder under a regular file cannot exist.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"")?;
    let out = file.join("run");
    let err = run_methods(&cfg, &[Method::CxrCml], &out).unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
    assert!(std::fs::metadata(&file)?.is_file() && !out.exists());
    Ok(())
}
