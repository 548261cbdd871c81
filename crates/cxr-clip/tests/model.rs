//! Shapes, input validation and the invariants of the forward pass.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use cxr_clip::{ClipConfig, ClipModel, Error, CLIP_EOT_ID};

fn tiny() -> anyhow::Result<(ClipModel, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Ok((ClipModel::new(vb, &ClipConfig::tiny(32))?, varmap))
}

fn ids(rows: &[&[u32]], len: usize) -> candle_core::Result<Tensor> {
    let mut flat = Vec::new();
    for r in rows {
        let mut row = r.to_vec();
        row.resize(len, 0);
        flat.extend(row);
    }
    Tensor::from_vec(flat, (rows.len(), len), &Device::Cpu)
}

#[test]
fn embeddings_have_projection_dim() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    let px = Tensor::randn(0f32, 1f32, (2, 3, 32, 32), &Device::Cpu)?;
    assert_eq!(model.encode_image(&px)?.dims(), &[2, 64]);
    let t = ids(
        &[&[49406, 320, 1125, CLIP_EOT_ID], &[49406, CLIP_EOT_ID]],
        77,
    )?;
    assert_eq!(model.encode_text(&t)?.dims(), &[2, 64]);
    let (per_image, per_text) = model.logits(&px, &t)?;
    assert_eq!(per_image.dims(), &[2, 2]);
    assert_eq!(per_text.dims(), &[2, 2]);
    assert_eq!(model.logit_scale().to_scalar::<f32>()?, 2.6592);
    Ok(())
}

#[test]
fn text_is_causal_and_pooled_at_first_eot() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    // Tokens after the first end-of-text must not change the embedding (causal mask + pooling),
    // nor must the padding length.
    let a = ids(&[&[49406, 320, 1125, CLIP_EOT_ID, 0, 0]], 10)?;
    let b = ids(&[&[49406, 320, 1125, CLIP_EOT_ID, 555, CLIP_EOT_ID, 7]], 10)?;
    let c = ids(&[&[49406, 320, 1125, CLIP_EOT_ID]], 4)?;
    let ea = model.encode_text(&a)?;
    for other in [&b, &c] {
        let d = (&ea - model.encode_text(other)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-5, "embedding changed by {d}");
    }
    // ...while a token before it does.
    let e = ids(&[&[49406, 321, 1125, CLIP_EOT_ID]], 4)?;
    let d = (&ea - model.encode_text(&e)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(d > 1e-4);
    Ok(())
}

#[test]
fn image_batch_rows_are_independent() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    let px = Tensor::randn(0f32, 1f32, (3, 3, 32, 32), &Device::Cpu)?;
    let all = model.encode_image(&px)?;
    let one = model.encode_image(&px.narrow(0, 1, 1)?)?;
    let d = (all.narrow(0, 1, 1)? - one)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(d < 1e-5, "{d}");
    Ok(())
}

#[test]
fn wrong_image_shape_is_an_error() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    let px = Tensor::zeros((1, 3, 24, 32), DType::F32, &Device::Cpu)?;
    let err = model.encode_image(&px).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
    assert!(err.to_string().contains("[batch, 3, 32, 32]"), "{err}");
    Ok(())
}

#[test]
fn text_without_eot_is_an_error() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    let err = model.encode_text(&ids(&[&[49406, 320]], 5)?).unwrap_err();
    assert!(err.to_string().contains("no end-of-text"), "{err}");
    Ok(())
}

#[test]
fn out_of_vocabulary_id_is_an_error() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    let err = model
        .encode_text(&ids(&[&[49406, 60000, CLIP_EOT_ID]], 5)?)
        .unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    Ok(())
}

#[test]
fn too_long_text_is_an_error() -> anyhow::Result<()> {
    let (model, _) = tiny()?;
    let err = model.encode_text(&ids(&[&[CLIP_EOT_ID]], 78)?).unwrap_err();
    assert!(err.to_string().contains("text length 78"), "{err}");
    Ok(())
}

#[test]
fn invalid_config_is_rejected_at_build() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let err = ClipModel::new(vb, &ClipConfig::tiny(36)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
}

#[test]
fn legacy_eos_id_pools_at_the_largest_id() -> anyhow::Result<()> {
    // Old hub configs say eos_token_id = 2; transformers then pools at argmax(input_ids), which
    // with CLIP's BPE is the first end-of-text token.
    let (model, varmap) = tiny()?;
    let mut cfg = model.config().clone();
    cfg.text_config.eos_token_id = 2;
    let legacy = ClipModel::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )?;
    // HF-style padding with the end token: the first one must be used.
    let t = ids(
        &[
            &[49406, 320, CLIP_EOT_ID, CLIP_EOT_ID, CLIP_EOT_ID],
            &[49406, 2, 9, CLIP_EOT_ID],
        ],
        6,
    )?;
    let d = (model.encode_text(&t)? - legacy.encode_text(&t)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert!(d < 1e-6, "{d}");
    Ok(())
}
