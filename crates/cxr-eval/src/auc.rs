//! ROC AUC exactly as scikit-learn's `roc_auc_score` computes it for one binary problem, in the
//! Mann-Whitney form: tied scores count one half, which is the trapezoid under sklearn's ROC
//! curve (it collapses tied thresholds into one point).
//!
//! The scores are sorted **once** into a [`Ranked`] table of tie groups. The plain AUC, every
//! bootstrap resample (integer multiplicities per row) and the DeLong midranks all walk that
//! table, so a resample costs one linear pass and no sort.

use std::cmp::Ordering;

/// Rows per evaluation are limited to 2^29 (the row index shares a `u32` with three flags).
pub(crate) const MAX_ROWS: usize = 1 << 29;
const ROW_MASK: u32 = (1 << 29) - 1;
/// First row of a tie group that holds both labels.
const GROUP_START: u32 = 1 << 29;
/// The row belongs to a tie group that holds both labels.
const MIXED: u32 = 1 << 30;
const POSITIVE: u32 = 1 << 31;

/// Scores of one class sorted ascending, split into groups of equal score, with the label of
/// every sorted position. Only rows with a known label are included.
#[derive(Debug, Clone)]
pub(crate) struct Ranked {
    /// Original row index of each sorted position.
    pub(crate) order: Vec<u32>,
    /// 1 for a positive, 0 for a negative, per sorted position.
    pub(crate) is_pos: Vec<u8>,
    /// Exclusive end (in sorted positions) of each tie group, ascending.
    pub(crate) group_end: Vec<u32>,
    /// Per sorted position: the row in bits 0..29, then [`GROUP_START`], [`MIXED`] and
    /// [`POSITIVE`]. Within a tie group negatives come first, so the resample loop
    /// ([`Ranked::weighted_auc_lanes`]) needs no group bookkeeping.
    codes: Vec<u32>,
    pub(crate) n_pos: usize,
    pub(crate) n_neg: usize,
}

impl Ranked {
    /// Sorts `(row, score, label)` triples by score, negatives first among ties. Scores must
    /// not be NaN and rows must be below [`MAX_ROWS`] (callers check).
    pub(crate) fn new(mut items: Vec<(u32, f64, bool)>) -> Self {
        items.sort_unstable_by(|a, b| {
            a.1.partial_cmp(&b.1)
                .unwrap_or(Ordering::Equal)
                .then(a.2.cmp(&b.2))
        });
        let n = items.len();
        let mut order = Vec::with_capacity(n);
        let mut is_pos = Vec::with_capacity(n);
        let mut group_end = Vec::new();
        let mut n_pos = 0;
        for (k, &(row, score, pos)) in items.iter().enumerate() {
            if k > 0 && score != items[k - 1].1 {
                group_end.push(k as u32);
            }
            debug_assert!((row as usize) < MAX_ROWS);
            order.push(row);
            is_pos.push(u8::from(pos));
            n_pos += usize::from(pos);
        }
        if n > 0 {
            group_end.push(n as u32);
        }
        let mut codes = Vec::with_capacity(n);
        let mut start = 0usize;
        for &end in &group_end {
            let end = end as usize;
            let pos = is_pos[start..end].iter().filter(|&&p| p == 1).count();
            let mixed = pos > 0 && pos < end - start;
            for k in start..end {
                let mut code = order[k];
                if mixed {
                    code |= MIXED | if k == start { GROUP_START } else { 0 };
                }
                if is_pos[k] == 1 {
                    code |= POSITIVE;
                }
                codes.push(code);
            }
            start = end;
        }
        Ranked {
            order,
            is_pos,
            group_end,
            codes,
            n_pos,
            n_neg: n - n_pos,
        }
    }

    /// From a score slice and a label slice of equal length (rows are their positions).
    pub(crate) fn from_slices(scores: &[f64], labels: &[bool]) -> Self {
        Self::new(
            scores
                .iter()
                .zip(labels)
                .enumerate()
                .map(|(i, (&s, &l))| (i as u32, s, l))
                .collect(),
        )
    }

