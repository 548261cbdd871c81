//! The model a run trains: the CLIP architecture for a config, its initial weights, which
//! parameters the optimiser updates, and the optimiser itself.
//!
//! Frozen towers (`loop.freeze`) are outside the optimiser (no weight decay, no moments) and
//! enter the model as constants, so backprop does no work for them and they stay bit-identical.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use cxr_clip::{ClipConfig, ClipModel};
use cxr_optim::{AdamW, AdamWConfig, Optimizer, Sgd, SgdConfig};

use crate::config::{Method, MetricLoss, ModelPreset, OptimizerKind, Precision, TrainConfig};
use crate::Result;

/// The CLIP architecture for this config.
pub fn clip_config(cfg: &TrainConfig) -> ClipConfig {
    match cfg.model.preset {
        ModelPreset::Tiny => ClipConfig::tiny(cfg.model.image_size),
        ModelPreset::VitB32 => ClipConfig::vit_b_32(),
        ModelPreset::VitB16 => ClipConfig::vit_b_16(),
        ModelPreset::VitL14 => ClipConfig::vit_l_14(),
    }
}

/// The dtype of the model's matmuls and block activations for `loop.precision` (the
/// parameters, optimiser state, losses and mixture fit stay f32 either way).
pub fn compute_dtype(precision: Precision) -> DType {
    match precision {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
    }
}

/// A model with all parameters in `varmap` (f32), randomly initialised or loaded from
/// `model.weights`, computing in `loop.precision`. The parameters of frozen towers are
/// constants in the model (see [`with_frozen_constants`]); every parameter stays a variable
/// in `varmap`, which checkpoints save and load.
pub fn build_model(cfg: &TrainConfig, device: &Device) -> Result<(VarMap, ClipModel)> {
    let (varmap, model) = build_f32_model(cfg, device)?;
    let model = model.with_compute_dtype(compute_dtype(cfg.train_loop.precision))?;
    Ok((varmap, model))
}

fn build_f32_model(cfg: &TrainConfig, device: &Device) -> Result<(VarMap, ClipModel)> {
    let (varmap, model) = match &cfg.model.weights {
        Some(spec) => {
            // The checkpoint's own config decides the architecture.
            let weights = cxr_clip::ClipWeights::resolve(spec)?;
            let (model, varmap) = weights.trainable(DType::F32, device)?;
            (varmap, model)
        }
        None => {
            let varmap = VarMap::new();
            let vb = crate::init::SeededVarMap::builder(&varmap, cfg.seed, DType::F32, device);
            let model = ClipModel::new(vb, &clip_config(cfg))?;
            (varmap, model)
        }
    };
    if cfg.train_loop.freeze.is_empty() {
        return Ok((varmap, model));
    }
    let frozen = with_frozen_constants(cfg, &varmap, model.config(), device)?;
    Ok((varmap, frozen))
}

/// The model rebuilt over the same parameter storage, with the frozen towers' parameters as
/// detached tensors: constants to backprop (no gradient is computed for them, nor through a
/// frozen tower), yet sharing the variables' storage, so loading a checkpoint into `varmap`
/// (`Var::set` copies in place) still reaches them.
fn with_frozen_constants(
    cfg: &TrainConfig,
    varmap: &VarMap,
    clip: &ClipConfig,
    device: &Device,
) -> Result<ClipModel> {
    let tensors: HashMap<String, Tensor> = named_vars(varmap)
        .into_iter()
        .map(|(name, var)| {
            let t = if cfg.train_loop.is_frozen(&name) {
                var.as_tensor().detach()
            } else {
                var.as_tensor().clone()
            };
            (name, t)
        })
        .collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(ClipModel::new(vb, clip)?)
}

/// The parameters of `varmap` sorted by name (a stable order for the optimiser and checkpoints).
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The parameters outside the frozen towers, sorted by name (gradients are clipped and
/// accumulated over these).
pub fn trainable_vars(cfg: &TrainConfig, varmap: &VarMap) -> Vec<Var> {
    named_vars(varmap)
        .into_iter()
        .filter(|(n, _)| !cfg.train_loop.is_frozen(n))
        .map(|(_, v)| v)
        .collect()
}

/// The configured optimiser (AdamW, or SGD with momentum as CheXzero) over the parameters
/// outside the frozen towers (its checkpoint state holds those alone).
pub fn build_optimizer(cfg: &TrainConfig, varmap: &VarMap) -> Result<Box<dyn Optimizer>> {
    let o = &cfg.optim;
    let params: Vec<(String, Var)> = named_vars(varmap)
        .into_iter()
        .filter(|(n, _)| !cfg.train_loop.is_frozen(n))
        .collect();
    let decay = cxr_optim::default_decay_filter;
    Ok(match o.kind {
        OptimizerKind::Sgd => {
            let scfg = SgdConfig {
                lr: o.lr,
                momentum: o.momentum,
                weight_decay: o.weight_decay,
                ..SgdConfig::default()
            };
            Box::new(Sgd::new(params, scfg, decay)?)
        }
        OptimizerKind::AdamW => {
            let acfg = AdamWConfig {
                lr: o.lr,
                beta1: o.beta1,
                beta2: o.beta2,
                eps: o.eps,
                weight_decay: o.weight_decay,
            };
            Box::new(AdamW::new(params, acfg, decay)?)
        }
    })
}

/// The name of the weighted metric loss's learnable log temperature in the model's VarMap
/// (saved and restored with the weights; no weight decay, by `default_decay_filter`).
pub const METRIC_LOG_TEMPERATURE: &str = "metric_loss.log_temperature";

/// The learnable log temperature of the weighted metric loss, added to `varmap` when the run
/// uses it (before the optimiser is built, so that it is trained and checkpointed).
pub fn metric_log_temperature(
    cfg: &TrainConfig,
    varmap: &VarMap,
    device: &Device,
) -> Result<Option<Tensor>> {
    if cfg.method != Method::CxrCml || cfg.loss.metric != MetricLoss::Weighted {
        return Ok(None);
    }
    let init = candle_nn::Init::Const(cfg.loss.temperature_init.ln());
    Ok(Some(varmap.get(
        (),
        METRIC_LOG_TEMPERATURE,
        init,
        DType::F32,
        device,
    )?))
}

/// `model` for evaluation: the same architecture and compute dtype over the parameters of
/// `varmap` as detached tensors (sharing the variables' storage, nothing is copied), so its
/// forward records no autograd graph: each activation is freed once the next layer has used
/// it, instead of being kept for a backward pass that evaluation never runs.
pub fn for_evaluation(varmap: &VarMap, model: &ClipModel, device: &Device) -> Result<ClipModel> {
    let tensors: HashMap<String, Tensor> = named_vars(varmap)
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().detach()))
        .collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(ClipModel::new(vb, model.config())?.with_compute_dtype(model.compute_dtype())?)
}
