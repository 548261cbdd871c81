//! Fused tensor ops with their own backward, for candle: LayerNorm, softmax and log-softmax
//! over the last dimension, quick-GELU and the exact (erf) GELU; and, CPU only, a bias add
//! whose bias gradient is one gemm ([`add_bias`]) and a dense layer that keeps less for its
//! backward ([`dense`]).
//!
//! candle-nn's fused `layer_norm` / `softmax_last_dim` have no backward (they cut gradients),
//! and the same ops written from primitive tensor ops ([`reference`]) make one pass over memory
//! per primitive (LayerNorm: about ten), most of them single-threaded. Each op here is a candle
//! `CustomOp` whose forward is one parallel pass (rayon over chunks of rows, vectorised row
//! loops: `cpu.rs`) and whose `bwd` is another custom op of one pass:
//!
//! | op | backward |
//! |---|---|
//! | [`layer_norm`] | `dx`, `dweight`, `dbias` from `x` (mean and rstd recomputed) |
//! | [`softmax_last_dim`] | `y * (g - sum(g * y))` from the result `y` |
//! | [`log_softmax_last_dim`] | `g - exp(y) * sum(g)` from the result `y` |
//! | [`quick_gelu`], [`gelu_erf`] | `g * f'(x)` from `x` |
//!
//! Dtypes and devices: f32 and f64 on the CPU, f32 on CUDA under the `cuda` feature
//! (`src/kernels/ops.cu`, compiled to PTX by `build.rs`). Anything else (bf16, f16, f64 on
//! CUDA, Metal, an empty tensor) runs the [`reference`] formula, which is correct but unfused.
//! Non-contiguous inputs are copied to contiguous ones first (a differentiable copy).
//! `CXR_OPS=reference` in the environment forces the reference path everywhere (A/B runs).
//! Results equal the reference's to rounding (the kernels multiply by reciprocals where the
//! reference divides, and sum in another order); `tests/ops.rs` checks values and gradients
//! against the reference and against central finite differences.

mod bias;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
mod kind;
mod ops;
pub mod reference;

use std::sync::OnceLock;

use candle_core::{DType, Device, Result, Tensor};

pub use bias::{add_bias, dense};
use kind::Kind;
use ops::{LayerNorm, Unary};

/// Whether the CUDA kernels are compiled in (feature `cuda`).
const CUDA_KERNELS: bool = cfg!(feature = "cuda");

/// `CXR_OPS=reference` in the environment (read once) sends every op through [`reference`]:
/// an A/B switch for benchmarks and a way to rule the kernels out when chasing a bug.
fn forced_reference() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("CXR_OPS").is_ok_and(|v| v == "reference"))
}

/// Whether the fused kernels handle `xs` (device and dtype; see the crate docs), and
/// `CXR_OPS=reference` is not set.
pub fn is_fused(xs: &Tensor) -> bool {
    if xs.rank() == 0 || xs.elem_count() == 0 || forced_reference() {
        return false;
    }
    match (xs.device(), xs.dtype()) {
        (Device::Cpu, DType::F32 | DType::F64) => true,
        (Device::Cuda(_), DType::F32) => CUDA_KERNELS,
        _ => false,
    }
}

fn unary(xs: &Tensor, kind: Kind) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(Unary(kind))
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if !is_fused(xs) {
        return reference::softmax_last_dim(xs);
    }
    unary(xs, Kind::Softmax)
}

/// Log-softmax over the last dimension.
pub fn log_softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if !is_fused(xs) {
        return reference::log_softmax_last_dim(xs);
    }
    unary(xs, Kind::LogSoftmax)
}

/// `x * sigmoid(1.702 x)` (OpenAI CLIP's activation).
pub fn quick_gelu(xs: &Tensor) -> Result<Tensor> {
    if !is_fused(xs) {
        return reference::quick_gelu(xs);
    }
    unary(xs, Kind::QuickGelu)
}

/// The exact GELU, `0.5 x (1 + erf(x / sqrt(2)))`.
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if !is_fused(xs) {
        return reference::gelu_erf(xs);
    }
    unary(xs, Kind::GeluErf)
}

/// LayerNorm over the last dimension with `weight` and `bias` of that size (biased variance,
/// `eps` inside the square root, as PyTorch). The three must share a dtype and device; a
/// weight or bias of another shape, dtype or layout goes through the [`reference`] formula
/// (which broadcasts, or fails with candle's shape error).
pub fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let dim = xs.dims().last().copied().unwrap_or(0);
    let params_fit = [weight, bias].iter().all(|p| {
        p.dims() == [dim] && p.dtype() == xs.dtype() && p.device().same_device(xs.device())
    });
    if !is_fused(xs) || !params_fit {
        return reference::layer_norm(xs, weight, bias, eps);
    }
    xs.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps },
    )
}
