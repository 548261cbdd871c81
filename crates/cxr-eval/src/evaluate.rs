//! Per-class AUC with confidence intervals and the macro averages over all / base / rare
//! classes, the numbers of the paper's Table 2.

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auc::Ranked;
use crate::bootstrap::{percentile_ci, resampled_aucs, BootstrapConfig, Draws, Units};
use crate::error::{shape_err, EvalError, Result};

/// Whether a class is frequent (base) or long-tailed (rare: fewer than 1,000 training
/// positives in the paper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClassGroup {
    Base,
    Rare,
}

impl ClassGroup {
    /// The paper's rule: rare when the class has fewer than 1,000 training positives.
    pub fn from_train_count(count: usize) -> Self {
        if count < 1000 {
            ClassGroup::Rare
        } else {
            ClassGroup::Base
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClassGroup::Base => "base",
            ClassGroup::Rare => "rare",
        }
    }
}

/// The evaluation of one class on one test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub name: String,
    pub group: ClassGroup,
    /// `None` when the test set has no positive or no negative for this class.
    pub auc: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Average precision as scikit-learn's `average_precision_score` (the CXR-LT challenge's
    /// ranking metric); `None` without a positive. Absent in results written before it.
    #[serde(default)]
    pub ap: Option<f64>,
    /// Test rows with a known positive / negative label (unknown labels are excluded).
    pub n_pos: usize,
    pub n_neg: usize,
    /// Training positives, when the caller knows them (for the long-tail figure).
    pub train_count: Option<usize>,
}

/// Per-class results and macro AUCs. Undefined classes are left out of every macro average
/// (never counted as 0.5); a macro over no defined class is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    pub classes: Vec<ClassResult>,
    pub macro_all: Option<f64>,
    pub macro_base: Option<f64>,
    pub macro_rare: Option<f64>,
    /// Mean average precision over classes with a positive: all / base / rare.
    #[serde(default)]
    pub map_all: Option<f64>,
    #[serde(default)]
    pub map_base: Option<f64>,
    #[serde(default)]
    pub map_rare: Option<f64>,
    pub n_samples: usize,
}

impl EvalResults {
    /// Fills `train_count` of every class, in class order.
    pub fn set_train_counts(&mut self, counts: &[usize]) -> Result<()> {
        if counts.len() != self.classes.len() {
            return Err(shape_err(
                "train counts (one per class)",
                self.classes.len(),
                counts.len(),
            ));
        }
        for (c, &n) in self.classes.iter_mut().zip(counts) {
            c.train_count = Some(n);
        }
        Ok(())
    }

    /// Recomputes the macro AUCs and mean APs from the per-class values.
    pub fn recompute_macros(&mut self) {
        let auc = |c: &ClassResult| c.auc;
        let ap = |c: &ClassResult| c.ap;
        self.macro_all = macro_of(&self.classes, None, auc);
        self.macro_base = macro_of(&self.classes, Some(ClassGroup::Base), auc);
        self.macro_rare = macro_of(&self.classes, Some(ClassGroup::Rare), auc);
        self.map_all = macro_of(&self.classes, None, ap);
        self.map_base = macro_of(&self.classes, Some(ClassGroup::Base), ap);
        self.map_rare = macro_of(&self.classes, Some(ClassGroup::Rare), ap);
    }

    /// Looks a class up by name.
    pub fn class(&self, name: &str) -> Option<&ClassResult> {
        self.classes.iter().find(|c| c.name == name)
    }
}

fn macro_of(
    classes: &[ClassResult],
    group: Option<ClassGroup>,
    metric: impl Fn(&ClassResult) -> Option<f64>,
) -> Option<f64> {
    let values: Vec<f64> = classes
        .iter()
        .filter(|c| group.is_none_or(|g| c.group == g))
        .filter_map(metric)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// What [`evaluate`] computes besides the point AUCs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Percentile bootstrap CIs; `None` leaves `ci_low` / `ci_high` empty.
    pub bootstrap: Option<BootstrapConfig>,
}

