//! Comparisons of methods scored on the same test images: bootstrap CIs of every method's macro
//! AUC and mAP (all / base / rare), paired bootstrap CIs of their differences (both methods on
//! the same resamples), and DeLong's paired test per class.
//!
//! Resamples are drawn as in [`crate::evaluate_grouped`] (patients with replacement when group
//! ids are given) and every method's classes are read off their presorted tables in one pass
//! per resample batch. A macro in a resample averages the classes defined in that resample;
//! since the methods share labels, both sides of a difference average the same classes.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::auc::Ranked;
use crate::bootstrap::{
    map_batches, percentile_ci, BootstrapCi, Count, Draws, LaneEval, Units, LANES,
};
use crate::error::{shape_err, EvalError, Result};
use crate::evaluate::{interval, rank_classes, six_macros, ClassGroup, Interval, Macros};
use crate::BootstrapConfig;

/// One method's bootstrap CIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodStats {
    pub method: String,
    /// Macro AUC / mAP with their CIs; `None` where no class of the group is defined.
    pub macros: Macros<Option<Interval>>,
    /// Per-class AUC CI, in class order (as [`crate::evaluate_grouped`] computes it).
    pub class_auc: Vec<Option<BootstrapCi>>,
    /// Per-class average precision CI (percentile), in class order; `None` for a class
    /// without a positive. Absent in comparisons written before it.
    #[serde(default)]
    pub class_ap: Vec<Option<BootstrapCi>>,
}

/// DeLong's paired test of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassTest {
    pub auc_a: f64,
    pub auc_b: f64,
    /// `None` when the variance of the difference is 0 (identical rankings).
    pub z: Option<f64>,
    pub p_value: f64,
}

/// Method `a` against method `b` on the same images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairComparison {
    pub a: String,
    pub b: String,
    /// `a - b` of each macro, with its paired bootstrap CI.
    pub diff: Macros<Option<Interval>>,
    /// DeLong per class, in class order; `None` with fewer than two positives or negatives.
    pub delong: Vec<Option<ClassTest>>,
}

/// Every method's CIs and every pair's comparison (pairs `(i, j)` with `i < j`, in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparisons {
    pub classes: Vec<String>,
    pub level: f64,
    pub resamples: usize,
    pub methods: Vec<MethodStats>,
    pub pairs: Vec<PairComparison>,
}

/// The labelled test set the methods were scored on: N x C `labels` (1 / 0 / NaN unknown),
/// one name and group per class, and optionally one group id per row (the patient), whose
/// groups the bootstrap then resamples instead of the rows.
#[derive(Debug, Clone, Copy)]
pub struct TestSet<'a> {
    pub labels: ArrayView2<'a, f32>,
    pub class_names: &'a [String],
    pub groups: &'a [ClassGroup],
    pub row_groups: Option<&'a [u64]>,
}

