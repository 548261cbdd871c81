//! Fused CPU kernels, applied in place to a parameter through candle's [`InplaceOp2`] (the
//! parameter is the mutable destination, the gradient the source; the optimiser state lives in
//! host buffers owned by the optimiser and is borrowed by the op for the call).
//!
//! Each kernel makes one pass over parameter, gradient and state, split in chunks of
//! [`CHUNK`] elements that rayon spreads over the cores. The arithmetic follows the order of
//! the reference implementations so results agree to the last bit or two.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel work item: big enough to amortise scheduling, small enough that
/// ViT-B/32's small tensors (biases, norms) still run as one serial chunk.
pub(crate) const CHUNK: usize = 1 << 15;

/// The float types the fused kernels support.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn from_f64(x: f64) -> Self;
    fn sqrt(self) -> Self;
}

impl Real for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// Optimiser state for one parameter, stored in the parameter's dtype.
#[derive(Debug, Clone)]
pub(crate) enum HostBuf {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl HostBuf {
    /// Zeros for a parameter of `dtype`, or `None` when the dtype has no fused kernel.
    pub(crate) fn zeros(dtype: DType, len: usize) -> Option<Self> {
        match dtype {
            DType::F32 => Some(Self::F32(vec![0.0; len])),
            DType::F64 => Some(Self::F64(vec![0.0; len])),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    pub(crate) fn to_tensor(&self, shape: &Shape) -> candle_core::Result<Tensor> {
        let dev = candle_core::Device::Cpu;
        match self {
            Self::F32(v) => Tensor::from_slice(v, shape, &dev),
            Self::F64(v) => Tensor::from_slice(v, shape, &dev),
        }
    }

    /// Overwrites the buffer with `t` (any dtype/device, same element count).
    pub(crate) fn load(&mut self, t: &Tensor) -> candle_core::Result<()> {
        let flat = t.flatten_all()?;
        match self {
            Self::F32(v) => *v = flat.to_dtype(DType::F32)?.to_vec1()?,
            Self::F64(v) => *v = flat.to_dtype(DType::F64)?.to_vec1()?,
        }
        Ok(())
    }
}

pub(crate) fn contiguous(l: &Layout, what: &str) -> candle_core::Result<(usize, usize)> {
    l.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "fused optimiser: {what} is not contiguous; call .contiguous() on it first"
        ))
    })
}

/// The parameter's and gradient's element ranges for an AdamW step whose moments hold
/// `m_len` and `v_len` elements: both operands contiguous, all four of one length. Shared by
/// the CPU and CUDA ops.
pub(crate) fn adamw_ranges(
    param: &Layout,
    grad: &Layout,
    m_len: usize,
    v_len: usize,
) -> candle_core::Result<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (p0, p1) = contiguous(param, "parameter")?;
    let (g0, g1) = contiguous(grad, "gradient")?;
    let n = p1 - p0;
    if g1 - g0 != n || m_len != n || v_len != n {
        candle_core::bail!("fused AdamW: parameter, gradient and moments differ in length");
    }
    Ok((p0..p1, g0..g1))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> candle_core::Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| candle_core::Error::Msg("fused optimiser: state lock poisoned".into()))
}

/// Runs `f` over equal chunks of four slices, in parallel when there is more than one chunk.
fn for_chunks<T: Real>(
    p: &mut [T],
    g: &[T],
    a: &mut [T],
    b: &mut [T],
    f: impl Fn(&mut [T], &[T], &mut [T], &mut [T]) + Sync,
) {
    if p.len() <= CHUNK {
        f(p, g, a, b);
    } else {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(a.par_chunks_mut(CHUNK))
            .zip(b.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), a), b)| f(p, g, a, b));
    }
}

/// AdamW constants for one step, precomputed in f64 and cast once to the parameter type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamWStep {
    pub beta1: f64,
    pub beta2: f64,
    /// `1 / (1 - beta1^t)`.
    pub scale_m: f64,
    /// `1 / (1 - beta2^t)`.
    pub scale_v: f64,
    /// `1 - lr * weight_decay` (1 when the parameter is not decayed).
    pub decay: f64,
    pub lr: f64,
    pub eps: f64,
}