/// Checks the score / label matrices and builds the presorted table of every class.
pub(crate) fn rank_classes(
    scores: ArrayView2<'_, f32>,
    labels: ArrayView2<'_, f32>,
    class_names: &[String],
) -> Result<Vec<Ranked>> {
    if scores.dim() != labels.dim() {
        return Err(shape_err(
            "labels shape (rows x classes)",
            format!("{:?}", scores.dim()),
            format!("{:?}", labels.dim()),
        ));
    }
    if class_names.len() != scores.ncols() {
        return Err(shape_err(
            "class names (one per score column)",
            scores.ncols(),
            class_names.len(),
        ));
    }
    if scores.nrows() >= crate::auc::MAX_ROWS {
        return Err(EvalError::InvalidParam {
            name: "rows",
            value: scores.nrows().to_string(),
            hint: "at most 2^29 - 1 rows per evaluation: split the test set",
        });
    }
    (0..scores.ncols())
        .into_par_iter()
        .map(|c| {
            let mut items = Vec::with_capacity(scores.nrows());
            for (row, (&s, &l)) in scores.column(c).iter().zip(labels.column(c)).enumerate() {
                if !s.is_finite() {
                    return Err(EvalError::NonFiniteScore {
                        class: class_names[c].clone(),
                        row,
                        value: s,
                    });
                }
                if l.is_nan() {
                    continue;
                }
                if l != 0.0 && l != 1.0 {
                    return Err(EvalError::BadLabel {
                        class: class_names[c].clone(),
                        row,
                        value: l,
                    });
                }
                items.push((row as u32, f64::from(s), l == 1.0));
            }
            Ok(Ranked::new(items))
        })
        .collect()
}

/// Evaluates N x C `scores` against N x C `labels` (1 positive, 0 negative, NaN unknown and
/// excluded for that class), with one name and group per class.
///
/// Bootstrap resamples are drawn over all N rows and shared by all classes (an image-level
/// bootstrap; [`evaluate_grouped`] resamples patients).
pub fn evaluate(
    scores: ArrayView2<'_, f32>,
    labels: ArrayView2<'_, f32>,
    class_names: &[String],
    groups: &[ClassGroup],
    opts: &EvalOptions,
) -> Result<EvalResults> {
    evaluate_grouped(scores, labels, class_names, groups, opts, None)
}