    /// AUC with every row counted once. Exact: the numerator is an integer count of
    /// half-pairs.
    pub(crate) fn auc(&self) -> Option<f64> {
        if self.n_pos == 0 || self.n_neg == 0 {
            return None;
        }
        let mut start = 0usize;
        let mut neg_below = 0u64;
        let mut twice_num = 0u64;
        for &end in &self.group_end {
            let end = end as usize;
            let pos: u64 = self.is_pos[start..end].iter().map(|&p| u64::from(p)).sum();
            let neg = (end - start) as u64 - pos;
            twice_num += pos * (2 * neg_below + neg);
            neg_below += neg;
            start = end;
        }
        Some(twice_num as f64 / (2.0 * self.n_pos as f64 * self.n_neg as f64))
    }

    /// AUCs of `B` resamples at once: in resample `b`, original row `i` occurs `counts[i][b]`
    /// times. `None` for a resample holding no positive or no negative of this class.
    ///
    /// One pass over the presorted rows, shared by the `B` resamples (one gather per row feeds
    /// all of them), in integer arithmetic, so the result is exact. A row whose score no row of
    /// the other label shares is the common case: a negative adds its weight to the running
    /// negative weight, a positive adds `weight * 2 * negatives_below` (twice the numerator).
    /// In a group of tied scores with both labels, negatives come first and a positive adds
    /// `weight * (negatives_below_group + negatives_now)`, which counts tied pairs one half.
    #[inline]
    pub(crate) fn weighted_auc_lanes<W: Copy + Into<u64>, const B: usize>(
        &self,
        counts: &[[W; B]],
    ) -> [Option<f64>; B] {
        let mut neg = [0u64; B];
        let mut neg_at_group_start = [0u64; B];
        let mut pos = [0u64; B];
        let mut half_num = [0u64; B];
        let mut twice_num = [0u64; B];
        for &code in &self.codes {
            let c = &counts[(code & ROW_MASK) as usize];
            match code >> 30 {
                0 => {
                    for b in 0..B {
                        neg[b] += c[b].into();
                    }
                }
                2 => {
                    for b in 0..B {
                        let w: u64 = c[b].into();
                        half_num[b] += w * neg[b];
                        pos[b] += w;
                    }
                }
                kind => {
                    if code & GROUP_START != 0 {
                        neg_at_group_start = neg;
                    }
                    for b in 0..B {
                        let w: u64 = c[b].into();
                        if kind == 3 {
                            twice_num[b] += w * (neg[b] + neg_at_group_start[b]);
                            pos[b] += w;
                        } else {
                            neg[b] += w;
                        }
                    }
                }
            }
        }
        std::array::from_fn(|b| {
            (pos[b] > 0 && neg[b] > 0).then(|| {
                (2 * half_num[b] + twice_num[b]) as f64 / (2.0 * pos[b] as f64 * neg[b] as f64)
            })
        })
    }

    /// Average precisions of `B` resamples at once (multiplicities as in
    /// [`Ranked::weighted_auc_lanes`]), as [`Ranked::average_precision`] of the materialised
    /// resample: tie groups walked from the highest score down. `None` for a resample without
    /// a positive of this class.
    pub(crate) fn weighted_ap_lanes<W: Copy + Into<u64>, const B: usize>(
        &self,
        counts: &[[W; B]],
    ) -> [Option<f64>; B] {
        let mut tp = [0u64; B];
        let mut seen = [0u64; B];
        let mut sum = [0.0f64; B];
        let mut end = self.order.len();
        for g in (0..self.group_end.len()).rev() {
            let start = if g == 0 {
                0
            } else {
                self.group_end[g - 1] as usize
            };
            let mut pos = [0u64; B];
            let mut all = [0u64; B];
            for k in start..end {
                let c = &counts[self.order[k] as usize];
                let p = self.is_pos[k] == 1;
                for b in 0..B {
                    let w: u64 = c[b].into();
                    all[b] += w;
                    if p {
                        pos[b] += w;
                    }
                }
            }
            for b in 0..B {
                seen[b] += all[b];
                if pos[b] > 0 {
                    tp[b] += pos[b];
                    sum[b] += pos[b] as f64 * (tp[b] as f64 / seen[b] as f64);
                }
            }
            end = start;
        }
        std::array::from_fn(|b| (tp[b] > 0).then(|| sum[b] / tp[b] as f64))
    }

