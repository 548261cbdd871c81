//! The comparison folder of two methods carries the statistics a reviewer checks: each macro
//! with its patient-level bootstrap CI, each method's paired difference from the first method
//! (in the printed table, marked significant or not, with a legend line) and, in
//! `comparisons.json`, every pair's differences and per-class DeLong tests.

use cxr_cml::train::config::BootstrapUnit;
use cxr_cml::train::report::auc_table;
use cxr_cml::train::{run_methods, Method};

use crate::common;

#[test]
fn two_methods_get_cis_paired_differences_and_delong() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = common::tiny_config(tmp.path(), 60);
    cfg.train_loop.epochs = 1;
    cfg.train_loop.batch_size = 16;
    cfg.mixture.k = 8;
    cfg.mixture.bank_capacity = 64;
    cfg.mixture.max_iter = 5;
    cfg.eval.bootstrap = 50;
    cfg.eval.figures = false;
    let out = tmp.path().join("run");
    let results = run_methods(&cfg, &[Method::Baseline, Method::CxrCml], &out)?;

    let first = results[0]
        .stats
        .as_ref()
        .expect("statistics of the first method");
    assert_eq!(first.bootstrap_unit, BootstrapUnit::Patient);
    assert!(first.vs_first.is_none());
    let all = first.macros.auc_all.expect("a defined macro AUC");
    assert_eq!(Some(all.estimate), results[0].test.macro_all);
    assert!(all.low <= all.high);
    let second = results[1]
        .stats
        .as_ref()
        .expect("statistics of the second method");
    let d = second.vs_first.expect("difference from the first method");
    let d = d.auc_all.expect("a defined difference");
    let want = results[1].test.macro_all.unwrap() - results[0].test.macro_all.unwrap();
    assert!(
        (d.estimate - want).abs() < 1e-12,
        "{} vs {want}",
        d.estimate
    );

    let table = auc_table(&results);
    println!("{table}");
    assert!(
        table.contains("patient-level bootstrap, 50 resamples"),
        "{table}"
    );
    assert!(table.contains(" ns") || table.contains(" *"), "{table}");

    let cmp: cxr_cml::eval::Comparisons =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparisons.json"))?)?;
    assert_eq!(cmp.pairs.len(), 1);
    assert_eq!(cmp.pairs[0].delong.len(), cmp.classes.len());
    assert!(cmp.pairs[0].delong.iter().flatten().count() > 0);
    let report = std::fs::read_to_string(out.join("report.md"))?;
    assert!(
        report.contains("DeLong p") && report.contains("(95% CI"),
        "{report}"
    );
    // What resume reads back: results.json with the statistics.
    let back = cxr_cml::train::report::read_results(&out)?.unwrap();
    assert_eq!(back[1].stats, results[1].stats);
    Ok(())
}
