//! Streaming content hashes of one file: SHA-256 always, and the git blob SHA-1 for files small
//! enough to be stored as regular git blobs, both from a single read through a reusable buffer.
//! It also owns [`FileStat`], the `stat` fields that identify a version of a file, and the check
//! that a file did not change while it was being read. It runs on the blocking pool (see
//! [`scan`](super::scan)) and must not decide what to upload.

use std::cell::RefCell;
use std::fs::Metadata;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::LocalError;
use crate::api::{LFS_THRESHOLD, git_blob_hasher};

/// Read size. On this project's 2-core Zen 4 VM (page cache warm) reads of 64 KiB to 1 MiB were
/// within a few points of each other, the smaller ones slightly ahead: a 256 KiB buffer stays in
/// the 1 MiB L2 between the copy out of the page cache and the hash, and that copy is the only
/// cost left beside SHA-256 (`examples/bench_scan.rs` measures 82–89% of sha2 × cores on an idle
/// machine). `mmap` was tried: only a few points faster in a single-thread test, and it turns a
/// file truncated while being read (a trainer re-saving a checkpoint in place) into a SIGBUS that
/// kills the process, so it is not used.
pub(crate) const BUFFER_SIZE: usize = 256 << 10;

/// How many times a file that changes while it is being read is re-read before giving up.
const MAX_ATTEMPTS: u32 = 3;

/// The `stat` fields that identify one version of a file without reading it: the hash cache key
/// (with the path) and what a staleness check compares. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
    /// Status-change time: moves on every write and on `touch`, and unlike mtime it cannot be
    /// set back by a program, so it catches content rewritten with the old mtime restored.
    pub ctime_ns: i64,
    /// Catches a file replaced by another (rename over it) that happens to match in size and times.
    pub inode: u64,
}

impl FileStat {
    /// The identity of `meta` (from `stat`/`lstat`/`fstat`).
    pub fn from_metadata(meta: &Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileStat {
                size: meta.len(),
                mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
                inode: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            // Without ctime and inodes only size and mtime identify a version; the cache is
            // correspondingly weaker there.
            let mtime_ns = meta.modified().map(system_time_ns).unwrap_or(0);
            FileStat {
                size: meta.len(),
                mtime_ns,
                ctime_ns: mtime_ns,
                inode: 0,
            }
        }
    }

