//! Per-class AUC with confidence intervals and the macro averages over all / base / rare
//! classes, the numbers of the paper's Table 2.

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auc::Ranked;
use crate::bootstrap::{percentile_ci, resampled_auc_ap, BootstrapConfig, Draws, Units};
use crate::error::{shape_err, EvalError, Result};
use crate::stats::percentile_sorted;

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
    /// Percentile bootstrap CI of `ap` (see [`evaluate_grouped`] on AP intervals); `None`
    /// without a bootstrap or without a positive.
    #[serde(default)]
    pub ap_ci_low: Option<f64>,
    #[serde(default)]
    pub ap_ci_high: Option<f64>,
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
    /// Bootstrap intervals of the six macros (AUC and mAP over all / base / rare classes),
    /// from the same resamples as the per-class CIs; `None` without a bootstrap.
    #[serde(default)]
    pub macro_cis: Option<Macros<Option<Interval>>>,
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

/// One value per macro metric: AUC and average precision over all / base / rare classes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Macros<T> {
    pub auc_all: T,
    pub auc_base: T,
    pub auc_rare: T,
    pub map_all: T,
    pub map_base: T,
    pub map_rare: T,
}

impl<T> Macros<T> {
    /// Applies `f` to each of the six values.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Macros<U> {
        Macros {
            auc_all: f(self.auc_all),
            auc_base: f(self.auc_base),
            auc_rare: f(self.auc_rare),
            map_all: f(self.map_all),
            map_base: f(self.map_base),
            map_rare: f(self.map_rare),
        }
    }

    pub(crate) fn from_array(
        [auc_all, auc_base, auc_rare, map_all, map_base, map_rare]: [T; 6],
    ) -> Self {
        Macros {
            auc_all,
            auc_base,
            auc_rare,
            map_all,
            map_base,
            map_rare,
        }
    }
}

/// A point estimate on the full test set and its percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Resamples in which the value was defined (the others are skipped).
    pub n_valid: usize,
}

impl Interval {
    /// The interval lies strictly on one side of 0 (for a difference: significant at its
    /// level).
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// Mean of the defined values of the classes in `group` (all classes for `None`).
pub(crate) fn mean_defined(
    values: &[Option<f64>],
    groups: &[ClassGroup],
    group: Option<ClassGroup>,
) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .zip(groups)
        .filter(|(_, g)| group.is_none_or(|want| **g == want))
        .filter_map(|(v, _)| *v)
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

pub(crate) fn six_macros(
    auc: &[Option<f64>],
    ap: &[Option<f64>],
    groups: &[ClassGroup],
) -> [Option<f64>; 6] {
    let (b, r) = (Some(ClassGroup::Base), Some(ClassGroup::Rare));
    [
        mean_defined(auc, groups, None),
        mean_defined(auc, groups, b),
        mean_defined(auc, groups, r),
        mean_defined(ap, groups, None),
        mean_defined(ap, groups, b),
        mean_defined(ap, groups, r),
    ]
}

/// Percentile interval of `values` around `estimate`; `None` without an estimate or a value.
pub(crate) fn interval(
    estimate: Option<f64>,
    mut values: Vec<f64>,
    level: f64,
) -> Option<Interval> {
    let estimate = estimate?;
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Some(Interval {
        estimate,
        low: percentile_sorted(&values, alpha),
        high: percentile_sorted(&values, 1.0 - alpha),
        n_valid: values.len(),
    })
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
    let point_auc: Vec<Option<f64>> = ranked.iter().map(Ranked::auc).collect();
    let point_ap: Vec<Option<f64>> = ranked.iter().map(Ranked::average_precision).collect();
    // AP and mAP intervals are percentile intervals like the AUC's, as the CXR-LT challenge
    // papers report them, so they compare with published numbers. They can sit lopsided
    // around the estimate, for two reasons. Per class, AP's bootstrap distribution is skewed
    // when positives are few (AP depends on prevalence, which varies between resamples, and a
    // repeated high-ranked positive raises precision at the top). For the macro, a class with
    // no positive in a resample has no AP there and leaves that resample's mean, and those
    // are the rarest classes, whose AP is lowest: on a small test set the resampled mAP sits
    // above the full-data one (the synthetic task 1 of tests/cxr_lt_tasks.rs, 26 images: 0.233
    // [0.212, 0.507]). On the real test sets every class keeps positives in nearly every
    // resample and the effect vanishes. BCa would correct the skew, but its acceleration needs
    // a jackknife over patients: one pass per patient, tens of thousands on the real test
    // sets, 20-80 times the bootstrap's own cost.
    let (cis, ap_cis, macro_cis) = match &opts.bootstrap {
        Some(cfg) if scores.nrows() > 0 => {
            let rs = resampled_auc_ap(&ranked, scores.nrows(), &units, Draws::seeded(cfg));
            let ci = |per_class: &[Vec<Option<f64>>]| -> Vec<_> {
                per_class
                    .iter()
                    .map(|v| percentile_ci(v.iter().flatten().copied().collect(), cfg.level))
                    .collect()
            };
            let per_resample: Vec<[Option<f64>; 6]> = (0..cfg.resamples)
                .map(|r| {
                    let a: Vec<Option<f64>> = rs.auc.iter().map(|v| v[r]).collect();
                    let p: Vec<Option<f64>> = rs.ap.iter().map(|v| v[r]).collect();
                    six_macros(&a, &p, groups)
                })
                .collect();
            let points = six_macros(&point_auc, &point_ap, groups);
            let macros = Macros::from_array(std::array::from_fn(|k| {
                let values = per_resample.iter().filter_map(|m| m[k]).collect();
                interval(points[k], values, cfg.level)
            }));
            (ci(&rs.auc), ci(&rs.ap), Some(macros))
        }
        _ => (vec![None; ranked.len()], vec![None; ranked.len()], None),
    };
    let classes = ranked
        .iter()
        .zip(cis.into_iter().zip(ap_cis))
        .enumerate()
        .map(|(c, (rk, (ci, ap_ci)))| {
            let auc = point_auc[c];
            let ci = ci.filter(|_| auc.is_some());
            let ap_ci = ap_ci.filter(|_| point_ap[c].is_some());
            ClassResult {
                name: class_names[c].clone(),
                group: groups[c],
                auc,
                ci_low: ci.map(|ci| ci.low),
                ci_high: ci.map(|ci| ci.high),
                ap_ci_low: ap_ci.map(|ci| ci.low),
                ap_ci_high: ap_ci.map(|ci| ci.high),
                ap: point_ap[c],
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
        macro_cis,
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
