//! Triplet margin loss on pseudo-labels with online mining.

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use crate::clip::l2_normalise;
use crate::error::{LossError, Result};

/// How triplets `(anchor, positive, negative)` are chosen inside a batch.
///
/// "Positive" means same pseudo-label as the anchor (and a different row), "negative" a
/// different pseudo-label. Anchors without any positive or any negative contribute nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mining {
    /// Every valid triplet; the loss is the mean over all of them (so it equals torch's
    /// `TripletMarginLoss` applied to the enumerated triplets).
    #[default]
    BatchAll,
    /// Per anchor, the farthest positive and the closest negative (Hermans et al. 2017); the
    /// mean over anchors.
    BatchHard,
    /// Per anchor-positive pair, the closest negative that is farther than the positive, or the
    /// farthest negative when none is (FaceNet / TensorFlow `triplet_semihard_loss`); the mean
    /// over pairs.
    SemiHard,
}

/// Configuration of [`triplet_loss`]. Validated on every call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripletConfig {
    /// The margin alpha of the paper's eq. 3; finite and non-negative.
    pub margin: f32,
    /// Triplet selection.
    pub mining: Mining,
    /// L2-normalise the embeddings first (the paper's setting; distances then lie in `[0, 2]`).
    pub normalise: bool,
}

impl Default for TripletConfig {
    /// Margin 0.2 (FaceNet's value for unit-norm embeddings; the paper does not state alpha),
    /// batch-all mining, normalised embeddings.
    fn default() -> Self {
        Self {
            margin: 0.2,
            mining: Mining::BatchAll,
            normalise: true,
        }
    }
}

impl TripletConfig {
    fn validate(&self) -> Result<()> {
        if !self.margin.is_finite() || self.margin < 0.0 {
            return Err(LossError::Config(format!(
                "triplet margin must be finite and >= 0, got {}",
                self.margin
            )));
        }
        Ok(())
    }
}

/// Euclidean distances between all rows, `(n, n)`, differentiable.
///
/// Uses `|a|^2 + |b|^2 - 2 a.b`, clamped at 0, plus `1e-12` under the square root so the
/// (never selected) diagonal has a finite gradient. The `O(n^2 d)` broadcast form would need
/// `n * n * d` floats, too much at batch 256 x 512 dims.
pub fn pairwise_distances(x: &Tensor) -> Result<Tensor> {
    let sq = x.sqr()?.sum_keepdim(D::Minus1)?; // (n, 1)
    let gram = x.matmul(&x.t()?)?;
    let d2 = sq.broadcast_add(&sq.t()?)?.sub(&(gram * 2.0)?)?.relu()?;
    Ok((d2 + 1e-12)?.sqrt()?)
}

/// The `(anchor, positive, negative)` index triples that `mining` selects from the distance
/// matrix `dist` (row-major, `n x n`) and the labels. Plain host code, also used by tests.
pub fn mine_triplets(dist: &[Vec<f32>], labels: &[usize], mining: Mining) -> Vec<[usize; 3]> {
    let n = labels.len();
    let mut out = Vec::new();
    let positives = |a: usize| (0..n).filter(move |&p| p != a && labels[p] == labels[a]);
    let negatives = |a: usize| (0..n).filter(move |&q| labels[q] != labels[a]);
    for a in 0..n {
        let row = &dist[a];
        match mining {
            Mining::BatchAll => {
                for p in positives(a) {
                    for q in negatives(a) {
                        out.push([a, p, q]);
                    }
                }
            }
            Mining::BatchHard => {
                // First maximum / minimum wins on ties, like torch.max / torch.min.
                let p = positives(a).fold(None, |best: Option<usize>, p| match best {
                    Some(b) if row[b] >= row[p] => Some(b),
                    _ => Some(p),
                });
                let q = negatives(a).fold(None, |best: Option<usize>, q| match best {
                    Some(b) if row[b] <= row[q] => Some(b),
                    _ => Some(q),
                });
                if let (Some(p), Some(q)) = (p, q) {
                    out.push([a, p, q]);
                }
            }
            Mining::SemiHard => {
                for p in positives(a) {
                    let dap = row[p];
                    let mut semi: Option<usize> = None;
                    let mut far: Option<usize> = None;
                    for q in negatives(a) {
                        if row[q] > dap && semi.is_none_or(|s| row[q] < row[s]) {
                            semi = Some(q);
                        }
                        if far.is_none_or(|f| row[q] > row[f]) {
                            far = Some(q);
                        }
                    }
                    if let Some(q) = semi.or(far) {
                        out.push([a, p, q]);
                    }
                }
            }
        }
    }
    out
}

/// Triplet margin loss `mean(relu(d(a, p) - d(a, n) + margin))` over the mined triplets, with
/// `d` the Euclidean distance (on L2-normalised rows when `cfg.normalise`).
///
/// `emb` is `(n, dim)`, `labels` holds one pseudo-label per row. Mining runs on detached
/// distances; the loss gathers the selected entries of the differentiable distance matrix.
/// When no valid triplet exists (one label only, or every label a singleton) the result is a
/// zero scalar that still depends on `emb`, so `backward` works and yields zero gradients.
pub fn triplet_loss(emb: &Tensor, labels: &[usize], cfg: &TripletConfig) -> Result<Tensor> {
    cfg.validate()?;
    let (n, _) = emb.dims2().map_err(|_| LossError::Shape {
        what: "emb",
        expected: "(batch, dim)".into(),
        got: emb.dims().to_vec(),
    })?;
    if labels.len() != n {
        return Err(LossError::LabelCount {
            labels: labels.len(),
            rows: n,
        });
    }
    let x = if cfg.normalise {
        l2_normalise(emb)?
    } else {
        emb.clone()
    };
    let dist = pairwise_distances(&x)?;
    let host = dist
        .detach()
        .to_dtype(candle_core::DType::F32)?
        .to_vec2::<f32>()?;
    let triplets = mine_triplets(&host, labels, cfg.mining);
    if triplets.is_empty() {
        // `* 0.0` would be an affine op with mul 0, which candle's backprop prunes; a product
        // with a zero tensor keeps the (zero) gradient path to `emb`.
        let s = emb.sum_all()?;
        return Ok(s.mul(&s.zeros_like()?)?);
    }
    let ap: Vec<u32> = triplets.iter().map(|t| (t[0] * n + t[1]) as u32).collect();
    let an: Vec<u32> = triplets.iter().map(|t| (t[0] * n + t[2]) as u32).collect();
    let dev = emb.device();
    let flat = dist.flatten_all()?;
    let d_ap = flat.index_select(&Tensor::new(ap, dev)?, 0)?;
    let d_an = flat.index_select(&Tensor::new(an, dev)?, 0)?;
    let per = ((d_ap - d_an)? + f64::from(cfg.margin))?.relu()?;
    Ok(per.mean_all()?)
}
