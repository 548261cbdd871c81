//! The full-covariance E-step with provably negligible pairs skipped.
//!
//! With `y = (x - mu)^T P` and `P` upper triangular, `y_j` only depends on the first `j + 1`
//! features, and `delta = sum_j y_j^2` is a sum of non-negative terms, so the sum over the
//! first `m` coordinates is a lower bound on `delta`, and, through the log density
//! (non-increasing in `delta`), gives an upper bound on each weighted log density. Steps:
//! bounds from the first `D / 8` coordinates for every sample and component (1/64 of the
//! flops); each sample's most promising component finished exactly; every other pair whose
//! bound is within [`PRUNE_GAP`] of that exact value extended to `D / 2` coordinates, then
//! finished if it is still within the gap. A pair left out has a responsibility below
//! `exp(-PRUNE_GAP)` (about 1e-35): its distance is reported as `+inf` (log density `-inf`,
//! responsibility exactly 0). Everything that can matter is computed exactly, so
//! log-likelihoods and parameters agree with the unpruned E-step to rounding. Once the
//! responsibilities are peaked (after the first iteration or two on clustered data) this
//! skips most of the work; when nothing can be ruled out it costs about the same as the
//! plain kernel.

use faer::MatRef;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::components::{Components, PrecChol};
use crate::linalg::{
    as_mat, chunk_range, gemm, n_chunks, slice_mat, slice_mat_mut, sq_dist, upper_tri_matmul, CHUNK,
};

/// A pair is skipped when its weighted log density is provably this far below an exactly
/// computed one of the same sample.
pub(crate) const PRUNE_GAP: f64 = 80.0;

/// Below this dimension the bound costs more bookkeeping than it saves.
const MIN_PRUNE_DIM: usize = 64;

