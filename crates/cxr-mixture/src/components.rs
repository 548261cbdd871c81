//! Mixture components shared by the Gaussian and Student-t models: covariance storage,
//! Cholesky precision factors, the squared Mahalanobis kernel (the E-step's cost) and the
//! weighted M-step (the other cost), both parallel over samples with rayon.

use ndarray::{s, Array1, Array2, Array3, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MixtureError, Result};
use crate::linalg::{
    as_mat, chunk_range, gemm, n_chunks, precision_cholesky_into, slice_mat, slice_mat_mut,
    sq_dist, upper_tri_matmul, CHUNK,
};

/// Shape of each component's covariance (or Student-t scale) matrix. In configuration files:
/// `"full"`, `"diag"` or `"spherical"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CovarianceType {
    /// A full `D x D` matrix per component (`D (D + 1) / 2` parameters each).
    #[default]
    Full,
    /// A diagonal per component (`D` parameters each): the practical choice for `D = 512`.
    Diag,
    /// One variance per component.
    Spherical,
}

/// Fitted covariances (or Student-t scales), stored as scikit-learn does per type.
#[derive(Clone, Debug, PartialEq)]
pub enum Covariances {
    /// `K x D x D`.
    Full(Array3<f64>),
    /// `K x D` diagonals.
    Diag(Array2<f64>),
    /// `K` variances.
    Spherical(Array1<f64>),
}

impl Covariances {
    /// Which type these are.
    pub fn covariance_type(&self) -> CovarianceType {
        match self {
            Covariances::Full(_) => CovarianceType::Full,
            Covariances::Diag(_) => CovarianceType::Diag,
            Covariances::Spherical(_) => CovarianceType::Spherical,
        }
    }

    /// Number of components.
    pub fn n_components(&self) -> usize {
        match self {
            Covariances::Full(c) => c.len_of(Axis(0)),
            Covariances::Diag(c) => c.nrows(),
            Covariances::Spherical(c) => c.len(),
        }
    }

    /// Component `k` as a dense `D x D` matrix.
    pub fn dense(&self, k: usize, d: usize) -> Array2<f64> {
        match self {
            Covariances::Full(c) => c.index_axis(Axis(0), k).to_owned(),
            Covariances::Diag(c) => Array2::from_diag(&c.row(k)),
            Covariances::Spherical(c) => Array2::eye(d) * c[k],
        }
    }

    /// `K x D` diagonals (variances per feature) of every component.
    pub fn diagonals(&self, d: usize) -> Array2<f64> {
        match self {
            Covariances::Full(c) => {
                Array2::from_shape_fn((c.len_of(Axis(0)), d), |(k, i)| c[[k, i, i]])
            }
            Covariances::Diag(c) => c.clone(),
            Covariances::Spherical(c) => Array2::from_shape_fn((c.len(), d), |(k, _)| c[k]),
        }
    }
}

/// Cholesky factors of the precisions, in scikit-learn's convention (`P P^T = cov^{-1}`).
#[derive(Clone, Debug)]
pub(crate) enum PrecChol {
    Full(Array3<f64>),
    Diag(Array2<f64>),
    Spherical(Array1<f64>),
}

/// Weights, means and covariances with their precision factors: everything an E-step needs.
#[derive(Clone, Debug)]
pub(crate) struct Components {
    pub weights: Array1<f64>,
    pub means: Array2<f64>,
    pub covariances: Covariances,
    pub prec_chol: PrecChol,
    /// `log det P_k` = `-0.5 log det cov_k`.
    pub log_det: Array1<f64>,
}

/// Smallest responsibility mass (in samples) below which a component counts as empty and is
/// re-seeded: a millionth of one sample.
pub(crate) const MIN_MASS: f64 = 1e-6;

/// Rows whose weight for a component is below this add less than 1e-15 of one sample to its
/// full covariance and are skipped in that GEMM: exact to rounding, and on clustered data it
/// skips most rows.
const SKIP_WEIGHT: f64 = 1e-15;

