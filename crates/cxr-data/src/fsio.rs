//! What the workspace leaves on disk: files replaced atomically ([`write_atomic`]) and a hash
//! that is stable across Rust releases ([`stable_hash`], FNV-1a 64) for cache keys and seeds.
//!
//! The one copy of each: the image cache, the run reports and the seeded initialisation all
//! use these.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{DataError, Result};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a 64 over bytes fed in pieces: `write(a); write(b)` equals one `write` of `a ++ b`.
///
/// Unlike `std::hash::DefaultHasher`, the value never changes between releases, so it can
/// name cache folders and seed RNGs. Not for untrusted keys (no DoS resistance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StableHasher(u64);

impl StableHasher {
    /// A hasher that has seen no bytes (its [`finish`](Self::finish) is the FNV offset basis).
    pub const fn new() -> Self {
        Self(FNV_OFFSET)
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash of everything fed so far.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a 64 of `bytes` (a `&str`, `String` or byte slice): stable across releases and
/// platforms, for seeds and cache keys.
pub fn stable_hash(bytes: impl AsRef<[u8]>) -> u64 {
    let mut h = StableHasher::new();
    h.write(bytes.as_ref());
    h.finish()
}

/// Replaces `path` with `bytes` so that a reader (or a crash) sees the old file or the new
/// one, never a mix: the bytes go to a temporary sibling with a unique name, which is synced to
/// disk and renamed over `path`; the parent folder is then synced where the platform and file
/// system support it (Unix), so that the rename itself survives a crash.
///
/// A file that is memory-mapped keeps its old contents (the rename leaves its inode intact).
/// Errors name the file that failed (the temporary one for writing, `path` for the rename);
/// the temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path)?;
    let written = write_synced(&tmp, bytes)
        .map_err(|e| DataError::io(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(parent_dir(path));
    Ok(())
}

/// `NAME.PID.N.tmp` next to `path`: unique among the threads and processes writing the same
/// folder; a leftover of a crash keeps the prefix of the file it was meant to become (so a
/// cleanup by prefix, such as the image cache's, removes it) and ends in `.tmp`.
fn temp_sibling(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        DataError::InvalidParam(format!(
            "cannot write {}: the path names no file",
            path.display()
        ))
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs a folder's entries, best effort: Unix only, and file systems that cannot sync a
/// folder (some network and FUSE ones answer `EINVAL`) are let be, since the file's own
/// contents are already on disk.
pub fn sync_dir(dir: &Path) {
    if cfg!(unix) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a_64() {
        // Published FNV-1a 64 test vectors, and the values seeds and cache keys rely on.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            stable_hash("text_model.embeddings.token_embedding.weight"),
            0xb72f_e613_ce2f_afc1
        );
        let mut h = StableHasher::default();
        h.write(b"foo");
        h.write(b"");
        h.write(b"bar");
        assert_eq!(h.finish(), stable_hash(b"foobar"));
        assert_eq!(stable_hash(String::from("a")), stable_hash(b"a"));
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.json"]);
    }

    #[test]
    fn write_atomic_errors_name_the_path_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty folder: the rename fails, the temporary file is removed.
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"").unwrap();
        let err = write_atomic(&target, b"bytes").unwrap_err();
        assert!(err.to_string().contains("taken"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A missing folder: the error names the temporary file in it.
        let err = write_atomic(&dir.path().join("no/such/file"), b"").unwrap_err();
        assert!(err.to_string().contains("no/such"), "{err}");
        assert!(write_atomic(Path::new("/"), b"").is_err());
    }

    #[test]
    fn concurrent_writers_of_one_file_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.bin");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || write_atomic(path, &[i; 64]).unwrap());
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() == 64 && bytes.iter().all(|&b| b == bytes[0]));
    }
}