#[cfg(test)]
thread_local! {
    /// Tests switch pruning off on their own thread to compare fits with and without it.
    static DISABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn disabled() -> bool {
    #[cfg(test)]
    return DISABLED.with(|c| c.get());
    #[cfg(not(test))]
    false
}

impl Components {
    /// Squared Mahalanobis distances `N x K` where they can matter, `+inf` where a bound
    /// proves that the pair's responsibility is below `exp(-PRUNE_GAP)`. `log_density(k,
    /// delta)` is component `k`'s weighted log density at distance `delta`, non-increasing
    /// in `delta`. Diagonal and spherical components (one cheap GEMM already) and small `D`
    /// fall back to [`Components::sq_mahalanobis`].
    pub(crate) fn sq_mahalanobis_pruned<F>(
        &self,
        x: ArrayView2<'_, f64>,
        log_density: F,
    ) -> Array2<f64>
    where
        F: Fn(usize, f64) -> f64 + Sync,
    {
        let (n, d) = x.dim();
        let PrecChol::Full(p) = &self.prec_chol else {
            return self.sq_mahalanobis(x);
        };
        if d < MIN_PRUNE_DIM || disabled() {
            return self.sq_mahalanobis(x);
        }
        let k_n = self.n_components();
        let (m1, m2) = (d / 8, d / 2);
        let xs = x.as_slice().expect("standard layout");
        let mp = self.means_times_prec(p);

        // Partial sums over the first m1 coordinates, for every pair.
        let mut acc = Array2::<f64>::zeros((n, k_n));
        self.full_partial_sq_into(xs, p, &mp, m1, acc.as_slice_mut().expect("fresh array"));

        // Each sample's most promising component, finished exactly.
        let best: Vec<usize> = acc
            .outer_iter()
            .into_par_iter()
            .map(|row| {
                (0..k_n)
                    .map(|k| (k, log_density(k, row[k])))
                    .fold((0, f64::NEG_INFINITY), |(bk, bv), (k, v)| {
                        if v > bv {
                            (k, v)
                        } else {
                            (bk, bv)
                        }
                    })
                    .0
            })
            .collect();
        let firsts = group_rows(k_n, (0..n).map(|i| (i, best[i])));
        self.extend(xs, p, &mp, m1..d, &firsts, &mut acc);
        let exact: Vec<f64> = (0..n)
            .map(|i| log_density(best[i], acc[[i, best[i]]]))
            .collect();

        // The other pairs: extend the bound to m2 coordinates where it does not yet rule
        // them out, then finish those it still does not.
        let alive = |i: usize, k: usize, acc: &Array2<f64>| {
            log_density(k, acc[[i, k]]) >= exact[i] - PRUNE_GAP
        };
        let rest = group_rows(
            k_n,
            (0..n).flat_map(|i| {
                let (best, acc, alive) = (&best, &acc, &alive);
                (0..k_n).filter_map(move |k| (k != best[i] && alive(i, k, acc)).then_some((i, k)))
            }),
        );
        self.extend(xs, p, &mp, m1..m2, &rest, &mut acc);
        let rest: Vec<Vec<usize>> = rest
            .into_iter()
            .enumerate()
            .map(|(k, rows)| rows.into_iter().filter(|&i| alive(i, k, &acc)).collect())
            .collect();
        self.extend(xs, p, &mp, m2..d, &rest, &mut acc);

        let mut delta = Array2::<f64>::from_elem((n, k_n), f64::INFINITY);
        for (k, rows) in firsts
            .iter()
            .zip(&rest)
            .enumerate()
            .flat_map(|(k, (a, b))| [(k, a), (k, b)])
        {
            for &i in rows {
                delta[[i, k]] = acc[[i, k]];
            }
        }
        delta
    }

    /// Add `sum_{j in cols} y_j^2` to `acc[i, k]` for the rows listed per component, in
    /// parallel over components: `y_cols = x[..end] @ P[..end, cols] - (mu P)[cols]`, a
    /// rectangular GEMM over the earlier features plus a triangular one over `cols`.
    fn extend(
        &self,
        xs: &[f64],
        p: &ndarray::Array3<f64>,
        mp: &Array2<f64>,
        cols: std::ops::Range<usize>,
        rows_by_k: &[Vec<usize>],
        acc: &mut Array2<f64>,
    ) {
        let d = mp.ncols();
        let n = xs.len() / d;
        let xm = slice_mat(xs, n, d);
        let (a, b) = (cols.start, cols.end);
        let w = b - a;
        let acc_r = &*acc;
        let done: Vec<Vec<(usize, f64)>> = rows_by_k
            .par_iter()
            .enumerate()
            .map(|(k, rows)| {
                let pk = as_mat(p.index_axis(Axis(0), k));
                let top = pk.submatrix(0, a, a, w);
                let corner = pk.submatrix(a, a, w, w);
                let mk = &mp.row(k).to_slice().expect("standard layout")[a..b];
                // y = x[.., ..b] @ P[..b, a..b] - (mu P)[a..b] for a block of rows.
                let block = |xb: MatRef<'_, f64>, y: &mut [f64]| {
                    let mut ym = slice_mat_mut(y, xb.nrows(), w);
                    if a > 0 {
                        gemm(ym.as_mut(), xb.subcols(0, a), top, false);
                    }
                    upper_tri_matmul(ym, xb.subcols(a, w), corner, a > 0);
                };
                let mut out = Vec::with_capacity(rows.len());
                let mut y = vec![0.0; CHUNK.min(n) * w];
                if rows.len() * 4 >= n * 3 {
                    // Most rows: run over x in place (no gather) and keep the listed rows
                    // (`rows` is ascending).
                    let mut next = 0;
                    for c in 0..n_chunks(n) {
                        let r = chunk_range(c, n);
                        block(
                            xm.subrows(r.start, r.len()).subcols(0, b),
                            &mut y[..r.len() * w],
                        );
                        while next < rows.len() && rows[next] < r.end {
                            let (i, t) = (rows[next], rows[next] - r.start);
                            out.push((i, acc_r[[i, k]] + sq_dist(&y[t * w..(t + 1) * w], mk)));
                            next += 1;
                        }
                    }
                } else {
                    let mut g = vec![0.0; CHUNK.min(rows.len()) * b];
                    for c in 0..n_chunks(rows.len()) {
                        let idx = &rows[chunk_range(c, rows.len())];
                        let r = idx.len();
                        for (t, &i) in idx.iter().enumerate() {
                            g[t * b..(t + 1) * b].copy_from_slice(&xs[i * d..i * d + b]);
                        }
                        block(slice_mat(&g[..r * b], r, b), &mut y[..r * w]);
                        for (t, &i) in idx.iter().enumerate() {
                            out.push((i, acc_r[[i, k]] + sq_dist(&y[t * w..(t + 1) * w], mk)));
                        }
                    }
                }
                out
            })
            .collect();
        for (k, pairs) in done.into_iter().enumerate() {
            for (i, v) in pairs {
                acc[[i, k]] = v;
            }
        }
    }
}

