//! The one error type of this crate.

/// Everything that can go wrong in an optimiser or scheduler.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A hyperparameter is out of range.
    #[error("invalid optimiser configuration: {0}")]
    Config(String),
    /// `step` found no gradient for any variable: the loss is probably detached from the
    /// parameters (or `backward` was run on another graph).
    #[error(
        "no gradient for any of the {0} optimised variables: is the loss connected to the \
         parameters (no detach, no fused op without backward)?"
    )]
    NoGradients(usize),
    /// A gradient does not fit its parameter.
    #[error("gradient of {name:?} has shape {grad:?} / {grad_dtype:?}, parameter has {param:?} / {param_dtype:?}")]
    GradMismatch {
        /// Parameter name.
        name: String,
        /// Gradient shape.
        grad: Vec<usize>,
        /// Parameter shape.
        param: Vec<usize>,
        /// Gradient dtype.
        grad_dtype: candle_core::DType,
        /// Parameter dtype.
        param_dtype: candle_core::DType,
    },
    /// Checkpointed optimiser state does not match the optimiser.
    #[error("optimiser state: {0}")]
    State(String),
}

/// Result alias used across this crate.
pub type Result<T> = std::result::Result<T, OptimError>;
