//! The patient-level and paired bootstrap and the per-class DeLong tests of
//! [`compare_methods_with_draws`] against `scripts/goldens/cxr-eval/make_bootstrap_goldens.py`
//! (scikit-learn 1.9.1, numpy 2.4.6), fed the same committed patient draws.

use cxr_eval::{compare_methods_with_draws, ClassGroup, Interval, TestSet};
use ndarray::Array2;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .expect("fixture missing: run scripts/goldens/cxr-eval/make_bootstrap_goldens.py");
    serde_json::from_str(&text).unwrap()
}

/// Rows of numbers (null: NaN) as an f32 matrix; the scores were rounded to f32 by the script.
fn matrix(v: &Value) -> Array2<f32> {
    let rows = v.as_array().unwrap();
    let cols = rows[0].as_array().unwrap().len();
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter())
        .map(|x| x.as_f64().map_or(f32::NAN, |x| x as f32))
        .collect();
    Array2::from_shape_vec((rows.len(), cols), flat).unwrap()
}

fn close(a: f64, b: &Value, what: &str) {
    let b = b.as_f64().unwrap();
    assert!((a - b).abs() < 1e-9, "{what}: {a} vs {b}");
}

fn same_interval(ours: Option<Interval>, want: &Value, what: &str) {
    match ours {
        None => assert!(want.is_null(), "{what}: undefined here, {want} in Python"),
        Some(i) => {
            close(i.estimate, &want["estimate"], what);
            close(i.low, &want["low"], what);
            close(i.high, &want["high"], what);
            assert_eq!(
                i.n_valid as u64,
                want["n_valid"].as_u64().unwrap(),
                "{what}"
            );
        }
    }
}

#[test]
fn patient_bootstrap_paired_differences_and_delong_match_python() {
    let input = load("bootstrap_draws.json");
    let gold = load("bootstrap_goldens.json");
    let classes: Vec<String> = input["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let groups: Vec<ClassGroup> = input["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| match g.as_str().unwrap() {
            "base" => ClassGroup::Base,
            _ => ClassGroup::Rare,
        })
        .collect();
    let ids: Vec<u64> = input["patient_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let draws: Vec<Vec<usize>> = input["draws"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_u64().unwrap() as usize)
                .collect()
        })
        .collect();
    let labels = matrix(&input["labels"]);
    let scores: Vec<(String, Array2<f32>)> = input["methods"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), matrix(v)))
        .collect();
    // serde_json's map is ordered by key; the script writes its methods in that order too.
    let methods: Vec<(&str, _)> = scores.iter().map(|(k, m)| (k.as_str(), m.view())).collect();
    let level = input["level"].as_f64().unwrap();
    let test = TestSet {
        labels: labels.view(),
        class_names: &classes,
        groups: &groups,
        row_groups: Some(&ids),
    };
    let ours = compare_methods_with_draws(&methods, &test, &draws, level).unwrap();

    for (m, want) in ours.methods.iter().zip(gold["methods"].as_array().unwrap()) {
        assert_eq!(m.method, want["method"].as_str().unwrap());
        let w = &want["macros"];
        let k = &m.macros;
        let pairs = [
            k.auc_all, k.auc_base, k.auc_rare, k.map_all, k.map_base, k.map_rare,
        ];
        for (j, ours) in pairs.into_iter().enumerate() {
            same_interval(ours, &w[j], &format!("{} macro {j}", m.method));
        }
        let per_class = m
            .class_auc
            .iter()
            .enumerate()
            .map(|(c, ci)| ("class_auc", c, ci))
            .chain(
                m.class_ap
                    .iter()
                    .enumerate()
                    .map(|(c, ci)| ("class_ap", c, ci)),
            );
        assert_eq!(m.class_ap.len(), m.class_auc.len());
        for (key, c, ci) in per_class {
            let w = &want[key][c];
            let what = format!("{} {key} {c}", m.method);
            match ci {
                None => assert!(w.is_null(), "{what}"),
                Some(ci) => {
                    close(ci.low, &w["low"], &what);
                    close(ci.high, &w["high"], &what);
                    close(ci.mean, &w["mean"], &what);
                    assert_eq!(ci.n_valid as u64, w["n_valid"].as_u64().unwrap(), "{what}");
                }
            }
        }
    }
    let gold_pairs = gold["pairs"].as_array().unwrap();
    assert_eq!(ours.pairs.len(), gold_pairs.len());
    for (p, want) in ours.pairs.iter().zip(gold_pairs) {
        assert_eq!(
            (p.a.as_str(), p.b.as_str()),
            (want["a"].as_str().unwrap(), want["b"].as_str().unwrap())
        );
        let d = &p.diff;
        let diffs = [
            d.auc_all, d.auc_base, d.auc_rare, d.map_all, d.map_base, d.map_rare,
        ];
        for (j, ours) in diffs.into_iter().enumerate() {
            same_interval(ours, &want["diff"][j], &format!("difference {j}"));
        }
        for (c, t) in p.delong.iter().enumerate() {
            let w = &want["delong"][c];
            let t = t.expect("every class has two positives and two negatives");
            let what = format!("DeLong class {c}");
            close(t.auc_a, &w["auc_a"], &what);
            close(t.auc_b, &w["auc_b"], &what);
            match t.z {
                Some(z) => close(z, &w["z"], &what),
                None => assert!(w["z"].is_null(), "{what}"),
            }
            close(t.p_value, &w["p_value"], &what);
        }
    }
}
