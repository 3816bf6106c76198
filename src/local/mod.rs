//! The local side of a plan: walks the folders a manifest maps, selects files with
//! include/exclude globs, and hashes them — SHA-256 always, the git blob SHA-1 for files that
//! can be regular git blobs — with a persistent cache so an unchanged folder is not read again.
//! It must not know Hub types; the only things it takes from [`crate::api`] are the git blob
//! hasher and the LFS size threshold, so both sides agree on hashes.
//!
//! Files:
//! - `mod.rs`: the public types ([`ScanSpec`], [`LocalTree`], [`LocalFile`], [`ScanResult`],
//!   [`ScanWarning`], [`LocalError`]) and [`scan`], which drives the stages below.
//! - `filter.rs`: [`PathFilter`], the gitignore-like include/exclude rules and default ignores.
//! - `walk.rs`: listing one mapping's files, and the symlink / non-UTF-8 / special-file policy.
//! - `hash.rs`: [`FileStat`] and the single streaming read that produces both hashes, with the
//!   check that a file did not change while being read.
//! - `cache.rs`: [`HashCache`], the persistent cache, saved atomically.
//!
//! A scan walks each mapping on the blocking pool, answers what it can from the cache (a `stat`
//! per file, no reads), and hashes the rest in parallel on the blocking pool, at most
//! [`ScanOptions::concurrency`] files at a time, each through one reusable 256 KiB buffer, so memory
//! stays bounded whatever the file sizes.

mod cache;
mod filter;
mod hash;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub use cache::{DEFAULT_RACY_WINDOW, HashCache};
pub use filter::{DEFAULT_IGNORES, PathFilter};
pub use hash::FileStat;

/// A local filesystem error, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("failed to read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to scan `{path}`: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("failed to hash `{path}`: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("failed to hash `{path}`: it kept changing while being read ({attempts} attempts)")]
    Changing { path: PathBuf, attempts: u32 },
    #[error("failed to parse the glob `{pattern}`: {reason}")]
    InvalidGlob { pattern: String, reason: String },
    #[error("failed to hash `{path}`: the hashing task failed")]
    Task {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    /// Some files failed; `first` is the first of them, the others are in the [`ScanResult`].
    #[error("failed to scan {count} file(s)")]
    Incomplete {
        count: usize,
        #[source]
        first: Box<LocalError>,
    },
}

/// One folder to scan, as a manifest mapping describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSpec {
    /// The folder; relative paths are resolved against the current directory.
    pub root: PathBuf,
    /// Globs selecting files (see [`PathFilter`]); empty selects everything.
    pub include: Vec<String>,
    /// Globs dropping files, applied after `include`.
    pub exclude: Vec<String>,
}

impl ScanSpec {
    /// Everything under `root` except the default ignores.
    pub fn all(root: impl Into<PathBuf>) -> Self {
        ScanSpec {
            root: root.into(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Files hashed at once; each holds one read buffer. Defaults to the number of cores.
    pub concurrency: usize,
    /// How often [`ProgressEvent::Hashing`] is emitted while hashing.
    pub progress_interval: Duration,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress_interval: Duration::from_millis(100),
        }
    }
}

/// One regular file of a scanned folder, with its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalFile {
    /// Where it is on disk.
    pub abs: PathBuf,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub inode: u64,
    /// Nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
    /// Lowercase hex SHA-256 of the content (an LFS file's `oid`).
    pub sha256: String,
    /// Lowercase hex git blob SHA-1 of the content, for files of at most
    /// [`LFS_THRESHOLD`](crate::api::LFS_THRESHOLD) bytes; `None` above, where the git oid is
    /// that of the LFS pointer (see [`lfs_git_oid`](crate::api::lfs_git_oid)).
    pub git_oid: Option<String>,
    /// A NUL byte in the first 512 bytes (the Hub then stores the file with LFS).
    pub binary: bool,
}

impl LocalFile {
    /// The identity the hashes belong to; a staleness check compares it with a fresh
    /// [`FileStat::of_path`].
    pub fn stat(&self) -> FileStat {
        FileStat {
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            inode: self.inode,
        }
    }
}

/// The selected files of one [`ScanSpec`], sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTree {
    /// The spec's root, made absolute.
    pub root: PathBuf,
    /// Keyed by the path relative to `root`, with `/` separators.
    pub files: BTreeMap<String, LocalFile>,
}

