//! The released CXR-CML code's "weighted metric loss", kept as a parity option.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::clip::{l2_normalise, scalar};
use crate::error::{LossError, Result};

/// The default smallest distance temperature: `1 / 100`, the temperature of CLIP's largest
/// logit scale ([`crate::MAX_LOGIT_SCALE`]).
pub const MIN_TEMPERATURE: f64 = 0.01;

/// The default largest distance temperature: `100`, the mirror of [`MIN_TEMPERATURE`].
pub const MAX_TEMPERATURE: f64 = 100.0;

/// Configuration of [`weighted_metric_loss`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightedMetricConfig {
    /// The base margin `m` in `m * (1 + exp(-mean_pos))` (0.3 in the released code).
    pub base_margin: f64,
    /// The temperature is clamped to `[min_temperature, max_temperature]` in the forward pass,
    /// as CLIP clamps its logit scale, so no gradient moves it past a bound. Without the lower
    /// bound the loss collapses: whenever positives are closer than negatives, shrinking the
    /// temperature scales the negative gap up and drives the loss to 0 without moving any
    /// embedding. Defaults [`MIN_TEMPERATURE`] and [`MAX_TEMPERATURE`].
    pub min_temperature: f64,
    pub max_temperature: f64,
}

impl Default for WeightedMetricConfig {
    fn default() -> Self {
        Self {
            base_margin: 0.3,
            min_temperature: MIN_TEMPERATURE,
            max_temperature: MAX_TEMPERATURE,
        }
    }
}

impl WeightedMetricConfig {
    /// Rejects a negative or non-finite margin and bounds outside `0 < min <= max < inf`.
    pub fn check(&self) -> Result<()> {
        if !self.base_margin.is_finite() || self.base_margin < 0.0 {
            return Err(LossError::Config(format!(
                "weighted metric base_margin must be finite and >= 0, got {}",
                self.base_margin
            )));
        }
        let (lo, hi) = (self.min_temperature, self.max_temperature);
        if !(lo > 0.0 && hi.is_finite() && lo <= hi) {
            return Err(LossError::Config(format!(
                "weighted metric temperature bounds must satisfy 0 < min_temperature <= \
                 max_temperature < inf, got [{lo}, {hi}]"
            )));
        }
        Ok(())
    }
}

/// `relu(mean_pos - mean_neg + m * (1 + exp(-mean_pos)))` on image-text distances; the
/// temperature is first clamped to the config's bounds (the gradient stops at a bound).
///
/// Our reading of the released code (reference table, `datasets-and-references.md`; the code
/// itself was not available offline, so this is a documented reconstruction):
/// - `d_ij = |norm(img_i) - norm(txt_j)|_2 / temperature` for every image `i` and text `j`
///   (`temperature` is a learnable positive scalar);
/// - soft pseudo-labels `P` (`n x k`, rows L1-normalised, e.g. the sharpened and
///   mass-reweighted mixture responsibilities) give pair weights `w_ij = P_i . P_j` in `[0, 1]`;
/// - `mean_pos = sum(w d) / sum(w)`, `mean_neg = sum((1 - w) d) / sum(1 - w)` (denominators
///   clamped at `1e-12`), so the adaptive margin grows as positives get closer.
///
/// With one-hot `P` this is the same-cluster / different-cluster mean distance gap.
pub fn weighted_metric_loss(
    image_emb: &Tensor,
    text_emb: &Tensor,
    pseudo_labels: &Tensor,
    temperature: &Tensor,
    cfg: &WeightedMetricConfig,
) -> Result<Tensor> {
    cfg.check()?;
    let (n, d) = image_emb.dims2().map_err(|_| LossError::Shape {
        what: "image_emb",
        expected: "(batch, dim)".into(),
        got: image_emb.dims().to_vec(),
    })?;
    if text_emb.dims() != [n, d] {
        return Err(LossError::Shape {
            what: "text_emb",
            expected: format!("({n}, {d}) like image_emb"),
            got: text_emb.dims().to_vec(),
        });
    }
    let p_rows = pseudo_labels.dims2().map(|(r, _)| r).unwrap_or(usize::MAX);
    if p_rows != n {
        return Err(LossError::Shape {
            what: "pseudo_labels",
            expected: format!("({n}, clusters)"),
            got: pseudo_labels.dims().to_vec(),
        });
    }
    let t = scalar(temperature, "temperature")?
        .maximum(cfg.min_temperature)?
        .minimum(cfg.max_temperature)?;
    let img = l2_normalise(image_emb)?;
    let txt = l2_normalise(text_emb)?;
    // |a - b|^2 = |a|^2 + |b|^2 - 2 a.b for every image-text pair.
    let si = img.sqr()?.sum_keepdim(1)?;
    let st = txt.sqr()?.sum_keepdim(1)?;
    let d2 = si
        .broadcast_add(&st.t()?)?
        .sub(&(img.matmul(&txt.t()?)? * 2.0)?)?
        .relu()?;
    let dist = (d2 + 1e-12)?.sqrt()?.broadcast_div(&t)?;
    let w = pseudo_labels
        .matmul(&pseudo_labels.t()?)?
        .to_dtype(dist.dtype())?;
    let not_w = w.affine(-1.0, 1.0)?;
    let mean_pos = (&dist * &w)?
        .sum_all()?
        .div(&w.sum_all()?.maximum(1e-12)?)?;
    let mean_neg = (&dist * &not_w)?
        .sum_all()?
        .div(&not_w.sum_all()?.maximum(1e-12)?)?;
    let margin = (mean_pos.neg()?.exp()? + 1.0)?.affine(cfg.base_margin, 0.0)?;
    Ok(((mean_pos - mean_neg)? + margin)?.relu()?)
}

