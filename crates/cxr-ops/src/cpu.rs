//! CPU kernels over contiguous rows of f32 / f64 slices.
//!
//! Work is split into chunks of whole rows (about [`CHUNK_ELEMS`] elements each, at least one
//! row) that rayon runs in parallel; the chunking depends only on the shape, never on the
//! thread count, so every result (the LayerNorm parameter gradients' partial sums included) is
//! bit-identical whatever the number of threads. Loops run over plain slices zipped together
//! (`chunks_exact`, no indexing) so LLVM drops the bounds checks and vectorises them;
//! reductions keep [`LANES`] independent partial sums, which is what lets a floating-point sum
//! vectorise (a single accumulator forces the sequential order).

use std::ops::{Add, Div, Mul, Neg, Sub};

use candle_core::WithDType;
use rayon::prelude::*;

/// Elements per parallel work item: big enough that rayon's overhead is noise, small enough
/// that a [1600, 768] LayerNorm still splits into ~75 items for the threads to share.
const CHUNK_ELEMS: usize = 16 * 1024;
/// Independent accumulators of a reduction (one AVX-512 register of f32).
const LANES: usize = 16;

/// The float types with a kernel: f32 (the fast path) and f64.
pub(crate) trait Real:
    WithDType
    + Copy
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + PartialOrd
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn erf(self) -> Self;
    fn max_nan(self, other: Self) -> Self;
    fn cst(v: f64) -> Self {
        <Self as WithDType>::from_f64(v)
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f32(self)
    }
    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        // Not `f32::max`: that one skips NaN, and a NaN must reach the output as it does
        // through candle's `max_keepdim`.
        if self >= other || self.is_nan() {
            self
        } else {
            other
        }
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        if self >= other || self.is_nan() {
            self
        } else {
            other
        }
    }
}

/// Rows per parallel work item for rows of `dim` elements.
fn rows_per_chunk(dim: usize) -> usize {
    (CHUNK_ELEMS / dim.max(1)).max(1)
}

/// `sum(f(a_i))` with [`LANES`] partial sums.
#[inline(always)]
fn sum_map<T: Real>(a: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut it = a.chunks_exact(LANES);
    for c in &mut it {
        for (s, &v) in acc.iter_mut().zip(c) {
            *s += f(v);
        }
    }
    let mut total = T::ZERO;
    for &v in it.remainder() {
        total += f(v);
    }
    acc.iter().fold(total, |t, &s| t + s)
}

/// `sum(f(a_i, b_i))` with [`LANES`] partial sums.
#[inline(always)]
fn sum_map2<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut ia = a.chunks_exact(LANES);
    let mut ib = b.chunks_exact(LANES);
    for (ca, cb) in (&mut ia).zip(&mut ib) {
        for ((s, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += f(x, y);
        }
    }
    let mut total = T::ZERO;
    for (&x, &y) in ia.remainder().iter().zip(ib.remainder()) {
        total += f(x, y);
    }
    acc.iter().fold(total, |t, &s| t + s)
}

/// The row maximum with [`LANES`] partial maxima (NaN-propagating).
#[inline(always)]
fn row_max<T: Real>(a: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let mut it = a.chunks_exact(LANES);
    for c in &mut it {
        for (m, &v) in acc.iter_mut().zip(c) {
            *m = m.max_nan(v);
        }
    }
    let mut total = T::NEG_INFINITY;
    for &v in it.remainder() {
        total = total.max_nan(v);
    }
    acc.iter().fold(total, |t, &m| t.max_nan(m))
}

/// Runs `row(out_row, in_rows...)` over every row of `dim` elements, in parallel chunks.
fn map_rows<T: Real>(x: &[T], dim: usize, row: impl Fn(&mut [T], &[T]) + Sync) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    if dim == 0 {
        return out;
    }
    let chunk = rows_per_chunk(dim) * dim;
    out.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(o, x)| {
            for (o, x) in o.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                row(o, x);
            }
        });
    out
}

/// Like [`map_rows`] with a second input of the same shape.
fn map_rows2<T: Real>(
    a: &[T],
    b: &[T],
    dim: usize,
    row: impl Fn(&mut [T], &[T], &[T]) + Sync,
) -> Vec<T> {
    let mut out = vec![T::ZERO; a.len()];
    if dim == 0 {
        return out;
    }
    let chunk = rows_per_chunk(dim) * dim;
    out.par_chunks_mut(chunk)
        .zip(a.par_chunks(chunk))
        .zip(b.par_chunks(chunk))
        .for_each(|((o, a), b)| {
            for ((o, a), b) in o
                .chunks_exact_mut(dim)
                .zip(a.chunks_exact(dim))
                .zip(b.chunks_exact(dim))
            {
                row(o, a, b);
            }
        });
    out
}