/// Compares methods (name, N x C scores) on `test` with a seeded bootstrap.
pub fn compare_methods(
    methods: &[(&str, ArrayView2<'_, f32>)],
    test: &TestSet<'_>,
    cfg: &BootstrapConfig,
) -> Result<Comparisons> {
    cfg.validate()?;
    compare(methods, test, Draws::seeded(cfg), cfg.level)
}

/// As [`compare_methods`] with the resamples given: `draws[r]` lists the units drawn in
/// resample `r` (row indices, or with `row_groups` group indices numbered by ascending id).
/// For tests against a reference implementation fed the same draws.
pub fn compare_methods_with_draws(
    methods: &[(&str, ArrayView2<'_, f32>)],
    test: &TestSet<'_>,
    draws: &[Vec<usize>],
    level: f64,
) -> Result<Comparisons> {
    BootstrapConfig {
        resamples: draws.len().max(1),
        seed: 0,
        level,
    }
    .validate()?;
    compare(methods, test, Draws::Explicit(draws), level)
}

/// Per batch: for each method, the AUC lanes of every class and the six macros per lane.
struct MethodLanes<'a> {
    ranked: &'a [Vec<Ranked>],
    groups: &'a [ClassGroup],
}

/// Per method: AUC lanes and AP lanes of every class, and the six macros per lane.
type BatchOut = Vec<(
    Vec<[Option<f64>; LANES]>,
    Vec<[Option<f64>; LANES]>,
    [[Option<f64>; 6]; LANES],
)>;

impl LaneEval for MethodLanes<'_> {
    type Out = BatchOut;
    fn eval<W: Count>(&self, counts: &[[W; LANES]]) -> BatchOut {
        self.ranked
            .iter()
            .map(|classes| {
                let auc: Vec<[Option<f64>; LANES]> = classes
                    .iter()
                    .map(|rk| rk.weighted_auc_lanes(counts))
                    .collect();
                let ap: Vec<[Option<f64>; LANES]> = classes
                    .iter()
                    .map(|rk| rk.weighted_ap_lanes(counts))
                    .collect();
                let macros = std::array::from_fn(|lane| {
                    let a: Vec<Option<f64>> = auc.iter().map(|v| v[lane]).collect();
                    let p: Vec<Option<f64>> = ap.iter().map(|v| v[lane]).collect();
                    six_macros(&a, &p, self.groups)
                });
                (auc, ap, macros)
            })
            .collect()
    }
}

fn compare(
    methods: &[(&str, ArrayView2<'_, f32>)],
    test: &TestSet<'_>,
    draws: Draws<'_>,
    level: f64,
) -> Result<Comparisons> {
    let TestSet {
        labels,
        class_names,
        groups,
        row_groups,
    } = *test;
    if groups.len() != class_names.len() {
        return Err(shape_err(
            "class groups (one per class)",
            class_names.len(),
            groups.len(),
        ));
    }
    let n_rows = labels.nrows();
    if n_rows == 0 {
        return Err(EvalError::InvalidParam {
            name: "rows",
            value: "0".into(),
            hint: "a comparison needs at least one test image",
        });
    }
    let units = Units::new(row_groups, n_rows)?;
    draws.validate(&units)?;
    let ranked: Vec<Vec<Ranked>> = methods
        .iter()
        .map(|(_, s)| rank_classes(*s, labels, class_names))
        .collect::<Result<_>>()?;
    let points: Vec<[Option<f64>; 6]> = ranked
        .iter()
        .map(|classes| {
            let auc: Vec<Option<f64>> = classes.iter().map(Ranked::auc).collect();
            let ap: Vec<Option<f64>> = classes.iter().map(Ranked::average_precision).collect();
            six_macros(&auc, &ap, groups)
        })
        .collect();
    let batches = map_batches(
        n_rows,
        &units,
        draws,
        &MethodLanes {
            ranked: &ranked,
            groups,
        },
    );
    let resamples = draws.count();
    let macro_at = |m: usize, r: usize, k: usize| batches[r / LANES][m].2[r % LANES][k];

    let method_stats = methods
        .iter()
        .enumerate()
        .map(|(m, (name, _))| {
            let macros = Macros::from_array(std::array::from_fn(|k| {
                let values = (0..resamples).filter_map(|r| macro_at(m, r, k)).collect();
                interval(points[m][k], values, level)
            }));
            let class_auc = ranked[m]
                .iter()
                .enumerate()
                .map(|(c, rk)| {
                    rk.auc()?;
                    let values = (0..resamples)
                        .filter_map(|r| batches[r / LANES][m].0[c][r % LANES])
                        .collect();
                    percentile_ci(values, level)
                })
                .collect();
            let class_ap = ranked[m]
                .iter()
                .enumerate()
                .map(|(c, rk)| {
                    rk.average_precision()?;
                    let values = (0..resamples)
                        .filter_map(|r| batches[r / LANES][m].1[c][r % LANES])
                        .collect();
                    percentile_ci(values, level)
                })
                .collect();
            MethodStats {
                method: (*name).to_string(),
                macros,
                class_auc,
                class_ap,
            }
        })
        .collect();

    let mut pairs = Vec::new();
    for a in 0..methods.len() {
        for b in a + 1..methods.len() {
            let diff = Macros::from_array(std::array::from_fn(|k| {
                let estimate = Some(points[a][k]? - points[b][k]?);
                let values = (0..resamples)
                    .filter_map(|r| Some(macro_at(a, r, k)? - macro_at(b, r, k)?))
                    .collect();
                interval(estimate, values, level)
            }));
            let delong = (0..class_names.len())
                .map(|c| class_delong(methods[a].1, methods[b].1, labels, c))
                .collect::<Result<_>>()?;
            pairs.push(PairComparison {
                a: methods[a].0.to_string(),
                b: methods[b].0.to_string(),
                diff,
                delong,
            });
        }
    }
    Ok(Comparisons {
        classes: class_names.to_vec(),
        level,
        resamples,
        methods: method_stats,
        pairs,
    })
}

/// DeLong's test of class `c` over its rows with a known label.
fn class_delong(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    labels: ArrayView2<'_, f32>,
    c: usize,
) -> Result<Option<ClassTest>> {
    let mut sa = Vec::new();
    let mut sb = Vec::new();
    let mut l = Vec::new();
    for ((&x, &y), &lab) in a.column(c).iter().zip(b.column(c)).zip(labels.column(c)) {
        if !lab.is_nan() {
            sa.push(f64::from(x));
            sb.push(f64::from(y));
            l.push(lab == 1.0);
        }
    }
    Ok(crate::delong_test(&sa, &sb, &l)?.map(|t| ClassTest {
        auc_a: t.auc_a,
        auc_b: t.auc_b,
        z: t.z.is_finite().then_some(t.z),
        p_value: t.p_value,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate_grouped, EvalOptions};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn toy(n: usize, c: usize, seed: u64) -> (Array2<f32>, Array2<f32>, Array2<f32>, Vec<u64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids: Vec<u64> = (0..n)
            .map(|i| 1000 + (i as u64 * 7) % (n as u64 / 3))
            .collect();
        let labels = Array2::from_shape_fn((n, c), |(i, j)| {
            let base = if (ids[i] + j as u64).is_multiple_of(4) {
                1.0
            } else {
                0.0
            };
            if rng.gen_bool(0.05) {
                f32::NAN
            } else {
                base
            }
        });
        let a = Array2::from_shape_fn((n, c), |(i, j)| {
            let l = if labels[[i, j]] == 1.0 { 0.3 } else { 0.0 };
            l + rng.gen_range(0.0..1.0f32)
        });
        let b = Array2::from_shape_fn((n, c), |(i, j)| {
            let l = if labels[[i, j]] == 1.0 { 0.1 } else { 0.0 };
            l + rng.gen_range(0.0..1.0f32)
        });
        (labels, a, b, ids)
    }

    fn names(c: usize) -> Vec<String> {
        (0..c).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn class_cis_equal_evaluate_grouped_and_pairs_are_antisymmetric() {
        let (labels, a, b, ids) = toy(120, 3, 5);
        let groups = [ClassGroup::Base, ClassGroup::Rare, ClassGroup::Rare];
        let cfg = BootstrapConfig {
            resamples: 101,
            seed: 9,
            level: 0.95,
        };
        let opts = EvalOptions {
            bootstrap: Some(cfg),
        };
        let ev = evaluate_grouped(
            a.view(),
            labels.view(),
            &names(3),
            &groups,
            &opts,
            Some(&ids),
        )
        .unwrap();
        let run = |methods: &[(&str, ArrayView2<'_, f32>)]| {
            let test = TestSet {
                labels: labels.view(),
                class_names: &names(3),
                groups: &groups,
                row_groups: Some(&ids),
            };
            compare_methods(methods, &test, &cfg).unwrap()
        };
        let methods = [("a", a.view()), ("b", b.view())];
        let cmp = run(&methods);
        for (c, ci) in ev.classes.iter().zip(&cmp.methods[0].class_auc) {
            assert_eq!(c.ci_low, ci.map(|ci| ci.low));
            assert_eq!(c.ci_high, ci.map(|ci| ci.high));
        }
        for (c, ci) in ev.classes.iter().zip(&cmp.methods[0].class_ap) {
            assert_eq!(c.ap_ci_low, ci.map(|ci| ci.low));
            assert_eq!(c.ap_ci_high, ci.map(|ci| ci.high));
        }
        assert_eq!(ev.macro_cis, Some(cmp.methods[0].macros));
        assert_eq!(
            cmp.methods[0].macros.auc_all.unwrap().estimate,
            ev.macro_all.unwrap()
        );
        let back = run(&[methods[1], methods[0]]);
        let (d, e) = (
            cmp.pairs[0].diff.auc_all.unwrap(),
            back.pairs[0].diff.auc_all.unwrap(),
        );
        assert!((d.estimate + e.estimate).abs() < 1e-12);
        assert!((d.low + e.high).abs() < 1e-12 && (d.high + e.low).abs() < 1e-12);
        assert_eq!(cmp, run(&methods), "seeded: the same twice");
    }

    #[test]
    fn patient_draws_take_every_image_of_a_patient() {
        // Two patients: drawing patient 0 twice is the first three rows twice each.
        let labels = ndarray::array![[1.0f32], [0.0], [1.0], [0.0], [1.0]];
        let s = ndarray::array![[0.9f32], [0.2], [0.4], [0.5], [0.1]];
        let ids = [7u64, 7, 7, 3, 3];
        let g = [ClassGroup::Base];
        // Ids ascending: 3 is unit 0, 7 is unit 1.
        let draws = vec![vec![1, 1], vec![0, 1]];
        let test = TestSet {
            labels: labels.view(),
            class_names: &names(1),
            groups: &g,
            row_groups: Some(&ids),
        };
        let c = compare_methods_with_draws(&[("m", s.view())], &test, &draws, 0.95).unwrap();
        let ci = c.methods[0].class_auc[0].unwrap();
        // Resample 0 holds rows 0..3 twice: AUC 1.0; resample 1 is the full set.
        let full = crate::roc_auc(
            &[0.9, 0.2, 0.4, 0.5, 0.1],
            &[true, false, true, false, true],
        )
        .unwrap();
        assert_eq!(ci.n_valid, 2);
        assert!((ci.mean - (1.0 + full) / 2.0).abs() < 1e-12);
        assert!(compare_methods_with_draws(&[("m", s.view())], &test, &[vec![2]], 0.95).is_err());
        // One group id per row, or an error naming the shape.
        assert!(matches!(
            evaluate_grouped(
                s.view(),
                labels.view(),
                &names(1),
                &g,
                &EvalOptions::default(),
                Some(&ids[..4]),
            ),
            Err(EvalError::Shape { .. })
        ));
    }
}