impl Components {
    /// Factorise the covariances; fails with the component's index when one is not positive
    /// definite.
    pub fn new(weights: Array1<f64>, means: Array2<f64>, covariances: Covariances) -> Result<Self> {
        let d = means.ncols();
        let (prec_chol, log_det) = match &covariances {
            Covariances::Full(c) => {
                let k_n = c.len_of(Axis(0));
                let c = c.as_standard_layout();
                let cs = c.as_slice().expect("standard layout");
                let mut p = Array3::<f64>::zeros((k_n, d, d));
                let lds: Vec<Option<f64>> = p
                    .as_slice_mut()
                    .expect("fresh array")
                    .par_chunks_mut(d * d)
                    .enumerate()
                    .map(|(k, pk)| precision_cholesky_into(&cs[k * d * d..(k + 1) * d * d], d, pk))
                    .collect();
                let mut ld = Array1::<f64>::zeros(k_n);
                for (k, v) in lds.into_iter().enumerate() {
                    ld[k] = v.ok_or(MixtureError::NotPositiveDefinite { component: k })?;
                }
                (PrecChol::Full(p), ld)
            }
            Covariances::Diag(c) => {
                let mut p = Array2::<f64>::zeros(c.raw_dim());
                for ((k, j), &v) in c.indexed_iter() {
                    if !(v > 0.0 && v.is_finite()) {
                        return Err(MixtureError::NotPositiveDefinite { component: k });
                    }
                    p[[k, j]] = 1.0 / v.sqrt();
                }
                let ld = p.map_axis(Axis(1), |r| r.iter().map(|v| v.ln()).sum());
                (PrecChol::Diag(p), ld)
            }
            Covariances::Spherical(c) => {
                let mut p = Array1::<f64>::zeros(c.len());
                for (k, &v) in c.iter().enumerate() {
                    if !(v > 0.0 && v.is_finite()) {
                        return Err(MixtureError::NotPositiveDefinite { component: k });
                    }
                    p[k] = 1.0 / v.sqrt();
                }
                let ld = p.mapv(|v| d as f64 * v.ln());
                (PrecChol::Spherical(p), ld)
            }
        };
        Ok(Self {
            weights,
            means,
            covariances,
            prec_chol,
            log_det,
        })
    }

    /// Check user-given initial parameters for shape and sanity, then factorise.
    pub fn from_init(
        weights: &Array1<f64>,
        means: &Array2<f64>,
        covariances: &Covariances,
        k: usize,
        d: usize,
        cov_type: CovarianceType,
    ) -> Result<Self> {
        let bad = |m: String| Err(MixtureError::InvalidInit(m));
        if weights.len() != k {
            return bad(format!("{} weights for k = {k}", weights.len()));
        }
        if weights.iter().any(|&w| !(w >= 0.0 && w.is_finite())) {
            return bad("weights must be finite and non-negative".into());
        }
        let total = weights.sum();
        if (total - 1.0).abs() > 1e-6 {
            return bad(format!("weights sum to {total}, not 1"));
        }
        if means.dim() != (k, d) {
            return bad(format!("means are {:?}, expected ({k}, {d})", means.dim()));
        }
        if means.iter().any(|v| !v.is_finite()) {
            return bad("means must be finite".into());
        }
        if covariances.covariance_type() != cov_type {
            return bad(format!(
                "covariances are {:?} but covariance_type is {cov_type:?}",
                covariances.covariance_type()
            ));
        }
        let shape_ok = match covariances {
            Covariances::Full(c) => c.dim() == (k, d, d),
            Covariances::Diag(c) => c.dim() == (k, d),
            Covariances::Spherical(c) => c.len() == k,
        };
        if !shape_ok {
            return bad(format!(
                "covariances do not have the shape of {k} components in {d} dims"
            ));
        }
        Self::new(weights.clone(), means.clone(), covariances.clone())
            .map_err(|e| MixtureError::InvalidInit(e.to_string()))
    }

    pub fn n_components(&self) -> usize {
        self.means.nrows()
    }

