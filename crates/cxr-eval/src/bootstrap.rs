//! Percentile bootstrap confidence intervals for ROC AUC, as CheXzero reports them
//! (1,000 resamples of the test rows with replacement, 2.5 / 97.5 percentiles).
//!
//! A resample is drawn as a vector of multiplicities (how often each row was picked) and every
//! class's AUC is read off its presorted [`Ranked`] table in one linear pass: nothing is sorted
//! per resample. All classes share each resample of rows, as a row-level bootstrap of a
//! multi-label test set should. With group ids (patients) a resample draws groups with
//! replacement and every row of a drawn group comes along, with its group's multiplicity: the
//! images of one patient share labels and are not independent. Resample `r` uses its own
//! ChaCha8 stream `r` of `seed`, so the result does not depend on the number of threads. Eight
//! resamples share each pass over the presorted rows (one gather of eight multiplicities per
//! row). Explicit unit draws ([`crate::compare_methods_with_draws`]) replace the RNG for tests
//! against a reference.

use rand::distributions::{Distribution, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auc::Ranked;
use crate::error::{EvalError, Result};
use crate::stats::percentile_sorted;

/// Settings of the percentile bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples (CheXzero: 1,000).
    pub resamples: usize,
    /// Seed of the resampling RNG.
    pub seed: u64,
    /// Two-sided confidence level in (0, 1), e.g. 0.95.
    pub level: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self::new(0)
    }
}

impl BootstrapConfig {
    /// 1,000 resamples at the 95% level with the given seed.
    pub fn new(seed: u64) -> Self {
        BootstrapConfig {
            resamples: 1000,
            seed,
            level: 0.95,
        }
    }

    /// Checks the ranges; called by every function that takes a config.
    pub fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(EvalError::InvalidParam {
                name: "resamples",
                value: "0".into(),
                hint: "use at least 1 (1000 is customary)",
            });
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(EvalError::InvalidParam {
                name: "level",
                value: self.level.to_string(),
                hint: "a confidence level lies strictly between 0 and 1, e.g. 0.95",
            });
        }
        Ok(())
    }
}

/// A bootstrap confidence interval of one AUC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    pub low: f64,
    pub high: f64,
    /// Mean AUC over the resamples in which the class was defined.
    pub mean: f64,
    /// Resamples in which the class had both a positive and a negative; the others are
    /// skipped (never counted as 0.5).
    pub n_valid: usize,
}

/// The resampling unit of each row: rows are their own units (image-level bootstrap) or rows
/// sharing a group id (a patient) are drawn together. Groups are numbered by ascending id, so
/// the numbering does not depend on row order.
#[derive(Debug, Clone)]
pub(crate) struct Units {
    /// Unit index of every row; `None` when every row is its own unit.
    of_row: Option<Vec<u32>>,
    n: usize,
}

impl Units {
    /// Rows as units (`ids == None`) or the groups of `ids`, one id per row.
    pub(crate) fn new(ids: Option<&[u64]>, n_rows: usize) -> Result<Self> {
        let Some(ids) = ids else {
            return Ok(Units {
                of_row: None,
                n: n_rows,
            });
        };
        if ids.len() != n_rows {
            return Err(crate::error::shape_err(
                "group ids (one per row)",
                n_rows,
                ids.len(),
            ));
        }
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let of_row = ids
            .iter()
            .map(|id| sorted.binary_search(id).unwrap_or_default() as u32)
            .collect();
        Ok(Units {
            of_row: Some(of_row),
            n: sorted.len(),
        })
    }

    /// Number of units a resample draws.
    pub(crate) fn len(&self) -> usize {
        self.n
    }
}

/// Which units each resample draws: `resamples` seeded draws of as many units as there are
/// (resample `r` on ChaCha8 stream `r` of `seed`), or given unit indices per resample.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Draws<'a> {
    Seeded { resamples: usize, seed: u64 },
    Explicit(&'a [Vec<usize>]),
}

