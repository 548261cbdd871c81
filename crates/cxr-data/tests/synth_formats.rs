//! Synthetic images for the real CheXpert and NIH ChestX-ray14 label files (the torchxrayvision
//! copies under `tests/fixtures/xrv/`): what `generate_from_labels` writes reads back through
//! `load_table` exactly as training reads it, every image decodes, and same inputs give the
//! same bytes.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use cxr_data::image::load_gray;
use cxr_data::synth::{generate_from_labels, LabelledSynthConfig};
use cxr_data::{load_table, Dataset};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xrv")
        .join(name)
}

fn fixture_of(dataset: Dataset) -> PathBuf {
    fixture(match dataset {
        Dataset::CheXpert => "chexpert_train.csv.gz",
        _ => "Data_Entry_2017_v2020.csv.gz",
    })
}

fn cfg(seed: u64) -> LabelledSynthConfig {
    LabelledSynthConfig {
        patients: 20,
        seed,
        image_size: 64,
    }
}

/// The whole (gunzipped) fixture label file of `dataset`.
fn fixture_text(dataset: Dataset) -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(fixture_of(dataset)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Generate 20 patients of `dataset`, check the label file keeps the fixture's header and rows
/// byte for byte, and what `load_table` reads back; returns the written label file.
fn check(dataset: Dataset, expected_csv: &str, image_ext: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let s = generate_from_labels(dataset, &fixture_of(dataset), out, &cfg(0)).unwrap();
    assert_eq!(s.labels_csv, out.join(expected_csv));
    assert_eq!(s.patients, 20);
    let written = std::fs::read_to_string(&s.labels_csv).unwrap();
    let fixture = fixture_text(dataset);
    assert_eq!(written.lines().next(), fixture.lines().next(), "header");
    let rows: HashSet<&str> = fixture.lines().skip(1).collect();
    for line in written.lines().skip(1) {
        assert!(rows.contains(line), "{line} is not a fixture row");
    }

    let t = load_table(dataset, out, None).unwrap();
    assert_eq!(t.len(), s.images);
    assert!(t.len() >= 20);
    let subjects: BTreeSet<u64> = t.subjects().into_iter().collect();
    assert_eq!(subjects.len(), 20);
    for r in &t.records {
        let p = out.join(&r.path);
        assert_eq!(p.extension().unwrap(), image_ext, "{}", p.display());
        let img = load_gray(&p).unwrap();
        assert_eq!(img.dimensions(), (64, 64));
    }
    let positive_classes = s.class_counts.iter().filter(|(_, n)| *n > 0).count();
    assert!(positive_classes >= 3, "{:?}", s.class_counts);
    let names: Vec<&str> = s.class_counts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        t.classes.iter().map(String::as_str).collect::<Vec<_>>()
    );
    written
}

#[test]
fn chexpert_rows_read_back_with_images() {
    let written = check(Dataset::CheXpert, "CheXpert-v1.0-small/train.csv", "jpg");
    assert!(written.contains("-1.0") && written.contains(",,"));
}

#[test]
fn nih_rows_read_back_with_images() {
    let written = check(Dataset::Nih, "Data_Entry_2017_v2020.csv", "png");
    assert!(written.contains('|'), "some kept row has several findings");
}

#[test]
fn same_inputs_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for dataset in [Dataset::CheXpert, Dataset::Nih] {
        let run = |name: &str, seed: u64| {
            let out = dir.path().join(format!("{dataset:?}-{name}"));
            let s = generate_from_labels(dataset, &fixture_of(dataset), &out, &cfg(seed)).unwrap();
            let t = load_table(dataset, &out, None).unwrap();
            let images: Vec<Vec<u8>> = t
                .records
                .iter()
                .map(|r| std::fs::read(out.join(&r.path)).unwrap())
                .collect();
            (std::fs::read(&s.labels_csv).unwrap(), images)
        };
        let a = run("a", 0);
        let b = run("b", 0);
        assert!(
            a == b,
            "{dataset:?}: same seed must give the same label file and images"
        );
        assert!(a.1.len() >= 20);
        let c = run("c", 1);
        assert_ne!(a.0, c.0, "{dataset:?}: another seed samples other patients");
    }
}
