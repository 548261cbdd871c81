//! Zero-shot scoring from embeddings, following CheXzero (Tiu et al. 2022,
//! `zero_shot.py`): per class, the prompt embeddings of every template are L2-normalised,
//! averaged and renormalised; logits are raw cosine similarities (no temperature), and the
//! probability of a class is the softmax of the positive ("{}") against the negative
//! ("no {}") logit. Classes never seen in training are scored the same way, from prompts alone.
//!
//! This crate knows nothing about the model: it takes embeddings as arrays.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use crate::error::{shape_err, EvalError, Result};

/// Norms below this are treated as this (torch's `F.normalize` eps), so a zero row stays zero
/// instead of becoming NaN.
const NORM_EPS: f32 = 1e-12;

/// Divides every row by its L2 norm as PyTorch's `F.normalize(x, dim=1)`:
/// `x / max(‖x‖, 1e-12)`, so a zero row stays zero and a row of norm below `1e-12` is scaled by
/// `1e-12`. The ndarray twin of `cxr_clip::l2_normalize` (same behaviour).
pub fn l2_normalize_rows(x: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = x.to_owned();
    for mut row in out.rows_mut() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(NORM_EPS);
        row.mapv_inplace(|v| v / norm);
    }
    out
}

fn check_dims(
    image_emb: &ArrayView2<'_, f32>,
    text: &ArrayView2<'_, f32>,
    what: &'static str,
) -> Result<()> {
    if image_emb.ncols() != text.ncols() {
        return Err(shape_err(
            what,
            format!("{} columns (image embedding dim)", image_emb.ncols()),
            text.ncols(),
        ));
    }
    Ok(())
}

/// Cosine logits `image_emb · pos_textᵀ` (N x C) for L2-normalised rows. Plain cosine to the
/// positive prompt, the score used when no negative prompt is defined.
pub fn zero_shot_cosine(
    image_emb: ArrayView2<'_, f32>,
    pos_text: ArrayView2<'_, f32>,
) -> Result<Array2<f32>> {
    check_dims(&image_emb, &pos_text, "positive text embedding dim")?;
    Ok(image_emb.dot(&pos_text.t()))
}

/// CheXzero's zero-shot probabilities (N x C): `p = exp(pos) / (exp(pos) + exp(neg))` on raw
/// cosine logits, computed as `1 / (1 + exp(neg - pos))` so it cannot overflow. All inputs are
/// L2-normalised rows; `pos_text` and `neg_text` have one row per class.
pub fn zero_shot_probabilities(
    image_emb: ArrayView2<'_, f32>,
    pos_text: ArrayView2<'_, f32>,
    neg_text: ArrayView2<'_, f32>,
) -> Result<Array2<f32>> {
    check_dims(&image_emb, &pos_text, "positive text embedding dim")?;
    check_dims(&image_emb, &neg_text, "negative text embedding dim")?;
    if pos_text.nrows() != neg_text.nrows() {
        return Err(shape_err(
            "negative text rows (one per class)",
            pos_text.nrows(),
            neg_text.nrows(),
        ));
    }
    let mut pos = image_emb.dot(&pos_text.t());
    let neg = image_emb.dot(&neg_text.t());
    Zip::from(&mut pos)
        .and(&neg)
        .for_each(|p, &n| *p = 1.0 / (1.0 + (n - *p).exp()));
    Ok(pos)
}

/// Averages class prompt embeddings over templates as CheXzero does: every template's
/// embeddings (C x D each, one row per class) are L2-normalised per row, averaged over
/// templates, and the mean is renormalised.
pub fn average_prompt_embeddings(per_template: &[Array2<f32>]) -> Result<Array2<f32>> {
    let first = per_template
        .first()
        .ok_or(EvalError::Empty("per_template"))?;
    let mut sum = Array2::<f32>::zeros(first.raw_dim());
    for t in per_template {
        if t.dim() != first.dim() {
            return Err(shape_err(
                "template embedding shape",
                format!("{:?}", first.dim()),
                format!("{:?}", t.dim()),
            ));
        }
        sum += &l2_normalize_rows(t.view());
    }
    sum /= per_template.len() as f32;
    Ok(l2_normalize_rows(sum.view()))
}

/// Mean of the rows of `x` (a helper for averaging image embeddings of one study).
pub fn mean_rows(x: ArrayView2<'_, f32>) -> Option<ndarray::Array1<f32>> {
    x.mean_axis(Axis(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn probabilities_are_softmax_of_raw_cosines() {
        let img = l2_normalize_rows(array![[1.0f32, 0.0], [0.6, 0.8]].view());
        let pos = array![[1.0f32, 0.0], [0.0, 1.0]];
        let neg = array![[0.0f32, 1.0], [1.0, 0.0]];
        let p = zero_shot_probabilities(img.view(), pos.view(), neg.view()).unwrap();
        let softmax = |a: f32, b: f32| a.exp() / (a.exp() + b.exp());
        assert!((p[[0, 0]] - softmax(1.0, 0.0)).abs() < 1e-6);
        assert!((p[[1, 0]] - softmax(0.6, 0.8)).abs() < 1e-6);
        assert!((p[[1, 1]] - softmax(0.8, 0.6)).abs() < 1e-6);
        let cos = zero_shot_cosine(img.view(), pos.view()).unwrap();
        assert!((cos[[1, 1]] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn averaging_normalises_before_and_after() {
        // Template 1 has a long vector; normalising first gives it equal weight.
        let t1 = array![[10.0f32, 0.0]];
        let t2 = array![[0.0f32, 1.0]];
        let avg = average_prompt_embeddings(&[t1, t2]).unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((avg[[0, 0]] - h).abs() < 1e-6 && (avg[[0, 1]] - h).abs() < 1e-6);
    }

    #[test]
    fn shape_errors_are_reported() {
        let img = array![[1.0f32, 0.0]];
        let bad = array![[1.0f32, 0.0, 0.0]];
        assert!(zero_shot_cosine(img.view(), bad.view()).is_err());
        let pos = array![[1.0f32, 0.0]];
        let neg2 = array![[1.0f32, 0.0], [0.0, 1.0]];
        assert!(zero_shot_probabilities(img.view(), pos.view(), neg2.view()).is_err());
        assert!(average_prompt_embeddings(&[]).is_err());
        assert!(average_prompt_embeddings(&[pos.clone(), neg2]).is_err());
        let zero = l2_normalize_rows(array![[0.0f32, 0.0]].view());
        assert!(zero.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn tiny_rows_are_scaled_by_eps_as_torch() {
        let y = l2_normalize_rows(array![[3e-13f32, 4e-13], [3.0, 4.0]].view());
        let want = array![[0.3f32, 0.4], [0.6, 0.8]];
        assert!(
            y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{y:?}"
        );
    }
}
