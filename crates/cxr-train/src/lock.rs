//! One writer per run folder: a `.lock` file holding the owner's process id and host, created
//! atomically and removed when the owner finishes. A lock whose process is gone (a crash or
//! `kill -9`) is detected and taken over.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Result, TrainError};

pub const LOCK_FILE: &str = ".lock";

/// Held while a process writes a run folder; dropping it removes the lock file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

/// Who holds a lock, as written in the lock file (`<pid> <host>`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    host: String,
}

impl Owner {
    fn me() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split_whitespace();
        let pid = parts.next()?.parse().ok()?;
        Some(Self {
            pid,
            host: parts.next().unwrap_or_default().to_string(),
        })
    }

    /// Whether the owner is certainly gone: a process of this host that no longer runs.
    /// Another host's process cannot be checked, so it counts as alive.
    fn is_gone(&self) -> bool {
        self.host == host_name() && !process_alive(self.pid)
    }
}

impl RunLock {
    /// Take the lock of `run_dir` (created if needed), or fail naming the process that holds it.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        fs::create_dir_all(run_dir).at(run_dir)?;
        let path = run_dir.join(LOCK_FILE);
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let me = Owner::me();
                    writeln!(f, "{} {}", me.pid, me.host).at(&path)?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    match Owner::parse(&text) {
                        Some(owner) if !owner.is_gone() => {
                            return Err(in_use(run_dir, &owner, &path));
                        }
                        // A dead owner's lock, or one cut short by a crash: take it over.
                        _ => {
                            tracing::warn!(
                                "{}: taking over a lock left by a process that is gone ({})",
                                run_dir.display(),
                                text.trim()
                            );
                            fs::remove_file(&path).at(&path)?;
                        }
                    }
                }
                Err(e) => return Err(e).at(&path),
            }
        }
        Err(TrainError::File {
            path,
            message: "another process keeps taking this run folder's lock".into(),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn in_use(run_dir: &Path, owner: &Owner, lock: &Path) -> TrainError {
    TrainError::Config(format!(
        "{} is in use by process {} on {}: wait for it to finish, or choose another output \
         folder (if that process is gone, delete {})",
        run_dir.display(),
        owner.pid,
        if owner.host.is_empty() {
            "an unknown host"
        } else {
            &owner.host
        },
        lock.display()
    ))
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` runs on this machine. Linux answers through `/proc`; elsewhere a
/// process cannot be checked without unsafe code, so it counts as alive.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_a_dead_owners_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let lock = RunLock::acquire(&run).unwrap();
        let e = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(lock);
        assert!(
            !run.join(LOCK_FILE).exists(),
            "the lock goes with its owner"
        );
        let again = RunLock::acquire(&run).unwrap();
        drop(again);

        if cfg!(target_os = "linux") {
            // A process that has exited leaves its lock behind (kill -9): taken over.
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            std::fs::write(run.join(LOCK_FILE), format!("{pid} {}\n", host_name())).unwrap();
            let taken = RunLock::acquire(&run).unwrap();
            let text = std::fs::read_to_string(run.join(LOCK_FILE)).unwrap();
            assert!(text.starts_with(&std::process::id().to_string()), "{text}");
            drop(taken);
        }
        // A truncated lock file (a crash while writing it) is taken over too.
        std::fs::write(run.join(LOCK_FILE), "").unwrap();
        assert!(RunLock::acquire(&run).is_ok());
    }
}
