//! Exact gradient accumulation for batch-coupled losses (the GradCache scheme of Gao et al.,
//! 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup").
//!
//! The CLIP and triplet losses couple every pair in the batch, so averaging per-micro-batch
//! losses does *not* give the full-batch gradient. Instead:
//! 1. run the towers over all micro-batches without a graph and concatenate the embeddings;
//! 2. [`input_gradients`]: the full-batch loss and its gradient w.r.t. each embedding matrix;
//! 3. per micro-batch, rerun the towers with a graph and backpropagate
//!    [`surrogate`]`(embeddings, their slice of the gradients)`; summing these parameter
//!    gradients gives exactly the full-batch gradient (chain rule).

use candle_core::{Tensor, Var};

use crate::error::{LossError, Result};

/// The value of `loss_fn(inputs)` (detached) and its gradient with respect to each input.
///
/// The inputs are copied into fresh leaf variables, so nothing flows into the graphs they may
/// carry. Inputs the loss does not depend on get a zero gradient.
pub fn input_gradients(
    inputs: &[&Tensor],
    loss_fn: impl FnOnce(&[Tensor]) -> Result<Tensor>,
) -> Result<(Tensor, Vec<Tensor>)> {
    let leaves = inputs
        .iter()
        .map(|t| Var::from_tensor(&t.detach()))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let tensors: Vec<Tensor> = leaves.iter().map(|v| v.as_tensor().clone()).collect();
    let loss = loss_fn(&tensors)?;
    if loss.elem_count() != 1 {
        return Err(LossError::Shape {
            what: "loss_fn result",
            expected: "a scalar loss".into(),
            got: loss.dims().to_vec(),
        });
    }
    let grads = loss.backward()?;
    let out = leaves
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(v.as_tensor().zeros_like()?),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((loss.detach(), out))
}

/// `sum_i <outputs_i, grads_i>` with the gradients detached: its backward pass sends exactly
/// `grads_i` into each `outputs_i` and on into the parameters that produced it.
pub fn surrogate(outputs: &[&Tensor], grads: &[&Tensor]) -> Result<Tensor> {
    if outputs.len() != grads.len() || outputs.is_empty() {
        return Err(LossError::Config(format!(
            "surrogate needs one gradient per output and at least one pair, got {} outputs and {} gradients",
            outputs.len(),
            grads.len()
        )));
    }
    let mut total: Option<Tensor> = None;
    for (o, g) in outputs.iter().zip(grads) {
        if o.dims() != g.dims() {
            return Err(LossError::Shape {
                what: "surrogate gradient",
                expected: format!("{:?} like its output", o.dims()),
                got: g.dims().to_vec(),
            });
        }
        let term = (*o * g.detach().to_dtype(o.dtype())?)?.sum_all()?;
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    Ok(total.expect("at least one pair, checked above"))
}