/// As [`evaluate`], with the bootstrap resampling the groups of `row_groups` (one id per row,
/// e.g. the patient): a resample draws as many groups as there are, with replacement, and
/// takes every row of each drawn group. `None` resamples rows, as [`evaluate`].
pub fn evaluate_grouped(
    scores: ArrayView2<'_, f32>,
    labels: ArrayView2<'_, f32>,
    class_names: &[String],
    groups: &[ClassGroup],
    opts: &EvalOptions,
    row_groups: Option<&[u64]>,
) -> Result<EvalResults> {
    if groups.len() != class_names.len() {
        return Err(shape_err(
            "class groups (one per class)",
            class_names.len(),
            groups.len(),
        ));
    }
    if let Some(cfg) = &opts.bootstrap {
        cfg.validate()?;
    }
    let units = Units::new(row_groups, scores.nrows())?;
    let ranked = rank_classes(scores, labels, class_names)?;
    let cis = match &opts.bootstrap {
        Some(cfg) if scores.nrows() > 0 => {
            resampled_aucs(&ranked, scores.nrows(), &units, Draws::seeded(cfg))
                .into_iter()
                .map(|v| percentile_ci(v, cfg.level))
                .collect()
        }
        _ => vec![None; ranked.len()],
    };
    let classes = ranked
        .iter()
        .zip(cis)
        .enumerate()
        .map(|(c, (rk, ci))| {
            let auc = rk.auc();
            let ci = ci.filter(|_| auc.is_some());
            ClassResult {
                name: class_names[c].clone(),
                group: groups[c],
                auc,
                ci_low: ci.map(|ci| ci.low),
                ci_high: ci.map(|ci| ci.high),
                ap: rk.average_precision(),
                n_pos: rk.n_pos,
                n_neg: rk.n_neg,
                train_count: None,
            }
        })
        .collect();
    let mut results = EvalResults {
        classes,
        macro_all: None,
        macro_base: None,
        macro_rare: None,
        map_all: None,
        map_base: None,
        map_rare: None,
        n_samples: scores.nrows(),
    };
    results.recompute_macros();
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn undefined_classes_are_left_out_of_macros() {
        let scores = array![
            [0.1f32, 0.5, 0.3],
            [0.9, 0.4, 0.2],
            [0.8, 0.3, 0.7],
            [0.2, 0.2, 0.1]
        ];
        // c1 has no positive; c2 has one unknown label (NaN), excluded.
        let labels = array![
            [0.0f32, 0.0, 0.0],
            [1.0, 0.0, f32::NAN],
            [1.0, 0.0, 1.0],
            [0.0, 0.0, 0.0]
        ];
        let groups = [ClassGroup::Base, ClassGroup::Rare, ClassGroup::Rare];
        let r = evaluate(
            scores.view(),
            labels.view(),
            &names(3),
            &groups,
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(r.classes[0].auc, Some(1.0));
        assert_eq!(r.classes[1].auc, None);
        assert_eq!((r.classes[2].n_pos, r.classes[2].n_neg), (1, 2));
        assert_eq!(r.classes[2].auc, Some(1.0));
        assert_eq!(r.macro_rare, Some(1.0));
        assert_eq!(r.macro_all, Some(1.0));
        assert_eq!(r.n_samples, 4);
        assert_eq!(r.classes[1].ci_low, None);
    }

    #[test]
    fn bootstrap_fills_cis_for_defined_classes() {
        let scores = array![
            [0.1f32, 0.5],
            [0.9, 0.4],
            [0.8, 0.3],
            [0.2, 0.2],
            [0.6, 0.9],
            [0.3, 0.1]
        ];
        let labels = array![
            [0.0f32, 0.0],
            [1.0, 0.0],
            [1.0, 0.0],
            [0.0, 0.0],
            [0.0, 0.0],
            [1.0, 0.0]
        ];
        let opts = EvalOptions {
            bootstrap: Some(BootstrapConfig {
                resamples: 50,
                seed: 1,
                level: 0.9,
            }),
        };
        let groups = [ClassGroup::Base, ClassGroup::Base];
        let r = evaluate(scores.view(), labels.view(), &names(2), &groups, &opts).unwrap();
        let c = &r.classes[0];
        assert!(c.ci_low.unwrap() <= c.auc.unwrap() && c.auc.unwrap() <= c.ci_high.unwrap());
        assert_eq!(r.classes[1].ci_low, None);
        assert_eq!(r.macro_rare, None);
        let json = serde_json::to_string(&r).unwrap();
        let back: EvalResults = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let s = array![[0.1f32], [0.2]];
        let g = [ClassGroup::Base];
        let o = EvalOptions::default();
        assert!(matches!(
            evaluate(s.view(), array![[1.0f32], [-1.0]].view(), &names(1), &g, &o),
            Err(EvalError::BadLabel { row: 1, .. })
        ));
        assert!(matches!(
            evaluate(
                array![[f32::NAN], [0.2]].view(),
                array![[1.0f32], [0.0]].view(),
                &names(1),
                &g,
                &o
            ),
            Err(EvalError::NonFiniteScore { .. })
        ));
        assert!(matches!(
            evaluate(
                s.view(),
                array![[1.0f32, 0.0], [0.0, 1.0]].view(),
                &names(1),
                &g,
                &o
            ),
            Err(EvalError::Shape { .. })
        ));
        assert!(matches!(
            evaluate(s.view(), array![[1.0f32], [0.0]].view(), &names(2), &g, &o),
            Err(EvalError::Shape { .. })
        ));
        assert!(matches!(
            evaluate(s.view(), array![[1.0f32], [0.0]].view(), &names(1), &[], &o),
            Err(EvalError::Shape { .. })
        ));
    }

    #[test]
    fn train_counts_and_group_rule() {
        assert_eq!(ClassGroup::from_train_count(999), ClassGroup::Rare);
        assert_eq!(ClassGroup::from_train_count(1000), ClassGroup::Base);
        let s = array![[0.1f32], [0.2]];
        let mut r = evaluate(
            s.view(),
            array![[0.0f32], [1.0]].view(),
            &names(1),
            &[ClassGroup::Base],
            &EvalOptions::default(),
        )
        .unwrap();
        r.set_train_counts(&[42]).unwrap();
        assert_eq!(r.classes[0].train_count, Some(42));
        assert!(r.set_train_counts(&[1, 2]).is_err());
    }
}