/// Something skipped on purpose; the scan goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanWarning {
    #[error("skipped the symlink `{path}` (symlinks are not followed)")]
    SymlinkSkipped { path: PathBuf },
    #[error("skipped `{path}`: its name is not valid UTF-8, which Hub paths require")]
    NonUtf8Skipped { path: PathBuf },
    #[error("skipped `{path}`: not a regular file")]
    SpecialSkipped { path: PathBuf },
    #[error("ignored the hash cache `{path}` ({reason}); files are hashed again")]
    CacheDiscarded { path: PathBuf, reason: String },
}

/// Counters of one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStats {
    /// Files in the trees.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// Files answered by the cache, without reading them.
    pub cache_hits: u64,
    /// Files read and hashed.
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    /// Hashed files left out of the cache because they changed just before being read.
    pub not_cached: u64,
}

/// What [`scan`] found.
#[derive(Debug)]
pub struct ScanResult {
    /// One tree per spec, in the specs' order.
    pub trees: Vec<LocalTree>,
    /// Things skipped on purpose (symlinks, non-UTF-8 names, a discarded cache).
    pub warnings: Vec<ScanWarning>,
    /// Files that could not be listed or hashed; they are missing from the trees, so a plan made
    /// from an incomplete result could delete them remotely. See [`into_complete`](Self::into_complete).
    pub failures: Vec<LocalError>,
    pub stats: ScanStats,
}

impl ScanResult {
    /// The result, or [`LocalError::Incomplete`] when any file failed.
    pub fn into_complete(mut self) -> Result<Self, LocalError> {
        if self.failures.is_empty() {
            return Ok(self);
        }
        let count = self.failures.len();
        Err(LocalError::Incomplete {
            count,
            first: Box::new(self.failures.swap_remove(0)),
        })
    }
}

/// Progress of a scan, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The folders are listed and the cache consulted: this much is left to hash.
    Listed {
        files: u64,
        files_to_hash: u64,
        bytes_to_hash: u64,
    },
    /// Hashing advanced (sent periodically, and once at the end).
    Hashing {
        files_done: u64,
        files_total: u64,
        bytes_done: u64,
        bytes_total: u64,
    },
}

