//! Initial responsibilities, as scikit-learn's `_initialize_parameters` builds them: from
//! k-means (k-means++ seeding and Lloyd iterations), from k-means++ centres alone, at random,
//! or from random samples.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::linalg::{as_mat, chunk_range, gemm, n_chunks, slice_mat, slice_mat_mut, CHUNK};

/// The k-means initialisation's working precision: the data are centred in f64, then the
/// distance GEMMs run in f32 (twice the throughput, half the memory traffic; scikit-learn
/// likewise runs KMeans in f32 on f32 data, what `xtask cluster` reads). Centre sums and
/// potentials accumulate in f64.
type F = f32;

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

/// Squared norms of the rows of `x`.
fn row_sq_norms(x: ArrayView2<'_, F>) -> Vec<F> {
    x.outer_iter()
        .into_par_iter()
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// `x` minus its column means (in f64), as [`F`] in standard layout. scikit-learn's KMeans
/// centres the data too: it keeps `|x|^2 - 2 x.c + |c|^2` accurate when the data sit far from
/// the origin.
fn centred(x: ArrayView2<'_, f64>) -> Array2<F> {
    let mean = x.mean_axis(Axis(0)).expect("n >= 1");
    let (n, d) = x.dim();
    let mut out = Array2::<F>::zeros((n, d));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)))
        .for_each(|(mut o, r)| {
            for ((o, v), m) in o.iter_mut().zip(r).zip(&mean) {
                *o = (v - m) as F;
            }
        });
    out
}

/// `dst = a @ b` in [`F`], single-threaded (callers parallelise over row chunks).
fn gemm_f(dst: MatMut<'_, F>, a: MatRef<'_, F>, b: MatRef<'_, F>) {
    matmul(dst, Accum::Replace, a, b, 1.0, Par::Seq);
}

/// Squared distances `N x T` from every sample to each of `t` candidate rows, one GEMM per
/// chunk of samples (`x2` holds the samples' squared norms).
fn sq_distances_to_rows(x: ArrayView2<'_, F>, x2: &[F], rows: &[usize]) -> Vec<F> {
    let (n, d) = x.dim();
    let t = rows.len();
    let cands = x.select(Axis(0), rows);
    let c2: Vec<F> = rows.iter().map(|&i| x2[i]).collect();
    let xs = x.as_slice().expect("standard layout");
    let ct = MatRef::from_row_major_slice(cands.as_slice().expect("fresh array"), t, d).transpose();
    let mut out = vec![0.0 as F; n * t];
    out.par_chunks_mut(CHUNK * t)
        .enumerate()
        .for_each(|(c, o)| {
            let r = chunk_range(c, n);
            let m = r.len();
            gemm_f(
                MatMut::from_row_major_slice_mut(o, m, t),
                MatRef::from_row_major_slice(&xs[r.start * d..r.end * d], m, d),
                ct,
            );
            for (i, row) in o.chunks_mut(t).enumerate() {
                let xi2 = x2[r.start + i];
                for (v, cj2) in row.iter_mut().zip(&c2) {
                    *v = (xi2 - 2.0 * *v + cj2).max(0.0);
                }
            }
        });
    // A candidate is at distance exactly zero from itself (not GEMM round-off).
    for (j, &i) in rows.iter().enumerate() {
        out[i * t + j] = 0.0;
    }
    out
}

/// Greedy k-means++ (scikit-learn's variant: `2 + ln k` candidates per step, keep the one that
/// lowers the potential most). Duplicate points and `N < K` are fine: when every remaining
/// point sits on a centre, the next centre is drawn uniformly. The distances to all the
/// candidates of a step come from one GEMM per chunk of samples.
pub(crate) fn kmeans_plus_plus(
    x: ArrayView2<'_, f64>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Array2<f64> {
    let xc = centred(x);
    let x2 = row_sq_norms(xc.view());
    let idx = kmeans_plus_plus_indices(xc.view(), &x2, k, rng);
    x.select(Axis(0), &idx)
}

