//! Helpers shared by the optimisers for gradient checks and checkpoint state.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{OptimError, Result};

/// The gradient must have the parameter's shape and dtype.
pub(crate) fn check_grad(name: &str, var: &Var, g: &Tensor) -> Result<()> {
    if g.dims() != var.dims() || g.dtype() != var.dtype() {
        return Err(OptimError::GradMismatch {
            name: name.to_string(),
            grad: g.dims().to_vec(),
            param: var.dims().to_vec(),
            grad_dtype: g.dtype(),
            param_dtype: var.dtype(),
        });
    }
    Ok(())
}

/// `step` (i64) and `lr` (f64) scalars.
pub(crate) fn header(step: usize, lr: f64) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    out.insert("step".to_string(), Tensor::new(step as i64, &Device::Cpu)?);
    out.insert("lr".to_string(), Tensor::new(lr, &Device::Cpu)?);
    Ok(out)
}

/// Reads `step` (required) and `lr` (optional) back.
pub(crate) fn read_header(state: &HashMap<String, Tensor>) -> Result<(usize, Option<f64>)> {
    let step = state
        .get("step")
        .ok_or_else(|| OptimError::State("missing key \"step\"".into()))?;
    let step = step.reshape(())?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !(step.is_finite() && step >= 0.0) {
        return Err(OptimError::State(format!("bad step {step}")));
    }
    let lr = match state.get("lr") {
        Some(t) => Some(t.reshape(())?.to_dtype(DType::F64)?.to_scalar::<f64>()?),
        None => None,
    };
    Ok((step as usize, lr))
}

/// The state tensor `key`, which must have `var`'s shape.
pub(crate) fn take(state: &HashMap<String, Tensor>, key: &str, var: &Var) -> Result<Tensor> {
    let t = state.get(key).ok_or_else(|| {
        OptimError::State(format!(
            "missing key {key:?}: the checkpoint was written for a different parameter set"
        ))
    })?;
    if t.dims() != var.dims() {
        return Err(OptimError::State(format!(
            "{key:?} has shape {:?}, the parameter has {:?}",
            t.dims(),
            var.dims()
        )));
    }
    Ok(t.clone())
}
