//! Parity with scikit-learn / scipy / a Python fast-DeLong reference. Fixture produced by
//! `scripts/goldens/cxr-eval/make_auc_goldens.py` (scikit-learn 1.9.1, scipy 1.17.1,
//! numpy 2.4.6; see the fixture's `produced_by`).

use cxr_eval::{
    average_precision, best_f1_threshold, bootstrap_auc_ci, delong, delong_test, evaluate,
    f1_at_threshold, roc_auc, BootstrapConfig, ClassGroup, EvalOptions,
};
use ndarray::Array2;
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auc_goldens.json"
    ))
    .expect("fixture missing: run scripts/goldens/cxr-eval/make_auc_goldens.py");
    serde_json::from_str(&text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() == 1.0)
        .collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn auc_and_ap_match_sklearn_with_ties_and_degenerate_classes() {
    let f = fixture();
    let cases = f["auc_cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (s, l) = (f64s(&case["scores"]), bools(&case["labels"]));
        match case["auc"].as_f64() {
            Some(want) => close(roc_auc(&s, &l).unwrap(), want, 1e-12, name),
            None => assert_eq!(roc_auc(&s, &l), None, "{name} should be undefined"),
        }
        match case["ap"].as_f64() {
            Some(want) => close(average_precision(&s, &l).unwrap(), want, 1e-12, name),
            None => assert_eq!(
                average_precision(&s, &l),
                None,
                "{name} AP should be undefined"
            ),
        }
    }
}

#[test]
fn evaluate_matches_sklearn_per_class_and_macros() {
    let f = fixture();
    let m = &f["matrix"];
    let rows = m["scores"].as_array().unwrap();
    let (n, c) = (rows.len(), rows[0].as_array().unwrap().len());
    let scores = Array2::from_shape_vec(
        (n, c),
        rows.iter().flat_map(f64s).map(|v| v as f32).collect(),
    )
    .unwrap();
    let labels = Array2::from_shape_vec(
        (n, c),
        m["labels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32))
            })
            .collect(),
    )
    .unwrap();
    let names: Vec<String> = (0..c).map(|j| format!("class{j}")).collect();
    let groups: Vec<ClassGroup> = m["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            if g == "rare" {
                ClassGroup::Rare
            } else {
                ClassGroup::Base
            }
        })
        .collect();
    let r = evaluate(
        scores.view(),
        labels.view(),
        &names,
        &groups,
        &EvalOptions::default(),
    )
    .unwrap();
    for (j, want) in m["per_class"].as_array().unwrap().iter().enumerate() {
        let got = &r.classes[j];
        assert_eq!(
            got.n_pos as u64,
            want["n_pos"].as_u64().unwrap(),
            "class {j} n_pos"
        );
        assert_eq!(
            got.n_neg as u64,
            want["n_neg"].as_u64().unwrap(),
            "class {j} n_neg"
        );
        match want["auc"].as_f64() {
            Some(w) => close(got.auc.unwrap(), w, 1e-12, &format!("class {j}")),
            None => assert_eq!(got.auc, None, "class {j} should be undefined"),
        }
        match want["ap"].as_f64() {
            Some(w) => close(got.ap.unwrap(), w, 1e-12, &format!("class {j} AP")),
            None => assert_eq!(got.ap, None, "class {j} AP should be undefined"),
        }
    }
    for (got, key) in [
        (r.map_all, "map_all"),
        (r.map_base, "map_base"),
        (r.map_rare, "map_rare"),
    ] {
        close(got.unwrap(), m[key].as_f64().unwrap(), 1e-12, key);
    }
    // The fixture has degenerate classes: they must be left out of the macros, not 0.5.
    assert!(r.classes.iter().any(|c| c.auc.is_none()));
    close(
        r.macro_all.unwrap(),
        m["macro_all"].as_f64().unwrap(),
        1e-12,
        "macro all",
    );
    close(
        r.macro_base.unwrap(),
        m["macro_base"].as_f64().unwrap(),
        1e-12,
        "macro base",
    );
    close(
        r.macro_rare.unwrap(),
        m["macro_rare"].as_f64().unwrap(),
        1e-12,
        "macro rare",
    );
}

#[test]
fn delong_matches_python_fast_delong() {
    let f = fixture();
    for case in f["delong"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (a, b, l) = (
            f64s(&case["scores_a"]),
            f64s(&case["scores_b"]),
            bools(&case["labels"]),
        );
        let d = delong(&a, &l).unwrap().unwrap();
        close(d.auc, case["auc_a"].as_f64().unwrap(), 1e-12, name);
        close(d.variance, case["var_a"].as_f64().unwrap(), 1e-12, name);
        let (lo, hi) = d.ci(0.95);
        let ci = f64s(&case["ci95_a"]);
        close(lo, ci[0], 1e-10, name);
        close(hi, ci[1], 1e-10, name);
        let t = delong_test(&a, &b, &l).unwrap().unwrap();
        close(t.auc_b, case["auc_b"].as_f64().unwrap(), 1e-12, name);
        close(t.var_b, case["var_b"].as_f64().unwrap(), 1e-12, name);
        close(
            t.covariance,
            case["covariance"].as_f64().unwrap(),
            1e-12,
            name,
        );
        close(t.z, case["z"].as_f64().unwrap(), 1e-8, name);
        let p = case["p_value"].as_f64().unwrap();
        assert!(
            (t.p_value - p).abs() <= 1e-9 * p.max(1e-300) + 1e-15,
            "{name}: p {} vs {p}",
            t.p_value
        );
    }
}

#[test]
fn f1_threshold_chosen_on_validation_matches_sklearn() {
    let f = fixture();
    let c = &f["f1"];
    let best = best_f1_threshold(&f64s(&c["val_scores"]), &bools(&c["val_labels"])).unwrap();
    assert_eq!(best.threshold, c["best_threshold"].as_f64().unwrap());
    close(best.f1, c["best_f1"].as_f64().unwrap(), 1e-12, "best f1");
    let test = f1_at_threshold(
        &f64s(&c["test_scores"]),
        &bools(&c["test_labels"]),
        best.threshold,
    )
    .unwrap();
    close(test.f1, c["test_f1"].as_f64().unwrap(), 1e-12, "test f1");
}

#[test]
fn bootstrap_ci_agrees_with_a_20000_resample_numpy_bootstrap() {
    let f = fixture();
    let c = &f["bootstrap"];
    let (s, l) = (f64s(&c["scores"]), bools(&c["labels"]));
    let want = f64s(&c["ci95"]);
    let sd = c["std"].as_f64().unwrap();
    let ci = bootstrap_auc_ci(&s, &l, &BootstrapConfig::new(42))
        .unwrap()
        .unwrap();
    assert_eq!(ci.n_valid, 1000);
    // Different RNGs: the endpoints agree up to Monte-Carlo error of 1,000 resamples
    // (about a tenth of the bootstrap SD); allow a quarter of it.
    close(ci.low, want[0], 0.25 * sd, "ci low");
    close(ci.high, want[1], 0.25 * sd, "ci high");
    close(
        ci.mean,
        c["auc"].as_f64().unwrap(),
        0.1 * sd,
        "bootstrap mean",
    );
}
