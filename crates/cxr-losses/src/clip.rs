//! Symmetric CLIP InfoNCE loss.

use candle_core::{DType, Tensor, D};

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

/// Mean cross-entropy of `(n, c)` logits against class indices, via the composed
/// (differentiable) log-softmax.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&labels.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    Ok(picked.mean_all()?.neg()?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

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
