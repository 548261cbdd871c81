//! The `zero-shot` method: no training. The initial weights (`model.weights`) are scored on
//! the test split exactly as a trained method's best checkpoint is (same images, prompts,
//! preprocessing and evaluation; written to `<run>/eval/best-test/`), so that the paper's
//! first Table 2 row, CheXzero as released, enters the same paired comparison as the methods
//! fine-tuned from it.

use std::path::Path;

use crate::config::TrainConfig;
use crate::error::IoContext;
use crate::files::write_atomic;
use crate::prepare::{Prepared, Split};
use crate::trainer::TrainOutcome;
use crate::Result;

/// Scores the initial weights of `cfg` on `split.test` into `run_dir` (its `config.toml` and
/// `eval/best-test/`). Without `model.weights` the model is the seeded random init, which a
/// table should not present as a baseline (logged).
pub fn score_initial_weights(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    if cfg.model.weights.is_none() {
        tracing::warn!(
            "zero-shot without model.weights scores an untrained, randomly initialised model \
             (seed {}): a chance-level reference, not a baseline",
            cfg.seed
        );
    }
    std::fs::create_dir_all(run_dir).at(run_dir)?;
    let _lock = crate::lock::RunLock::acquire(run_dir)?;
    write_atomic(&run_dir.join("config.toml"), cfg.to_toml().as_bytes())?;
    let device = crate::device::open(&cfg.train_loop.device)?;
    let (_varmap, model) = crate::model::build_model(cfg, &device)?;
    let test = crate::run_eval::evaluate_loaded(
        run_dir,
        cfg,
        data,
        split,
        &model,
        "best",
        "test",
        cfg.eval.figures,
    )?
    .results;
    Ok(TrainOutcome {
        run_dir: run_dir.to_path_buf(),
        epochs: Vec::new(),
        test,
        best_epoch: 0,
        first_loss: 0.0,
        last_loss: 0.0,
        steps: 0,
    })
}
