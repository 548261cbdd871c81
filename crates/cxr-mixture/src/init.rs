//! Initial responsibilities, as scikit-learn's `_initialize_parameters` builds them: from
//! k-means (k-means++ seeding and Lloyd iterations), from k-means++ centres alone, at random,
//! or from random samples.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::linalg::{as_mat, chunk_range, gemm, slice_mat, slice_mat_mut, CHUNK};

/// Squared Euclidean distances `N x K` from each sample to each centre, via one GEMM per
/// chunk (`|x|^2 - 2 x.c + |c|^2`, clamped at zero).
pub(crate) fn sq_distances(x: ArrayView2<'_, f64>, centers: &Array2<f64>) -> Array2<f64> {
    let (n, d) = x.dim();
    let k_n = centers.nrows();
    let c2: Array1<f64> = centers.map_axis(Axis(1), |r| r.dot(&r));
    let mut out = Array2::<f64>::zeros((n, k_n));
    let xs = x.as_slice().expect("standard layout");
    let ct = as_mat(centers.view()).transpose();
    out.as_slice_mut()
        .expect("fresh array")
        .par_chunks_mut(CHUNK * k_n)
        .enumerate()
        .for_each(|(c, o)| {
            let r = chunk_range(c, n);
            let rows = r.len();
            let xc = &xs[r.start * d..r.end * d];
            gemm(
                slice_mat_mut(o, rows, k_n),
                slice_mat(xc, rows, d),
                ct,
                false,
            );
            for i in 0..rows {
                let xi = &xc[i * d..(i + 1) * d];
                let x2: f64 = xi.iter().map(|v| v * v).sum();
                for k in 0..k_n {
                    let v = &mut o[i * k_n + k];
                    *v = (x2 - 2.0 * *v + c2[k]).max(0.0);
                }
            }
        });
    out
}

fn sq_dist_to(x: ArrayView2<'_, f64>, c: ndarray::ArrayView1<'_, f64>) -> Vec<f64> {
    x.outer_iter()
        .into_par_iter()
        .map(|r| r.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum())
        .collect()
}

/// Greedy k-means++ (scikit-learn's variant: `2 + ln k` candidates per step, keep the one that
/// lowers the potential most). Duplicate points and `N < K` are fine: when every remaining
/// point sits on a centre, the next centre is drawn uniformly.
pub(crate) fn kmeans_plus_plus(
    x: ArrayView2<'_, f64>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Array2<f64> {
    let (n, d) = x.dim();
    let mut centers = Array2::<f64>::zeros((k, d));
    let first = rng.gen_range(0..n);
    centers.row_mut(0).assign(&x.row(first));
    let mut closest = sq_dist_to(x, x.row(first));
    let trials = 2 + (k as f64).ln().floor() as usize;
    for c in 1..k {
        let pot: f64 = closest.iter().sum();
        let candidates: Vec<usize> = if pot > 0.0 && pot.is_finite() {
            let dist = WeightedIndex::new(&closest).expect("non-negative, positive sum");
            (0..trials).map(|_| dist.sample(rng)).collect()
        } else {
            (0..trials).map(|_| rng.gen_range(0..n)).collect()
        };
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for cand in candidates {
            let dc = sq_dist_to(x, x.row(cand));
            let new: Vec<f64> = closest.iter().zip(&dc).map(|(a, b)| a.min(*b)).collect();
            let p: f64 = new.iter().sum();
            if best.as_ref().is_none_or(|(bp, _, _)| p < *bp) {
                best = Some((p, cand, new));
            }
        }
        let (_, idx, new) = best.expect("at least two candidates");
        centers.row_mut(c).assign(&x.row(idx));
        closest = new;
    }
    centers
}

/// Lloyd's k-means from k-means++ seeds (scikit-learn's KMeans with `n_init = 1`,
/// `max_iter = 300`, `tol = 1e-4` of the mean feature variance). Returns hard labels.
pub(crate) fn kmeans_labels(x: ArrayView2<'_, f64>, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let (n, d) = x.dim();
    let var_mean = x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
    let tol = 1e-4 * var_mean;
    let mut centers = kmeans_plus_plus(x, k, rng);
    let mut labels = vec![0usize; n];
    for _ in 0..300 {
        let dist = sq_distances(x, &centers);
        labels = argmin_rows(&dist);
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            sums.row_mut(l).scaled_add(1.0, &x.row(i));
            counts[l] += 1;
        }
        // Empty clusters move to the points farthest from their centres, as scikit-learn does.
        let mut far: Vec<usize> = (0..n).collect();
        far.sort_by(|&a, &b| dist[[b, labels[b]]].total_cmp(&dist[[a, labels[a]]]));
        let mut next_far = 0;
        let mut new = Array2::<f64>::zeros((k, d));
        for c in 0..k {
            if counts[c] > 0 {
                new.row_mut(c).assign(&(&sums.row(c) / counts[c] as f64));
            } else {
                new.row_mut(c).assign(&x.row(far[next_far % n]));
                next_far += 1;
            }
        }
        let shift: f64 = (&new - &centers).mapv(|v| v * v).sum();
        centers = new;
        if shift <= tol {
            break;
        }
    }
    argmin_rows(&sq_distances(x, &centers))
}

fn argmin_rows(m: &Array2<f64>) -> Vec<usize> {
    m.outer_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |(bi, bv), (i, &v)| if v < bv { (i, v) } else { (bi, bv) },
                )
                .0
        })
        .collect()
}

/// One-hot responsibilities from hard labels.
pub(crate) fn one_hot(labels: &[usize], k: usize) -> Array2<f64> {
    let mut r = Array2::<f64>::zeros((labels.len(), k));
    for (i, &l) in labels.iter().enumerate() {
        r[[i, l]] = 1.0;
    }
    r
}

/// Hard labels to the nearest of the given centres.
pub(crate) fn nearest_labels(x: ArrayView2<'_, f64>, centers: &Array2<f64>) -> Vec<usize> {
    argmin_rows(&sq_distances(x, centers))
}

/// Uniform random responsibilities, normalised per row.
pub(crate) fn random_resp(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let mut r = Array2::from_shape_fn((n, k), |_| rng.gen::<f64>());
    for mut row in r.rows_mut() {
        let s = row.sum();
        row /= s;
    }
    r
}

/// Responsibilities that put `k` distinct random samples in one component each.
pub(crate) fn random_from_data_resp(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let idx = rand::seq::index::sample(rng, n, k.min(n));
    let mut r = Array2::<f64>::zeros((n, k));
    for (c, i) in idx.iter().enumerate() {
        r[[i, c]] = 1.0;
    }
    r
}
