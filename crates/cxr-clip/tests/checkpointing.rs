//! Activation checkpointing (`ClipModel::checkpoint_image` / `checkpoint_text` and
//! `Checkpointed::backward`) against the ordinary `backward()` of the same surrogate
//! `sum(image_embeddings * G_img) + sum(text_embeddings * G_txt)`, for every parameter of
//! both towers of the tiny model (two layers a tower), in f32 and under bf16 mixed precision,
//! with every segment recomputed, none, the lowest layer, and more layers than there are.
//!
//! The bound is zero: embeddings and gradients must be bit-identical. The checkpointed pass
//! runs the same ops in the same dtypes on the same values, so the forward is bit-identical.
//! Backward: the seed of each segment, the gradient of `sum(output * g)`, is `1 * g`, exactly
//! `g`; and every path from the loss into a segment passes through the segment's output, so
//! candle's depth-first topological order visits a segment's nodes in the same relative order
//! in the whole graph as in the segment's own graph. Each gradient is then the same sequence
//! of floating-point operations, including the order in which the contributions reaching a
//! tensor used several times (a block's input: the residual add, LayerNorm's mean and
//! centring) are added. Any tolerance would only hide a change of that order or a lost
//! contribution.

#[allow(dead_code)] // contrastive_loss serves the other tests
mod common;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{det_values, named_vars, reseed};
use cxr_clip::{ClipConfig, ClipModel, Recompute, CLIP_EOT_ID};

const BATCH: usize = 6;
const IMAGE: usize = 32;
const CONTEXT: usize = 16;

fn tiny_model() -> anyhow::Result<(ClipModel, VarMap)> {
    let varmap = VarMap::new();
    let model = ClipModel::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &ClipConfig::tiny(IMAGE),
    )?;
    reseed(&varmap, DType::F32, 0.02)?;
    Ok((model, varmap))
}

fn tensor(n: usize, seed: u64, shape: &[usize]) -> anyhow::Result<Tensor> {
    let vals: Vec<f32> = det_values(n, seed).into_iter().map(|v| v as f32).collect();
    Ok(Tensor::from_vec(vals, shape, &Device::Cpu)?)
}

/// Pixels, and texts ending in end-of-text at different positions (the longest at 12 of 16,
/// so the text tower truncates), padded with zeros after it.
fn inputs() -> anyhow::Result<(Tensor, Tensor)> {
    let pixels = tensor(BATCH * 3 * IMAGE * IMAGE, 7, &[BATCH, 3, IMAGE, IMAGE])?;
    let mut ids = vec![0u32; BATCH * CONTEXT];
    for row in 0..BATCH {
        let eot = 2 + (row * 5) % 11;
        let r = &mut ids[row * CONTEXT..(row + 1) * CONTEXT];
        r[0] = 49406;
        for (p, slot) in r.iter_mut().enumerate().take(eot).skip(1) {
            *slot = 300 + (row * 131 + p * 977) as u32 % 40_000;
        }
        r[eot] = CLIP_EOT_ID;
    }
    Ok((
        pixels,
        Tensor::from_vec(ids, (BATCH, CONTEXT), &Device::Cpu)?,
    ))
}

/// Whether two tensors hold the same bits; on a difference, the max-norm relative error.
fn identical(a: &Tensor, b: &Tensor) -> anyhow::Result<Result<(), f64>> {
    let (x, y) = (
        a.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
    );
    if a.dtype() == b.dtype() && x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()) {
        return Ok(Ok(()));
    }
    let (a, b) = (a.to_dtype(DType::F64)?, b.to_dtype(DType::F64)?);
    let diff = (&a - &b)?.abs()?.max_all()?.to_scalar::<f64>()?;
    let scale = a.abs()?.max_all()?.to_scalar::<f64>()?;
    Ok(Err(diff / scale.max(f64::MIN_POSITIVE)))
}

/// Checkpointed against ordinary gradients for the model computing in `compute`, for each
/// recomputation setting.
fn check(compute: DType) -> anyhow::Result<()> {
    for recompute in [
        Recompute::All,
        Recompute::Lowest(0),
        Recompute::Lowest(1),
        Recompute::Lowest(5),
    ] {
        check_with(compute, recompute)?;
    }
    Ok(())
}