/// Element-wise `f(x)` in parallel chunks.
fn map<T: Real>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    out.par_chunks_mut(CHUNK_ELEMS)
        .zip(x.par_chunks(CHUNK_ELEMS))
        .for_each(|(o, x)| {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = f(x);
            }
        });
    out
}

/// Element-wise `f(x, g)` in parallel chunks.
fn map2<T: Real>(x: &[T], g: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    out.par_chunks_mut(CHUNK_ELEMS)
        .zip(x.par_chunks(CHUNK_ELEMS))
        .zip(g.par_chunks(CHUNK_ELEMS))
        .for_each(|((o, x), g)| {
            for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
                *o = f(x, g);
            }
        });
    out
}

/// Softmax of each row: `exp(x - max) / sum`.
pub(crate) fn softmax<T: Real>(x: &[T], dim: usize) -> Vec<T> {
    map_rows(x, dim, |o, x| {
        let max = row_max(x);
        for (o, &x) in o.iter_mut().zip(x) {
            *o = (x - max).exp();
        }
        let inv = T::ONE / sum_map(o, |v| v);
        for o in o.iter_mut() {
            *o *= inv;
        }
    })
}

/// Softmax's backward from its result `y`: `dx = y * (g - sum(g * y))`.
pub(crate) fn softmax_bwd<T: Real>(y: &[T], g: &[T], dim: usize) -> Vec<T> {
    map_rows2(y, g, dim, |o, y, g| {
        let dot = sum_map2(g, y, |g, y| g * y);
        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
            *o = y * (g - dot);
        }
    })
}

/// Log-softmax of each row: `(x - max) - ln(sum(exp(x - max)))`.
pub(crate) fn log_softmax<T: Real>(x: &[T], dim: usize) -> Vec<T> {
    map_rows(x, dim, |o, x| {
        let max = row_max(x);
        let log_sum = sum_map(x, |v| (v - max).exp()).ln();
        for (o, &x) in o.iter_mut().zip(x) {
            *o = (x - max) - log_sum;
        }
    })
}

/// Log-softmax's backward from its result `y`: `dx = g - exp(y) * sum(g)`.
pub(crate) fn log_softmax_bwd<T: Real>(y: &[T], g: &[T], dim: usize) -> Vec<T> {
    map_rows2(y, g, dim, |o, y, g| {
        let total = sum_map(g, |g| g);
        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
            *o = g - y.exp() * total;
        }
    })
}

/// Mean and `1 / sqrt(var + eps)` of one row (biased variance, two passes).
#[inline(always)]
fn moments<T: Real>(x: &[T], eps: T) -> (T, T) {
    let n = T::cst(x.len() as f64);
    let mean = sum_map(x, |v| v) / n;
    let var = sum_map(x, |v| (v - mean) * (v - mean)) / n;
    (mean, T::ONE / (var + eps).sqrt())
}

/// LayerNorm of each row: `(x - mean) * rstd * w + b`.
pub(crate) fn layer_norm<T: Real>(x: &[T], w: &[T], b: &[T], eps: f64) -> Vec<T> {
    let eps = T::cst(eps);
    map_rows(x, w.len(), |o, x| {
        let (mean, rstd) = moments(x, eps);
        for (((o, &x), &w), &b) in o.iter_mut().zip(x).zip(w).zip(b) {
            *o = (x - mean) * rstd * w + b;
        }
    })
}

