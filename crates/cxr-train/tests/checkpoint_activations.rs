//! `loop.checkpoint_activations = true` changes how a step computes its gradients (the towers
//! kept at their block boundaries and recomputed block by block in the backward pass), not
//! what it computes: CXR-CML's step (CLIP loss plus the triplet loss on pseudo-labels) gives
//! bit-identical losses and parameter gradients with and without it, on the whole batch and
//! in GradCache micro-batches (`loop.accumulate = 2`), in f32 and bf16 mixed precision.
//!
//! Bit-identical, not close: the checkpointed towers run the same ops on the same values, and
//! each gradient is the same sequence of floating-point operations (see
//! `crates/cxr-clip/tests/checkpointing.rs`); the loss's gradient with respect to the
//! embeddings is taken on detached embeddings, which is exactly what the whole batch's
//! backward sends into them.

use candle_core::{Device, Tensor};
use cxr_text::ClipTokenizer;
use cxr_train::config::TrainConfig;
use cxr_train::{model, step};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BATCH: usize = 8;
const CONTEXT: usize = 32;

/// The demo's CXR-CML config on the tiny model, with per-batch fits of 3 clusters so that the
/// triplet loss has triplets in a batch of 8.
fn config(settings: &[&str]) -> Result<TrainConfig, Box<dyn std::error::Error>> {
    let mut cfg = TrainConfig::demo();
    cfg.model.image_size = 32;
    cfg.model.context_length = CONTEXT;
    cfg.train_loop.batch_size = BATCH;
    cfg.set("mixture.k=3")?;
    cfg.set("mixture.source=per-batch")?;
    for s in settings {
        cfg.set(s)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Deterministic pixels (a smooth function of the index) and eight meta-label texts.
fn batch(cfg: &TrainConfig) -> Result<(Tensor, Tensor), Box<dyn std::error::Error>> {
    let side = cfg.model.image_size;
    let n = BATCH * 3 * side * side;
    let px: Vec<f32> = (0..n)
        .map(|i| ((i as f32 * 0.37).sin() + (i as f32 * 0.011).cos()) * 0.8)
        .collect();
    let pixels = Tensor::from_vec(px, (BATCH, 3, side, side), &Device::Cpu)?;
    let texts = [
        "pleural effusion is present",
        "edema is present",
        "cardiomegaly is present, edema is present",
        "no finding is present",
        "pneumothorax is present",
        "atelectasis is present, pleural effusion is present, consolidation is present",
        "mass is present",
        "nodule is present, mass is present",
    ];
    let tokens = ClipTokenizer::bundled()?.encode_batch(&texts, CONTEXT)?;
    let ids = Tensor::from_vec(tokens.ids, (BATCH, CONTEXT), &Device::Cpu)?;
    Ok((pixels, ids))
}

/// Losses (total, clip, metric) and every parameter's gradient as raw bits, by name.
type Outcome = ([u32; 3], Vec<(String, Option<Vec<u32>>)>);

fn one_step(cfg: &TrainConfig) -> Result<Outcome, Box<dyn std::error::Error>> {
    let (varmap, clip) = model::build_model(cfg, &Device::Cpu)?;
    let (pixels, ids) = batch(cfg)?;
    let params = model::trainable_vars(cfg, &varmap);
    let mut objective = step::Objective::new(cfg, None)?;
    let out = objective.loss_and_grads(&clip, &pixels, &ids, &params)?;
    let scalar = |t: &Tensor| -> candle_core::Result<u32> { Ok(t.to_scalar::<f32>()?.to_bits()) };
    let metric = out.metric.as_ref().ok_or("CXR-CML has a metric loss")?;
    assert!(
        metric.to_scalar::<f32>()? > 0.0,
        "the triplet loss should be active"
    );
    let losses = [scalar(&out.total)?, scalar(&out.clip)?, scalar(metric)?];
    let grads = model::named_vars(&varmap)
        .into_iter()
        .map(|(name, var)| {
            let g = out
                .grads
                .get(var.as_tensor())
                .map(|g| -> candle_core::Result<Vec<u32>> {
                    Ok(g.flatten_all()?
                        .to_vec1::<f32>()?
                        .into_iter()
                        .map(f32::to_bits)
                        .collect())
                })
                .transpose()?;
            Ok((name, g))
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok((losses, grads))
}

#[test]
fn checkpointed_steps_are_bit_identical_to_ordinary_ones() -> TestResult {
    for setting in [
        &["loop.accumulate=1"][..],
        &["loop.accumulate=2"],
        &["loop.accumulate=1", "loop.precision=bf16"],
    ] {
        let plain = one_step(&config(setting)?)?;
        let mut with = setting.to_vec();
        with.push("loop.checkpoint_activations=true");
        let checkpointed = one_step(&config(&with)?)?;
        assert_eq!(plain.0, checkpointed.0, "{setting:?}: losses differ");
        assert_eq!(plain.1.len(), checkpointed.1.len());
        for ((name, a), (_, b)) in plain.1.iter().zip(&checkpointed.1) {
            assert!(a.is_some(), "{setting:?}: {name} got no gradient");
            assert!(a == b, "{setting:?}: the gradient of {name} differs");
        }
    }
    Ok(())
}

#[test]
fn the_key_defaults_to_off_and_reads_from_toml() -> TestResult {
    let cfg = TrainConfig::demo();
    assert!(!cfg.train_loop.checkpoint_activations);
    let cfg = TrainConfig::from_toml_over(&cfg, "[loop]\ncheckpoint_activations = true")?;
    assert!(cfg.train_loop.checkpoint_activations);
    Ok(())
}