/// The sample indices k-means++ picks as centres (`x` as given, `x2` its squared row norms).
fn kmeans_plus_plus_indices(
    x: ArrayView2<'_, F>,
    x2: &[F],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let n = x.nrows();
    let first = rng.gen_range(0..n);
    let mut chosen = vec![first];
    let mut closest = sq_distances_to_rows(x, x2, &[first]);
    let trials = 2 + (k as f64).ln().floor() as usize;
    for _ in 1..k {
        let pot: f64 = closest.iter().map(|&v| f64::from(v)).sum();
        let candidates: Vec<usize> = if pot > 0.0 && pot.is_finite() {
            let dist = WeightedIndex::new(&closest).expect("non-negative, positive sum");
            (0..trials).map(|_| dist.sample(rng)).collect()
        } else {
            (0..trials).map(|_| rng.gen_range(0..n)).collect()
        };
        let dc = sq_distances_to_rows(x, x2, &candidates);
        let t = candidates.len();
        // Potential after adding each candidate, summed per chunk in parallel.
        let g = group_rows(n);
        let parts: Vec<Vec<f64>> = closest
            .par_chunks(g)
            .zip(dc.par_chunks(g * t))
            .map(|(cl, dd)| {
                let mut p = vec![0.0f64; t];
                for (a, row) in cl.iter().zip(dd.chunks(t)) {
                    for (pj, b) in p.iter_mut().zip(row) {
                        *pj += f64::from(a.min(*b));
                    }
                }
                p
            })
            .collect();
        // Summed in group order: the same result whatever the thread count.
        let mut pots = vec![0.0f64; t];
        for p in &parts {
            pots.iter_mut().zip(p).for_each(|(u, v)| *u += v);
        }
        // First best on ties, as numpy's argmin.
        let best = (0..t).fold(0, |b, j| if pots[j] < pots[b] { j } else { b });
        closest
            .par_iter_mut()
            .zip(dc.par_chunks(t))
            .for_each(|(a, row)| *a = a.min(row[best]));
        chosen.push(candidates[best]);
    }
    chosen
}

/// Lloyd's k-means from k-means++ seeds (scikit-learn's KMeans with `n_init = 1`,
/// `max_iter = 300`, `tol = 1e-4` of the mean feature variance). Returns hard labels.
pub(crate) fn kmeans_labels(x: ArrayView2<'_, f64>, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let xc = centred(x);
    let x2 = row_sq_norms(xc.view());
    let t = std::time::Instant::now();
    let idx = kmeans_plus_plus_indices(xc.view(), &x2, k, rng);
    tracing::debug!(
        seconds = t.elapsed().as_secs_f64(),
        "k-means initialisation (k-means++ seeding)"
    );
    let centres = xc.select(Axis(0), &idx).mapv(f64::from);
    let var_mean = x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
    let t = std::time::Instant::now();
    let r = lloyd(xc.view(), &x2, centres, 300, 1e-4 * var_mean);
    tracing::debug!(
        n_iter = r.n_iter,
        inertia = r.inertia,
        seconds = t.elapsed().as_secs_f64(),
        "k-means initialisation (Lloyd)"
    );
    r.labels
}

/// The result of [`lloyd`].
pub(crate) struct Lloyd {
    pub(crate) labels: Vec<usize>,
    /// Final centres (checked against scikit-learn's by the golden test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) centres: Array2<f64>,
    pub(crate) n_iter: usize,
    /// Sum of squared distances of the samples to their centres.
    pub(crate) inertia: f64,
}

/// One assignment pass: labels and squared distance to the nearest centre for every sample,
/// with the per-centre sums and counts of the samples assigned to it. One GEMM per chunk of
/// samples, chunks in parallel, partial sums reduced at the end.
fn assign(
    x: ArrayView2<'_, F>,
    x2: &[F],
    centres: &Array2<f64>,
    labels: &mut [usize],
    mind: &mut [F],
) -> (Vec<f64>, Vec<usize>) {
    let (n, d) = x.dim();
    let k = centres.nrows();
    let cf = centres.mapv(|v| v as F);
    let c2: Vec<F> = cf.outer_iter().map(|r| r.dot(&r)).collect();
    let xs = x.as_slice().expect("standard layout");
    let ct = MatRef::from_row_major_slice(cf.as_slice().expect("fresh array"), k, d).transpose();
    let g = group_rows(n);
    let parts: Vec<(Vec<f64>, Vec<usize>)> = labels
        .par_chunks_mut(g)
        .zip(mind.par_chunks_mut(g))
        .enumerate()
        .map(|(gi, (lab_g, md_g))| {
            let mut sums = vec![0.0f64; k * d];
            let mut counts = vec![0usize; k];
            let mut buf = vec![0.0 as F; CHUNK * k];
            for (c, (lab, md)) in lab_g
                .chunks_mut(CHUNK)
                .zip(md_g.chunks_mut(CHUNK))
                .enumerate()
            {
                let start = gi * g + c * CHUNK;
                let m = lab.len();
                let xr = &xs[start * d..(start + m) * d];
                gemm_f(
                    MatMut::from_row_major_slice_mut(&mut buf[..m * k], m, k),
                    MatRef::from_row_major_slice(xr, m, d),
                    ct,
                );
                for i in 0..m {
                    let row = &buf[i * k..(i + 1) * k];
                    let xi2 = x2[start + i];
                    let (mut bl, mut bv) = (0, F::INFINITY);
                    for (j, (v, cj2)) in row.iter().zip(&c2).enumerate() {
                        let dist = xi2 - 2.0 * v + cj2;
                        if dist < bv {
                            (bl, bv) = (j, dist);
                        }
                    }
                    lab[i] = bl;
                    md[i] = bv.max(0.0);
                    counts[bl] += 1;
                    let s = &mut sums[bl * d..(bl + 1) * d];
                    for (a, b) in s.iter_mut().zip(&xr[i * d..(i + 1) * d]) {
                        *a += f64::from(*b);
                    }
                }
            }
            (sums, counts)
        })
        .collect();
    // Reduced in group order: the same centres whatever the thread count.
    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0usize; k];
    for (s, c) in &parts {
        sums.iter_mut().zip(s).for_each(|(a, b)| *a += b);
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
    }
    (sums, counts)
}