    /// `lstat` of `path`: a symlink is described, not followed.
    pub fn of_path(path: &Path) -> Result<Self, LocalError> {
        std::fs::symlink_metadata(path)
            .map(|m| FileStat::from_metadata(&m))
            .map_err(|source| LocalError::Io {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The later of mtime and ctime: when the content or metadata last changed.
    pub(crate) fn changed_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

#[cfg(unix)]
fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Nanoseconds since the Unix epoch (negative before it), saturating far outside ±292 years.
pub(crate) fn system_time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The hashes of one version of a file, and that version's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hashed {
    pub stat: FileStat,
    /// Lowercase hex.
    pub sha256: String,
    /// Lowercase hex; `None` above [`LFS_THRESHOLD`].
    pub git_oid: Option<String>,
    /// A NUL byte in the first 512 bytes: the Hub stores such files with LFS.
    pub binary: bool,
    /// When reading started, nanoseconds since the epoch; the cache compares it with the file's
    /// times to decide whether the result is safe to keep (see `HashCache::racy_window`).
    pub started_ns: i64,
}

thread_local! {
    // One buffer per blocking-pool thread, reused across files: hashing 10,000 small files must
    // not allocate (and fault in) 10,000 buffers, and memory stays bounded by the thread count.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Hashes the regular file at `path` in one streaming pass, adding the bytes read to `progress`.
///
/// The file is `fstat`ed once opened and `lstat`ed again by path when the read is done; if the
/// two differ (or the byte count differs from the size) the file changed under us, so the read
/// is retried a few times and then reported as [`LocalError::Changing`]. A result is therefore
/// always the hash of the version described by its `stat`.
pub(crate) fn hash_file(path: &Path, progress: &AtomicU64) -> Result<Hashed, LocalError> {
    hash_file_with(path, progress, &mut |_| {})
}

/// [`hash_file`], calling `after_read(attempt)` between the end of each read and the re-`stat`,
/// where tests change the file deterministically.
fn hash_file_with(
    path: &Path,
    progress: &AtomicU64,
    after_read: &mut dyn FnMut(u32),
) -> Result<Hashed, LocalError> {
    let io = |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    };
    BUFFER.with_borrow_mut(|buf| {
        if buf.len() != BUFFER_SIZE {
            *buf = vec![0; BUFFER_SIZE];
        }
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // A writer that is about to finish gets a moment to do so.
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
            let started_ns = system_time_ns(SystemTime::now());
            // The walk only hands over regular files, but a FIFO may have taken one's place.
            let mut file = crate::util::io::open_nonblocking(path).map_err(io)?;
            let meta = file.metadata().map_err(io)?;
            if !meta.is_file() {
                return Err(LocalError::NotAFile {
                    path: path.to_path_buf(),
                });
            }
            let before = FileStat::from_metadata(&meta);
            let mut sha256 = Sha256::new();
            let mut sha1 = (before.size <= LFS_THRESHOLD).then(|| git_blob_hasher(before.size));
            let mut read = 0u64;
            let mut binary = false;
            loop {
                let n = match file.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io(e)),
                };
                let chunk = &buf[..n];
                if read < 512 {
                    let head = (512 - read as usize).min(n);
                    binary |= chunk[..head].contains(&0);
                }
                sha256.update(chunk);
                if let Some(h) = sha1.as_mut() {
                    h.update(chunk);
                }
                read += n as u64;
                progress.fetch_add(n as u64, Ordering::Relaxed);
            }
            drop(file);
            after_read(attempt);
            let after = FileStat::of_path(path)?;
            if after == before && read == before.size {
                return Ok(Hashed {
                    stat: before,
                    sha256: hex::encode(sha256.finalize()),
                    git_oid: sha1.map(|h| hex::encode(h.finalize())),
                    binary,
                    started_ns,
                });
            }
            // Undo this attempt's bytes so progress never runs past the total.
            progress.fetch_sub(read, Ordering::Relaxed);
        }
        Err(LocalError::Changing {
            path: path.to_path_buf(),
            attempts: MAX_ATTEMPTS,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{git_blob_oid, lfs_git_oid};

    #[cfg(unix)]
    #[test]
    fn a_file_replaced_by_a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("now-a-fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(status.success());
        // Without O_NONBLOCK the open would wait for a writer forever.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(hash_file(&path, &AtomicU64::new(0)));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("hashing a FIFO must not block");
        assert!(matches!(got, Err(LocalError::NotAFile { .. })), "{got:?}");
    }

    fn hash_bytes(bytes: &[u8]) -> Hashed {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).expect("write");
        let progress = AtomicU64::new(0);
        let h = hash_file(&path, &progress).expect("hash");
        assert_eq!(progress.load(Ordering::Relaxed), bytes.len() as u64);
        h
    }

    #[test]
    fn empty_file() {
        let h = hash_bytes(b"");
        // `sha256sum /dev/null` and `git hash-object /dev/null`.
        assert_eq!(
            h.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            h.git_oid.as_deref(),
            Some("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        );
        assert_eq!(h.stat.size, 0);
    }

    #[test]
    fn small_file_spanning_buffers() {
        // Several reads, the last one partial, with a content that differs per chunk.
        let bytes: Vec<u8> = (0..BUFFER_SIZE * 2 + 7).map(|i| (i % 251) as u8).collect();
        let h = hash_bytes(&bytes);
        assert_eq!(h.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(h.git_oid.as_deref(), Some(git_blob_oid(&bytes).as_str()));
    }

    #[test]
    fn threshold_is_inclusive_for_git_oids() {
        let at = vec![b'x'; LFS_THRESHOLD as usize];
        let h = hash_bytes(&at);
        assert_eq!(h.git_oid.as_deref(), Some(git_blob_oid(&at).as_str()));

        let mut above = at;
        above.push(b'x');
        let h = hash_bytes(&above);
        assert_eq!(h.git_oid, None);
        // `head -c 10485761 /dev/zero | tr '\0' x | sha256sum`.
        assert_eq!(
            h.sha256,
            "e2be3b83c289189dd311afb0db7a79ec8cfbb993ca5267315b437e41edccec98"
        );
        // The git oid of an LFS file comes from its pointer, elsewhere.
        assert_eq!(lfs_git_oid(&h.sha256, h.stat.size).len(), 40);
    }

    #[test]
    fn directories_and_missing_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let progress = AtomicU64::new(0);
        let missing = dir.path().join("missing");
        match hash_file(&missing, &progress) {
            Err(LocalError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
        match hash_file(dir.path(), &progress) {
            Err(LocalError::NotAFile { path }) => assert_eq!(path, dir.path()),
            other => panic!("{other:?}"),
        }
    }

    fn append(path: &Path, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(bytes).expect("append");
    }

    #[test]
    fn a_file_that_changed_while_read_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("growing.bin");
        std::fs::write(&path, b"first part").expect("write");
        let progress = AtomicU64::new(0);
        let h = hash_file_with(&path, &progress, &mut |attempt| {
            if attempt == 0 {
                append(&path, b", second part");
            }
        })
        .expect("stable on the second read");
        let content = b"first part, second part";
        assert_eq!(h.sha256, hex::encode(Sha256::digest(content)));
        assert_eq!(h.git_oid, Some(git_blob_oid(content)));
        assert_eq!(h.stat.size, content.len() as u64);
        assert_eq!(progress.load(Ordering::Relaxed), content.len() as u64);
    }

    #[test]
    fn a_file_that_keeps_changing_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("growing.bin");
        std::fs::write(&path, b"start").expect("write");
        let progress = AtomicU64::new(0);
        let mut calls = 0;
        let result = hash_file_with(&path, &progress, &mut |_| {
            calls += 1;
            append(&path, b"more");
        });
        match result {
            Err(LocalError::Changing { path: p, attempts }) => {
                assert_eq!(p, path);
                assert_eq!(attempts, MAX_ATTEMPTS);
            }
            other => panic!("expected Changing, got {other:?}"),
        }
        assert_eq!(calls, MAX_ATTEMPTS);
        assert_eq!(progress.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_file_replaced_while_read_is_read_again() {
        // Same size and content length, but a different inode: a rename over the original.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.bin");
        std::fs::write(&path, b"old!").expect("write");
        let progress = AtomicU64::new(0);
        let h = hash_file_with(&path, &progress, &mut |attempt| {
            if attempt == 0 {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, b"new!").expect("write");
                std::fs::rename(&tmp, &path).expect("rename");
            }
        })
        .expect("stable on the second read");
        assert_eq!(h.sha256, hex::encode(Sha256::digest(b"new!")));
    }
}
