//! Symmetric CLIP InfoNCE loss and its multi-positive variant (identical texts are positives).

use candle_core::{DType, Tensor};

use crate::error::{LossError, Result};

/// The largest logit scale CLIP allows (`exp(logit_scale)` is clamped here, as in OpenAI CLIP
/// and open_clip, so that the temperature cannot collapse).
pub const MAX_LOGIT_SCALE: f64 = 100.0;

/// Rows divided by their Euclidean norm, as `torch.nn.functional.normalize(x, dim=-1)`:
/// cxr-clip's [`cxr_clip::l2_normalize`], the workspace's one candle implementation.
pub use cxr_clip::l2_normalize as l2_normalise;

fn check_pair(image_emb: &Tensor, text_emb: &Tensor) -> Result<(usize, usize)> {
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
    if n == 0 || d == 0 {
        return Err(LossError::Shape {
            what: "image_emb",
            expected: "a non-empty (batch, dim) matrix".into(),
            got: vec![n, d],
        });
    }
    Ok((n, d))
}

pub(crate) fn scalar(t: &Tensor, what: &'static str) -> Result<Tensor> {
    if t.elem_count() != 1 {
        return Err(LossError::Shape {
            what,
            expected: "a scalar (shape [] or [1])".into(),
            got: t.dims().to_vec(),
        });
    }
    Ok(t.reshape(())?)
}

/// Image-to-text logits `scale * norm(img) @ norm(txt)^T` with
/// `scale = min(exp(logit_scale_log), 100)`; rows are images, columns texts.
pub fn clip_logits(
    image_emb: &Tensor,
    text_emb: &Tensor,
    logit_scale_log: &Tensor,
) -> Result<Tensor> {
    check_pair(image_emb, text_emb)?;
    let scale = scalar(logit_scale_log, "logit_scale_log")?
        .exp()?
        .minimum(MAX_LOGIT_SCALE)?;
    let img = l2_normalise(image_emb)?;
    let txt = l2_normalise(text_emb)?;
    Ok(img.matmul(&txt.t()?)?.broadcast_mul(&scale)?)
}

/// Symmetric InfoNCE: the mean of the image-to-text and text-to-image cross-entropies with the
/// matching pair on the diagonal, as open_clip's `ClipLoss` (single process, no label smoothing).
///
/// `image_emb` and `text_emb` are raw `(batch, dim)` projections (normalised here);
/// `logit_scale_log` is the learnable log scale (CLIP initialises it to `ln(1 / 0.07)`).
/// The clamp at 100 is inside the graph, so a clamped scale receives no gradient.
pub fn clip_loss(
    image_emb: &Tensor,
    text_emb: &Tensor,
    logit_scale_log: &Tensor,
) -> Result<Tensor> {
    let logits = clip_logits(image_emb, text_emb, logit_scale_log)?;
    let n = logits.dim(0)?;
    let labels = Tensor::arange(0u32, n as u32, logits.device())?;
    let per_image = cross_entropy(&logits, &labels)?;
    let per_text = cross_entropy(&logits.t()?.contiguous()?, &labels)?;
    Ok(((per_image + per_text)? * 0.5)?)
}

/// Multi-positive symmetric CLIP loss: pairs whose texts are identical (`groups[i] ==
/// groups[j]`, e.g. two "normal" studies with the same meta-label text) are positives of each
/// other instead of false negatives. The image-to-text and text-to-image cross-entropies take
/// as target the distribution uniform over each row's positives (the targets of SupCon and
/// of multi-positive contrastive losses, here with CLIP's two directions):
///
/// `loss = 0.5 * (mean_i H(t_i, softmax(L_i.)) + mean_j H(t_j, softmax(L_.j)))`, with
/// `t_ij = [g_i = g_j] / #{k : g_k = g_i}` and `L` the [`clip_logits`]. The relation is
/// symmetric, so both directions share `t`. With all groups distinct `t` is the identity and
/// the loss equals [`clip_loss`] exactly.
///
/// `groups` holds one id per pair (any values; equal ids are positives).
pub fn multi_positive_clip_loss(
    image_emb: &Tensor,
    text_emb: &Tensor,
    logit_scale_log: &Tensor,
    groups: &[usize],
) -> Result<Tensor> {
    let logits = clip_logits(image_emb, text_emb, logit_scale_log)?;
    let n = logits.dim(0)?;
    if groups.len() != n {
        return Err(LossError::LabelCount {
            labels: groups.len(),
            rows: n,
        });
    }
    let targets = positive_targets(groups, n)?
        .to_dtype(logits.dtype())?
        .to_device(logits.device())?;
    let per_image = soft_cross_entropy(&logits, &targets)?;
    let per_text = soft_cross_entropy(&logits.t()?.contiguous()?, &targets)?;
    Ok(((per_image + per_text)? * 0.5)?)
}

