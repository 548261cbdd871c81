//! Checkpoints: written atomically, the newest `keep_last` kept, plus `best/`.
//!
//! A checkpoint is a folder `checkpoints/epoch-NNNN/` holding
//! - `model.safetensors`: every model parameter under its Hugging Face name;
//! - `optimizer.safetensors`: the optimiser's moment tensors and step count;
//! - `state.json` ([`CheckpointState`]): epoch, global step, learning rate, best score so far;
//! - `manifest.json`: the size and FNV-1a hash of every other file, so that a damaged
//!   checkpoint (a flipped byte, a truncated file) is detected before it is used.
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
    /// The epoch this checkpoint ends (or, with `mid_epoch`, the epoch it is inside).
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
    /// The last step's loss (reported in results; absent in older checkpoints).
    #[serde(default)]
    pub last_loss: Option<f32>,
    /// Where inside `epoch` a mid-epoch checkpoint was written (`None`: at the epoch's end).
    #[serde(default)]
    pub mid_epoch: Option<MidEpoch>,
}

/// The position inside an epoch that a mid-epoch checkpoint resumes from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MidEpoch {
    /// Batches of the epoch's order already consumed.
    pub batches_done: usize,
    /// The epoch's training loss so far: sum and number of steps.
    pub loss_sum: f64,
    pub steps: usize,
}

/// The folder name of a checkpoint: `epoch-NNNN` at an epoch's end,
/// `epoch-NNNN-step-SSSSSSSS` inside it.
fn dir_name(state: &CheckpointState) -> String {
    match state.mid_epoch {
        None => format!("epoch-{:04}", state.epoch),
        Some(_) => format!("epoch-{:04}-step-{:08}", state.epoch, state.step),
    }
}

/// Training order of checkpoint folder names: by epoch, inside an epoch by step, an epoch's
/// end last. `None` for names that are not checkpoints.
fn order_key(name: &str) -> Option<(usize, usize, usize)> {
    let rest = name.strip_prefix("epoch-")?;
    match rest.split_once("-step-") {
        None => Some((rest.parse().ok()?, 1, 0)),
        Some((epoch, step)) => Some((epoch.parse().ok()?, 0, step.parse().ok()?)),
    }
}

/// The mixture pseudo-labeler (memory bank and current fit), CXR-CML runs only.
const LABELER_FILE: &str = "labeler.json";
const MANIFEST_FILE: &str = "manifest.json";

/// Every file a checkpoint may hold, in the order they are written (`state.json` last).
const FILES: [&str; 5] = [
    "model.safetensors",
    "optimizer.safetensors",
    LABELER_FILE,
    MANIFEST_FILE,
    "state.json",
];

/// A file's size and FNV-1a 64 hash (hex), as `manifest.json` records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    bytes: u64,
    fnv1a: String,
}

impl Fingerprint {
    fn of(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut file = fs::File::open(path).at(path)?;
        let mut hasher = cxr_data::StableHasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf).at(path)?;
            if n == 0 {
                break;
            }
            hasher.write(&buf[..n]);
            bytes += n as u64;
        }
        Ok(Self {
            bytes,
            fnv1a: format!("{:016x}", hasher.finish()),
        })
    }
}

/// `manifest.json` for the files of `dir` written so far.
fn write_manifest(dir: &Path) -> Result<()> {
    let mut manifest = std::collections::BTreeMap::new();
    for name in &FILES[..3] {
        let path = dir.join(name);
        if path.is_file() {
            manifest.insert(name.to_string(), Fingerprint::of(&path)?);
        }
    }
    let path = dir.join(MANIFEST_FILE);
    fs::write(
        &path,
        serde_json::to_vec_pretty(&manifest).expect("manifest serialises"),
    )
    .at(&path)?;
    sync_file(&path)
}

/// Check a checkpoint folder against its manifest (and that its state parses). A checkpoint
/// written before manifests existed is accepted as it is.
pub fn verify(dir: &Path) -> Result<()> {
    read_state(dir)?;
    let path = dir.join(MANIFEST_FILE);
    let Ok(bytes) = fs::read(&path) else {
        return Ok(());
    };
    let manifest: std::collections::BTreeMap<String, Fingerprint> = serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::File {
            path: path.clone(),
            message: format!("invalid checkpoint manifest: {e}"),
        })?;
    for (name, want) in manifest {
        let file = dir.join(&name);
        let got = Fingerprint::of(&file)?;
        if got != want {
            return Err(TrainError::File {
                path: file,
                message: format!(
                    "damaged: {} bytes with hash {}, the checkpoint wrote {} bytes with hash {}",
                    got.bytes, got.fnv1a, want.bytes, want.fnv1a
                ),
            });
        }
    }
    Ok(())
}

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
    let name = dir_name(state);
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
    write_manifest(&tmp)?;
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
        copy_to_best(run_dir, &dest)?;
    }
    prune(&root, keep_last.max(1))?;
    sync_dir(&root);
    Ok(dest)
}

