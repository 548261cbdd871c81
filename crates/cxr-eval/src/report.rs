//! Markdown tables in the paper's layout.

use std::fmt::Write;

use crate::evaluate::EvalResults;

/// Three decimals, or "n/a" for an undefined value.
pub(crate) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

/// The paper's Table 2: one row per method, Total / Base / Rare macro AUC, plus mAP (the
/// CXR-LT challenge's metric).
pub fn render_markdown_table(rows: &[(&str, &EvalResults)]) -> String {
    let mut s =
        String::from("| Method | Total AUC | Base AUC | Rare AUC | mAP |\n|---|---|---|---|---|\n");
    for (name, r) in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            name,
            fmt_opt(r.macro_all),
            fmt_opt(r.macro_base),
            fmt_opt(r.macro_rare),
            fmt_opt(r.map_all)
        );
    }
    s
}

/// One row per class: group, training count, test support, AUC and its CI. Undefined classes
/// show "n/a" (they are not in the macros).
pub fn render_class_table(r: &EvalResults) -> String {
    let mut s = String::from("| Class | Group | Train pos | Test pos | Test neg | AUC | 95% CI | AP |\n|---|---|---|---|---|---|---|---|\n");
    for c in &r.classes {
        let ci = match (c.ci_low, c.ci_high) {
            (Some(lo), Some(hi)) => format!("{lo:.3} – {hi:.3}"),
            _ => "n/a".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            c.group.as_str(),
            c.train_count
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            c.n_pos,
            c.n_neg,
            fmt_opt(c.auc),
            ci,
            fmt_opt(c.ap)
        );
    }
    let _ = writeln!(
        s,
        "\nMacro AUC over defined classes: all {}, base {}, rare {}; mAP: all {}, base {}, \
         rare {} ({} test rows).",
        fmt_opt(r.macro_all),
        fmt_opt(r.macro_base),
        fmt_opt(r.macro_rare),
        fmt_opt(r.map_all),
        fmt_opt(r.map_base),
        fmt_opt(r.map_rare),
        r.n_samples
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassGroup, ClassResult};

    fn results() -> EvalResults {
        EvalResults {
            classes: vec![
                ClassResult {
                    name: "Edema".into(),
                    group: ClassGroup::Base,
                    auc: Some(0.8),
                    ci_low: Some(0.75),
                    ci_high: Some(0.85),
                    ap_ci_low: None,
                    ap_ci_high: None,
                    ap: Some(0.4),
                    n_pos: 10,
                    n_neg: 90,
                    train_count: Some(37256),
                },
                ClassResult {
                    name: "Hernia".into(),
                    group: ClassGroup::Rare,
                    auc: None,
                    ci_low: None,
                    ci_high: None,
                    ap_ci_low: None,
                    ap_ci_high: None,
                    ap: None,
                    n_pos: 0,
                    n_neg: 100,
                    train_count: None,
                },
            ],
            macro_all: Some(0.8),
            macro_base: Some(0.8),
            macro_rare: None,
            map_all: Some(0.4),
            map_base: Some(0.4),
            map_rare: None,
            macro_cis: None,
            n_samples: 100,
        }
    }

    #[test]
    fn method_table_layout() {
        let r = results();
        let t = render_markdown_table(&[("CheXzero", &r)]);
        assert_eq!(t, "| Method | Total AUC | Base AUC | Rare AUC | mAP |\n|---|---|---|---|---|\n| CheXzero | 0.800 | 0.800 | n/a | 0.400 |\n");
    }

    #[test]
    fn class_table_rows() {
        let t = render_class_table(&results());
        assert!(t.contains("| Edema | base | 37256 | 10 | 90 | 0.800 | 0.750 – 0.850 | 0.400 |"));
        assert!(t.contains("| Hernia | rare | - | 0 | 100 | n/a | n/a | n/a |"));
    }
}