    pub fn n_features(&self) -> usize {
        self.means.ncols()
    }

    /// Free parameters, as scikit-learn's `_n_parameters` (for BIC).
    pub fn n_parameters(&self) -> usize {
        let (k, d) = self.means.dim();
        let cov = match self.covariances.covariance_type() {
            CovarianceType::Full => k * d * (d + 1) / 2,
            CovarianceType::Diag => k * d,
            CovarianceType::Spherical => k,
        };
        cov + k * d + k - 1
    }

    /// Squared Mahalanobis distances `N x K`. `x` must be standard layout.
    pub fn sq_mahalanobis(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let (n, d) = x.dim();
        let k_n = self.n_components();
        let mut out = Array2::<f64>::zeros((n, k_n));
        let xs = x.as_slice().expect("standard layout");
        let out_s = out.as_slice_mut().expect("fresh array");
        match &self.prec_chol {
            PrecChol::Full(p) => {
                let mp = self.means_times_prec(p);
                self.full_partial_sq_into(xs, p, &mp, d, out_s);
            }
            PrecChol::Diag(p) => {
                // sum_d (x - mu)^2 prec = [x^2, x] @ [prec; -2 mu prec]^T + sum_d mu^2 prec.
                let prec = p.mapv(|v| v * v);
                let mut b = Array2::<f64>::zeros((2 * d, k_n));
                b.slice_mut(s![..d, ..]).assign(&prec.t());
                b.slice_mut(s![d.., ..])
                    .assign(&(&self.means * &prec * -2.0).t());
                let c0: Array1<f64> = (&self.means * &self.means * &prec).sum_axis(Axis(1));
                let b = b.as_standard_layout().to_owned();
                out_s.par_chunks_mut(CHUNK * k_n).enumerate().for_each_init(
                    Vec::new,
                    |z, (c, o)| {
                        let r = chunk_range(c, n);
                        let rows = r.len();
                        squares_and_values(&xs[r.start * d..r.end * d], rows, d, z);
                        gemm(
                            slice_mat_mut(o, rows, k_n),
                            slice_mat(z, rows, 2 * d),
                            as_mat(b.view()),
                            false,
                        );
                        for i in 0..rows {
                            for k in 0..k_n {
                                let v = &mut o[i * k_n + k];
                                *v = (*v + c0[k]).max(0.0);
                            }
                        }
                    },
                );
            }
            PrecChol::Spherical(p) => {
                // Euclidean distances scaled by each component's precision (> 0, so scaling
                // after the clamp at zero gives the same values).
                let sq = crate::init::sq_distances(x, &self.means);
                let prec = p.mapv(|v| v * v);
                out.assign(&(sq * &prec));
            }
        }
        out
    }

    /// `mu_k P_k` for every component, `K x D`, so that `(x - mu) P = x P - mu P`.
    pub(crate) fn means_times_prec(&self, p: &Array3<f64>) -> Array2<f64> {
        let d = self.n_features();
        let mut mp = Array2::<f64>::zeros(self.means.raw_dim());
        for (k, row) in mp
            .as_slice_mut()
            .expect("fresh array")
            .chunks_mut(d)
            .enumerate()
        {
            let mu = self.means.row(k).to_vec();
            gemm(
                slice_mat_mut(row, 1, d),
                slice_mat(&mu, 1, d),
                as_mat(p.index_axis(Axis(0), k)),
                false,
            );
        }
        mp
    }

