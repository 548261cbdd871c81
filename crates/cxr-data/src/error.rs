//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading, splitting, preprocessing or caching data.
///
/// Messages name the file (and row / column where known) and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse CSV {path}: {message}")]
    Csv { path: PathBuf, message: String },
    #[error("{path} has no column {column:?}: is it the right file for this dataset?")]
    MissingColumn { path: PathBuf, column: String },
    #[error("{path}, row {row}, column {column:?}: unexpected value {value:?} ({expected})")]
    BadValue {
        path: PathBuf,
        row: usize,
        column: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "image path {path:?} (row {row} of {csv}) escapes the data root: absolute paths and `..` are rejected"
    )]
    PathEscape {
        csv: PathBuf,
        row: usize,
        path: String,
    },
    #[error("cannot decode image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    #[error("cache {path} is inconsistent: {message}; delete the folder to rebuild it")]
    Cache { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// Result with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn csv(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Self::Csv {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