impl Draws<'_> {
    pub(crate) fn seeded(cfg: &BootstrapConfig) -> Self {
        Draws::Seeded {
            resamples: cfg.resamples,
            seed: cfg.seed,
        }
    }

    pub(crate) fn count(&self) -> usize {
        match self {
            Draws::Seeded { resamples, .. } => *resamples,
            Draws::Explicit(d) => d.len(),
        }
    }

    /// Checks explicit unit indices against the number of units.
    pub(crate) fn validate(&self, units: &Units) -> Result<()> {
        if let Draws::Explicit(draws) = self {
            if draws.is_empty() {
                return Err(EvalError::InvalidParam {
                    name: "resamples",
                    value: "0".into(),
                    hint: "give at least one resample of unit indices",
                });
            }
            for d in draws.iter() {
                if let Some(&bad) = d.iter().find(|&&u| u >= units.len()) {
                    return Err(EvalError::InvalidParam {
                        name: "resample unit index",
                        value: bad.to_string(),
                        hint: "unit indices lie below the number of units (rows, or distinct group ids numbered ascending)",
                    });
                }
            }
        }
        Ok(())
    }

    /// The largest multiplicity a row can get.
    fn max_count(&self, units: &Units) -> usize {
        match self {
            Draws::Seeded { .. } => units.len(),
            Draws::Explicit(d) => d.iter().map(Vec::len).max().unwrap_or(0),
        }
    }
}

/// Evaluates [`LANES`] resamples from their row multiplicities (`counts[row][lane]`).
pub(crate) trait LaneEval: Sync {
    type Out: Send;
    fn eval<W: Count>(&self, counts: &[[W; LANES]]) -> Self::Out;
}

/// Per-class AUC lanes of every presorted class.
struct AucLanes<'a>(&'a [Ranked]);

impl LaneEval for AucLanes<'_> {
    type Out = Vec<[Option<f64>; LANES]>;
    fn eval<W: Count>(&self, counts: &[[W; LANES]]) -> Self::Out {
        self.0
            .iter()
            .map(|rk| rk.weighted_auc_lanes(counts))
            .collect()
    }
}

/// The AUC of every class in every resample: `out[c]` lists class `c`'s defined values in
/// resample order.
pub(crate) fn resampled_aucs(
    ranked: &[Ranked],
    n_rows: usize,
    units: &Units,
    draws: Draws<'_>,
) -> Vec<Vec<f64>> {
    let per_batch = map_batches(n_rows, units, draws, &AucLanes(ranked));
    (0..ranked.len())
        .map(|c| {
            (0..draws.count())
                .filter_map(|r| per_batch[r / LANES][c][r % LANES])
                .collect()
        })
        .collect()
}

/// Per-class AUC and AP lanes of every presorted class.
struct AucApLanes<'a>(&'a [Ranked]);

impl LaneEval for AucApLanes<'_> {
    type Out = Vec<([Option<f64>; LANES], [Option<f64>; LANES])>;
    fn eval<W: Count>(&self, counts: &[[W; LANES]]) -> Self::Out {
        self.0
            .iter()
            .map(|rk| (rk.weighted_auc_lanes(counts), rk.weighted_ap_lanes(counts)))
            .collect()
    }
}

/// Every class's AUC and AP in every resample, `auc[c][r]` / `ap[c][r]` (`None` where the
/// resample leaves it undefined).
pub(crate) struct Resampled {
    pub auc: Vec<Vec<Option<f64>>>,
    pub ap: Vec<Vec<Option<f64>>>,
}

/// AUC and AP of every class in every resample, from one pass per resample batch.
pub(crate) fn resampled_auc_ap(
    ranked: &[Ranked],
    n_rows: usize,
    units: &Units,
    draws: Draws<'_>,
) -> Resampled {
    let per_batch = map_batches(n_rows, units, draws, &AucApLanes(ranked));
    let mut out = Resampled {
        auc: vec![Vec::with_capacity(draws.count()); ranked.len()],
        ap: vec![Vec::with_capacity(draws.count()); ranked.len()],
    };
    for r in 0..draws.count() {
        for (c, (auc, ap)) in per_batch[r / LANES].iter().enumerate() {
            out.auc[c].push(auc[r % LANES]);
            out.ap[c].push(ap[r % LANES]);
        }
    }
    out
}

