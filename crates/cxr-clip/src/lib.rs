//! A fully trainable CLIP (Radford et al. 2021) in candle, with Hugging Face `CLIPModel`
//! parameter names so that hub checkpoints load directly.
//!
//! Unlike candle-transformers' CLIP, every parameter (class embedding, position embeddings and
//! the logit scale included) is a variable of the `VarBuilder`, and LayerNorm and softmax are
//! written from primitive ops, so a backward pass reaches every weight.

mod config;
mod error;
#[cfg(feature = "hub-download")]
pub mod hub;
pub mod memory;
mod model;
mod nn;
mod weights;

pub use config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig, CLIP_EOT_ID};
pub use error::{Error, Result};
pub use model::{l2_normalize, Checkpointed, ClipModel, Recompute};
pub use weights::{
    default_hub_cache, save_pretrained, save_safetensors, CheckpointFormat, ClipWeights,
};
