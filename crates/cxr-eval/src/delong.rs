//! DeLong's variance of the AUC and the paired test of two models on the same test set, in
//! the fast O(N log N) form of Sun & Xu (2014), "Fast implementation of DeLong's algorithm for
//! comparing the areas under correlated receiver operating characteristic curves", IEEE SPL
//! 21(11). The midranks come from the same presorted tie-group walk as the AUC.

use serde::{Deserialize, Serialize};

use crate::auc::Ranked;
use crate::error::{shape_err, EvalError, Result};
use crate::stats::{normal_quantile, two_sided_p};

/// An AUC and its DeLong variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeLong {
    pub auc: f64,
    pub variance: f64,
}

impl DeLong {
    /// Normal-approximation interval `auc ± z · sqrt(variance)`, clipped to [0, 1].
    pub fn ci(&self, level: f64) -> (f64, f64) {
        let z = normal_quantile(0.5 + level / 2.0);
        let half = z * self.variance.max(0.0).sqrt();
        ((self.auc - half).max(0.0), (self.auc + half).min(1.0))
    }
}

/// DeLong's test of `H0: AUC_a = AUC_b` for two score vectors on the same labelled rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeLongTest {
    pub auc_a: f64,
    pub auc_b: f64,
    pub var_a: f64,
    pub var_b: f64,
    pub covariance: f64,
    /// `(auc_a - auc_b) / sqrt(var_a + var_b - 2 cov)`; NaN when that variance is 0.
    pub z: f64,
    /// Two-sided p-value; 1 when both models rank the rows identically.
    pub p_value: f64,
}

/// Structural components of one model: `v10[i]` for the i-th positive (row order) and `v01[j]`
/// for the j-th negative (Sun & Xu, eq. 6-7).
struct Components {
    auc: f64,
    v10: Vec<f64>,
    v01: Vec<f64>,
}

fn components(scores: &[f64], labels: &[bool]) -> Option<Components> {
    let ranked = Ranked::from_slices(scores, labels);
    let (m, n) = (ranked.n_pos as f64, ranked.n_neg as f64);
    let auc = ranked.auc()?;
    // Per row: for a positive, negatives below plus half the tied ones (= Tz - Tx); for a
    // negative, positives below plus half the tied ones (= Tz - Ty).
    let mut other_below = vec![0.0f64; scores.len()];
    let (mut pos_below, mut neg_below, mut start) = (0.0f64, 0.0f64, 0usize);
    for &end in &ranked.group_end {
        let end = end as usize;
        let pos = ranked.is_pos[start..end]
            .iter()
            .map(|&p| f64::from(p))
            .sum::<f64>();
        let neg = (end - start) as f64 - pos;
        for k in start..end {
            other_below[ranked.order[k] as usize] = if ranked.is_pos[k] == 1 {
                neg_below + neg / 2.0
            } else {
                pos_below + pos / 2.0
            };
        }
        pos_below += pos;
        neg_below += neg;
        start = end;
    }
    let mut v10 = Vec::with_capacity(ranked.n_pos);
    let mut v01 = Vec::with_capacity(ranked.n_neg);
    for (row, &l) in labels.iter().enumerate() {
        if l {
            v10.push(other_below[row] / n);
        } else {
            v01.push(1.0 - other_below[row] / m);
        }
    }
    Some(Components { auc, v10, v01 })
}

