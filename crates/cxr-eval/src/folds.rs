//! Cross-validation summaries: mean ± standard deviation over folds, in the paper's Table 2
//! layout (the paper reports the average of five runs).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::error::{shape_err, EvalError, Result};
use crate::evaluate::{ClassGroup, EvalResults};
use crate::stats::mean_std;

/// Mean and sample standard deviation (ddof = 1) over the folds in which a value was defined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    /// Folds that contributed.
    pub n: usize,
}

impl MeanStd {
    fn of(values: impl Iterator<Item = Option<f64>>) -> Option<Self> {
        let v: Vec<f64> = values.flatten().collect();
        mean_std(&v).map(|(mean, std)| MeanStd {
            mean,
            std,
            n: v.len(),
        })
    }

    /// "0.715 ± 0.004".
    pub fn display(&self) -> String {
        format!("{:.3} ± {:.3}", self.mean, self.std)
    }
}

/// One class over the folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    pub name: String,
    pub group: ClassGroup,
    pub auc: Option<MeanStd>,
    pub train_count: Option<usize>,
}

/// Macro and per-class AUC over cross-validation folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldSummary {
    pub n_folds: usize,
    pub macro_all: Option<MeanStd>,
    pub macro_base: Option<MeanStd>,
    pub macro_rare: Option<MeanStd>,
    /// Mean average precision over folds (all classes).
    #[serde(default)]
    pub map_all: Option<MeanStd>,
    pub classes: Vec<ClassSummary>,
}

/// Combines per-fold results. All folds must list the same classes in the same order.
pub fn aggregate_folds(results: &[EvalResults]) -> Result<FoldSummary> {
    let first = results.first().ok_or(EvalError::Empty("fold results"))?;
    for (i, r) in results.iter().enumerate() {
        let same = r.classes.len() == first.classes.len()
            && r.classes
                .iter()
                .zip(&first.classes)
                .all(|(a, b)| a.name == b.name);
        if !same {
            return Err(shape_err(
                "class list of fold (all folds must evaluate the same classes in the same order)",
                format!("fold 0's {} classes", first.classes.len()),
                format!("fold {i} with {} classes / other names", r.classes.len()),
            ));
        }
    }
    let classes = first
        .classes
        .iter()
        .enumerate()
        .map(|(j, c)| ClassSummary {
            name: c.name.clone(),
            group: c.group,
            auc: MeanStd::of(results.iter().map(|r| r.classes[j].auc)),
            train_count: c.train_count,
        })
        .collect();
    Ok(FoldSummary {
        n_folds: results.len(),
        macro_all: MeanStd::of(results.iter().map(|r| r.macro_all)),
        macro_base: MeanStd::of(results.iter().map(|r| r.macro_base)),
        macro_rare: MeanStd::of(results.iter().map(|r| r.macro_rare)),
        map_all: MeanStd::of(results.iter().map(|r| r.map_all)),
        classes,
    })
}

fn cell(v: &Option<MeanStd>) -> String {
    v.as_ref()
        .map_or_else(|| "n/a".to_string(), MeanStd::display)
}

/// The paper's Table 2 from fold summaries: Method | Total AUC | Base AUC | Rare AUC, each as
/// mean ± std over folds, plus mAP (the CXR-LT challenge's metric).
pub fn render_fold_table(rows: &[(&str, &FoldSummary)]) -> String {
    let mut s =
        String::from("| Method | Total AUC | Base AUC | Rare AUC | mAP |\n|---|---|---|---|---|\n");
    for (name, f) in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            name,
            cell(&f.macro_all),
            cell(&f.macro_base),
            cell(&f.macro_rare),
            cell(&f.map_all)
        );
    }
    if let Some((_, f)) = rows.first() {
        let _ = writeln!(
            s,
            "\nMean ± sample standard deviation over {} folds.",
            f.n_folds
        );
    }
    s
}

/// Per-class AUC over folds, one column per method (same classes in every summary).
pub fn render_fold_class_table(rows: &[(&str, &FoldSummary)]) -> String {
    let mut s = String::from("| Class | Group |");
    let mut sep = String::from("|---|---|");
    for (name, _) in rows {
        let _ = write!(s, " {name} |");
        sep.push_str("---|");
    }
    let _ = writeln!(s, "\n{sep}");
    let Some((_, first)) = rows.first() else {
        return s;
    };
    for (j, c) in first.classes.iter().enumerate() {
        let _ = write!(s, "| {} | {} |", c.name, c.group.as_str());
        for (_, f) in rows {
            let _ = write!(
                s,
                " {} |",
                f.classes
                    .get(j)
                    .map_or_else(|| "n/a".to_string(), |c| cell(&c.auc))
            );
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClassResult;

    fn fold(a: Option<f64>, b: Option<f64>) -> EvalResults {
        let class = |name: &str, group, auc| ClassResult {
            name: name.into(),
            group,
            auc,
            ci_low: None,
            ci_high: None,
            ap_ci_low: None,
            ap_ci_high: None,
            ap: None,
            n_pos: 1,
            n_neg: 1,
            train_count: None,
        };
        let mut r = EvalResults {
            classes: vec![
                class("A", ClassGroup::Base, a),
                class("B", ClassGroup::Rare, b),
            ],
            macro_all: None,
            macro_base: None,
            macro_rare: None,
            map_all: None,
            map_base: None,
            map_rare: None,
            macro_cis: None,
            n_samples: 2,
        };
        r.recompute_macros();
        r
    }

    #[test]
    fn mean_and_std_over_folds_skip_undefined() {
        let s = aggregate_folds(&[fold(Some(0.6), Some(0.8)), fold(Some(0.8), None)]).unwrap();
        let all = s.macro_all.unwrap();
        // fold macros: 0.7 and 0.8
        assert!(
            (all.mean - 0.75).abs() < 1e-12 && (all.std - 0.070_710_678_118_654_76).abs() < 1e-12
        );
        let b = s.classes[1].auc.unwrap();
        assert_eq!((b.mean, b.std, b.n), (0.8, 0.0, 1));
        let t = render_fold_table(&[("CXR-CML", &s)]);
        assert!(
            t.contains("| CXR-CML | 0.750 ± 0.071 | 0.700 ± 0.141 | 0.800 ± 0.000 |"),
            "{t}"
        );
        let ct = render_fold_class_table(&[("CXR-CML", &s)]);
        assert!(ct.contains("| B | rare | 0.800 ± 0.000 |"), "{ct}");
    }

    #[test]
    fn mismatched_folds_are_errors() {
        assert!(matches!(aggregate_folds(&[]), Err(EvalError::Empty(_))));
        let mut other = fold(Some(0.5), None);
        other.classes[1].name = "C".into();
        assert!(aggregate_folds(&[fold(Some(0.6), None), other]).is_err());
    }
}
