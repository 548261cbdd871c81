//! Starting or resuming a run in its folder: a fresh run writes its resolved config and split
//! before step 0 (and refuses a folder that already holds a run); a resumed one checks that
//! the config is the same and reads back where training stood.

use std::path::Path;

use candle_nn::VarMap;
use cxr_mixture::PseudoLabeler;
use cxr_optim::{Optimizer, ReduceLrOnPlateau};

use crate::checkpoint::{self, CheckpointState};
use crate::config::TrainConfig;
use crate::error::IoContext;
use crate::metrics::EpochRecord;
use crate::prepare::{Prepared, Split, SplitIds, SPLIT_FILE};
use crate::{Result, TrainError};

/// Where training stands: what a checkpoint stores and a resumed run restores.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Optimiser steps taken.
    pub step: usize,
    /// The epoch to run next.
    pub next_epoch: usize,
    /// The finished epochs' records.
    pub epochs: Vec<EpochRecord>,
    /// The best validation score and its epoch.
    pub best: Option<(f64, usize)>,
    pub epochs_without_improvement: usize,
    pub first_loss: f32,
    pub last_loss: f32,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            step: 0,
            next_epoch: 0,
            epochs: Vec::new(),
            best: None,
            epochs_without_improvement: 0,
            first_loss: f32::NAN,
            last_loss: f32::NAN,
        }
    }

    /// The checkpoint state at the end of `epoch`.
    pub fn checkpoint_state(
        &self,
        epoch: usize,
        lr: f64,
        plateau: &ReduceLrOnPlateau,
    ) -> CheckpointState {
        CheckpointState {
            epoch,
            step: self.step,
            lr,
            best_score: self.best.map(|b| b.0),
            best_epoch: self.best.map(|b| b.1),
            epochs_without_improvement: self.epochs_without_improvement,
            first_loss: self.first_loss,
            plateau: plateau.clone(),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// Prepare `run_dir` for training: a fresh run (`resume: None`) writes `config.toml` and the
/// split; a resumed one checks its saved config against `cfg`.
pub fn open_run_dir(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
    resume: Option<&Path>,
) -> Result<()> {
    std::fs::create_dir_all(run_dir).at(run_dir)?;
    let config_path = run_dir.join("config.toml");
    if resume.is_some() {
        let saved = std::fs::read_to_string(&config_path).at(&config_path)?;
        let saved = TrainConfig::from_toml_over(cfg, &saved)?;
        if !same_run(&saved, cfg) {
            return Err(TrainError::Config(format!(
                "the config differs from the one in {}: a resumed run must use the same settings",
                config_path.display()
            )));
        }
        return Ok(());
    }
    if config_path.exists() || checkpoint::latest(run_dir)?.is_some() {
        return Err(TrainError::Config(format!(
            "{} already holds a run: resume it (--resume latest) or choose another output folder",
            run_dir.display()
        )));
    }
    // The resolved config and the split go into the run directory before step 0.
    std::fs::write(&config_path, cfg.to_toml()).at(&config_path)?;
    let split_path = run_dir.join(SPLIT_FILE);
    let ids = SplitIds::of(data, split);
    std::fs::write(&split_path, serde_json::to_vec(&ids).expect("serialises")).at(&split_path)?;
    Ok(())
}

/// Whether two configs describe the same run (display-only and runtime settings may differ).
fn same_run(a: &TrainConfig, b: &TrainConfig) -> bool {
    let mut a = a.clone();
    a.train_loop.progress = b.train_loop.progress;
    a.train_loop.device.clone_from(&b.train_loop.device);
    a.mixture.device.clone_from(&b.mixture.device);
    a == *b
}

/// The parts of a run that a checkpoint restores.
pub struct Restorable<'a> {
    pub varmap: &'a VarMap,
    pub opt: &'a mut dyn Optimizer,
    pub plateau: &'a mut ReduceLrOnPlateau,
    pub labeler: Option<&'a mut PseudoLabeler>,
}

/// Restore weights, optimiser, scheduler and pseudo-labeler from the checkpoint folder `dir`;
/// metrics written after it are moved aside. Returns where training stood.
pub fn restore(run_dir: &Path, dir: &Path, parts: Restorable<'_>) -> Result<Progress> {
    let state = checkpoint::read_state(dir)?;
    checkpoint::load_weights(dir, parts.varmap)?;
    parts
        .opt
        .load_state_tensors(&checkpoint::load_optimizer(dir)?)?;
    parts.opt.set_learning_rate(state.lr);
    *parts.plateau = state.plateau.clone();
    if let Some(labeler) = parts.labeler {
        checkpoint::load_labeler(dir, labeler)?;
    }
    Ok(Progress {
        step: state.step,
        next_epoch: state.epoch + 1,
        epochs: crate::metrics::truncate_after(run_dir, state.epoch, state.step)?,
        best: state.best_score.zip(state.best_epoch),
        epochs_without_improvement: state.epochs_without_improvement,
        first_loss: state.first_loss,
        last_loss: f32::NAN,
    })
}