/// LayerNorm's backward, packed as one `[rows + 2, dim]` buffer: `dx` in the first `rows`
/// rows, then `dweight`, then `dbias`.
///
/// Per row, with `xh = (x - mean) * rstd` and `gw = g * w`:
/// `dx = rstd * (gw - mean(gw) - xh * mean(gw * xh))`; `dweight = sum_rows(g * xh)`,
/// `dbias = sum_rows(g)`. The mean and rstd are recomputed from `x` (one extra read of the
/// row, cheap next to the pass that writes `dx`) rather than saved by the forward: a
/// `CustomOp` returns a single tensor, and saving them would keep two more tensors per
/// LayerNorm alive until the backward for every layer of the model.
/// The parameter gradients are summed per work item, then the items' sums in order.
pub(crate) fn layer_norm_bwd<T: Real>(x: &[T], w: &[T], g: &[T], eps: f64) -> Vec<T> {
    let dim = w.len();
    let eps = T::cst(eps);
    let mut out = vec![T::ZERO; x.len() + 2 * dim];
    if dim == 0 {
        return out;
    }
    let n = T::cst(dim as f64);
    let chunk = rows_per_chunk(dim) * dim;
    let (dx, params) = out.split_at_mut(x.len());
    let partials: Vec<Vec<T>> = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .zip(g.par_chunks(chunk))
        .map(|((dx, x), g)| {
            let mut acc = vec![T::ZERO; 2 * dim];
            let (dw, db) = acc.split_at_mut(dim);
            for ((dx, x), g) in dx
                .chunks_exact_mut(dim)
                .zip(x.chunks_exact(dim))
                .zip(g.chunks_exact(dim))
            {
                let (mean, rstd) = moments(x, eps);
                let mut sg = [T::ZERO; LANES];
                let mut sgx = [T::ZERO; LANES];
                let mut ix = x.chunks_exact(LANES);
                let mut ig = g.chunks_exact(LANES);
                let mut iw = w.chunks_exact(LANES);
                for ((cx, cg), cw) in (&mut ix).zip(&mut ig).zip(&mut iw) {
                    for ((((a, b), &x), &g), &w) in
                        sg.iter_mut().zip(sgx.iter_mut()).zip(cx).zip(cg).zip(cw)
                    {
                        let gw = g * w;
                        *a += gw;
                        *b += gw * ((x - mean) * rstd);
                    }
                }
                let (mut tg, mut tgx) = (T::ZERO, T::ZERO);
                for ((&x, &g), &w) in ix
                    .remainder()
                    .iter()
                    .zip(ig.remainder())
                    .zip(iw.remainder())
                {
                    let gw = g * w;
                    tg += gw;
                    tgx += gw * ((x - mean) * rstd);
                }
                let mean_gw = sg.iter().fold(tg, |t, &s| t + s) / n;
                let mean_gwx = sgx.iter().fold(tgx, |t, &s| t + s) / n;
                for (((((dx, &x), &g), &w), dw), db) in dx
                    .iter_mut()
                    .zip(x)
                    .zip(g)
                    .zip(w)
                    .zip(dw.iter_mut())
                    .zip(db.iter_mut())
                {
                    let xh = (x - mean) * rstd;
                    *dx = rstd * (g * w - mean_gw - xh * mean_gwx);
                    *dw += g * xh;
                    *db += g;
                }
            }
            acc
        })
        .collect();
    for p in &partials {
        for (o, &v) in params.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

/// `x * sigmoid(1.702 x)`.
pub(crate) fn quick_gelu<T: Real>(x: &[T]) -> Vec<T> {
    let k = T::cst(1.702);
    map(x, |x| x / (T::ONE + (-(k * x)).exp()))
}

/// `g * d/dx [x * s]` with `s = sigmoid(1.702 x)`: `g * (s + 1.702 x s (1 - s))`.
pub(crate) fn quick_gelu_bwd<T: Real>(x: &[T], g: &[T]) -> Vec<T> {
    let k = T::cst(1.702);
    map2(x, g, |x, g| {
        let s = T::ONE / (T::ONE + (-(k * x)).exp());
        g * (s + k * x * s * (T::ONE - s))
    })
}

/// `0.5 x (1 + erf(x / sqrt(2)))`.
pub(crate) fn gelu_erf<T: Real>(x: &[T]) -> Vec<T> {
    let r = T::cst(std::f64::consts::FRAC_1_SQRT_2);
    let half = T::cst(0.5);
    map(x, |x| ((x * r).erf() + T::ONE) * half * x)
}

/// `g * (Phi(x) + x phi(x))`: `Phi(x) = 0.5 (1 + erf(x / sqrt(2)))`,
/// `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`.
pub(crate) fn gelu_erf_bwd<T: Real>(x: &[T], g: &[T]) -> Vec<T> {
    let r = T::cst(std::f64::consts::FRAC_1_SQRT_2);
    let half = T::cst(0.5);
    let inv_sqrt_2pi =
        T::cst(0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2);
    map2(x, g, |x, g| {
        let cdf = ((x * r).erf() + T::ONE) * half;
        let pdf = (-(half * x * x)).exp() * inv_sqrt_2pi;
        g * (cdf + x * pdf)
    })
}

/// `x + bias` with `bias` repeated over the rows of `x` (rows of `bias.len()` elements).
pub(crate) fn add_rows<T: Real>(x: &[T], bias: &[T]) -> Vec<T> {
    map_rows(x, bias.len(), |o, x| {
        for ((o, &x), &b) in o.iter_mut().zip(x).zip(bias) {
            *o = x + b;
        }
    })
}