/// Scans `specs`: lists each folder's selected files, then takes hashes from `cache` where the
/// file's `stat` is unchanged and hashes the rest in parallel, recording them in `cache`. The
/// caller saves the cache ([`HashCache::save`]) when it likes.
///
/// Fails on a bad glob or an unusable root; problems with single files are collected in
/// [`ScanResult::failures`] so they can be reported together.
pub async fn scan(
    specs: &[ScanSpec],
    cache: &mut HashCache,
    options: &ScanOptions,
    progress: impl Fn(ProgressEvent),
) -> Result<ScanResult, LocalError> {
    let mut result = ScanResult {
        trees: Vec::with_capacity(specs.len()),
        warnings: Vec::new(),
        failures: Vec::new(),
        stats: ScanStats::default(),
    };
    result.warnings.extend(cache.take_load_warning());

    // List every mapping first, so the progress total is known before hashing starts. Mappings
    // may overlap (one folder, two include sets); a file they share is hashed once.
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_of_key: HashMap<String, usize> = HashMap::new();
    for (index, spec) in specs.iter().enumerate() {
        let filter = PathFilter::new(&spec.include, &spec.exclude)?;
        let root = std::path::absolute(&spec.root).map_err(|source| LocalError::Io {
            path: spec.root.clone(),
            source,
        })?;
        let walked = {
            let root = root.clone();
            tokio::task::spawn_blocking(move || walk::walk(&root, &filter))
                .await
                .map_err(|source| LocalError::Task {
                    path: spec.root.clone(),
                    source,
                })??
        };
        result.warnings.extend(walked.warnings);
        result.failures.extend(walked.failures);
        let mut tree = LocalTree {
            root,
            files: BTreeMap::new(),
        };
        for file in walked.files {
            let key = cache_key(&file.abs);
            match cache.lookup(&key, &file.stat) {
                Some((sha256, git_oid, binary)) => {
                    result.stats.cache_hits += 1;
                    tree.files.insert(
                        file.rel,
                        local_file(file.abs, file.stat, sha256, git_oid, binary),
                    );
                }
                None => match job_of_key.get(&key) {
                    Some(&j) => jobs[j].trees.push((index, file.rel)),
                    None => {
                        job_of_key.insert(key.clone(), jobs.len());
                        jobs.push(Job {
                            key,
                            abs: file.abs,
                            size: file.stat.size,
                            trees: vec![(index, file.rel)],
                        });
                    }
                },
            }
        }
        result.trees.push(tree);
    }

    let files_total = jobs.len() as u64;
    let bytes_total: u64 = jobs.iter().map(|j| j.size).sum();
    let hits = result.stats.cache_hits;
    progress(ProgressEvent::Listed {
        files: hits + files_total,
        files_to_hash: files_total,
        bytes_to_hash: bytes_total,
    });

    let bytes_done = Arc::new(AtomicU64::new(0));
    let mut hashed = futures::stream::iter(hash_batches(jobs))
        .map(|batch| {
            let bytes_done = bytes_done.clone();
            async move {
                let abs: Vec<PathBuf> = batch.iter().map(|j| j.abs.clone()).collect();
                let outcome = tokio::task::spawn_blocking(move || {
                    abs.iter()
                        .map(|p| hash::hash_file(p, &bytes_done))
                        .collect::<Vec<_>>()
                })
                .await;
                // A panic while hashing is a bug: let it surface as one.
                let results = outcome.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                futures::stream::iter(batch.into_iter().zip(results))
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .flatten();
    let mut tick = tokio::time::interval(options.progress_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut files_done = 0u64;
    let report = |files_done| ProgressEvent::Hashing {
        files_done,
        files_total,
        bytes_done: bytes_done.load(Ordering::Relaxed),
        bytes_total,
    };
    loop {
        tokio::select! {
            next = hashed.next() => {
                let Some((job, outcome)) = next else { break };
                files_done += 1;
                match outcome {
                    Ok(h) => {
                        result.stats.files_hashed += 1;
                        result.stats.bytes_hashed += h.stat.size;
                        if !cache.record(job.key, &h) {
                            result.stats.not_cached += 1;
                        }
                        for (index, rel) in job.trees {
                            let file = local_file(
                                job.abs.clone(),
                                h.stat,
                                h.sha256.clone(),
                                h.git_oid.clone(),
                                h.binary,
                            );
                            result.trees[index].files.insert(rel, file);
                        }
                    }
                    Err(e) => {
                        cache.forget(&job.key);
                        result.failures.push(e);
                    }
                }
            }
            _ = tick.tick() => progress(report(files_done)),
        }
    }
    if files_total > 0 {
        progress(report(files_done));
    }

    for tree in &result.trees {
        result.stats.files += tree.files.len() as u64;
        result.stats.bytes += tree.files.values().map(|f| f.size).sum::<u64>();
    }
    Ok(result)
}

/// Groups the files to hash into batches, each hashed by one blocking task: a thread hop per
/// 2 KB file would cost more than reading it. Batches stay small enough, in files and in bytes,
/// to keep every core busy and the progress moving; a large file is a batch of its own.
fn hash_batches(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    const MAX_FILES: usize = 64;
    const MAX_BYTES: u64 = 4 << 20;
    let mut batches: Vec<Vec<Job>> = Vec::new();
    let mut bytes = 0u64;
    for job in jobs {
        let full = batches
            .last()
            .is_none_or(|b| b.len() >= MAX_FILES || bytes + job.size > MAX_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += job.size;
        batches.last_mut().expect("pushed").push(job);
    }
    batches
}

/// One file to hash, and where its result goes.
struct Job {
    key: String,
    abs: PathBuf,
    size: u64,
    /// `(tree index, relative path)` of every mapping that selected the file.
    trees: Vec<(usize, String)>,
}

/// The cache key of a file: its absolute path. Paths under a mapping are UTF-8 by construction;
/// only the root could be lossy here, and then consistently so.
fn cache_key(abs: &Path) -> String {
    abs.to_string_lossy().into_owned()
}

fn local_file(
    abs: PathBuf,
    stat: FileStat,
    sha256: String,
    git_oid: Option<String>,
    binary: bool,
) -> LocalFile {
    LocalFile {
        binary,
        abs,
        size: stat.size,
        mtime_ns: stat.mtime_ns,
        inode: stat.inode,
        ctime_ns: stat.ctime_ns,
        sha256,
        git_oid,
    }
}

#[cfg(test)]
mod tests;