fn check_with(compute: DType, recompute: Recompute) -> anyhow::Result<()> {
    let (model, varmap) = tiny_model()?;
    let model = model.with_compute_dtype(compute)?;
    let (pixels, ids) = inputs()?;
    let proj = model.config().projection_dim;
    let g_img = tensor(BATCH * proj, 11, &[BATCH, proj])?;
    let g_txt = tensor(BATCH * proj, 13, &[BATCH, proj])?;

    let img = model.encode_image(&pixels)?;
    let txt = model.encode_text(&ids)?;
    let surrogate = ((&img * &g_img)?.sum_all()? + (&txt * &g_txt)?.sum_all()?)?;
    let want = surrogate.backward()?;

    let image = model.checkpoint_image(&pixels, recompute)?;
    let text = model.checkpoint_text(&ids, recompute)?;
    for (what, a, b) in [
        ("image", &img, image.embedding()),
        ("text", &txt, text.embedding()),
    ] {
        if let Err(e) = identical(a, b)? {
            panic!(
                "{compute:?} {recompute:?}: checkpointed {what} embeddings differ (relative \
                 error {e:.3e})"
            );
        }
    }
    let got_img = image.backward(&g_img)?;
    let got_txt = text.backward(&g_txt)?;

    let mut differ = Vec::new();
    let mut compared = 0;
    for (name, var) in named_vars(&varmap) {
        let p = var.as_tensor();
        let (got, other): (&GradStore, &GradStore) =
            if name.starts_with("vision_model.") || name.starts_with("visual_projection.") {
                (&got_img, &got_txt)
            } else {
                (&got_txt, &got_img)
            };
        assert!(
            other.get(p).is_none(),
            "{name} got a gradient from the wrong tower"
        );
        match (want.get(p), got.get(p)) {
            (None, None) => assert_eq!(name, "logit_scale", "{name} got no gradient at all"),
            (Some(w), Some(g)) => {
                assert_eq!(g.dtype(), p.dtype(), "{name}");
                // A parameter's gradient with a graph would keep activations alive.
                assert!(
                    !g.track_op(),
                    "{recompute:?}: the gradient of {name} carries a graph"
                );
                if let Err(e) = identical(w, g)? {
                    differ.push(format!("{name} (relative error {e:.3e})"));
                }
                compared += 1;
            }
            (w, g) => panic!(
                "{name}: ordinary gradient {}, checkpointed {}",
                w.is_some(),
                g.is_some()
            ),
        }
    }
    // Every parameter but the logit scale (which the towers do not use).
    assert_eq!(compared, named_vars(&varmap).len() - 1);
    assert!(
        differ.is_empty(),
        "{compute:?} {recompute:?}: checkpointed gradients differ from the ordinary ones: \
         {differ:?}"
    );
    Ok(())
}

#[test]
fn checkpointed_gradients_are_the_ordinary_ones_in_f32() -> anyhow::Result<()> {
    check(DType::F32)
}

#[test]
fn checkpointed_gradients_are_the_ordinary_ones_in_bf16_mixed_precision() -> anyhow::Result<()> {
    check(DType::BF16)
}

/// A tower whose parameters are all detached (`loop.freeze`) gets no gradient and costs no
/// recomputation; the other tower's gradients are unchanged; a gradient of the wrong shape is
/// an error that says what was expected.
#[test]
fn a_frozen_tower_gets_nothing_and_bad_gradients_are_refused() -> anyhow::Result<()> {
    let (_, varmap) = tiny_model()?;
    let tensors = named_vars(&varmap)
        .into_iter()
        .map(|(name, var)| {
            let t = if name.starts_with("text_") {
                var.as_tensor().detach()
            } else {
                var.as_tensor().clone()
            };
            (name, t)
        })
        .collect();
    let model = ClipModel::new(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        &ClipConfig::tiny(IMAGE),
    )?;
    let (pixels, ids) = inputs()?;
    let proj = model.config().projection_dim;
    let g = tensor(BATCH * proj, 17, &[BATCH, proj])?;
    let vision_vars = named_vars(&varmap)
        .into_iter()
        .filter(|(n, _)| n.starts_with("vision_model.") || n.starts_with("visual_projection."))
        .count();
    for recompute in [Recompute::All, Recompute::Lowest(0), Recompute::Lowest(1)] {
        assert!(
            model
                .checkpoint_text(&ids, recompute)?
                .backward(&g)?
                .get_ids()
                .next()
                .is_none(),
            "{recompute:?}"
        );
        let vision = model.checkpoint_image(&pixels, recompute)?.backward(&g)?;
        assert_eq!(vision.get_ids().count(), vision_vars, "{recompute:?}");
    }

    let wrong = tensor(BATCH * (proj + 1), 17, &[BATCH, proj + 1])?;
    let e = model
        .checkpoint_image(&pixels, Recompute::All)?
        .backward(&wrong)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("embedding gradient") && e.contains(&format!("{proj}")),
        "{e}"
    );
    Ok(())
}
