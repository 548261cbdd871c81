//! Checkpoints: written atomically, the newest `keep_last` kept, plus `best/`.
//!
//! A checkpoint is a folder `checkpoints/epoch-NNNN/` holding
//! - `model.safetensors`: every model parameter under its Hugging Face name;
//! - `optimizer.safetensors`: the optimiser's moment tensors and step count;
//! - `state.json` ([`CheckpointState`]): epoch, global step, learning rate, best score so far.
//!
//! It is written into a hidden temporary folder, each file fsynced, then renamed into place,
//! so a crash leaves either the complete checkpoint or none; `state.json` is written last and a
//! folder without it is never used.

use std::fs;
use std::path::{Path, PathBuf};

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use cxr_mixture::PseudoLabeler;
use cxr_optim::Optimizer;

use crate::error::IoContext;
use crate::files::{replace_dir, sync_dir, sync_file};
use crate::{Result, TrainError};

/// Training progress stored next to the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The epoch this checkpoint ends.
    pub epoch: usize,
    /// Optimiser steps taken so far.
    pub step: usize,
    pub lr: f64,
    pub best_score: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Epochs since the best score last improved (early stopping).
    pub epochs_without_improvement: usize,
    /// The first step's loss of the run (reported in results).
    pub first_loss: f32,
    /// The ReduceLROnPlateau scheduler, whole.
    pub plateau: cxr_optim::ReduceLrOnPlateau,
}

/// The mixture pseudo-labeler (memory bank and current fit), CXR-CML runs only.
const LABELER_FILE: &str = "labeler.json";

pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

pub fn best_dir(run_dir: &Path) -> PathBuf {
    checkpoints_dir(run_dir).join("best")
}

/// Write the checkpoint for `state.epoch`; also make it `best/` when `is_best`.
pub fn save(
    run_dir: &Path,
    varmap: &VarMap,
    opt: &dyn Optimizer,
    labeler: Option<&PseudoLabeler>,
    state: &CheckpointState,
    is_best: bool,
    keep_last: usize,
) -> Result<PathBuf> {
    let root = checkpoints_dir(run_dir);
    fs::create_dir_all(&root).at(&root)?;
    let name = format!("epoch-{:04}", state.epoch);
    let tmp = root.join(format!(".tmp-{name}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).at(&tmp)?;
    }
    fs::create_dir_all(&tmp).at(&tmp)?;
    let model = tmp.join("model.safetensors");
    varmap.save(&model)?;
    sync_file(&model)?;
    let optim = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(&opt.state_tensors()?, &optim)?;
    sync_file(&optim)?;
    if let Some(labeler) = labeler {
        let path = tmp.join(LABELER_FILE);
        let json = serde_json::to_vec(&labeler.state()).expect("labeler state serialises");
        fs::write(&path, json).at(&path)?;
        sync_file(&path)?;
    }
    let state_path = tmp.join("state.json");
    fs::write(
        &state_path,
        serde_json::to_vec_pretty(state).expect("state serialises"),
    )
    .at(&state_path)?;
    sync_file(&state_path)?;
    sync_dir(&tmp);

    let dest = root.join(&name);
    replace_dir(&tmp, &dest)?;
    if is_best {
        let best_tmp = root.join(".tmp-best");
        if best_tmp.exists() {
            fs::remove_dir_all(&best_tmp).at(&best_tmp)?;
        }
        fs::create_dir_all(&best_tmp).at(&best_tmp)?;
        for file in [
            "model.safetensors",
            "optimizer.safetensors",
            LABELER_FILE,
            "state.json",
        ] {
            if !dest.join(file).exists() {
                continue;
            }
            let to = best_tmp.join(file);
            fs::copy(dest.join(file), &to).at(&to)?;
            sync_file(&to)?;
        }
        replace_dir(&best_tmp, &best_dir(run_dir))?;
    }
    prune(&root, keep_last.max(1))?;
    sync_dir(&root);
    Ok(dest)
}

/// Complete epoch checkpoints, oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let root = checkpoints_dir(run_dir);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .at(&root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("epoch-") && !n.ends_with(".old"))
                && p.join("state.json").is_file()
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The newest complete checkpoint, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(run_dir)?.pop())
}

fn prune(root: &Path, keep: usize) -> Result<()> {
    let run_dir = root.parent().unwrap_or(root);
    let all = list(run_dir)?;
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        fs::remove_dir_all(old).at(old)?;
    }
    Ok(())
}

pub fn read_state(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join("state.json");
    let bytes = fs::read(&path).at(&path)?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::File {
        path,
        message: format!("invalid checkpoint state: {e}"),
    })
}

/// Load a checkpoint's weights into `varmap` (names must match).
pub fn load_weights(dir: &Path, varmap: &VarMap) -> Result<()> {
    let path = dir.join("model.safetensors");
    if !path.is_file() {
        return Err(TrainError::File {
            path,
            message: "checkpoint has no model.safetensors".into(),
        });
    }
    let mut vm = varmap.clone();
    vm.load(&path)?;
    Ok(())
}

/// The optimiser state tensors of a checkpoint.
pub fn load_optimizer(
    dir: &Path,
) -> Result<std::collections::HashMap<String, candle_core::Tensor>> {
    let path = dir.join("optimizer.safetensors");
    if !path.is_file() {
        return Err(TrainError::File {
            path,
            message: "checkpoint has no optimizer.safetensors".into(),
        });
    }
    Ok(candle_core::safetensors::load(
        &path,
        &candle_core::Device::Cpu,
    )?)
}

/// Restore the pseudo-labeler's bank and fit from a checkpoint.
pub fn load_labeler(dir: &Path, labeler: &mut PseudoLabeler) -> Result<()> {
    let path = dir.join(LABELER_FILE);
    let bytes = fs::read(&path).at(&path)?;
    let state = serde_json::from_slice(&bytes).map_err(|e| TrainError::File {
        path: path.clone(),
        message: format!("invalid labeler state: {e}"),
    })?;
    labeler.restore(state)?;
    Ok(())
}

/// Resolve `--resume latest|PATH` for a run folder.
pub fn resolve_resume(run_dir: &Path, spec: &str) -> Result<Option<PathBuf>> {
    if spec == "latest" {
        return latest(run_dir);
    }
    let path = PathBuf::from(spec);
    if !path.join("state.json").is_file() {
        return Err(TrainError::File {
            path,
            message: "not a checkpoint folder (no state.json)".into(),
        });
    }
    Ok(Some(path))
}
