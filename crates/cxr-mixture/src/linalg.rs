//! Dense kernels on top of faer: GEMM on row-major slices, Cholesky-based precision factors,
//! log-sum-exp, and the row-chunking that makes every sample-wise loop parallel.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use ndarray::ArrayView2;

/// Rows per parallel task: big enough for GEMM efficiency, small enough to keep the
/// per-task scratch (`CHUNK x D` doubles) in cache-friendly territory and all cores busy.
pub(crate) const CHUNK: usize = 256;

/// Number of row chunks for `n` rows.
pub(crate) fn n_chunks(n: usize) -> usize {
    n.div_ceil(CHUNK)
}

/// Row range of chunk `c`.
pub(crate) fn chunk_range(c: usize, n: usize) -> std::ops::Range<usize> {
    let start = c * CHUNK;
    start..(start + CHUNK).min(n)
}

/// View a standard-layout ndarray as a faer matrix (no copy).
pub(crate) fn as_mat<'a>(a: ArrayView2<'a, f64>) -> MatRef<'a, f64> {
    let (r, c) = a.dim();
    let s = a.to_slice().expect("caller passes standard-layout arrays");
    MatRef::from_row_major_slice(s, r, c)
}

/// View a row-major slice as a faer matrix.
pub(crate) fn slice_mat(s: &[f64], r: usize, c: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(s, r, c)
}

/// View a mutable row-major slice as a faer matrix.
pub(crate) fn slice_mat_mut(s: &mut [f64], r: usize, c: usize) -> MatMut<'_, f64> {
    MatMut::from_row_major_slice_mut(s, r, c)
}

/// `dst = a @ b` (or `dst += a @ b` when `accumulate`), single-threaded: callers parallelise
/// over row chunks or components themselves, so nested thread pools never fight.
pub(crate) fn gemm(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>, accumulate: bool) {
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    matmul(dst, beta, a, b, 1.0, Par::Seq);
}

/// `dst = a @ u` (or `dst += a @ u` when `accumulate`) with `u` upper triangular: half the
/// flops of [`gemm`]. Single-threaded, like [`gemm`].
pub(crate) fn upper_tri_matmul(
    dst: MatMut<'_, f64>,
    a: MatRef<'_, f64>,
    u: MatRef<'_, f64>,
    accumulate: bool,
) {
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    tri_matmul(
        dst,
        BlockStructure::Rectangular,
        beta,
        a,
        BlockStructure::Rectangular,
        u,
        BlockStructure::TriangularUpper,
        1.0,
        Par::Seq,
    );
}

/// `sum_j (y_j - m_j)^2`.
pub(crate) fn sq_dist(y: &[f64], m: &[f64]) -> f64 {
    y.iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// Upper-triangular `P` with `P P^T = cov^{-1}` (scikit-learn's `precisions_cholesky_`):
/// `cov = L L^T`, `P = L^{-T}`, written row-major into `p` (`D x D`, zeroed); returns
/// `log det P`, or `None` when `cov` (row-major `D x D`, symmetric) is not numerically
/// positive definite.
pub(crate) fn precision_cholesky_into(cov: &[f64], d: usize, p: &mut [f64]) -> Option<f64> {
    let m = MatRef::from_row_major_slice(cov, d, d).to_owned();
    let llt = m.llt(Side::Lower).ok()?;
    let mut linv = Mat::<f64>::zeros(d, d);
    invert_lower_triangular(linv.as_mut(), llt.L(), Par::Seq);
    // Row i of P = L^{-T} is column i of L^{-1}, from its diagonal down.
    for i in 0..d {
        let col = linv.col(i);
        let row = &mut p[i * d..(i + 1) * d];
        for j in i..d {
            row[j] = col[j];
        }
    }
    let mut log_det = 0.0;
    for i in 0..d {
        let v = p[i * d + i];
        if !v.is_finite() {
            return None;
        }
        log_det += v.ln();
    }
    p.iter().all(|v| v.is_finite()).then_some(log_det)
}

/// `log(sum(exp(row)))`, stable for rows of very negative values; `-inf` for an all `-inf` row.
pub(crate) fn logsumexp(row: &[f64]) -> f64 {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + row.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}
