//! The readers on the real CheXpert and NIH ChestX-ray14 label files shipped in the
//! torchxrayvision 1.5.7 wheel, against per-class counts computed by pandas
//! (`scripts/goldens/cxr-data/xrv_label_counts.py`, which also copied the files here).

use std::collections::BTreeMap;
use std::path::PathBuf;

use cxr_data::{read_chexpert, read_nih, Summary, ViewFilter};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn golden(dataset: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("xrv_counts.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[dataset].clone()
}

fn check(summary: &Summary, g: &serde_json::Value) {
    assert_eq!(summary.rows as u64, g["rows"].as_u64().unwrap());
    assert_eq!(summary.patients as u64, g["patients"].as_u64().unwrap());
    assert_eq!(summary.studies as u64, g["studies"].as_u64().unwrap());
    let views: BTreeMap<String, u64> = g["views"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let ours: BTreeMap<String, u64> = summary
        .views
        .iter()
        .map(|(k, &v)| (k.clone(), v as u64))
        .collect();
    assert_eq!(ours, views);
    let gc = g["classes"].as_array().unwrap();
    assert_eq!(gc.len(), summary.classes.len());
    for c in gc {
        let name = c["name"].as_str().unwrap();
        let ours = summary
            .classes
            .iter()
            .find(|x| x.name == name)
            .unwrap_or_else(|| panic!("class {name} missing"));
        let got = [ours.positive, ours.negative, ours.uncertain, ours.missing].map(|v| v as u64);
        let want = ["positive", "negative", "uncertain", "missing"].map(|k| c[k].as_u64().unwrap());
        assert_eq!(got, want, "{name}: ours (pos, neg, unc, missing) vs pandas");
    }
}

#[test]
fn chexpert_train_counts_match_pandas() {
    let t = read_chexpert(&fixture("xrv/chexpert_train.csv.gz")).unwrap();
    check(&Summary::of(&t), &golden("chexpert"));
    // all 14 classes map onto the CXR-LT vocabulary through aliases ("No Finding" = "Normal")
    assert!(Summary::of(&t).unknown_classes.is_empty());
    let mut frontal = t.clone();
    frontal.filter_views(&ViewFilter::frontal());
    assert!(frontal.len() > 150_000 && frontal.len() < t.len());
}

#[test]
fn nih_counts_match_pandas() {
    let t = read_nih(&fixture("xrv/Data_Entry_2017_v2020.csv.gz")).unwrap();
    let s = Summary::of(&t);
    check(&s, &golden("nih"));
    let mut t = t;
    let missing = t.reorder_classes(&cxr_data::classes::cxr_lt_class_names());
    // the 14 NIH findings + No Finding cover 15 of the 40 CXR-LT classes
    assert_eq!(missing.len(), 25);
    let eff = cxr_data::classes::cxr_lt_index("Pleural Effusion").unwrap();
    let n_eff = t
        .records
        .iter()
        .filter(|r| r.labels[eff] == cxr_data::LabelState::Positive)
        .count();
    assert_eq!(
        n_eff as u64,
        golden("nih")["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "Effusion")
            .unwrap()["positive"]
            .as_u64()
            .unwrap()
    );
}
