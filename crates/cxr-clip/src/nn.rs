//! Layers with a backward pass for every op.
//!
//! candle-nn's fused `ops::layer_norm` and `ops::softmax_last_dim` (which `LayerNorm::forward`
//! takes for contiguous input) have no backward and silently cut gradients. LayerNorm, softmax
//! and the activations here are `cxr_ops`' fused ops, which have their own (one CPU pass
//! forward, one backward; the primitive-op formulas are `cxr_ops::reference`).

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::config::Activation;

/// Softmax over the last dimension (`cxr_ops`' fused op; f32 / f64, other dtypes through its
/// primitive-op reference).
pub(crate) fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    cxr_ops::softmax_last_dim(xs)
}

/// LayerNorm over the last dimension with a learnable weight and bias (`weight`, `bias`).
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub(crate) fn new(size: usize, eps: f64, vb: VarBuilder<'_>) -> Result<Self> {
        let weight = vb.get_with_hints(size, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }
}

impl Module for LayerNorm {
    /// Statistics and output in the parameters' dtype: a mixed-precision caller passes the
    /// master-dtype residual stream, so mean and variance are never taken in bf16.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = &xs.to_dtype(self.weight.dtype())?;
        cxr_ops::layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

/// A dense layer `x W^T + b` with PyTorch's `[out, in]` weight layout.
///
/// Inputs of any rank are flattened to one 2-D matmul, which is faster on CPU than candle-nn's
/// broadcast batched matmul and has a cheaper backward.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Weights initialised N(0, `std`) and biases zero, as transformers' `CLIPModel` does.
    pub(crate) fn new(
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        std: f64,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((out_dim, in_dim), "weight", normal(std))?;
        let bias = if bias {
            Some(vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }
}

impl Linear {
    /// `x W^T + b` with the matmul in `compute` (the input and the weight cast to it at use,
    /// differentiably, so the gradient reaches the master weight) and the result in `out`.
    ///
    /// The bias is added in its own (master) dtype: its gradient is the sum of the output's
    /// gradient over every row (batch x tokens), and candle accumulates a sum in the tensor's
    /// dtype (bf16 on the CPU), which would lose most of it at ViT batch sizes. So the product
    /// goes to the master dtype, takes the bias, then goes to `out` (a layer feeding the f32
    /// residual stream asks for the master dtype and skips the second cast). With `compute`
    /// and `out` equal to the parameters' dtype no cast happens.
    pub(crate) fn forward_in(&self, xs: &Tensor, compute: DType, out: DType) -> Result<Tensor> {
        let xs = xs.to_dtype(compute)?;
        let dims = xs.dims();
        let in_dim = *dims.last().unwrap_or(&0);
        let rows = xs.elem_count() / in_dim.max(1);
        let flat = xs.reshape((rows, in_dim))?;
        let weight = self.weight.to_dtype(compute)?;
        let result = match &self.bias {
            // One op that keeps neither the product nor a copy of it for the backward pass.
            Some(bias) if bias.dtype() == compute => {
                cxr_ops::dense(&flat, &weight, bias)?.to_dtype(out)?
            }
            // cxr-ops' bias add: its bias gradient is one gemm instead of candle's strided,
            // single-threaded column sum (about a second of a ViT-B/32 CPU step).
            Some(bias) => {
                cxr_ops::add_bias(&flat.matmul(&weight.t()?)?.to_dtype(bias.dtype())?, bias)?
                    .to_dtype(out)?
            }
            None => flat.matmul(&weight.t()?)?.to_dtype(out)?,
        };
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = self.weight.dim(0)?;
        }
        result.reshape(out_dims)
    }
}

/// Normal initialiser with mean zero.
pub(crate) fn normal(stdev: f64) -> Init {
    Init::Randn { mean: 0.0, stdev }
}

impl Module for Activation {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::QuickGelu => cxr_ops::quick_gelu(xs),
            Activation::Gelu => cxr_ops::gelu_erf(xs),
            Activation::GeluTanh => xs.gelu(),
        }
    }
}

/// Additive causal mask `[len, len]`: 0 on and below the diagonal, the dtype's most negative
/// finite value above (as transformers does), so no position attends to a later one.
pub(crate) fn causal_mask(
    len: usize,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let neg = match dtype {
        DType::F64 => f64::MIN,
        DType::F16 => -65504.0,
        _ => f32::MIN as f64,
    };
    let mask: Vec<f64> = (0..len)
        .flat_map(|i| (0..len).map(move |j| if j > i { neg } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (len, len), device)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    #[test]
    fn softmax_matches_candle_reference() -> Result<()> {
        let x = Tensor::new(&[[1.0f32, 2.0, -3.0], [0.5, 0.5, 100.0]], &Device::Cpu)?;
        let ours = softmax_last_dim(&x)?.to_vec2::<f32>()?;
        let theirs = candle_nn::ops::softmax(&x, D::Minus1)?.to_vec2::<f32>()?;
        for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
        Ok(())
    }

    #[test]
    fn layer_norm_matches_candle_fused() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1.0f32, 2.0, 4.0, 8.0], [-1.0, 0.0, 1.0, 3.0]], &dev)?;
        let w = Tensor::new(&[1.0f32, 0.5, 2.0, -1.0], &dev)?;
        let b = Tensor::new(&[0.1f32, 0.2, 0.3, 0.4], &dev)?;
        let ours = LayerNorm {
            weight: w.clone(),
            bias: b.clone(),
            eps: 1e-5,
        }
        .forward(&x)?;
        let theirs = candle_nn::ops::layer_norm(&x, &w, &b, 1e-5)?;
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max diff {diff}");
        Ok(())
    }

    #[test]
    fn causal_mask_blocks_future() -> Result<()> {
        let m = causal_mask(3, DType::F32, &Device::Cpu)?.to_vec2::<f32>()?;
        assert_eq!(m[0][0], 0.0);
        assert_eq!(m[2][1], 0.0);
        assert_eq!(m[0][1], f32::MIN);
        assert_eq!(m[1][2], f32::MIN);
        Ok(())
    }
}
