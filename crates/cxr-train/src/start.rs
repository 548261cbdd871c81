//! Starting or resuming a run in its folder: a fresh run writes its resolved config and split
//! before step 0 (and refuses a folder that already holds a run); a resumed one checks that
//! the config is the same and reads back where training stood. Either way the folder is locked
//! for this process first ([`RunLock`]).

use std::path::{Path, PathBuf};

use candle_nn::VarMap;
use cxr_mixture::PseudoLabeler;
use cxr_optim::{Optimizer, ReduceLrOnPlateau};

use crate::checkpoint::{self, CheckpointState, MidEpoch};
use crate::config::TrainConfig;
use crate::error::IoContext;
use crate::lock::RunLock;
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
    /// Where inside `next_epoch` to go on (a mid-epoch checkpoint was restored).
    pub in_epoch: Option<MidEpoch>,
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
            in_epoch: None,
            epochs: Vec::new(),
            best: None,
            epochs_without_improvement: 0,
            first_loss: f32::NAN,
            last_loss: f32::NAN,
        }
    }

    /// The checkpoint state at the end of `epoch`, or inside it at `mid_epoch`.
    pub fn checkpoint_state(
        &self,
        epoch: usize,
        mid_epoch: Option<MidEpoch>,
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
            last_loss: Some(self.last_loss).filter(|l| l.is_finite()),
            mid_epoch,
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// How a run folder is opened.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// A new run: the folder must not hold one.
    Fresh,
    /// Continue from this checkpoint folder.
    Checkpoint(&'a Path),
    /// Continue whatever the folder holds (`--resume latest`): its newest intact checkpoint;
    /// a run stopped before its first checkpoint starts over, its files set aside in
    /// `unfinished-N/`; an empty folder starts fresh.
    Continue,
}

/// Lock `run_dir` and prepare it for training as `start` says. Returns the lock (held until
/// training ends) and the checkpoint to restore, if any.
pub fn open_run_dir(
    cfg: &TrainConfig,
    data: &Prepared,
    split: &Split,
    run_dir: &Path,
    start: Start<'_>,
) -> Result<(RunLock, Option<PathBuf>)> {
    let lock = RunLock::acquire(run_dir)?;
    let config_path = run_dir.join("config.toml");
    let from = match start {
        Start::Fresh => None,
        Start::Checkpoint(dir) => Some(dir.to_path_buf()),
        Start::Continue => match checkpoint::latest_good(run_dir)? {
            Some(dir) => Some(dir),
            None if config_path.exists() => {
                check_same_config(cfg, &config_path)?;
                set_aside_unfinished(run_dir)?;
                None
            }
            None => None,
        },
    };
    if from.is_some() {
        check_same_config(cfg, &config_path)?;
        return Ok((lock, from));
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
    Ok((lock, None))
}

/// A resumed run must use the settings it was started with.
fn check_same_config(cfg: &TrainConfig, config_path: &Path) -> Result<()> {
    let saved = std::fs::read_to_string(config_path).at(config_path)?;
    let saved = TrainConfig::from_toml_over(cfg, &saved)?;
    if !same_run(&saved, cfg) {
        return Err(TrainError::Config(format!(
            "the config differs from the one in {}: a resumed run must use the same settings",
            config_path.display()
        )));
    }
    Ok(())
}

/// The files of a run that stopped before its first checkpoint, moved into a new
/// `unfinished-N/` folder (kept, never deleted) so that the run can start over.
const UNFINISHED_FILES: [&str; 5] = [
    "config.toml",
    SPLIT_FILE,
    "metrics.jsonl",
    "metrics.csv",
    "metrics.discarded.jsonl",
];

fn set_aside_unfinished(run_dir: &Path) -> Result<()> {
    let aside = (0..)
        .map(|n| run_dir.join(format!("unfinished-{n}")))
        .find(|p| !p.exists())
        .expect("a free name");
    std::fs::create_dir_all(&aside).at(&aside)?;
    for name in UNFINISHED_FILES {
        let from = run_dir.join(name);
        if from.exists() {
            std::fs::rename(&from, aside.join(name)).at(&from)?;
        }
    }
    // Its TensorBoard files too: the new start must not be read as their continuation.
    for from in crate::tensorboard::events_files(run_dir)? {
        let to = aside.join(from.file_name().expect("a file name"));
        std::fs::rename(&from, &to).at(&from)?;
    }
    tracing::warn!(
        "{} stopped before its first checkpoint: starting it over (its files are in {})",
        run_dir.display(),
        aside.display()
    );
    Ok(())
}

/// Whether two configs describe the same run (display-only and runtime settings may differ).
fn same_run(a: &TrainConfig, b: &TrainConfig) -> bool {
    let mut a = a.clone();
    a.train_loop.progress = b.train_loop.progress;
    a.train_loop.device.clone_from(&b.train_loop.device);
    a.train_loop.checkpoint_every = b.train_loop.checkpoint_every;
    a.train_loop.tensorboard = b.train_loop.tensorboard;
    a.train_loop.prefetch = b.train_loop.prefetch;
    a.train_loop.checkpoint_activations = b.train_loop.checkpoint_activations;
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
    checkpoint::repair_best(run_dir, dir, &state)?;
    checkpoint::load_weights(dir, parts.varmap)?;
    parts
        .opt
        .load_state_tensors(&checkpoint::load_optimizer(dir)?)?;
    parts.opt.set_learning_rate(state.lr);
    *parts.plateau = state.plateau.clone();
    if let Some(labeler) = parts.labeler {
        checkpoint::load_labeler(dir, labeler)?;
    }
    // A mid-epoch checkpoint goes on inside its epoch; an epoch's end with the next epoch.
    let epochs_done = match state.mid_epoch {
        Some(_) => state.epoch,
        None => state.epoch + 1,
    };
    Ok(Progress {
        step: state.step,
        next_epoch: epochs_done,
        in_epoch: state.mid_epoch,
        epochs: crate::metrics::truncate_after(run_dir, epochs_done, state.step)?,
        best: state.best_score.zip(state.best_epoch),
        epochs_without_improvement: state.epochs_without_improvement,
        first_loss: state.first_loss,
        last_loss: state.last_loss.unwrap_or(f32::NAN),
    })
}
