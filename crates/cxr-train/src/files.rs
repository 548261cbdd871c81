//! Writing run files so that a crash never leaves a half-written one: every writer of this
//! crate goes through these functions (a temporary sibling, fsync, rename).

use std::fs::{self, File};
use std::path::Path;

use crate::error::IoContext;
use crate::Result;

/// Write `bytes` to `path` via a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).at(&tmp)?;
    sync_file(&tmp)?;
    fs::rename(&tmp, path).at(path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// [`write_atomic`] of a value as pretty JSON.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(
        path,
        &serde_json::to_vec_pretty(value).expect("run files serialise"),
    )
}

/// Flush a written file to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).at(path)
}

/// Make renames inside `path` durable; not every filesystem supports directory fsync.
pub fn sync_dir(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = f.sync_all();
    }
}

/// Move the complete folder `from` to `to`, replacing `to` only once `from` is complete.
pub fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        let old = to.with_extension("old");
        if old.exists() {
            fs::remove_dir_all(&old).at(&old)?;
        }
        fs::rename(to, &old).at(to)?;
        fs::rename(from, to).at(from)?;
        fs::remove_dir_all(&old).at(&old)?;
    } else {
        fs::rename(from, to).at(from)?;
    }
    Ok(())
}