/// Row indices per component from `(row, component)` pairs.
fn group_rows(k_n: usize, pairs: impl Iterator<Item = (usize, usize)>) -> Vec<Vec<usize>> {
    let mut by_k = vec![Vec::new(); k_n];
    for (i, k) in pairs {
        by_k[k].push(i);
    }
    by_k
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{DISABLED, PRUNE_GAP};
    use crate::{CovarianceType, GaussianMixture, InitMethod, NuPolicy, StudentMixture};

    /// Clusters at assorted distances in D = 72 (above the pruning threshold), so that some
    /// pairs are ruled out and some are not.
    fn data() -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (k, per, d) = (6, 60, 72);
        let centres = Array2::from_shape_fn((k, d), |(c, _)| {
            rng.gen_range(-1.0..1.0) * (0.3 + 0.4 * c as f64)
        });
        Array2::from_shape_fn((k * per, d), |(i, j)| {
            centres[[i / per, j]] + rng.gen_range(-1.0..1.0)
        })
    }

    fn gmm(x: &Array2<f64>, iters: usize) -> GaussianMixture {
        GaussianMixture::params(6)
            .covariance_type(CovarianceType::Full)
            .init_method(InitMethod::KMeansPlusPlus)
            .reg_covar(1e-3)
            .tol(0.0)
            .max_iter(iters)
            .fit(x.view())
            .unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn pruned_distances_are_exact_or_negligible() {
        let x = data();
        let comps = gmm(&x, 3).comps;
        let c = 72.0 * (2.0 * std::f64::consts::PI).ln();
        let density =
            |k: usize, delta: f64| comps.weights[k].ln() - 0.5 * (c + delta) + comps.log_det[k];
        let pruned = comps.sq_mahalanobis_pruned(x.view(), density);
        let full = comps.sq_mahalanobis(x.view());
        let (mut skipped, mut kept) = (0, 0);
        for (pr, fr) in pruned.outer_iter().zip(full.outer_iter()) {
            let best = (0..6).map(|k| density(k, fr[k])).fold(f64::MIN, f64::max);
            for k in 0..6 {
                if pr[k].is_infinite() {
                    skipped += 1;
                    assert!(density(k, fr[k]) < best - PRUNE_GAP);
                } else {
                    kept += 1;
                    assert!(close(pr[k], fr[k], 1e-10), "{} vs {}", pr[k], fr[k]);
                }
            }
        }
        assert!(
            skipped > 0 && kept > x.nrows(),
            "{skipped} skipped, {kept} kept"
        );
    }

    #[test]
    fn fits_match_unpruned_fits() {
        let x = data();
        let student = |g: &GaussianMixture| {
            StudentMixture::params(6)
                .covariance_type(CovarianceType::Full)
                .nu(NuPolicy::PerComponent)
                .reg_covar(1e-3)
                .tol(0.0)
                .max_iter(5)
                .fit_from(g, x.view())
                .unwrap()
        };
        let g = gmm(&x, 6);
        let t = student(&g);
        DISABLED.with(|c| c.set(true));
        let g0 = gmm(&x, 6);
        let t0 = student(&g0);
        DISABLED.with(|c| c.set(false));
        let pairs = g.lower_bound_history().iter().zip(g0.lower_bound_history());
        for (a, b) in pairs.chain(t.lower_bound_history().iter().zip(t0.lower_bound_history())) {
            assert!(close(*a, *b, 1e-10), "{a} vs {b}");
        }
        for (a, b) in g.means().iter().zip(g0.means()) {
            assert!(close(*a, *b, 1e-9));
        }
        for (a, b) in t
            .means()
            .iter()
            .zip(t0.means())
            .chain(t.nu().iter().zip(t0.nu()))
        {
            assert!(close(*a, *b, 1e-9), "{a} vs {b}");
        }
    }
}
