//! The candle `CustomOp`s: forward kernels (CPU here, CUDA in `cuda.rs`) and their backward,
//! which is itself a custom op without a backward of its own (no second derivatives).
//!
//! Every op is applied by `lib.rs` to contiguous f32 / f64 tensors only; the kernels still
//! check the layout and say so instead of reading the wrong elements.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape};
use candle_core::{Tensor, WithDType};

use crate::cpu;
use crate::kind::{last_dim, Kind};

/// The forward of a [`Kind`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unary(pub Kind);

/// The backward of a [`Kind`]: `(x or y, grad of y) -> grad of x`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnaryBwd(pub Kind);

/// LayerNorm over the last dimension: `(x, weight, bias)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerNorm {
    pub eps: f64,
}

/// LayerNorm's backward: `(x, weight, grad of y) -> [dx; dweight; dbias]` packed as
/// `[rows + 2, dim]` (see [`cpu::layer_norm_bwd`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerNormBwd {
    pub eps: f64,
}

/// The contiguous elements of `s` under `l`, or an error naming the op.
pub(crate) fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [T]> {
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!(
            "{op}: the input is not contiguous (cxr-ops makes it so before the op; this is a bug)"
        )
    };
    Ok(&T::cpu_storage_as_slice(s)?[a..b])
}

fn unary_cpu<T: cpu::Real>(kind: Kind, x: &[T], dim: usize) -> Vec<T> {
    match kind {
        Kind::Softmax => cpu::softmax(x, dim),
        Kind::LogSoftmax => cpu::log_softmax(x, dim),
        Kind::QuickGelu => cpu::quick_gelu(x),
        Kind::GeluErf => cpu::gelu_erf(x),
    }
}

fn unary_bwd_cpu<T: cpu::Real>(kind: Kind, a: &[T], g: &[T], dim: usize) -> Vec<T> {
    match kind {
        Kind::Softmax => cpu::softmax_bwd(a, g, dim),
        Kind::LogSoftmax => cpu::log_softmax_bwd(a, g, dim),
        Kind::QuickGelu => cpu::quick_gelu_bwd(a, g),
        Kind::GeluErf => cpu::gelu_erf_bwd(a, g),
    }
}

impl CustomOp1 for Unary {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Softmax => "cxr-softmax-last-dim",
            Kind::LogSoftmax => "cxr-log-softmax-last-dim",
            Kind::QuickGelu => "cxr-quick-gelu",
            Kind::GeluErf => "cxr-gelu-erf",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dim = last_dim(l);
        let out = match s {
            CpuStorage::F32(_) => {
                CpuStorage::F32(unary_cpu(self.0, slice::<f32>(s, l, self.name())?, dim))
            }
            CpuStorage::F64(_) => {
                CpuStorage::F64(unary_cpu(self.0, slice::<f64>(s, l, self.name())?, dim))
            }
            _ => bail!("{}: no CPU kernel for {:?}", self.name(), s.dtype()),
        };
        Ok((out, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::unary(self.0, s, l)
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let a = if self.0.bwd_from_result() { res } else { arg };
        let g = grad.contiguous()?;
        Ok(Some(
            a.contiguous()?.apply_op2_no_bwd(&g, &UnaryBwd(self.0))?,
        ))
    }
}

impl CustomOp2 for UnaryBwd {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Softmax => "cxr-softmax-last-dim-bwd",
            Kind::LogSoftmax => "cxr-log-softmax-last-dim-bwd",
            Kind::QuickGelu => "cxr-quick-gelu-bwd",
            Kind::GeluErf => "cxr-gelu-erf-bwd",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.dims() != l2.dims() {
            bail!(
                "{}: shapes {:?} and {:?} differ",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        }
        let dim = last_dim(l1);
        let n = self.name();
        let out = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(unary_bwd_cpu(
                self.0,
                slice::<f32>(s1, l1, n)?,
                slice::<f32>(s2, l2, n)?,
                dim,
            )),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(unary_bwd_cpu(
                self.0,
                slice::<f64>(s1, l1, n)?,
                slice::<f64>(s2, l2, n)?,
                dim,
            )),
            _ => bail!("{n}: no CPU kernel for {:?} x {:?}", s1.dtype(), s2.dtype()),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::unary_bwd(self.0, s1, l1, s2, l2)
    }
}

/// Checks that `w` and `b` are vectors of the last dimension of `x`.
pub(crate) fn check_params(name: &str, x: &Layout, w: &Layout, b: &Layout) -> Result<usize> {
    let dim = last_dim(x);
    if w.dims() != [dim] || b.dims() != [dim] {
        bail!(
            "{name}: weight {:?} and bias {:?} must both be [{dim}], the input's last dimension",
            w.dims(),
            b.dims()
        );
    }
    Ok(dim)
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "cxr-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = self.name();
        check_params(n, l1, l2, l3)?;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(cpu::layer_norm(
                    slice::<f32>(s1, l1, n)?,
                    slice::<f32>(s2, l2, n)?,
                    slice::<f32>(s3, l3, n)?,
                    self.eps,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(cpu::layer_norm(
                    slice::<f64>(s1, l1, n)?,
                    slice::<f64>(s2, l2, n)?,
                    slice::<f64>(s3, l3, n)?,
                    self.eps,
                ))
            }
            _ => bail!("{n}: input, weight and bias must share one dtype, f32 or f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        check_params(self.name(), l1, l2, l3)?;
        crate::cuda::layer_norm(self.eps, s1, l1, s2, l2, s3, l3)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dim = w.elem_count();
        let rows = x.elem_count() / dim.max(1);
        let g = grad.contiguous()?;
        let packed = x.apply_op3_no_bwd(w, &g, &LayerNormBwd { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(dim)?;
        let db = packed.narrow(0, rows + 1, 1)?.reshape(dim)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp3 for LayerNormBwd {
    fn name(&self) -> &'static str {
        "cxr-layer-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = self.name();
        let dim = check_params(n, l1, l2, l2)?;
        if l1.dims() != l3.dims() {
            bail!(
                "{n}: input {:?} and gradient {:?} differ",
                l1.dims(),
                l3.dims()
            );
        }
        let rows = l1.shape().elem_count() / dim.max(1);
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(cpu::layer_norm_bwd(
                    slice::<f32>(s1, l1, n)?,
                    slice::<f32>(s2, l2, n)?,
                    slice::<f32>(s3, l3, n)?,
                    self.eps,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(cpu::layer_norm_bwd(
                    slice::<f64>(s1, l1, n)?,
                    slice::<f64>(s2, l2, n)?,
                    slice::<f64>(s3, l3, n)?,
                    self.eps,
                ))
            }
            _ => bail!("{n}: input, weight and gradient must share one dtype, f32 or f64"),
        };
        Ok((out, Shape::from((rows + 2, dim))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let dim = check_params(self.name(), l1, l2, l2)?;
        if l1.dims() != l3.dims() {
            bail!(
                "{}: input {:?} and gradient {:?} differ",
                self.name(),
                l1.dims(),
                l3.dims()
            );
        }
        crate::cuda::layer_norm_bwd(self.eps, dim, s1, l1, s2, l2, s3, l3)
    }
}
