//! Optimisers and learning-rate schedules for candle [`Var`](candle_core::Var)s.
//!
//! - [`AdamW`]: decoupled weight decay Adam (Loshchilov & Hutter), numerically the same update
//!   as `candle_nn::AdamW` and `torch.optim.AdamW`, but *fused*: on CPU each parameter tensor is
//!   updated in one pass over parameter, gradient and both moments, in parallel chunks (rayon).
//!   `candle_nn::AdamW` runs about 15 single-threaded tensor ops per parameter instead.
//! - [`Sgd`]: SGD with momentum / Nesterov and weight decay, as `torch.optim.SGD` (CheXzero).
//! - [`ReduceLrOnPlateau`]: torch's `ReduceLROnPlateau`, with serialisable state.
//! - [`LrSchedule`]: constant, linear warmup, cosine with warmup (open_clip's `cosine_lr`).
//! - [`Optimizer`]: the trait both optimisers implement (step, learning rate, checkpoint state).
//! - [`clip_grad_norm`]: torch's `clip_grad_norm_` over a [`GradStore`](candle_core::backprop::GradStore).
//!
//! Per-parameter weight decay is chosen by name ([`default_decay_filter`]: no decay on norms,
//! biases, embeddings and the logit scale, as open_clip). Optimiser state round-trips through
//! `state_tensors` / `load_state_tensors` for checkpoints.
//!
//! # Feature `cuda`
//!
//! Enables `candle-core/cuda` and a fused AdamW kernel for CUDA parameters
//! (`src/kernels/adamw.cu`, compiled to PTX by `build.rs` with nvcc, launched on candle's own
//! stream in place on the parameter): one pass over parameter, gradient and both moments, which
//! stay on the parameter's device. f32 and f64 parameters; bf16/f16 CUDA parameters, and every
//! other non-CPU device (Metal), keep the candle tensor-op update. Building needs nvcc (and
//! candle's kernels need `CUDA_COMPUTE_CAP` when `nvidia-smi` is absent); the default build
//! needs neither. `scripts/ci/cuda-check.sh` compile-checks it without a GPU. The kernel has
//! not yet run on a GPU: `tests/cuda.rs` compares it with the CPU kernel where one exists.
//!
//! Goldens: `scripts/goldens/cxr-optim/make_optim_goldens.py` (torch).

mod adamw;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
mod error;
mod grad_clip;
mod optimizer;
mod plateau;
mod schedule;
mod sgd;
mod state;

pub use adamw::{AdamW, AdamWConfig};
pub use error::{OptimError, Result};
pub use grad_clip::{clip_grad_norm, grad_norm};
pub use optimizer::Optimizer;
pub use plateau::{PlateauConfig, PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use schedule::LrSchedule;
pub use sgd::{Sgd, SgdConfig};

/// Whether a parameter named `name` gets weight decay: `false` for norms (`ln_*`, `*norm*`,
/// `bn*`), biases, embeddings (`*embedding*`) and the learnable logit scale / temperature,
/// `true` for everything else (weights of linear and conv layers).
///
/// Works on both OpenAI/open_clip names (`ln_1`, `positional_embedding`, `logit_scale`) and
/// Hugging Face names (`layer_norm1`, `pre_layrnorm`, `position_embedding.weight`).
pub fn default_decay_filter(name: &str) -> bool {
    !name.split('.').any(|seg| {
        let s = seg.to_ascii_lowercase();
        s == "ln"
            || s.starts_with("ln_")
            || s.contains("norm")
            || s == "bn"
            || s.starts_with("bn_")
            || s.contains("bias")
            || s.contains("embedding")
            || s.contains("logit_scale")
            || s.contains("temperature")
    })
}

/// Checks that `names` are unique, so that optimiser state keys are unambiguous.
pub(crate) fn check_unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(OptimError::Config(format!(
                "parameter name {n:?} appears twice: give every Var a unique name"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_decay_filter;

    #[test]
    fn decay_filter_excludes_norms_biases_embeddings_and_scale() {
        for name in [
            "visual.ln_pre.weight",
            "visual.transformer.resblocks.0.ln_1.bias",
            "vision_model.pre_layrnorm.weight",
            "text_model.encoder.layers.3.layer_norm1.weight",
            "text_model.final_layer_norm.bias",
            "visual.class_embedding",
            "positional_embedding",
            "text_model.embeddings.token_embedding.weight",
            "logit_scale",
            "mlp.c_fc.bias",
            "metric.temperature",
        ] {
            assert!(!default_decay_filter(name), "{name} should not decay");
        }
        for name in [
            "visual.transformer.resblocks.0.attn.in_proj_weight",
            "visual.proj",
            "text_projection.weight",
            "vision_model.encoder.layers.0.mlp.fc1.weight",
            "visual.conv1.weight",
        ] {
            assert!(default_decay_filter(name), "{name} should decay");
        }
    }
}
