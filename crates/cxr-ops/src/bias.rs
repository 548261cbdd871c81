//! `x + bias`, the bias repeated over the leading dimensions, with a backward whose bias
//! gradient is one matrix product.
//!
//! candle's `broadcast_add` backward sums the gradient over the repeated rows with its generic
//! reduce, which walks the columns with a stride on one thread: 24 ms for a 1600 x 3072
//! gradient on the 2-core development machine, against 0.8 ms for `ones(1, rows) @ grad`
//! through gemm. A ViT-B/32 training step has 96 dense-layer biases, so this is about a second
//! per step (docs/benchmarks.md).

use candle_core::{bail, CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};

use crate::{cpu, forced_reference, ops::slice};

/// `xs + bias` where `bias`'s shape is the trailing dimensions of `xs` (a dense layer's `[out]`
/// bias, a `[tokens, hidden]` position table). Fused on the CPU for f32 / f64 when both share
/// the dtype; anything else (another device or dtype, a bias that is not a trailing block of
/// `xs`, `CXR_OPS=reference`) is candle's `broadcast_add`.
pub fn add_bias(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let trailing = xs.rank() >= bias.rank() && xs.dims().ends_with(bias.dims());
    let fused = trailing
        && bias.elem_count() > 0
        && xs.dtype() == bias.dtype()
        && matches!(xs.dtype(), DType::F32 | DType::F64)
        && matches!(xs.device(), Device::Cpu)
        && matches!(bias.device(), Device::Cpu)
        && !forced_reference();
    if !fused {
        return xs.broadcast_add(bias);
    }
    xs.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}

#[derive(Debug, Clone, Copy)]
struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "cxr-add-bias"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = match (x, b) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(cpu::add_rows(
                slice::<f32>(x, xl, "add_bias")?,
                slice::<f32>(b, bl, "add_bias")?,
            )),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(cpu::add_rows(
                slice::<f64>(x, xl, "add_bias")?,
                slice::<f64>(b, bl, "add_bias")?,
            )),
            _ => bail!("add_bias: f32 or f64 inputs of one dtype only (lib.rs checks this)"),
        };
        Ok((out, xl.shape().clone()))
    }

    /// `dx = g`; `dbias = ones(1, rows) @ g` viewed as `[rows, bias elements]`.
    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let cols = bias.elem_count();
        let rows = grad.elem_count() / cols;
        let ones = Tensor::ones((1, rows), grad.dtype(), grad.device())?;
        let dbias = ones
            .matmul(&grad.reshape((rows, cols))?)?
            .reshape(bias.shape())?;
        Ok((Some(grad.clone()), Some(dbias)))
    }
}
