//! `x + bias`, the bias repeated over the leading dimensions, with a backward whose bias
//! gradient is one matrix product.
//!
//! candle's `broadcast_add` backward sums the gradient over the repeated rows with its generic
//! reduce, which walks the columns with a stride on one thread: 24 ms for a 1600 x 3072
//! gradient on the 2-core development machine, against 0.8 ms for `ones(1, rows) @ grad`
//! through gemm. A ViT-B/32 training step has 96 dense-layer biases, so this is about a second
//! per step (docs/benchmarks.md).

use std::sync::Mutex;

use candle_core::{
    bail, CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor,
};

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
        Ok((add_rows(x, xl, b, bl, "add_bias")?, xl.shape().clone()))
    }

    /// `dx = g`; `dbias` from [`bias_grad`].
    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.clone()), Some(bias_grad(bias, grad)?)))
    }
}

/// `x + b` on the CPU, `b` repeated over `x`'s rows; both f32 or both f64 (the callers check).
fn add_rows(
    x: &CpuStorage,
    xl: &Layout,
    b: &CpuStorage,
    bl: &Layout,
    op: &str,
) -> Result<CpuStorage> {
    Ok(match (x, b) {
        (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(cpu::add_rows(
            slice::<f32>(x, xl, op)?,
            slice::<f32>(b, bl, op)?,
        )),
        (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(cpu::add_rows(
            slice::<f64>(x, xl, op)?,
            slice::<f64>(b, bl, op)?,
        )),
        _ => bail!("{op}: f32 or f64 inputs of one dtype only (checked before the op)"),
    })
}

/// The gradient of a bias added to every row of `grad`'s leading dimensions:
/// `ones(1, rows) @ g` viewed as `[rows, bias elements]`, in the bias's shape.
fn bias_grad(bias: &Tensor, grad: &Tensor) -> Result<Tensor> {
    let cols = bias.elem_count();
    let rows = grad.elem_count() / cols;
    let ones = Tensor::ones((1, rows), grad.dtype(), grad.device())?;
    ones.matmul(&grad.reshape((rows, cols))?)?
        .reshape(bias.shape())
}

/// A dense layer `x @ weight^T + bias` (`x` `[rows, in]`, PyTorch's `[out, in]` weight,
/// `bias` `[out]`) whose graph keeps `x`, `weight` and `bias` but not the product before the
/// bias is added.
///
/// `add_bias(&x.matmul(&weight.t()?)?, bias)` gives the same values, but candle's graph keeps
/// every op's inputs alive until the backward pass has passed them, and the product is the
/// input of the bias add although no gradient needs it: for ViT-B/32 that is 9 of the 34
/// activation-sized tensors a transformer block keeps. Here the product is computed by
/// candle's matmul without a graph and handed to one op that adds the bias and drops it; the
/// op's backward is the matmul's (`dx = g @ weight`, `dweight = g^T @ x`) and `add_bias`'s.
///
/// Fused on the CPU for f32 / f64 when all three share the dtype and `x` is 2-D; anything
/// else (another device or dtype, `CXR_OPS=reference`) is the unfused expression above.
pub fn dense(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let fused = x.rank() == 2
        && weight.rank() == 2
        && bias.rank() == 1
        && x.dim(1)? == weight.dim(1)?
        && weight.dim(0)? == bias.dim(0)?
        && bias.elem_count() > 0
        && x.dtype() == weight.dtype()
        && x.dtype() == bias.dtype()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && [x, weight, bias]
            .iter()
            .all(|t| matches!(t.device(), Device::Cpu))
        && !forced_reference();
    if !fused {
        return add_bias(&x.matmul(&weight.t()?)?, bias);
    }
    let product = x.detach().matmul(&weight.detach().t()?)?;
    x.apply_op3(
        weight,
        &bias.contiguous()?,
        Dense {
            product: Mutex::new(Some(product)),
        },
    )
}

/// [`dense`]'s op: the product, made outside the graph, waits here until the forward pass
/// takes it (the op itself stays in the graph until the backward pass, the product does not).
#[derive(Debug)]
struct Dense {
    product: Mutex<Option<Tensor>>,
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "cxr-dense"
    }

    fn cpu_fwd(
        &self,
        _x: &CpuStorage,
        _xl: &Layout,
        _w: &CpuStorage,
        _wl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Some(product) = self
            .product
            .lock()
            .map_err(|_| candle_core::Error::Msg("dense: poisoned".into()))?
            .take()
        else {
            bail!("dense: the op ran twice (its product is used once; this is a bug)")
        };
        let (storage, pl) = product.storage_and_layout();
        let Storage::Cpu(p) = &*storage else {
            bail!("dense: the product is not on the CPU (dense checks this; this is a bug)")
        };
        Ok((add_rows(p, pl, b, bl, "dense")?, pl.shape().clone()))
    }

    /// `dx = g @ weight`, `dweight = g^T @ x`, `dbias` from [`bias_grad`], all without a
    /// graph: the weight is a variable, so a product with it (or with `x`, an activation)
    /// would track, and the weight's gradient, which candle never detaches (it stops at
    /// variables), would keep `x` and `g` alive until the gradients are dropped.
    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.detach();
        let dx = grad.matmul(&weight.detach())?;
        let dweight = grad.t()?.matmul(&x.detach())?;
        Ok((Some(dx), Some(dweight), Some(bias_grad(bias, &grad)?)))
    }
}
