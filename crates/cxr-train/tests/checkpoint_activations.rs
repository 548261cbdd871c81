//! A step's segmented gradient (`Objective::loss_and_grads`: the loss's gradient with respect
//! to the embeddings, then each tower's backward pass block by block) changes how the step
//! computes its gradients, not what it computes: CXR-CML's step (CLIP loss plus the triplet
//! loss on pseudo-labels) gives losses and parameter gradients bit-identical to one
//! `backward()` of the whole graph (`Objective::loss_and_grads_whole_graph`) with
//! `loop.checkpoint_activations` off, on (every block recomputed) and at one block, on the
//! whole batch and in GradCache micro-batches (`loop.accumulate = 2`), in f32 and bf16 mixed
//! precision. The one exception, explained where it is checked: with micro-batches the token
//! embedding's gradient adds the same terms in another order.
//!
//! Bit-identical, not close: the checkpointed towers run the same ops on the same values, and
//! each gradient is the same sequence of floating-point operations (see
//! `crates/cxr-clip/tests/checkpointing.rs`); the loss's gradient with respect to the
//! embeddings is taken on detached embeddings, which is exactly what the whole batch's
//! backward sends into them.

use candle_core::{Device, Tensor};
use cxr_text::ClipTokenizer;
use cxr_train::config::{ActivationCheckpointing, TrainConfig};
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

/// One step's outcome, through the whole graph or segmented as the config says.
fn one_step(cfg: &TrainConfig, whole_graph: bool) -> Result<Outcome, Box<dyn std::error::Error>> {
    let (varmap, clip) = model::build_model(cfg, &Device::Cpu)?;
    let (pixels, ids) = batch(cfg)?;
    let params = model::trainable_vars(cfg, &varmap);
    let mut objective = step::Objective::new(cfg, None)?;
    let out = if whole_graph {
        objective.loss_and_grads_whole_graph(&clip, &pixels, &ids)?
    } else {
        objective.loss_and_grads(&clip, &pixels, &ids, &params)?
    };
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

/// Relative max-norm distance of two gradients given as f32 bits.
fn relative_error(a: &[u32], b: &[u32]) -> f64 {
    let (mut diff, mut scale) = (0f64, f64::MIN_POSITIVE);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f32::from_bits(x) as f64, f32::from_bits(y) as f64);
        diff = diff.max((x - y).abs());
        scale = scale.max(x.abs());
    }
    diff / scale
}

#[test]
fn segmented_steps_are_bit_identical_to_whole_graph_ones() -> TestResult {
    for precision in ["loop.precision=f32", "loop.precision=bf16"] {
        for accumulate in ["loop.accumulate=1", "loop.accumulate=2"] {
            let whole = one_step(&config(&[precision, accumulate])?, true)?;
            let mut first: Option<Outcome> = None;
            for checkpoint in [
                "loop.checkpoint_activations=false",
                "loop.checkpoint_activations=true",
                "loop.checkpoint_activations=1",
            ] {
                let setting = [precision, accumulate, checkpoint];
                let segmented = one_step(&config(&setting)?, false)?;
                assert_eq!(whole.0, segmented.0, "{setting:?}: losses differ");
                assert_eq!(whole.1.len(), segmented.1.len());
                for ((name, a), (_, b)) in whole.1.iter().zip(&segmented.1) {
                    let (Some(a), Some(b)) = (a, b) else {
                        panic!("{setting:?}: {name} got no gradient");
                    };
                    // The one exception: with micro-batches, the whole graph's backward adds
                    // each micro-batch's token rows into the same accumulator in turn
                    // (candle's index_add into the running sum), the segmented path sums
                    // each micro-batch's rows first and then the two sums: the same terms
                    // added in another order. A lost or doubled contribution would be an
                    // error of order 1.
                    if accumulate.ends_with('2')
                        && name == "text_model.embeddings.token_embedding.weight"
                    {
                        let e = relative_error(a, b);
                        assert!(
                            e < 1e-5,
                            "{setting:?}: the gradient of {name} is {e:.2e} away"
                        );
                    } else {
                        assert!(a == b, "{setting:?}: the gradient of {name} differs");
                    }
                }
                // And the segmented settings agree with each other bit for bit.
                match &first {
                    None => first = Some(segmented),
                    Some(f) => assert!(*f == segmented, "{setting:?} differs from `false`"),
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_key_defaults_to_off_and_reads_from_toml() -> TestResult {
    let cfg = TrainConfig::demo();
    assert_eq!(
        cfg.train_loop.checkpoint_activations,
        ActivationCheckpointing::Off
    );
    for (text, want) in [
        ("true", ActivationCheckpointing::All),
        ("false", ActivationCheckpointing::Off),
        ("3", ActivationCheckpointing::Lowest(3)),
    ] {
        let read =
            TrainConfig::from_toml_over(&cfg, &format!("[loop]\ncheckpoint_activations = {text}"))?;
        assert_eq!(read.train_loop.checkpoint_activations, want, "{text}");
        // Written back as it was read (a run's saved config resumes with the same setting).
        let again = TrainConfig::from_toml_over(&TrainConfig::demo(), &read.to_toml())?;
        assert_eq!(again.train_loop.checkpoint_activations, want, "{text}");
    }
    for bad in ["-1", "\"some\"", "1.5"] {
        let e =
            TrainConfig::from_toml_over(&cfg, &format!("[loop]\ncheckpoint_activations = {bad}"))
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("true, false or a number of transformer blocks"),
            "{bad}: {e}"
        );
    }
    Ok(())
}
