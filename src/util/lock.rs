//! `ApplyLock`: stops two hubsync processes from applying the same manifest at once. The lock is
//! a file created with `O_EXCL` holding the owner's pid; a lock left by a process that died
//! (kill -9) is recognised by its pid no longer running hubsync, and taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct ApplyLock {
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another hubsync (pid {pid}) is applying this manifest (lock `{}`)", path.display())]
    Held { pid: u32, path: PathBuf },
    #[error("failed to take the lock `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    pub fn hints(&self) -> Vec<String> {
        match self {
            LockError::Held { path, .. } => vec![format!(
                "wait for it to finish; if no hubsync is running, delete `{}`",
                path.display()
            )],
            LockError::Io { .. } => Vec::new(),
        }
    }
}

/// Whether `pid` is a live process that looks like hubsync.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => String::from_utf8_lossy(&cmd).contains("hubsync"),
        // No /proc (not Linux): assume it runs, so we never break a live lock.
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

impl ApplyLock {
    /// Takes the lock file `path`, recovering it from a dead owner.
    pub fn acquire(path: &Path) -> Result<ApplyLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    return Ok(ApplyLock {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        Ok(pid) if alive(pid) => {
                            return Err(LockError::Held {
                                pid,
                                path: path.to_path_buf(),
                            });
                        }
                        // A dead owner, or a lock file cut short by a crash while being written.
                        _ => {
                            tracing::info!(lock = %path.display(), "removing a stale lock");
                            let _ = std::fs::remove_file(path);
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(LockError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("the lock kept changing"),
        })
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".hubsync/apply.lock");
        let held = ApplyLock::acquire(&path).unwrap();
        // Our own pid counts as alive.
        assert!(matches!(
            ApplyLock::acquire(&path),
            Err(LockError::Held { .. })
        ));
        drop(held);
        assert!(!path.exists());
        // A lock left by a pid that does not run hubsync is stale.
        std::fs::write(&path, "999999999\n").unwrap();
        let again = ApplyLock::acquire(&path).unwrap();
        drop(again);
        // A truncated lock file is stale too.
        std::fs::write(&path, "").unwrap();
        assert!(ApplyLock::acquire(&path).is_ok());
    }
}