    /// [`Ranked::weighted_auc_lanes`] for a single resample.
    #[cfg(test)]
    pub(crate) fn weighted_auc(&self, counts: &[u32]) -> Option<f64> {
        let lanes: Vec<[u32; 1]> = counts.iter().map(|&c| [c]).collect();
        self.weighted_auc_lanes(&lanes)[0]
    }
}

/// Equal lengths, fewer than 2^29 rows, no NaN score.
fn usable(scores: &[f64], labels: &[bool]) -> bool {
    scores.len() == labels.len() && scores.len() < MAX_ROWS && !scores.iter().any(|s| s.is_nan())
}

/// ROC AUC of `scores` against binary `labels`, equal to scikit-learn's
/// `roc_auc_score(labels, scores)` (ties by average rank).
///
/// Returns `None` when there is no positive or no negative (sklearn raises there; we report the
/// class as undefined rather than 0.5), when the lengths differ, or when a score is NaN.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if !usable(scores, labels) {
        return None;
    }
    Ranked::from_slices(scores, labels).auc()
}

/// Average precision as scikit-learn's `average_precision_score`: the step-wise sum
/// `sum_k (R_k - R_{k-1}) P_k` over distinct score thresholds, no interpolation.
///
/// `None` when there is no positive (sklearn warns and returns a meaningless value there),
/// when the lengths differ, or when a score is NaN.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if !usable(scores, labels) {
        return None;
    }
    Ranked::from_slices(scores, labels).average_precision()
}

impl Ranked {
    /// Average precision of the presorted class ([`average_precision`]); `None` without a
    /// positive.
    pub(crate) fn average_precision(&self) -> Option<f64> {
        if self.n_pos == 0 {
            return None;
        }
        // Walk tie groups from the highest score down.
        let mut tp = 0usize;
        let mut seen = 0usize;
        let mut ap = 0.0;
        let mut end = self.order.len();
        for g in (0..self.group_end.len()).rev() {
            let start = if g == 0 {
                0
            } else {
                self.group_end[g - 1] as usize
            };
            let pos: usize = self.is_pos[start..end]
                .iter()
                .map(|&p| usize::from(p))
                .sum();
            seen += end - start;
            if pos > 0 {
                tp += pos;
                ap += (pos as f64 / self.n_pos as f64) * (tp as f64 / seen as f64);
            }
            end = start;
        }
        Some(ap)
    }
}

/// Precision, recall and F1 when predicting positive for `score >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct F1Point {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// F1 of the rule `score >= threshold`. Precision is 0 when nothing is predicted positive
/// (sklearn's `zero_division=0`). `None` on length mismatch.
pub fn f1_at_threshold(scores: &[f64], labels: &[bool], threshold: f64) -> Option<F1Point> {
    if scores.len() != labels.len() {
        return None;
    }
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    Some(f1_from_counts(threshold, tp, fp, fn_))
}

fn f1_from_counts(threshold: f64, tp: usize, fp: usize, fn_: usize) -> F1Point {
    let precision = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if tp + fn_ == 0 {
        0.0
    } else {
        tp as f64 / (tp + fn_) as f64
    };
    let f1 = if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    };
    F1Point {
        threshold,
        precision,
        recall,
        f1,
    }
}

