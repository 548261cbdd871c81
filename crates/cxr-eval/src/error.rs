//! The one error type of this crate.

/// Everything that can go wrong while scoring, evaluating or plotting.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Two inputs that must agree in size do not.
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    Shape {
        what: &'static str,
        expected: String,
        got: String,
    },
    /// An input that must not be empty is empty.
    #[error("{0} is empty: pass at least one row / element")]
    Empty(&'static str),
    /// A score is NaN or infinite; ranking it would be meaningless.
    #[error("score for class {class:?} in row {row} is {value}: scores must be finite (check the model output)")]
    NonFiniteScore {
        class: String,
        row: usize,
        value: f32,
    },
    /// A label is neither 0, 1 nor NaN (unknown).
    #[error("label for class {class:?} in row {row} is {value}: labels must be 1, 0 or NaN (unknown); map uncertain (-1) labels before evaluating")]
    BadLabel {
        class: String,
        row: usize,
        value: f32,
    },
    /// A configuration value is out of range.
    #[error("invalid parameter {name} = {value}: {hint}")]
    InvalidParam {
        name: &'static str,
        value: String,
        hint: &'static str,
    },
    /// Writing a figure failed.
    #[error("plotting to {path}: {msg}")]
    Plot { path: String, msg: String },
    /// File-system error while writing an output.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`EvalError`] as the default error.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

pub(crate) fn shape_err(
    what: &'static str,
    expected: impl ToString,
    got: impl ToString,
) -> EvalError {
    EvalError::Shape {
        what,
        expected: expected.to_string(),
        got: got.to_string(),
    }
}
