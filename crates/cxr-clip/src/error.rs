//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, running or loading a CLIP model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch deep inside candle, out of memory, ...).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// The configuration cannot describe a working model.
    #[error("invalid CLIP config: {0}")]
    InvalidConfig(String),

    /// The caller passed a tensor of the wrong shape, dtype or content.
    #[error("bad input: {0}")]
    BadInput(String),

    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A Hugging Face `config.json` could not be parsed.
    #[error("cannot parse CLIP config {path}: {source}")]
    ConfigJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A checkpoint was read but its contents do not fit the model.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },

    /// A Hugging Face repository id was given but its files are not in the local cache.
    #[error(
        "`{repo}` is not in the Hugging Face cache ({cache}): missing {file}. Only `cargo xtask` \
         downloads (without HF_HUB_OFFLINE=1); else fetch it on a machine with network access, e.g. \
         `huggingface-cli download {repo} config.json model.safetensors`, and point HF_HOME / \
         HF_HUB_CACHE at that cache, or pass a local folder holding config.json + model.safetensors"
    )]
    NotCached {
        repo: String,
        cache: PathBuf,
        file: String,
    },

    /// A download from the hub failed (feature `hub-download`).
    #[error("cannot download `{repo}` ({url}): {msg}")]
    Download {
        repo: String,
        url: String,
        msg: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
