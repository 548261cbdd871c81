//! bf16 mixed precision (`ClipModel::with_compute_dtype(DType::BF16)`) against the f32 model
//! with the same f32 parameters: embeddings within a bound derived from bf16's precision,
//! gradients of the f32 master parameters pointing the same way, and the default (f32) path
//! unchanged.
//!
//! The bound. bf16 keeps 8 significant bits, so rounding a value to it has a relative error of
//! at most u = 2^-9, and one bf16 matmul (both inputs and the output rounded, products
//! accumulated in f32) has a relative error of at most 3u = 1.5 * 2^-8 to first order. Along
//! a tower of L blocks the longest chain of rounded matmuls is the patch embedding (vision),
//! per block q/k/v, q k^T, probs v, out_proj (the probabilities are rounded once more), fc1,
//! the activation (rounded) and fc2, then the projection: at most 2 + 7L roundings of 3u
//! each. First-order errors add (the f32 residual stream and LayerNorm do not amplify a
//! relative error), so an embedding's relative L2 error is at most (2 + 7L) * 1.5 * 2^-8:
//! 0.094 for the tiny model's L = 2. The errors are of random sign, so the error measured is
//! much smaller (0.9% for images, 1.3% for texts; docs/gpu.md), and the test also holds the
//! cosine of each bf16 embedding with its f32 one above 1 - bound^2 / 2.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{contrastive_loss, det_values, named_vars, reseed};
use cxr_clip::{ClipConfig, ClipModel, CLIP_EOT_ID};

const BATCH: usize = 8;
const IMAGE: usize = 32;
const CONTEXT: usize = 12;

/// Deterministic values uniform in [-sqrt(3), sqrt(3)] (unit variance); candle's CPU `randn`
/// cannot be seeded.
/// The tiny training model with deterministic f32 weights of CLIP's scale: random weights get
/// a spread of 1/sqrt(fan_in), LayerNorm weights 1 +- 0.1, biases +- 0.02, the logit scale is
/// kept.
fn tiny_model() -> anyhow::Result<(ClipModel, VarMap)> {
    let cfg = ClipConfig::tiny(IMAGE);
    let varmap = VarMap::new();
    let model = ClipModel::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &cfg,
    )?;
    reseed(&varmap, DType::F32, 0.02)?;
    Ok((model, varmap))
}

/// Images of unit-variance pixels and texts of different lengths ending in end-of-text.
fn inputs() -> anyhow::Result<(Tensor, Tensor)> {
    let pixels = Tensor::from_vec(
        det_values(BATCH * 3 * IMAGE * IMAGE, 99)
            .into_iter()
            .map(|v| v as f32)
            .collect::<Vec<f32>>(),
        (BATCH, 3, IMAGE, IMAGE),
        &Device::Cpu,
    )?;
    let mut ids = Vec::new();
    for row in 0..BATCH {
        let len = 3 + row % (CONTEXT - 3);
        for pos in 0..CONTEXT {
            ids.push(match pos {
                0 => 49406,
                p if p < len => 300 + (row * 131 + p * 977) as u32 % 40_000,
                _ => CLIP_EOT_ID,
            });
        }
    }
    Ok((
        pixels,
        Tensor::from_vec(ids, (BATCH, CONTEXT), &Device::Cpu)?,
    ))
}

/// First-order bound on an embedding's relative error (module docs): (2 + 7L) * 1.5 * 2^-8.
fn relative_error_bound(layers: usize) -> f64 {
    (2 + 7 * layers) as f64 * 1.5 * 2f64.powi(-8)
}

/// Per row: (max relative L2 error, min cosine) of `b` against `a`.
fn row_errors(a: &Tensor, b: &Tensor) -> anyhow::Result<(f64, f64)> {
    let a = a.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let b = b.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let (mut worst_rel, mut worst_cos) = (0f64, 1f64);
    for (x, y) in a.iter().zip(&b) {
        let dot: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        let nx = x.iter().map(|p| p * p).sum::<f64>().sqrt();
        let ny = y.iter().map(|p| p * p).sum::<f64>().sqrt();
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q) * (p - q))
            .sum::<f64>()
            .sqrt();
        worst_rel = worst_rel.max(diff / nx);
        worst_cos = worst_cos.min(dot / (nx * ny));
    }
    Ok((worst_rel, worst_cos))
}

#[test]
fn bf16_forward_matches_f32_within_the_bound() -> anyhow::Result<()> {
    let (f32_model, _varmap) = tiny_model()?;
    let bf16_model = f32_model.clone().with_compute_dtype(DType::BF16)?;
    assert_eq!(bf16_model.compute_dtype(), DType::BF16);
    assert_eq!(f32_model.compute_dtype(), DType::F32);
    let (pixels, ids) = inputs()?;
    let layers = ClipConfig::tiny(IMAGE).vision_config.num_hidden_layers;
    let bound = relative_error_bound(layers);
    for (what, a, b) in [
        (
            "image",
            f32_model.encode_image(&pixels)?,
            bf16_model.encode_image(&pixels)?,
        ),
        (
            "text",
            f32_model.encode_text(&ids)?,
            bf16_model.encode_text(&ids)?,
        ),
    ] {
        // Embeddings come back in the master dtype, ready for an f32 loss.
        assert_eq!(b.dtype(), DType::F32, "{what}");
        assert_eq!(a.dims(), b.dims(), "{what}");
        let (rel, cos) = row_errors(&a, &b)?;
        eprintln!("{what}: max relative error {rel:.5} (bound {bound:.4}), min cosine {cos:.6}");
        assert!(rel > 0.0, "{what}: the bf16 path computed nothing in bf16");
        assert!(rel < bound, "{what}: relative error {rel} >= {bound}");
        assert!(cos > 1.0 - bound * bound / 2.0, "{what}: cosine {cos}");
    }
    Ok(())
}

fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb).max(f64::MIN_POSITIVE)
}

/// The gradient reaching each f32 master parameter through the bf16 path is f32 and points
/// the way of the f32 gradient: cosine > 0.99 over all parameters together and for every
/// parameter tensor (measured: 0.99988 and at worst 0.9995), except the key biases, whose
/// exact gradient is zero (both computed ones are rounding noise, bounded below).
#[test]
fn bf16_gradients_of_f32_masters_match_f32_gradients() -> anyhow::Result<()> {
    let (f32_model, varmap) = tiny_model()?;
    let bf16_model = f32_model.clone().with_compute_dtype(DType::BF16)?;
    let (pixels, ids) = inputs()?;
    let loss32 = contrastive_loss(&f32_model, &pixels, &ids)?;
    let loss16 = contrastive_loss(&bf16_model, &pixels, &ids)?;
    assert_eq!(loss16.dtype(), DType::F32);
    let (l32, l16) = (
        loss32.to_scalar::<f32>()? as f64,
        loss16.to_scalar::<f32>()? as f64,
    );
    assert!(
        (l32 - l16).abs() < 0.02 * l32,
        "loss {l16} (bf16) vs {l32} (f32)"
    );
    let g32 = loss32.backward()?;
    let g16 = loss16.backward()?;
    let (mut all32, mut all16) = (Vec::new(), Vec::new());
    let mut worst = (String::new(), 1f64);
    let mut key_bias = Vec::new();
    let mut norms = std::collections::HashMap::new();
    for (name, var) in named_vars(&varmap) {
        assert_eq!(var.dtype(), DType::F32, "{name}: master weights stay f32");
        let a = g32.get(var.as_tensor()).expect("f32 gradient");
        let b = g16
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient through the bf16 path"));
        assert_eq!(b.dtype(), DType::F32, "{name}: gradient of an f32 master");
        let a = a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let b = b.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        assert!(
            b.iter().all(|x| x.is_finite()),
            "{name}: non-finite gradient"
        );
        let c = cosine(&a, &b);
        norms.insert(name.clone(), norm(&a));
        // The key bias adds the same q.b_k to every score of a query row, which softmax
        // ignores: its exact gradient is zero and both computed ones are rounding noise.
        let structural_zero = name.ends_with("k_proj.bias");
        if structural_zero {
            let (na, nb) = (norm(&a), norm(&b));
            eprintln!("{name}: |gradient| {na:.2e} (f32), {nb:.2e} (bf16)");
            key_bias.push((name.clone(), na, nb));
        } else if c < worst.1 {
            worst = (name.clone(), c);
        }
        all32.extend(a);
        all16.extend(b);
    }
    // Against the same layer's query-bias gradient: the f32 noise is below 1e-5 of it, the
    // bf16 noise (the per-row sums of the score gradients, zero in exact arithmetic, are
    // formed from bf16-rounded terms) below 2^-5 of it (measured: about 2^-8).
    assert_eq!(key_bias.len(), 4, "one key bias per block");
    for (name, na, nb) in &key_bias {
        let q = norms[&name.replace("k_proj", "q_proj")];
        assert!(
            *na < 1e-5 * q,
            "{name}: f32 |gradient| {na} vs query bias {q}"
        );
        assert!(
            *nb < q / 32.0,
            "{name}: bf16 |gradient| {nb} vs query bias {q}"
        );
    }
    let overall = cosine(&all32, &all16);
    eprintln!(
        "gradient cosine: all {overall:.6}, worst tensor {} {:.6}",
        worst.0, worst.1
    );
    assert!(overall > 0.99, "overall gradient cosine {overall}");
    assert!(worst.1 > 0.99, "{} gradient cosine {}", worst.0, worst.1);
    Ok(())
}

/// The default compute dtype is the parameters' and leaves the forward bit-identical, and a
/// compute dtype wider than the parameters or not floating point is refused.
#[test]
fn f32_compute_is_the_plain_model_and_bad_dtypes_are_refused() -> anyhow::Result<()> {
    let (model, _varmap) = tiny_model()?;
    let same = model.clone().with_compute_dtype(DType::F32)?;
    let (pixels, ids) = inputs()?;
    let a = model
        .encode_image(&pixels)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let b = same
        .encode_image(&pixels)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(a, b);
    let a = model.encode_text(&ids)?.flatten_all()?.to_vec1::<f32>()?;
    let b = same.encode_text(&ids)?.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(a, b);
    for bad in [DType::F64, DType::U32] {
        let err = model.clone().with_compute_dtype(bad).unwrap_err();
        assert!(err.to_string().contains("compute dtype"), "{err}");
    }
    Ok(())
}