/// The threshold (one of the observed scores) that maximises F1 of `score >= threshold`,
/// meant to be chosen on a validation split and then applied to the test split with
/// [`f1_at_threshold`]. Ties in F1 go to the higher threshold. `None` when there is no
/// positive, on length mismatch, or when a score is NaN.
pub fn best_f1_threshold(scores: &[f64], labels: &[bool]) -> Option<F1Point> {
    if !usable(scores, labels) {
        return None;
    }
    let ranked = Ranked::from_slices(scores, labels);
    if ranked.n_pos == 0 {
        return None;
    }
    let mut best: Option<F1Point> = None;
    let mut tp = 0usize;
    let mut fp = 0usize;
    let mut end = ranked.order.len();
    for g in (0..ranked.group_end.len()).rev() {
        let start = if g == 0 {
            0
        } else {
            ranked.group_end[g - 1] as usize
        };
        let pos: usize = ranked.is_pos[start..end]
            .iter()
            .map(|&p| usize::from(p))
            .sum();
        tp += pos;
        fp += end - start - pos;
        let threshold = scores[ranked.order[start] as usize];
        let point = f1_from_counts(threshold, tp, fp, ranked.n_pos - tp);
        if best.is_none_or(|b| point.f1 > b.f1) {
            best = Some(point);
        }
        end = start;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_inverse_and_tied_scores() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &labels), Some(0.5));
    }

    #[test]
    fn hand_computed_with_tie() {
        // sklearn docs: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.75
        assert_eq!(
            roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
        // tie between a positive and a negative counts 1/2: pairs (p0.5 vs n0.5)=0.5,
        // (p0.5 vs n0.1)=1, (p0.9 vs both)=2 -> 3.5/4
        assert_eq!(
            roc_auc(&[0.1, 0.5, 0.5, 0.9], &[false, false, true, true]),
            Some(0.875)
        );
    }

    #[test]
    fn degenerate_inputs_are_undefined() {
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[0.1], &[true, false]), None);
        assert_eq!(roc_auc(&[f64::NAN, 0.2], &[true, false]), None);
    }

    #[test]
    fn unit_weights_equal_plain_auc_and_zero_weights_drop_rows() {
        let scores = [0.3, 0.1, 0.7, 0.7, 0.2, 0.9];
        let labels = [true, false, true, false, false, true];
        let r = Ranked::from_slices(&scores, &labels);
        assert_eq!(r.weighted_auc(&[1; 6]), r.auc());
        // Dropping rows 4 and 5 by weight equals computing on the remaining rows.
        let kept = roc_auc(&scores[..4], &labels[..4]);
        assert_eq!(r.weighted_auc(&[1, 1, 1, 1, 0, 0]), kept);
        // Doubling a row equals duplicating it.
        let dup = roc_auc(
            &[0.3, 0.1, 0.7, 0.7, 0.2, 0.9, 0.7],
            &[true, false, true, false, false, true, false],
        );
        assert_eq!(r.weighted_auc(&[1, 1, 1, 2, 1, 1]), dup);
    }

    #[test]
    fn average_precision_hand_value() {
        // sklearn docs example: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((ap - 0.833_333_333_333_333_4).abs() < 1e-12);
        assert_eq!(average_precision(&[0.1], &[false]), None);
    }

    #[test]
    fn best_f1_threshold_picks_the_separating_score() {
        let scores = [0.1, 0.2, 0.6, 0.7, 0.8];
        let labels = [false, false, true, true, true];
        let best = best_f1_threshold(&scores, &labels).unwrap();
        assert_eq!(best.threshold, 0.6);
        assert_eq!(best.f1, 1.0);
        let at = f1_at_threshold(&scores, &labels, 0.75).unwrap();
        assert_eq!((at.precision, at.recall), (1.0, 1.0 / 3.0));
        assert!((at.f1 - 0.5).abs() < 1e-12);
    }
}