/// The AdamW update in candle_nn's order of operations:
/// `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;`
/// `p = p (1 - lr wd) - lr (m s_m) / (sqrt(v s_v) + eps)`.
fn adamw_kernel<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], h: &AdamWStep) {
    let (b1, b2) = (T::from_f64(h.beta1), T::from_f64(h.beta2));
    let (c1, c2) = (T::from_f64(1.0 - h.beta1), T::from_f64(1.0 - h.beta2));
    let (sm, sv) = (T::from_f64(h.scale_m), T::from_f64(h.scale_v));
    let (decay, lr, eps) = (T::from_f64(h.decay), T::from_f64(h.lr), T::from_f64(h.eps));
    let f = |p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]| {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let mi = *m * b1 + g * c1;
            let vi = *v * b2 + (g * g) * c2;
            *m = mi;
            *v = vi;
            let step = (mi * sm) / ((vi * sv).sqrt() + eps);
            *p = *p * decay - step * lr;
        }
    };
    for_chunks(p, g, m, v, f);
}

/// In-place AdamW on one parameter.
pub(crate) struct AdamWOp<'a> {
    pub h: AdamWStep,
    pub m: Mutex<&'a mut HostBuf>,
    pub v: Mutex<&'a mut HostBuf>,
}

impl InplaceOp2 for AdamWOp<'_> {
    fn name(&self) -> &'static str {
        "cxr-fused-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let mut m = lock(&self.m)?;
        let mut v = lock(&self.v)?;
        let (pr, gr) = adamw_ranges(l1, l2, m.len(), v.len())?;
        match (s1, s2, &mut **m, &mut **v) {
            (CpuStorage::F32(p), CpuStorage::F32(g), HostBuf::F32(m), HostBuf::F32(v)) => {
                adamw_kernel(&mut p[pr], &g[gr], m, v, &self.h)
            }
            (CpuStorage::F64(p), CpuStorage::F64(g), HostBuf::F64(m), HostBuf::F64(v)) => {
                adamw_kernel(&mut p[pr], &g[gr], m, v, &self.h)
            }
            (p, g, _, _) => candle_core::bail!(
                "fused AdamW: unsupported dtypes param {:?} / grad {:?}",
                p.dtype(),
                g.dtype()
            ),
        }
        Ok(())
    }
}

/// SGD constants for one step (torch's `SGD` with dampening 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgdStep {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// torch's order: `d = g + wd p; buf = mu buf + d; d = nesterov ? d + mu buf : buf;
/// p = p - lr d`. The zero-initialised buffer makes the first step `buf = d`, as torch's.
fn sgd_kernel<T: Real>(p: &mut [T], g: &[T], buf: &mut [T], h: &SgdStep) {
    let (lr, mu, wd) = (
        T::from_f64(h.lr),
        T::from_f64(h.momentum),
        T::from_f64(h.weight_decay),
    );
    let use_wd = h.weight_decay != 0.0;
    let nesterov = h.nesterov;
    if h.momentum == 0.0 {
        for (p, &g) in p.iter_mut().zip(g) {
            let d = if use_wd { g + *p * wd } else { g };
            *p = *p - d * lr;
        }
        return;
    }
    for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
        let d = if use_wd { g + *p * wd } else { g };
        let nb = *b * mu + d;
        *b = nb;
        let d = if nesterov { d + nb * mu } else { nb };
        *p = *p - d * lr;
    }
}

/// In-place SGD on one parameter.
pub(crate) struct SgdOp<'a> {
    pub h: SgdStep,
    pub buf: Mutex<&'a mut HostBuf>,
}

impl InplaceOp2 for SgdOp<'_> {
    fn name(&self) -> &'static str {
        "cxr-fused-sgd"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (p0, p1) = contiguous(l1, "parameter")?;
        let (g0, g1) = contiguous(l2, "gradient")?;
        let mut buf = lock(&self.buf)?;
        let n = p1 - p0;
        if g1 - g0 != n || (self.h.momentum != 0.0 && buf.len() != n) {
            candle_core::bail!("fused SGD: parameter, gradient and momentum differ in length");
        }
        let h = self.h;
        macro_rules! run {
            ($p:expr, $g:expr, $b:expr) => {{
                let (p, g, b) = (&mut $p[p0..p1], &$g[g0..g1], $b.as_mut_slice());
                if p.len() <= CHUNK || h.momentum == 0.0 {
                    sgd_kernel(p, g, b, &h)
                } else {
                    p.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .zip(b.par_chunks_mut(CHUNK))
                        .for_each(|((p, g), b)| sgd_kernel(p, g, b, &h));
                }
            }};
        }
        match (s1, s2, &mut **buf) {
            (CpuStorage::F32(p), CpuStorage::F32(g), HostBuf::F32(b)) => run!(p, g, b),
            (CpuStorage::F64(p), CpuStorage::F64(g), HostBuf::F64(b)) => run!(p, g, b),
            (p, g, _) => candle_core::bail!(
                "fused SGD: unsupported dtypes param {:?} / grad {:?}",
                p.dtype(),
                g.dtype()
            ),
        }
        Ok(())
    }
}