/// Make the checkpoint `dir` the run's `best/` (a copy, replaced whole).
fn copy_to_best(run_dir: &Path, dir: &Path) -> Result<()> {
    let best_tmp = checkpoints_dir(run_dir).join(".tmp-best");
    if best_tmp.exists() {
        fs::remove_dir_all(&best_tmp).at(&best_tmp)?;
    }
    fs::create_dir_all(&best_tmp).at(&best_tmp)?;
    for file in FILES {
        if !dir.join(file).exists() {
            continue;
        }
        let to = best_tmp.join(file);
        fs::copy(dir.join(file), &to).at(&to)?;
        sync_file(&to)?;
    }
    replace_dir(&best_tmp, &best_dir(run_dir))
}

/// Before resuming from `dir`: a crash between writing an epoch's checkpoint and copying it to
/// `best/` leaves `best/` missing or older than the state says; when `dir` is that best
/// epoch, `best/` is rebuilt from it.
pub fn repair_best(run_dir: &Path, dir: &Path, state: &CheckpointState) -> Result<()> {
    if state.mid_epoch.is_some() || state.best_epoch != Some(state.epoch) {
        return Ok(());
    }
    let best = best_dir(run_dir);
    let current = read_state(&best).ok().filter(|b| b.mid_epoch.is_none());
    if current.is_some_and(|b| b.epoch == state.epoch) && verify(&best).is_ok() {
        return Ok(());
    }
    tracing::warn!(
        "{} is missing or stale (a crash while it was written): rebuilt from {}",
        best.display(),
        dir.display()
    );
    copy_to_best(run_dir, dir)
}

/// Complete checkpoints (epoch ends and mid-epoch ones), oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let root = checkpoints_dir(run_dir);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<((usize, usize, usize), PathBuf)> = fs::read_dir(&root)
        .at(&root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("state.json").is_file())
        .filter_map(|p| {
            let key = order_key(p.file_name()?.to_str()?)?;
            Some((key, p))
        })
        .collect();
    dirs.sort();
    Ok(dirs.into_iter().map(|(_, p)| p).collect())
}

/// The newest complete checkpoint, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(run_dir)?.pop())
}

/// The newest checkpoint that passes [`verify`], if any; each damaged newer one is skipped
/// with a warning that names it (it is kept on disk for inspection).
pub fn latest_good(run_dir: &Path) -> Result<Option<PathBuf>> {
    for dir in list(run_dir)?.into_iter().rev() {
        match verify(&dir) {
            Ok(()) => return Ok(Some(dir)),
            Err(e) => tracing::warn!(
                "checkpoint {} is damaged and skipped ({e}); using the one before it",
                dir.display()
            ),
        }
    }
    Ok(None)
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
        return latest_good(run_dir);
    }
    let path = PathBuf::from(spec);
    if !path.join("state.json").is_file() {
        return Err(TrainError::File {
            path,
            message: "not a checkpoint folder (no state.json)".into(),
        });
    }
    verify(&path)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_sort_in_training_order() {
        let mut names = [
            "epoch-0001",
            "epoch-0001-step-00000007",
            "epoch-0000",
            "epoch-0002-step-00000012",
            "epoch-0000-step-00000002",
            "epoch-0010",
        ];
        names.sort_by_key(|n| order_key(n).unwrap());
        assert_eq!(
            names,
            [
                "epoch-0000-step-00000002",
                "epoch-0000",
                "epoch-0001-step-00000007",
                "epoch-0001",
                "epoch-0002-step-00000012",
                "epoch-0010",
            ]
        );
        for not_a_checkpoint in ["best", ".tmp-epoch-0001", "epoch-0001.old", "epoch-x"] {
            assert_eq!(order_key(not_a_checkpoint), None, "{not_a_checkpoint}");
        }
    }
}