/// Group ids of `n` rows from a key per row: rows with equal keys (e.g. the same token ids)
/// get the same id, numbered in order of first appearance.
pub fn groups_of<K: PartialEq>(keys: &[K]) -> Vec<usize> {
    let mut seen: Vec<&K> = Vec::new();
    keys.iter()
        .map(|k| match seen.iter().position(|s| *s == k) {
            Some(g) => g,
            None => {
                seen.push(k);
                seen.len() - 1
            }
        })
        .collect()
}

/// `(n, n)` targets `[g_i = g_j] / #{k : g_k = g_i}` (rows sum to 1), in f32 on the host.
fn positive_targets(groups: &[usize], n: usize) -> Result<Tensor> {
    let mut t = vec![0f32; n * n];
    for (i, gi) in groups.iter().enumerate() {
        let count = groups.iter().filter(|g| *g == gi).count() as f32;
        for (j, gj) in groups.iter().enumerate() {
            if gi == gj {
                t[i * n + j] = 1.0 / count;
            }
        }
    }
    Ok(Tensor::from_vec(t, (n, n), &candle_core::Device::Cpu)?)
}

/// Mean over rows of the cross-entropy `-sum_j t_ij log softmax(l_i)_j` of `(n, c)` logits
/// against `(n, c)` target distributions.
fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logp = cxr_ops::log_softmax_last_dim(logits)?;
    Ok((logp * targets)?.sum(1)?.mean_all()?.neg()?)
}

/// Mean cross-entropy of `(n, c)` logits against class indices, via the fused log-softmax
/// (`cxr_ops`, with its own backward).
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let logp = cxr_ops::log_softmax_last_dim(logits)?;
    let picked = logp.gather(&labels.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    Ok(picked.mean_all()?.neg()?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn groups_number_equal_keys_in_order_of_first_appearance() {
        assert_eq!(groups_of(&["b", "a", "b", "c", "a"]), [0, 1, 0, 2, 1]);
        assert_eq!(groups_of::<u32>(&[]), Vec::<usize>::new());
        let t = positive_targets(&[0, 1, 0], 3)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(t, [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]);
    }

    #[test]
    fn multi_positive_checks_the_group_count() {
        let x = Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap();
        let ls = Tensor::new(1f32, &Device::Cpu).unwrap();
        let e = multi_positive_clip_loss(&x, &x, &ls, &[0, 1]).unwrap_err();
        assert!(e.to_string().contains("2 labels for 3 embeddings"), "{e}");
    }

    #[test]
    fn l2_normalise_keeps_zero_rows_and_scales_tiny_ones_by_eps() {
        let x = Tensor::new(
            &[[0.0f32, 0.0, 0.0], [0.0, 6e-13, 8e-13], [0.0, -2.0, 0.0]],
            &Device::Cpu,
        )
        .unwrap();
        let y = l2_normalise(&x).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y[0], [0.0; 3]);
        assert!(
            (y[1][1] - 0.6).abs() < 1e-6 && (y[1][2] - 0.8).abs() < 1e-6,
            "{y:?}"
        );
        assert_eq!(y[2], [0.0, -1.0, 0.0]);
    }
}
