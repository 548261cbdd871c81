//! The one error type of this crate.

/// Everything that can go wrong when computing a loss.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A tensor operation failed inside candle (device, dtype or shape problem).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// An input tensor has the wrong rank or size.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// A human description of the expected shape.
        expected: String,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// The number of labels differs from the number of embeddings.
    #[error("{labels} labels for {rows} embeddings: pass exactly one pseudo-label per row")]
    LabelCount {
        /// Labels passed.
        labels: usize,
        /// Embedding rows passed.
        rows: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid loss configuration: {0}")]
    Config(String),
}

/// Result alias used across this crate.
pub type Result<T> = std::result::Result<T, LossError>;
