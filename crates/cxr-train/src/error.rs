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
    #[error("{path}: {source}{}", io_hint(.source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("interrupted by {}: stopped after step {step}; checkpoint {}", crate::interrupt::name(*signal), checkpoint.display())]
    Interrupted {
        signal: i32,
        step: usize,
        /// The checkpoint written on the way out (resume from it with `--resume latest`).
        checkpoint: PathBuf,
    },
    #[error("the loss became {value} at epoch {epoch} step {step}; the last good checkpoint is kept in {checkpoint}. Lower optim.lr or enable optim.grad_clip")]
    NonFiniteLoss {
        value: f32,
        epoch: usize,
        step: usize,
        checkpoint: String,
    },
    #[error("dataset: {0}")]
    Dataset(String),
    #[error("building the batch of step {step} (epoch {epoch}, batch {batch}: {images} images{}): {source}", first.as_ref().map(|p| format!(", the first {}", p.display())).unwrap_or_default())]
    Batch {
        step: usize,
        epoch: usize,
        /// The batch's number in its epoch.
        batch: usize,
        images: usize,
        /// The image file of the batch's first record.
        first: Option<PathBuf>,
        source: Box<TrainError>,
    },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What to do about an I/O error, where there is one thing to do: a full disk (ENOSPC) stops
/// a write half-way, and the run continues from its last checkpoint once there is room.
fn io_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        " (the disk is full: free space on it, then rerun with `--resume latest`)"
    } else {
        ""
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_the_file_and_says_to_free_space_and_resume() {
        for source in [
            std::io::Error::from_raw_os_error(28),
            std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"),
        ] {
            let e = std::io::Result::<()>::Err(source)
                .at("/runs/a/checkpoints/step-40/model.safetensors")
                .unwrap_err();
            let msg = e.to_string();
            for want in [
                "/runs/a/checkpoints/step-40/model.safetensors",
                "free space",
                "--resume latest",
            ] {
                assert!(msg.contains(want), "{want:?} missing in {msg:?}");
            }
        }
        let other = TrainError::Io {
            path: "/runs/a/config.toml".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!other.to_string().contains("--resume"), "{other}");
    }

    #[test]
    fn a_failed_batch_names_its_step_place_first_image_and_cause() {
        let e = TrainError::Batch {
            step: 41,
            epoch: 2,
            batch: 5,
            images: 32,
            first: Some("/data/cxr-lt/files/p10/p10000032/s5/img.jpg".into()),
            source: Box::new(TrainError::Text(cxr_text::TextError::ContextTooShort(1))),
        };
        let msg = e.to_string();
        for want in [
            "step 41",
            "epoch 2, batch 5",
            "32 images",
            "/data/cxr-lt/files/p10/p10000032/s5/img.jpg",
            &TrainError::Text(cxr_text::TextError::ContextTooShort(1)).to_string(),
        ] {
            assert!(msg.contains(want), "{want:?} missing in {msg:?}");
        }
        assert!(
            std::error::Error::source(&e).is_some(),
            "the cause is chained"
        );
    }
}
