//! Trainability: every parameter receives a gradient, and the gradients are right
//! (central finite differences in f64).

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{contrastive_loss, det_values, named_vars, reseed};
use cxr_clip::{Activation, ClipConfig, ClipModel};

/// A very small model: vocabulary 40, context 8, 16x16 images with patch 8.
fn micro_config(act: Activation) -> ClipConfig {
    let mut cfg = ClipConfig::tiny(16);
    cfg.vision_config.hidden_size = 8;
    cfg.vision_config.intermediate_size = 16;
    cfg.vision_config.num_attention_heads = 2;
    cfg.vision_config.hidden_act = act;
    cfg.text_config.vocab_size = 40;
    cfg.text_config.max_position_embeddings = 8;
    cfg.text_config.hidden_size = 8;
    cfg.text_config.intermediate_size = 16;
    cfg.text_config.num_attention_heads = 2;
    cfg.text_config.eos_token_id = 39;
    cfg.text_config.hidden_act = act;
    cfg.projection_dim = 6;
    cfg
}

/// Deterministic inputs, pixels of unit variance ([`det_values`]: candle's CPU `randn` cannot
/// be seeded, and the finite-difference tolerance should not depend on luck).
fn inputs(dtype: DType, dev: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let pixels =
        Tensor::from_vec(det_values(3 * 3 * 16 * 16, 99), (3, 3, 16, 16), dev)?.to_dtype(dtype)?;
    // End-of-text (39) at different positions, padding after it as the HF tokenizer does.
    let ids: Vec<u32> = vec![
        1, 5, 7, 39, 39, 39, 39, 39, //
        1, 2, 3, 4, 5, 6, 7, 39, //
        1, 9, 39, 0, 0, 0, 0, 0,
    ];
    let ids = Tensor::from_vec(ids, (3, 8), dev)?;
    Ok((pixels, ids))
}

fn build(cfg: &ClipConfig, dtype: DType) -> anyhow::Result<(ClipModel, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
    let model = ClipModel::new(vb, cfg)?;
    Ok((model, varmap))
}

#[test]
fn every_parameter_gets_a_finite_nonzero_gradient() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = micro_config(Activation::QuickGelu);
    let (model, varmap) = build(&cfg, DType::F32)?;
    reseed(&varmap, DType::F32, 0.1)?;
    let (pixels, ids) = inputs(DType::F32, &dev)?;
    let grads = contrastive_loss(&model, &pixels, &ids)?.backward()?;

    let vars = named_vars(&varmap);
    // 2 layers x 16 tensors per tower, + 4 vision embeddings/norms x ..., checked by name below.
    assert_eq!(
        vars.len(),
        2 * (2 * 16) + 9 + 2 + 3,
        "{:?}",
        vars.iter().map(|v| &v.0).collect::<Vec<_>>()
    );
    for name in [
        "logit_scale",
        "vision_model.embeddings.class_embedding",
        "vision_model.embeddings.position_embedding.weight",
        "vision_model.embeddings.patch_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "text_model.embeddings.token_embedding.weight",
        "visual_projection.weight",
        "text_projection.weight",
        "vision_model.pre_layrnorm.weight",
        "text_model.encoder.layers.1.self_attn.q_proj.bias",
    ] {
        assert!(
            vars.iter().any(|(n, _)| n == name),
            "missing variable {name}"
        );
    }
    let mut bad = Vec::new();
    let mut key_bias = 0;
    for (name, var) in &vars {
        match grads.get(var.as_tensor()) {
            None => bad.push(format!("{name}: no gradient")),
            Some(g) => {
                let g = g.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
                let max = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                if g.iter().any(|x| !x.is_finite()) {
                    bad.push(format!("{name}: non-finite gradient"));
                } else if name.ends_with("self_attn.k_proj.bias") {
                    // Softmax is invariant to adding the same score to a whole row, and a key
                    // bias adds q.b_k to every score of row q: its true gradient is zero (as in
                    // PyTorch); only round-off reaches it. It is still a tracked variable.
                    key_bias += 1;
                    assert!(
                        max < 1e-5,
                        "{name}: gradient {max} should be round-off only"
                    );
                } else if max < 1e-12 {
                    bad.push(format!("{name}: all-zero gradient (max |g| = {max:e})"));
                }
            }
        }
    }
    assert_eq!(key_bias, 4, "one key bias per layer per tower");
    assert!(
        bad.is_empty(),
        "parameters without a usable gradient:\n{}",
        bad.join("\n")
    );
    Ok(())
}

/// Compares autograd with central differences for a few entries of every parameter.
fn finite_difference_check(act: Activation) -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = micro_config(act);
    let (model, varmap) = build(&cfg, DType::F64)?;
    reseed(&varmap, DType::F64, 0.1)?;
    let (pixels, ids) = inputs(DType::F64, &dev)?;
    let loss = |m: &ClipModel| -> anyhow::Result<f64> {
        Ok(contrastive_loss(m, &pixels, &ids)?.to_scalar::<f64>()?)
    };
    let grads = contrastive_loss(&model, &pixels, &ids)?.backward()?;
    // Near the optimum eps^(1/3) for f64 central differences: truncation error ~h^2, round-off
    // ~eps/h, both far below the tolerances.
    let h = 1e-5;
    let mut worst = (0.0f64, String::new());
    let mut checked = 0;
    for (name, var) in named_vars(&varmap) {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"))
            .flatten_all()?
            .to_vec1::<f64>()?;
        let shape = var.as_tensor().shape().clone();
        let base = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
        // The entry with the largest analytic gradient plus two spread-out ones. For the token
        // embedding the large one is a used row (unused rows correctly have zero gradient).
        let argmax = (0..grad.len())
            .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
            .unwrap_or(0);
        for idx in [argmax, base.len() / 3, (2 * base.len()) / 3] {
            let mut plus = base.clone();
            plus[idx] += h;
            var.set(&Tensor::from_vec(plus, shape.clone(), &dev)?)?;
            let lp = loss(&model)?;
            let mut minus = base.clone();
            minus[idx] -= h;
            var.set(&Tensor::from_vec(minus, shape.clone(), &dev)?)?;
            let lm = loss(&model)?;
            var.set(&Tensor::from_vec(base.clone(), shape.clone(), &dev)?)?;
            let numeric = (lp - lm) / (2.0 * h);
            // Relative error with an absolute floor for (near-)zero gradients such as the key
            // biases', whose true gradient is zero.
            let err = (numeric - grad[idx]).abs() / (1e-3 + numeric.abs().max(grad[idx].abs()));
            if err > worst.0 {
                worst = (
                    err,
                    format!("{name}[{idx}]: autograd {} vs numeric {numeric}", grad[idx]),
                );
            }
            checked += 1;
        }
    }
    eprintln!(
        "{act:?}: worst relative error {:.2e} at {}",
        worst.0, worst.1
    );
    assert!(checked >= 3 * 40, "only {checked} entries checked");
    // gelu_erf's backward in candle uses 6-digit constants, hence the looser bound there.
    let tol = if act == Activation::Gelu { 5e-5 } else { 2e-6 };
    assert!(
        worst.0 < tol,
        "worst relative error {:.2e} at {}",
        worst.0,
        worst.1
    );
    Ok(())
}

#[test]
fn finite_differences_match_autograd_quick_gelu() -> anyhow::Result<()> {
    finite_difference_check(Activation::QuickGelu)
}

#[test]
fn finite_differences_match_autograd_gelu() -> anyhow::Result<()> {
    finite_difference_check(Activation::Gelu)
}
