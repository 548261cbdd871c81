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
        let best_tmp = root.join(".tmp-best");
        if best_tmp.exists() {
            fs::remove_dir_all(&best_tmp).at(&best_tmp)?;
        }
        fs::create_dir_all(&best_tmp).at(&best_tmp)?;
        for file in FILES {
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