/// Runs `f` on every batch of [`LANES`] resamples; a batch's lanes past the last resample
/// hold zero counts.
pub(crate) fn map_batches<F: LaneEval>(
    n_rows: usize,
    units: &Units,
    draws: Draws<'_>,
    f: &F,
) -> Vec<F::Out> {
    // Multiplicities never exceed the number of draws: u16 halves the cache footprint of the
    // gather in the AUC pass whenever that bound allows it.
    if draws.max_count(units) <= usize::from(u16::MAX) {
        map_batches_with::<u16, F>(n_rows, units, draws, f)
    } else {
        map_batches_with::<u32, F>(n_rows, units, draws, f)
    }
}

/// Resamples evaluated together in one pass over each class's presorted rows.
pub(crate) const LANES: usize = 8;

pub(crate) trait Count: Copy + Default + Into<u64> + Send + Sync {
    fn incr(&mut self);
    fn from_u32(v: u32) -> Self;
}
impl Count for u16 {
    fn incr(&mut self) {
        *self += 1;
    }
    fn from_u32(v: u32) -> Self {
        v as u16
    }
}
impl Count for u32 {
    fn incr(&mut self) {
        *self += 1;
    }
    fn from_u32(v: u32) -> Self {
        v
    }
}

fn map_batches_with<W: Count, F: LaneEval>(
    n_rows: usize,
    units: &Units,
    draws: Draws<'_>,
    f: &F,
) -> Vec<F::Out> {
    let uniform = Uniform::new(0, units.len().max(1) as u32);
    let resamples = draws.count();
    let batches = resamples.div_ceil(LANES);
    (0..batches)
        .into_par_iter()
        .map_init(
            || {
                let per_unit = if units.of_row.is_some() {
                    units.len()
                } else {
                    0
                };
                (vec![[W::default(); LANES]; n_rows], vec![0u32; per_unit])
            },
            |(counts, unit_counts), batch| {
                counts.fill([W::default(); LANES]);
                for lane in 0..LANES {
                    let r = batch * LANES + lane;
                    if r >= resamples {
                        break;
                    }
                    match (&units.of_row, draws) {
                        (None, Draws::Seeded { seed, .. }) => {
                            let mut rng = ChaCha8Rng::seed_from_u64(seed);
                            rng.set_stream(r as u64);
                            for _ in 0..n_rows {
                                counts[uniform.sample(&mut rng) as usize][lane].incr();
                            }
                        }
                        (None, Draws::Explicit(d)) => {
                            for &row in &d[r] {
                                counts[row][lane].incr();
                            }
                        }
                        (Some(of_row), _) => {
                            unit_counts.fill(0);
                            match draws {
                                Draws::Seeded { seed, .. } => {
                                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                                    rng.set_stream(r as u64);
                                    for _ in 0..units.len() {
                                        unit_counts[uniform.sample(&mut rng) as usize] += 1;
                                    }
                                }
                                Draws::Explicit(d) => {
                                    for &u in &d[r] {
                                        unit_counts[u] += 1;
                                    }
                                }
                            }
                            for (c, &u) in counts.iter_mut().zip(of_row) {
                                c[lane] = W::from_u32(unit_counts[u as usize]);
                            }
                        }
                    }
                }
                f.eval(counts)
            },
        )
        .collect()
}

/// Percentile interval of resampled values (consumed: sorted in place).
pub(crate) fn percentile_ci(mut values: Vec<f64>, level: f64) -> Option<BootstrapCi> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Some(BootstrapCi {
        low: percentile_sorted(&values, alpha),
        high: percentile_sorted(&values, 1.0 - alpha),
        mean: values.iter().sum::<f64>() / values.len() as f64,
        n_valid: values.len(),
    })
}

