//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in this crate. Messages say what to change.
#[derive(Debug, Error)]
pub enum MixtureError {
    /// A hyperparameter is out of range; raised before any work is done.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name as spelled by its setter.
        name: &'static str,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// The data has no rows or no columns.
    #[error(
        "empty input: got {n_samples} samples x {n_features} features; need at least one of each"
    )]
    EmptyInput { n_samples: usize, n_features: usize },
    /// The data holds NaN or infinity.
    #[error("input holds a non-finite value at row {row}, column {col}: remove or impute NaN/inf before clustering")]
    NonFinite { row: usize, col: usize },
    /// The data's width differs from what the model was fitted on.
    #[error("input has {got} features but the model was fitted on {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    /// Given initial parameters have the wrong shape or values.
    #[error("invalid initial parameters: {0}")]
    InvalidInit(String),
    /// A covariance (or scale) matrix stopped being positive definite.
    #[error(
        "covariance of component {component} is not positive definite (singleton or collapsed samples): raise reg_covar or lower k"
    )]
    NotPositiveDefinite { component: usize },
    /// EM produced a non-finite log-likelihood (should not happen with reg_covar > 0).
    #[error("EM diverged: the log-likelihood became non-finite at iteration {iteration}; raise reg_covar")]
    Diverged { iteration: usize },
    /// The CUDA backend failed (only with the `cuda` feature).
    #[error("CUDA backend: {0}")]
    Cuda(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = MixtureError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> MixtureError {
    MixtureError::InvalidParam {
        name,
        reason: reason.into(),
    }
}

/// `k >= 1`: shared by every builder's `check`.
pub(crate) fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(invalid("k", "the number of components must be at least 1"));
    }
    Ok(())
}

/// A fixed Student-t `nu`: finite and > 0. Shared by the Student-t builder, the one-pass
/// mixture and the pseudo-label configuration.
pub(crate) fn check_fixed_nu(nu: f64) -> Result<()> {
    if !(nu > 0.0 && nu.is_finite()) {
        return Err(invalid(
            "nu",
            format!("a fixed nu must be finite and > 0, got {nu}"),
        ));
    }
    Ok(())
}

/// The EM loop's own parameters, shared by the Gaussian and Student-t builders.
pub(crate) fn check_em(reg_covar: f64, tol: f64, max_iter: usize) -> Result<()> {
    if !(reg_covar >= 0.0 && reg_covar.is_finite()) {
        return Err(invalid(
            "reg_covar",
            format!("must be finite and >= 0, got {reg_covar}"),
        ));
    }
    if !(tol >= 0.0 && tol.is_finite()) {
        return Err(invalid(
            "tol",
            format!("must be finite and >= 0, got {tol}"),
        ));
    }
    if max_iter == 0 {
        return Err(invalid("max_iter", "must be at least 1"));
    }
    Ok(())
}
