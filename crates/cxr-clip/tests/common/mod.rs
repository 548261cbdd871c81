//! Helpers shared by the gradient and mixed-precision tests: deterministic values, a
//! deterministic re-initialisation of every variable, and the trainer's shape of CLIP loss.

use candle_core::{DType, Tensor, Var, D};
use candle_nn::VarMap;
use cxr_clip::{l2_normalize, ClipModel};

/// `n` deterministic values of unit variance (uniform on +-sqrt(3)), from `seed` (xorshift).
pub fn det_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * 3f64.sqrt()
        })
        .collect()
}

/// The variables by name, in name order.
pub fn named_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().unwrap();
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Replaces every variable's init by deterministic values that depend only on its shape, so
/// that errors measured on them are the same on every run and machine (a spread measured
/// from the random init made the worst finite-difference error vary 20x between runs).
/// Constant inits keep their kind: LayerNorm weights (all ones) become 1 +- 0.1, zero biases
/// +- `bias_spread`; random weights get a fan-in spread 1/sqrt(fan_in), the scale of CLIP's
/// own init; the logit scale is kept. Values are computed in f64 and stored in `dtype`.
pub fn reseed(varmap: &VarMap, dtype: DType, bias_spread: f64) -> anyhow::Result<()> {
    for (i, (name, var)) in named_vars(varmap).into_iter().enumerate() {
        if name == "logit_scale" {
            continue;
        }
        let t = var.as_tensor().to_dtype(DType::F64)?.flatten_all()?;
        let min = t.min(0)?.to_scalar::<f64>()?;
        let max = t.max(0)?.to_scalar::<f64>()?;
        let dims = var.as_tensor().dims();
        let fan_in: usize = if dims.len() > 1 {
            dims[1..].iter().product()
        } else {
            dims[0]
        };
        let (centre, spread) = if min != max {
            (0.0, (fan_in as f64).powf(-0.5))
        } else if min == 1.0 {
            (1.0, 0.1)
        } else {
            (0.0, bias_spread)
        };
        let vals: Vec<f64> = det_values(t.elem_count(), i as u64 + 1)
            .iter()
            .map(|u| centre + spread * u)
            .collect();
        var.set(&Tensor::from_vec(vals, var.shape(), var.device())?.to_dtype(dtype)?)?;
    }
    Ok(())
}

/// Symmetric InfoNCE on matching pairs, the shape of loss the trainer uses, in the
/// embeddings' dtype.
pub fn contrastive_loss(
    model: &ClipModel,
    pixels: &Tensor,
    ids: &Tensor,
) -> anyhow::Result<Tensor> {
    let img = l2_normalize(&model.encode_image(pixels)?)?;
    let txt = l2_normalize(&model.encode_text(ids)?)?;
    let logits = img
        .matmul(&txt.t()?)?
        .broadcast_mul(&model.logit_scale().exp()?)?;
    let n = logits.dim(0)?;
    let eye = Tensor::eye(n, logits.dtype(), logits.device())?;
    let ce = |l: &Tensor| -> candle_core::Result<Tensor> {
        let lsm = candle_nn::ops::log_softmax(l, D::Minus1)?;
        (lsm * &eye)?.sum_all()?.neg()? / n as f64
    };
    Ok(((ce(&logits)? + ce(&logits.t()?)?)? / 2.0)?)
}