    /// `out[i, k] = sum_{j < cols} y_j^2` with `y = (x_i - mu_k)^T P_k`, parallel over row
    /// chunks, one triangular GEMM per chunk and component. With `cols = D` this is the
    /// squared Mahalanobis distance; with fewer it is a lower bound on it (`P_k` is upper
    /// triangular, so the first `cols` coordinates need only the first `cols` features).
    pub(crate) fn full_partial_sq_into(
        &self,
        xs: &[f64],
        p: &Array3<f64>,
        mp: &Array2<f64>,
        cols: usize,
        out: &mut [f64],
    ) {
        let (k_n, d) = mp.dim();
        let n = xs.len() / d;
        let xm = slice_mat(xs, n, d);
        out.par_chunks_mut(CHUNK * k_n)
            .enumerate()
            .for_each(|(c, o)| {
                let r = chunk_range(c, n);
                let rows = r.len();
                let xc = xm.subrows(r.start, rows).subcols(0, cols);
                let mut y = vec![0.0; rows * cols];
                for k in 0..k_n {
                    let pk = as_mat(p.index_axis(Axis(0), k)).submatrix(0, 0, cols, cols);
                    upper_tri_matmul(slice_mat_mut(&mut y, rows, cols), xc, pk, false);
                    let mk = &mp.row(k).to_slice().expect("standard layout")[..cols];
                    for i in 0..rows {
                        o[i * k_n + k] = sq_dist(&y[i * cols..(i + 1) * cols], mk);
                    }
                }
            });
    }
}

/// `[x^2 | x]` per row, `rows x 2D`, into `z` (a buffer reused across chunks), for the
/// diagonal kernels' single GEMM.
fn squares_and_values(xc: &[f64], rows: usize, d: usize, z: &mut Vec<f64>) {
    z.resize(rows * 2 * d, 0.0);
    for i in 0..rows {
        let xi = &xc[i * d..(i + 1) * d];
        let (a, b) = z[i * 2 * d..(i + 1) * 2 * d].split_at_mut(d);
        for j in 0..d {
            a[j] = xi[j] * xi[j];
            b[j] = xi[j];
        }
    }
}

/// What a covariance M-step divides the weighted scatter by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Divisor {
    /// `sum_n w_nk` (Gaussian EM; Student-t as the `studenttmixture` package does it).
    WeightSum,
    /// `sum_n r_nk` (McLachlan and Peel's Student-t M-step).
    RespSum,
}

/// The M-step's result before the weights are normalised.
pub(crate) struct MStep {
    /// `sum_n r_nk + 10 eps`, with re-seeded components set to one sample.
    pub mass: Array1<f64>,
    pub means: Array2<f64>,
    pub covariances: Covariances,
}

/// Most partial sums the M-step's sufficient statistics are reduced from: bounds the scratch
/// memory (`MAX_PARTIALS x K x 2D` doubles) and fixes the reduction order independently of
/// the number of rayon threads.
const MAX_PARTIALS: usize = 64;

