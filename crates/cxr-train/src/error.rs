use std::path::PathBuf;

/// Everything that can stop a run, with the lower layers' errors wrapped unchanged.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] cxr_data::DataError),
    #[error(transparent)]
    Text(#[from] cxr_text::TextError),
    #[error(transparent)]
    Model(#[from] cxr_clip::Error),
    #[error(transparent)]
    Mixture(#[from] cxr_mixture::MixtureError),
    #[error(transparent)]
    Loss(#[from] cxr_losses::LossError),
    #[error(transparent)]
    Optim(#[from] cxr_optim::OptimError),
    #[error(transparent)]
    Eval(#[from] cxr_eval::EvalError),
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("the loss became {value} at epoch {epoch} step {step}; the last good checkpoint is kept in {checkpoint}. Lower optim.lr or enable optim.grad_clip")]
    NonFiniteLoss {
        value: f32,
        epoch: usize,
        step: usize,
        checkpoint: String,
    },
    #[error("dataset: {0}")]
    Dataset(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Attach the path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| TrainError::Io {
            path: path.into(),
            source,
        })
    }
}
