//! The interface every optimiser of this crate offers (as `candle_nn::Optimizer`), so that a
//! training loop or a checkpoint holds `dyn Optimizer` instead of matching on the kind.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::Tensor;

use crate::Result;

/// An optimiser over a fixed set of named [`Var`](candle_core::Var)s.
pub trait Optimizer {
    /// One update from `grads`. Variables without a gradient are skipped (and logged); if no
    /// variable has one this is an error and nothing changes.
    fn step(&mut self, grads: &GradStore) -> Result<()>;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (schedulers call this between steps).
    fn set_learning_rate(&mut self, lr: f64);

    /// The whole state for a checkpoint, keyed by `<moment>/<parameter name>` plus `step`
    /// (i64 scalar) and `lr` (f64 scalar).
    fn state_tensors(&self) -> Result<HashMap<String, Tensor>>;

    /// Restores what [`Optimizer::state_tensors`] produced (possibly after a safetensors round
    /// trip: dtypes and devices are converted); on error the optimiser is left unchanged.
    fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
}