/// Weighted means and covariances from responsibilities `resp` (and, for Student-t, the
/// latent scale weights `u`, so that `w = resp * u`). Empty components are re-seeded at the
/// worst-explained samples (lowest `scores`) with the mass-weighted average covariance.
pub(crate) fn m_step(
    x: ArrayView2<'_, f64>,
    resp: &Array2<f64>,
    u: Option<&Array2<f64>>,
    cov_type: CovarianceType,
    reg_covar: f64,
    divisor: Divisor,
    scores: &[f64],
) -> MStep {
    let (n, d) = x.dim();
    let k_n = resp.ncols();
    let eps10 = 10.0 * f64::EPSILON;
    let w_owned;
    let w: &Array2<f64> = match u {
        Some(u) => {
            w_owned = resp * u;
            &w_owned
        }
        None => resp,
    };
    let mass_raw = resp.sum_axis(Axis(0));
    let wsum = w.sum_axis(Axis(0)) + eps10;
    let div = match divisor {
        Divisor::WeightSum => wsum.clone(),
        Divisor::RespSum => &mass_raw + eps10,
    };
    let want_sq = cov_type != CovarianceType::Full;
    // W^T [X | X^2], reduced over row chunks in parallel.
    let width = if want_sq { 2 * d } else { d };
    let xs = x.as_slice().expect("standard layout");
    let ws = w.as_slice().expect("standard layout");
    // Deterministic reduction: the row chunks are split into at most `MAX_PARTIALS` fixed
    // groups of consecutive chunks (a function of `n` only); each group is summed
    // sequentially in chunk order by one rayon job, and the group sums are then added in group
    // order. Neither the thread count nor work stealing changes the order of any addition,
    // so the M-step is bit-identical across runs and thread counts.
    let chunks = n_chunks(n);
    let per_group = chunks.div_ceil(MAX_PARTIALS).max(1);
    let partials: Vec<Vec<f64>> = (0..chunks.div_ceil(per_group))
        .into_par_iter()
        .map(|g| {
            let mut acc = vec![0.0; k_n * width];
            let mut z = Vec::new();
            for c in g * per_group..((g + 1) * per_group).min(chunks) {
                let r = chunk_range(c, n);
                let rows = r.len();
                let wc = slice_mat(&ws[r.start * k_n..r.end * k_n], rows, k_n);
                let xc = &xs[r.start * d..r.end * d];
                let rhs = if want_sq {
                    z.resize(rows * 2 * d, 0.0);
                    for i in 0..rows {
                        for j in 0..d {
                            let v = xc[i * d + j];
                            z[i * 2 * d + j] = v;
                            z[i * 2 * d + d + j] = v * v;
                        }
                    }
                    slice_mat(&z, rows, width)
                } else {
                    slice_mat(xc, rows, d)
                };
                gemm(
                    slice_mat_mut(&mut acc, k_n, width),
                    wc.transpose(),
                    rhs,
                    true,
                );
            }
            acc
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut stats = parts.next().unwrap_or_else(|| vec![0.0; k_n * width]);
    for p in parts {
        stats.iter_mut().zip(p).for_each(|(x, y)| *x += y);
    }
    let stats = Array2::from_shape_vec((k_n, width), stats).expect("sized above");
    let wx = stats.slice(s![.., ..d]);
    let mut means = Array2::<f64>::zeros((k_n, d));
    for k in 0..k_n {
        means.row_mut(k).assign(&(&wx.row(k) / wsum[k]));
    }
    let mut covariances = match cov_type {
        CovarianceType::Full => {
            let mut c = Array3::<f64>::zeros((k_n, d, d));
            c.as_slice_mut()
                .expect("fresh array")
                .par_chunks_mut(d * d)
                .enumerate()
                .for_each(|(k, ck)| {
                    full_scatter(x, w.column(k), means.row(k), ck);
                    for i in 0..d {
                        for v in &mut ck[i * d..=i * d + i] {
                            *v /= div[k];
                        }
                        ck[i * d + i] += reg_covar;
                    }
                    mirror_lower(ck, d);
                });
            Covariances::Full(c)
        }
        CovarianceType::Diag | CovarianceType::Spherical => {
            let wx2 = stats.slice(s![.., d..]);
            let mut c = Array2::<f64>::zeros((k_n, d));
            for k in 0..k_n {
                for j in 0..d {
                    let mu = means[[k, j]];
                    c[[k, j]] = (wx2[[k, j]] - 2.0 * mu * wx[[k, j]] + mu * mu * wsum[k]) / div[k]
                        + reg_covar;
                }
            }
            if cov_type == CovarianceType::Diag {
                Covariances::Diag(c)
            } else {
                Covariances::Spherical(c.mean_axis(Axis(1)).expect("d >= 1"))
            }
        }
    };
    let mut mass = &mass_raw + eps10;
    let reseeded = reseed_empty(x, &mass_raw, &mut means, &mut covariances, scores);
    for &k in &reseeded {
        mass[k] = 1.0;
    }
    MStep {
        mass,
        means,
        covariances,
    }
}

/// The lower triangle of `sum_n w_n (x_n - mu)(x_n - mu)^T` into `acc` (`D x D`, row-major,
/// zeroed), skipping rows whose weight cannot matter.
fn full_scatter(
    x: ArrayView2<'_, f64>,
    w: ArrayView1<'_, f64>,
    mu: ArrayView1<'_, f64>,
    acc: &mut [f64],
) {
    let (n, d) = x.dim();
    let idx: Vec<usize> = (0..n).filter(|&i| w[i] > SKIP_WEIGHT).collect();
    let xs = x.as_slice().expect("standard layout");
    let mu = mu.to_vec();
    let rows_max = CHUNK.min(idx.len());
    let mut diff = vec![0.0; rows_max * d];
    let mut wdiff = vec![0.0; rows_max * d];
    for block in idx.chunks(CHUNK) {
        let rows = block.len();
        for (i, &row) in block.iter().enumerate() {
            let xi = &xs[row * d..(row + 1) * d];
            let wi = w[row];
            for j in 0..d {
                let v = xi[j] - mu[j];
                diff[i * d + j] = v;
                wdiff[i * d + j] = v * wi;
            }
        }
        let a = slice_mat(&diff[..rows * d], rows, d).transpose();
        let b = slice_mat(&wdiff[..rows * d], rows, d);
        // The lower triangle by row blocks of plain GEMMs (faer's triangular matmul is slow
        // for the few-row updates of peaked responsibilities); the few upper entries of each
        // diagonal block are overwritten by `mirror_lower` later.
        let mut acc_m = slice_mat_mut(acc, d, d);
        for i0 in (0..d).step_by(SCATTER_BLOCK) {
            let h = SCATTER_BLOCK.min(d - i0);
            gemm(
                acc_m.as_mut().submatrix_mut(i0, 0, h, i0 + h),
                a.subrows(i0, h),
                b.subcols(0, i0 + h),
                true,
            );
        }
    }
}

/// Row block of the full-covariance scatter's GEMMs.
const SCATTER_BLOCK: usize = 64;

/// Copy the lower triangle of a row-major `D x D` matrix onto its upper triangle, in tiles
/// (a plain column-order copy misses the cache on every write at `D = 512`).
fn mirror_lower(a: &mut [f64], d: usize) {
    const TILE: usize = 32;
    for bi in (0..d).step_by(TILE) {
        for bj in (0..=bi).step_by(TILE) {
            for i in bi..(bi + TILE).min(d) {
                for j in bj..(bj + TILE).min(i) {
                    a[j * d + i] = a[i * d + j];
                }
            }
        }
    }
}

/// Re-seed components whose responsibility mass is below [`MIN_MASS`]: each takes a distinct
/// worst-explained sample as its mean and the mass-weighted average covariance of the others.
fn reseed_empty(
    x: ArrayView2<'_, f64>,
    mass: &Array1<f64>,
    means: &mut Array2<f64>,
    covariances: &mut Covariances,
    scores: &[f64],
) -> Vec<usize> {
    let empty: Vec<usize> = (0..mass.len()).filter(|&k| mass[k] < MIN_MASS).collect();
    if empty.is_empty() {
        return empty;
    }
    let live: Vec<usize> = (0..mass.len()).filter(|&k| mass[k] >= MIN_MASS).collect();
    let total: f64 = live.iter().map(|&k| mass[k]).sum();
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    for (slot, &k) in empty.iter().enumerate() {
        let row = order[slot % order.len()];
        tracing::warn!(
            component = k,
            sample = row,
            "empty mixture component re-seeded at the worst-explained sample"
        );
        means.row_mut(k).assign(&x.row(row));
        match covariances {
            Covariances::Full(c) => {
                let mut avg = Array2::<f64>::zeros((x.ncols(), x.ncols()));
                for &j in &live {
                    avg.scaled_add(mass[j] / total, &c.index_axis(Axis(0), j));
                }
                c.index_axis_mut(Axis(0), k).assign(&avg);
            }
            Covariances::Diag(c) => {
                let mut avg = Array1::<f64>::zeros(x.ncols());
                for &j in &live {
                    avg.scaled_add(mass[j] / total, &c.row(j));
                }
                c.row_mut(k).assign(&avg);
            }
            Covariances::Spherical(c) => {
                let avg: f64 = live.iter().map(|&j| mass[j] / total * c[j]).sum();
                c[k] = avg;
            }
        }
    }
    empty
}