/// Rows per parallel group for the k-means reductions: whole chunks, at most 32 groups. The
/// grouping depends on `n` only, and partial sums are combined in group order, so results do
/// not depend on the number of threads or on work stealing.
fn group_rows(n: usize) -> usize {
    CHUNK * n_chunks(n).div_ceil(32).max(1)
}

/// Lloyd iterations from the given centres, with scikit-learn's semantics (`_kmeans_single_lloyd`):
/// stop when the labels no longer change or when the total squared centre shift is at most
/// `tol`; empty clusters take the samples farthest from their centres (removed from their old
/// cluster's mean); after a shift-based stop the labels are recomputed for the final centres.
pub(crate) fn lloyd(
    x: ArrayView2<'_, F>,
    x2: &[F],
    mut centres: Array2<f64>,
    max_iter: usize,
    tol: f64,
) -> Lloyd {
    let (n, d) = x.dim();
    let k = centres.nrows();
    let mut labels = vec![0usize; n];
    let mut old = vec![usize::MAX; n];
    let mut mind = vec![0.0 as F; n];
    let mut strict = false;
    let mut n_iter = 0;
    for _ in 0..max_iter {
        n_iter += 1;
        let (mut sums, mut counts) = assign(x, x2, &centres, &mut labels, &mut mind);
        let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
        if !empty.is_empty() {
            let mut far: Vec<usize> = (0..n).collect();
            far.sort_by(|&a, &b| mind[b].total_cmp(&mind[a]));
            for (&c, &i) in empty.iter().zip(&far) {
                let xi = x.row(i);
                let from = labels[i];
                if counts[from] > 0 {
                    counts[from] -= 1;
                    for (a, b) in sums[from * d..(from + 1) * d].iter_mut().zip(xi) {
                        *a -= f64::from(*b);
                    }
                }
                sums[c * d..(c + 1) * d]
                    .iter_mut()
                    .zip(xi)
                    .for_each(|(a, b)| *a = f64::from(*b));
                counts[c] = 1;
            }
        }
        let mut new = Array2::<f64>::zeros((k, d));
        for (c, mut row) in new.outer_iter_mut().enumerate() {
            if counts[c] > 0 {
                let s = &sums[c * d..(c + 1) * d];
                row.iter_mut()
                    .zip(s)
                    .for_each(|(a, b)| *a = b / counts[c] as f64);
            } else {
                // More empty clusters than samples: keep the old centre.
                row.assign(&centres.row(c));
            }
        }
        let shift: f64 = (&new - &centres).mapv(|v| v * v).sum();
        centres = new;
        if labels == old {
            strict = true;
            break;
        }
        if shift <= tol {
            break;
        }
        std::mem::swap(&mut labels, &mut old);
    }
    if !strict {
        // `old` may hold the last labels after the swap; recompute for the final centres.
        let _ = assign(x, x2, &centres, &mut labels, &mut mind);
    }
    let inertia = mind.iter().map(|&v| f64::from(v)).sum();
    Lloyd {
        labels,
        centres,
        n_iter,
        inertia,
    }
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

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Axis};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::Value;

    use super::{centred, kmeans_labels, lloyd, row_sq_norms};

    fn golden() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/sklearn_kmeans.json"))
            .expect("tests/fixtures/sklearn_kmeans.json (scripts/goldens/cxr-mixture/make_kmeans_goldens.py)")
    }

    fn matrix(v: &Value) -> Array2<f64> {
        let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("matrix");
        let (r, c) = (rows.len(), rows[0].len());
        Array2::from_shape_vec((r, c), rows.into_iter().flatten().collect()).expect("rectangular")
    }

    /// Same labels, iteration count, centres and inertia as scikit-learn's KMeans (Lloyd) from
    /// the same initial centres (f64 on their side, our f32 GEMMs on ours): convergence, a
    /// max_iter cut and empty-cluster relocation.
    #[test]
    fn lloyd_matches_sklearn_from_given_centres() {
        let g = golden();
        for case in g["cases"].as_array().expect("cases") {
            let name = case["name"].as_str().expect("name");
            let x = matrix(&case["x"]);
            let mean = x.mean_axis(Axis(0)).expect("rows");
            let xc = centred(x.view());
            let init = &matrix(&case["init"]) - &mean;
            let var_mean = x.var_axis(Axis(0), 0.0).mean().expect("columns");
            let tol = case["tol"].as_f64().expect("tol") * var_mean;
            let max_iter = case["max_iter"].as_u64().expect("max_iter") as usize;
            let r = lloyd(xc.view(), &row_sq_norms(xc.view()), init, max_iter, tol);
            let labels: Vec<usize> =
                serde_json::from_value(case["labels"].clone()).expect("labels");
            assert_eq!(r.labels, labels, "{name}: labels");
            assert_eq!(
                r.n_iter as u64,
                case["n_iter"].as_u64().expect("n_iter"),
                "{name}: n_iter"
            );
            let want = matrix(&case["centres"]);
            let got = &r.centres + &mean;
            let err = (&got - &want).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
            // The distance GEMMs run in f32 (centred data): centres agree to ~1e-7 relative.
            assert!(err < 1e-5, "{name}: centres differ by {err}");
            let inertia = case["inertia"].as_f64().expect("inertia");
            assert!(
                (r.inertia - inertia).abs() <= 1e-6 * inertia,
                "{name}: inertia {} vs scikit-learn {inertia}",
                r.inertia
            );
        }
    }

    /// Seeding and Lloyd give bit-identical results on 1 and 3 threads (partial sums are
    /// combined in a fixed order), on data spanning many row groups.
    #[test]
    fn kmeans_independent_of_thread_count() {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = Array2::from_shape_fn((3000, 16), |(i, _)| {
            (i % 7) as f64 + rng.gen_range(-2.0..2.0)
        });
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| {
                let xc = centred(x.view());
                let x2 = row_sq_norms(xc.view());
                let idx = super::kmeans_plus_plus_indices(
                    xc.view(),
                    &x2,
                    12,
                    &mut ChaCha8Rng::seed_from_u64(1),
                );
                let init = xc.select(Axis(0), &idx).mapv(f64::from);
                let r = lloyd(xc.view(), &x2, init, 300, 0.0);
                (idx, r.labels, r.centres, r.n_iter)
            })
        };
        let (a, b) = (run(1), run(3));
        assert!(a.3 > 1, "Lloyd ran {} iteration(s)", a.3);
        assert_eq!(a.0, b.0, "k-means++ picks");
        assert_eq!(a.1, b.1, "labels");
        assert_eq!(a.2, b.2, "centres (bitwise)");
    }

    /// Our k-means++ seeding + Lloyd reaches scikit-learn's inertia on well-separated blobs
    /// (different RNGs, same optimum), for several seeds.
    #[test]
    fn kmeans_reaches_sklearn_inertia_on_blobs() {
        let g = golden();
        let x = matrix(&g["seeded"]["x"]);
        let k = g["seeded"]["k"].as_u64().expect("k") as usize;
        let want = g["seeded"]["inertia"].as_f64().expect("inertia");
        for seed in 0..4 {
            let labels = kmeans_labels(x.view(), k, &mut ChaCha8Rng::seed_from_u64(seed));
            let mut inertia = 0.0;
            for c in 0..k {
                let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
                let pts = x.select(Axis(0), &idx);
                let m = pts.mean_axis(Axis(0)).expect("non-empty cluster");
                inertia += (&pts - &m).mapv(|v| v * v).sum();
            }
            assert!(
                (inertia - want).abs() <= 1e-12 * want,
                "seed {seed}: inertia {inertia} vs scikit-learn {want}"
            );
        }
    }
}