/// Bootstrap CI of the AUC of one class. `Ok(None)` when the AUC is undefined on the full
/// data (no positive or no negative).
pub fn bootstrap_auc_ci(
    scores: &[f64],
    labels: &[bool],
    cfg: &BootstrapConfig,
) -> Result<Option<BootstrapCi>> {
    cfg.validate()?;
    if scores.len() != labels.len() {
        return Err(crate::error::shape_err(
            "labels length",
            scores.len(),
            labels.len(),
        ));
    }
    if let Some(row) = scores.iter().position(|s| s.is_nan()) {
        return Err(EvalError::NonFiniteScore {
            class: String::new(),
            row,
            value: f32::NAN,
        });
    }
    let ranked = Ranked::from_slices(scores, labels);
    if ranked.auc().is_none() {
        return Ok(None);
    }
    let units = Units::new(None, scores.len())?;
    let mut all = resampled_aucs(
        std::slice::from_ref(&ranked),
        scores.len(),
        &units,
        Draws::seeded(cfg),
    );
    Ok(percentile_ci(all.pop().unwrap_or_default(), cfg.level))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn toy(n: usize) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let labels: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.3)).collect();
        let scores = labels
            .iter()
            .map(|&l| (rng.gen_range(0..20) as f64) / 20.0 + if l { 0.2 } else { 0.0 })
            .collect();
        (scores, labels)
    }

    #[test]
    fn deterministic_by_seed_and_contains_point_estimate() {
        let (s, l) = toy(300);
        let cfg = BootstrapConfig {
            resamples: 200,
            seed: 3,
            level: 0.95,
        };
        let a = bootstrap_auc_ci(&s, &l, &cfg).unwrap().unwrap();
        let b = bootstrap_auc_ci(&s, &l, &cfg).unwrap().unwrap();
        assert_eq!(a, b);
        let auc = crate::roc_auc(&s, &l).unwrap();
        assert!(a.low < auc && auc < a.high, "{a:?} vs {auc}");
        assert_eq!(a.n_valid, 200);
        let c = bootstrap_auc_ci(&s, &l, &BootstrapConfig { seed: 4, ..cfg })
            .unwrap()
            .unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn resample_equals_auc_of_materialised_resample() {
        // One resample by multiplicities must equal the AUC of the explicitly drawn rows.
        let (s, l) = toy(100);
        let ranked = Ranked::from_slices(&s, &l);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut counts = vec![0u32; s.len()];
        let mut rows = Vec::new();
        for _ in 0..s.len() {
            let i = rng.gen_range(0..s.len());
            counts[i] += 1;
            rows.push(i);
        }
        let s2: Vec<f64> = rows.iter().map(|&i| s[i]).collect();
        let l2: Vec<bool> = rows.iter().map(|&i| l[i]).collect();
        let direct = crate::roc_auc(&s2, &l2).unwrap();
        assert!((ranked.weighted_auc(&counts).unwrap() - direct).abs() < 1e-15);
    }

    #[test]
    fn invalid_configs_are_errors() {
        let (s, l) = toy(10);
        let zero = BootstrapConfig {
            resamples: 0,
            ..BootstrapConfig::new(0)
        };
        assert!(matches!(
            bootstrap_auc_ci(&s, &l, &zero),
            Err(EvalError::InvalidParam {
                name: "resamples",
                ..
            })
        ));
        let lvl = BootstrapConfig {
            level: 1.0,
            ..BootstrapConfig::new(0)
        };
        assert!(matches!(
            bootstrap_auc_ci(&s, &l, &lvl),
            Err(EvalError::InvalidParam { name: "level", .. })
        ));
        assert!(bootstrap_auc_ci(&s, &l[..5], &BootstrapConfig::new(0)).is_err());
    }

    #[test]
    fn undefined_class_has_no_ci() {
        let cfg = BootstrapConfig {
            resamples: 10,
            ..BootstrapConfig::new(1)
        };
        assert_eq!(
            bootstrap_auc_ci(&[0.1, 0.2], &[true, true], &cfg).unwrap(),
            None
        );
    }
}
