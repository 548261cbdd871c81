//! Writing run files so that a crash never leaves a half-written one: every writer of this
//! crate goes through these functions (a temporary sibling, fsync, rename); checkpoints, which
//! are folders, are written in a temporary folder and moved in by [`replace_dir`].

use std::fs::{self, File};
use std::path::Path;

use crate::error::IoContext;
use crate::Result;

/// Write `bytes` to `path` via a temporary sibling, fsync and a rename (the workspace's one
/// implementation, [`cxr_data::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(cxr_data::write_atomic(path, bytes)?)
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

/// Make renames inside a folder durable (best effort: [`cxr_data::sync_dir`]).
pub use cxr_data::sync_dir;

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