/// The released code's soft pseudo-labels from mixture posteriors `posteriors` (`n x k`, rows
/// summing to 1, e.g. `PseudoLabeler::predict_proba`):
/// `s = softmax(log(posteriors) / sharpen)` (the released code's `softmax(log_probs / 0.05)`;
/// softmax ignores the per-row constant that separates log-posteriors from log-densities),
/// each cluster's column divided by `log1p(mass)` with `mass` its column sum over the batch,
/// so that rare clusters weigh more, and rows L1-normalised.
///
/// A documented reconstruction like [`weighted_metric_loss`]. The result carries no graph (the
/// pseudo-labels are targets). Zero posteriors stay zero; a cluster with no mass gets none.
pub fn soft_pseudo_labels(posteriors: &Tensor, sharpen: f64) -> Result<Tensor> {
    if !(sharpen.is_finite() && sharpen > 0.0) {
        return Err(LossError::Config(format!(
            "soft pseudo-label sharpening temperature must be finite and > 0, got {sharpen}"
        )));
    }
    let (n, k) = posteriors.dims2().map_err(|_| LossError::Shape {
        what: "posteriors",
        expected: "(batch, clusters)".into(),
        got: posteriors.dims().to_vec(),
    })?;
    if n == 0 || k == 0 {
        return Err(LossError::Shape {
            what: "posteriors",
            expected: "a non-empty (batch, clusters) matrix".into(),
            got: vec![n, k],
        });
    }
    let dtype = posteriors.dtype();
    // Computed in f64 on the host: a 32 x 40 matrix, and exp(log(p) / 0.05) underflows f32.
    let p: Vec<Vec<f64>> = posteriors
        .detach()
        .to_dtype(candle_core::DType::F64)?
        .to_vec2()?;
    if p.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(LossError::Config(
            "posteriors must be finite and non-negative".into(),
        ));
    }
    let sharpened: Vec<Vec<f64>> = p
        .iter()
        .map(|row| {
            let logits: Vec<f64> = row
                .iter()
                .map(|&v| {
                    if v > 0.0 {
                        v.ln() / sharpen
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max == f64::NEG_INFINITY {
                return vec![0.0; k]; // an all-zero row stays zero
            }
            let e: Vec<f64> = logits.iter().map(|&l| (l - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.into_iter().map(|v| v / sum).collect()
        })
        .collect();
    let mut mass = vec![0f64; k];
    for row in &sharpened {
        for (m, v) in mass.iter_mut().zip(row) {
            *m += v;
        }
    }
    let mut out = Vec::with_capacity(n * k);
    for row in &sharpened {
        let w: Vec<f64> = row
            .iter()
            .zip(&mass)
            .map(|(&v, &m)| if m > 0.0 { v / m.ln_1p() } else { 0.0 })
            .collect();
        let sum: f64 = w.iter().sum();
        out.extend(w.iter().map(|v| if sum > 0.0 { v / sum } else { 0.0 }));
    }
    Ok(Tensor::from_vec(out, (n, k), posteriors.device())?.to_dtype(dtype)?)
}
