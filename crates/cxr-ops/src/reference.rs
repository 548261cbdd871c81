//! The same ops from primitive candle tensor ops, each with candle's own backward.
//!
//! They are the fused ops' specification (the tests compare the two, values and gradients)
//! and their fallback for the dtypes and devices the kernels do not cover (bf16, f16, Metal,
//! CUDA without the `cuda` feature, f64 on CUDA). These are the formulas cxr-clip and
//! cxr-losses used before the fused ops.

use candle_core::{Result, Tensor, D};

/// Softmax over the last dimension from `max`, `exp`, `sum` and `div`.
///
/// The row maximum is detached: subtracting any constant leaves softmax unchanged, so its
/// gradient is zero in exact arithmetic and computing it would only cost time.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let num = xs.broadcast_sub(&max)?.exp()?;
    let den = num.sum_keepdim(D::Minus1)?;
    num.broadcast_div(&den)
}

/// Log-softmax over the last dimension: `(x - max) - ln(sum(exp(x - max)))`, as
/// `candle_nn::ops::log_softmax` (the maximum here is not detached, as there).
pub fn log_softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?;
    let diff = xs.broadcast_sub(&max)?;
    let sum_exp = diff.exp()?.sum_keepdim(D::Minus1)?;
    diff.broadcast_sub(&sum_exp.log()?)
}

/// LayerNorm over the last dimension: `(x - mean) / sqrt(var + eps) * weight + bias`, with
/// the biased variance (as PyTorch).
pub fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centred = xs.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

/// OpenAI CLIP's `x * sigmoid(1.702 x)`.
pub fn quick_gelu(xs: &Tensor) -> Result<Tensor> {
    xs * sigmoid(&(xs * 1.702)?)?
}

/// The exact GELU, `x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))` (candle's `gelu_erf`).
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    xs.gelu_erf()
}

/// `1 / (1 + exp(-x))` from primitive ops (candle-nn's fused sigmoid is not needed here).
fn sigmoid(xs: &Tensor) -> Result<Tensor> {
    (xs.neg()?.exp()? + 1.0)?.recip()
}