/// Sample covariance (ddof = 1).
fn cov(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

fn check(scores: &[f64], labels: &[bool]) -> Result<()> {
    if scores.len() != labels.len() {
        return Err(shape_err("labels length", scores.len(), labels.len()));
    }
    if scores.len() >= crate::auc::MAX_ROWS {
        return Err(EvalError::InvalidParam {
            name: "rows",
            value: scores.len().to_string(),
            hint: "at most 2^29 - 1 rows",
        });
    }
    if let Some(row) = scores.iter().position(|s| s.is_nan()) {
        return Err(EvalError::NonFiniteScore {
            class: String::new(),
            row,
            value: f32::NAN,
        });
    }
    Ok(())
}

/// DeLong AUC and variance of one model. `Ok(None)` when there are fewer than two positives or
/// two negatives (the variance needs two of each).
pub fn delong(scores: &[f64], labels: &[bool]) -> Result<Option<DeLong>> {
    check(scores, labels)?;
    let Some(c) = components(scores, labels) else {
        return Ok(None);
    };
    if c.v10.len() < 2 || c.v01.len() < 2 {
        return Ok(None);
    }
    let variance =
        cov(&c.v10, &c.v10) / c.v10.len() as f64 + cov(&c.v01, &c.v01) / c.v01.len() as f64;
    Ok(Some(DeLong {
        auc: c.auc,
        variance,
    }))
}

/// DeLong's paired test of two models scored on the same rows. `Ok(None)` when there are
/// fewer than two positives or two negatives.
pub fn delong_test(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
) -> Result<Option<DeLongTest>> {
    check(scores_a, labels)?;
    check(scores_b, labels)?;
    let (Some(a), Some(b)) = (components(scores_a, labels), components(scores_b, labels)) else {
        return Ok(None);
    };
    let (m, n) = (a.v10.len(), a.v01.len());
    if m < 2 || n < 2 {
        return Ok(None);
    }
    let (m, n) = (m as f64, n as f64);
    let var_a = cov(&a.v10, &a.v10) / m + cov(&a.v01, &a.v01) / n;
    let var_b = cov(&b.v10, &b.v10) / m + cov(&b.v01, &b.v01) / n;
    let covariance = cov(&a.v10, &b.v10) / m + cov(&a.v01, &b.v01) / n;
    let var_diff = var_a + var_b - 2.0 * covariance;
    let diff = a.auc - b.auc;
    let (z, p_value) = if var_diff > 0.0 {
        let z = diff / var_diff.sqrt();
        (z, two_sided_p(z))
    } else {
        (f64::NAN, if diff == 0.0 { 1.0 } else { 0.0 })
    };
    Ok(Some(DeLongTest {
        auc_a: a.auc,
        auc_b: b.auc,
        var_a,
        var_b,
        covariance,
        z,
        p_value,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_model_has_p_one_and_ci_contains_auc() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.5, 0.5, 0.2];
        let l = [false, false, true, true, true, false, false];
        let d = delong(&s, &l).unwrap().unwrap();
        assert_eq!(Some(d.auc), crate::roc_auc(&s, &l));
        let (lo, hi) = d.ci(0.95);
        assert!(lo <= d.auc && d.auc <= hi && lo >= 0.0 && hi <= 1.0);
        let t = delong_test(&s, &s, &l).unwrap().unwrap();
        assert_eq!(t.p_value, 1.0);
    }

    #[test]
    fn too_few_of_a_class_is_undefined() {
        assert_eq!(
            delong(&[0.1, 0.2, 0.3], &[true, false, false]).unwrap(),
            None
        );
        assert!(delong(&[0.1, 0.2], &[true]).is_err());
        assert!(delong(&[f64::NAN, 0.2], &[true, false]).is_err());
    }
}

/// DeLong AUC and variance of every column of N x C `scores` against `labels` (1 / 0 / NaN
/// unknown, excluded for that class), as [`crate::evaluate`] takes them. `None` for a class
/// with fewer than two positives or two negatives.
pub fn delong_per_class(
    scores: ndarray::ArrayView2<'_, f32>,
    labels: ndarray::ArrayView2<'_, f32>,
    class_names: &[String],
) -> Result<Vec<Option<DeLong>>> {
    // Same validation as evaluate(): shapes, finite scores, labels in {0, 1, NaN}.
    crate::evaluate::rank_classes(scores, labels, class_names)?;
    (0..scores.ncols())
        .map(|c| {
            let (s, l): (Vec<f64>, Vec<bool>) = scores
                .column(c)
                .iter()
                .zip(labels.column(c))
                .filter(|(_, l)| !l.is_nan())
                .map(|(&s, &l)| (f64::from(s), l == 1.0))
                .unzip();
            delong(&s, &l)
        })
        .collect()
}

#[cfg(test)]
mod matrix_tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn per_class_skips_unknown_labels() {
        let scores = array![
            [0.1f32, 0.3],
            [0.4, 0.2],
            [0.35, 0.9],
            [0.8, 0.1],
            [0.5, 0.5]
        ];
        let labels = array![
            [0.0f32, 1.0],
            [0.0, f32::NAN],
            [1.0, 1.0],
            [1.0, 0.0],
            [f32::NAN, 0.0]
        ];
        let names = vec!["a".to_string(), "b".to_string()];
        let out = delong_per_class(scores.view(), labels.view(), &names).unwrap();
        let want = delong(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_eq!(out[0], want);
        let want_b = delong(&[0.3, 0.9, 0.1, 0.5], &[true, true, false, false]).unwrap();
        assert_eq!(out[1], want_b);
        assert!(delong_per_class(scores.view(), labels.view(), &names[..1]).is_err());
    }
}
