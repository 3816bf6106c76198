//! Walking one mapping's folder: lists the regular files its [`PathFilter`] selects, with their
//! `lstat`, and collects what was skipped and why. It reads no file contents; hashing is
//! [`hash`](super::hash)'s job. Runs on the blocking pool.
//!
//! Policy, documented in the README:
//! - Symlinks (to files or folders) are never followed, so a link loop cannot hang a scan; each
//!   one that no exclude glob covers is reported as a warning. The mapping root itself may be a
//!   symlink to a folder.
//! - Names that are not valid UTF-8 are skipped with a warning: Hub paths are UTF-8 strings.
//! - FIFOs, sockets and devices are skipped with a warning; reading a FIFO would block forever.
//! - Empty folders produce nothing (git, and so the Hub, does not store folders).

use std::path::{Component, Path, PathBuf};

use walkdir::WalkDir;

use super::hash::FileStat;
use super::{LocalError, PathFilter, ScanWarning};

/// A file the walk selected, before hashing.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Relative to the mapping root, `/`-separated.
    pub rel: String,
    pub abs: PathBuf,
    pub stat: FileStat,
}

/// What a walk of one mapping found.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub files: Vec<Candidate>,
    pub warnings: Vec<ScanWarning>,
    /// Entries that could not be read (a folder without permission, a file gone mid-walk).
    pub failures: Vec<LocalError>,
}

/// Walks `root` (an absolute path). Fails only when the root itself is unusable; problems with
/// entries under it are collected in the result.
pub(crate) fn walk(root: &Path, filter: &PathFilter) -> Result<Walked, LocalError> {
    let meta = std::fs::metadata(root).map_err(|source| LocalError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(LocalError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let mut out = Walked::default();
    let mut entries = WalkDir::new(root).follow_links(false).into_iter();
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                out.failures.push(LocalError::Io {
                    path,
                    source: e.into(),
                });
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let file_type = entry.file_type();
        let Some(rel) = relative_utf8(root, entry.path()) else {
            out.warnings.push(ScanWarning::NonUtf8Skipped {
                path: entry.path().to_path_buf(),
            });
            if file_type.is_dir() {
                entries.skip_current_dir();
            }
            continue;
        };
        if file_type.is_dir() {
            if filter.prunes_dir(&rel) {
                entries.skip_current_dir();
            }
            continue;
        }
        if file_type.is_symlink() {
            if !filter.is_excluded(&rel) {
                out.warnings.push(ScanWarning::SymlinkSkipped {
                    path: entry.path().to_path_buf(),
                });
            }
            continue;
        }
        if !filter.matches(&rel) {
            continue;
        }
        if !file_type.is_file() {
            out.warnings.push(ScanWarning::SpecialSkipped {
                path: entry.path().to_path_buf(),
            });
            continue;
        }
        // Not following links, so this is an `lstat`: one syscall per selected file, the whole
        // cost of a warm scan.
        match entry.metadata() {
            Ok(meta) => out.files.push(Candidate {
                rel,
                abs: entry.path().to_path_buf(),
                stat: FileStat::from_metadata(&meta),
            }),
            Err(e) => out.failures.push(LocalError::Io {
                path: entry.path().to_path_buf(),
                source: e.into(),
            }),
        }
    }
    Ok(out)
}

/// `path` relative to `root` with `/` separators, or `None` when a component is not UTF-8.
fn relative_utf8(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::with_capacity(rel.as_os_str().len());
    for component in rel.components() {
        let Component::Normal(name) = component else {
            return None;
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(name.to_str()?);
    }
    Some(out)
}
