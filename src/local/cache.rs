//! The persistent hash cache: remembers each file's hashes under its path and `stat` identity
//! (size, mtime, ctime, inode), so a scan of an unchanged folder costs a `stat` per file and no
//! reads. It owns the on-disk format and its atomic replacement, and must not decide what to
//! upload.
//!
//! The file is JSON, `{"version": 1, "entries": {"<absolute path>": {size, mtime_ns, ctime_ns,
//! inode, sha256, git_oid}}}`. Keys are absolute paths rather than mapping-relative ones because
//! one cache serves every mapping of a manifest, and two mappings may hold the same relative path.
//! Losing the cache only costs time: a missing, unreadable or corrupt file is replaced by an empty
//! cache with a warning.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::hash::{FileStat, Hashed, system_time_ns};
use super::{LocalError, ScanWarning};

/// Bumped when the file format changes; a cache of another version is discarded.
const CACHE_VERSION: u32 = 1;

/// How recently a file may have changed, relative to when its hashing started, and still be
/// cached. See [`HashCache::set_racy_window`].
pub const DEFAULT_RACY_WINDOW: Duration = Duration::from_secs(2);

/// Hashes of files keyed by path and `stat` identity, optionally backed by a file.
#[derive(Debug)]
pub struct HashCache {
    /// Where [`save`](Self::save) writes; `None` for a cache that lives only in memory.
    path: Option<PathBuf>,
    entries: HashMap<String, Entry>,
    /// Whether the in-memory state differs from the file, so a no-op scan writes nothing.
    dirty: bool,
    racy_window: Duration,
    /// A problem met while loading, handed to the next scan's warnings.
    load_warning: Option<ScanWarning>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
    sha256: String,
    git_oid: Option<String>,
    /// A NUL byte in the first 512 bytes; absent in caches written before it was recorded,
    /// which then count as misses.
    #[serde(default)]
    binary: Option<bool>,
    /// Looked up or recorded since loading; unseen entries are re-checked on save.
    #[serde(skip)]
    seen: bool,
}

impl Entry {
    fn stat(&self) -> FileStat {
        FileStat {
            size: self.size,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            inode: self.inode,
        }
    }
}

#[derive(Serialize)]
struct CacheFileOut<'a> {
    version: u32,
    entries: BTreeMap<&'a str, &'a Entry>,
}

#[derive(Deserialize)]
struct CacheFileIn {
    version: u32,
    entries: HashMap<String, Entry>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

impl HashCache {
    /// A cache that is never written anywhere.
    pub fn in_memory() -> Self {
        HashCache {
            path: None,
            entries: HashMap::new(),
            dirty: false,
            racy_window: DEFAULT_RACY_WINDOW,
            load_warning: None,
        }
    }

    /// Loads the cache stored at `path` (for example `<manifest dir>/.hubsync/hash-cache.json`).
    ///
    /// Never fails: a missing file is an empty cache, and an unreadable or corrupt one is an empty
    /// cache plus a warning that the next [`scan`](super::scan) reports.
    pub fn load(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut cache = HashCache {
            path: Some(path.clone()),
            ..HashCache::in_memory()
        };
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return cache,
            Err(e) => {
                cache.discard(path, e.to_string());
                return cache;
            }
        };
        match serde_json::from_slice::<CacheFileIn>(&bytes) {
            Ok(file) if file.version == CACHE_VERSION => cache.entries = file.entries,
            Ok(file) => cache.discard(path, format!("unknown version {}", file.version)),
            Err(e) => {
                // A file from a newer hubsync may not parse as this version's entries; say so
                // rather than calling it corrupt.
                let reason = match serde_json::from_slice::<VersionOnly>(&bytes) {
                    Ok(v) if v.version != CACHE_VERSION => format!("unknown version {}", v.version),
                    _ => format!("corrupt: {e}"),
                };
                cache.discard(path, reason);
            }
        }
        cache
    }

    fn discard(&mut self, path: PathBuf, reason: String) {
        self.load_warning = Some(ScanWarning::CacheDiscarded { path, reason });
        // Rewrite it on the next save even if nothing is hashed.
        self.dirty = true;
    }

    /// Sets how recently a file may have changed and still be cached (default 2 s).
    ///
    /// File times come from a clock that ticks every few milliseconds (seconds on some network
    /// and FAT file systems), so a file rewritten within one tick of being hashed can keep its
    /// size and times while its content changes, and a cache trusting it would be wrong. Like
    /// git's "racily clean" entries, a file whose mtime or ctime is within this window of the
    /// start of its hashing is hashed correctly but not cached; the next scan hashes it again.
    /// Tests may set zero to cache everything.
    pub fn set_racy_window(&mut self, window: Duration) {
        self.racy_window = window;
    }

    /// The file this cache is saved to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// How many files the cache knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached `(sha256, git_oid, binary)` of the file `key` when `stat` still identifies the
    /// version that was hashed.
    pub(crate) fn lookup(
        &mut self,
        key: &str,
        stat: &FileStat,
    ) -> Option<(String, Option<String>, bool)> {
        let entry = self.entries.get_mut(key)?;
        if entry.stat() != *stat {
            return None;
        }
        let binary = entry.binary?;
        entry.seen = true;
        Some((entry.sha256.clone(), entry.git_oid.clone(), binary))
    }

    /// Records a fresh hash of the file `key`; returns whether it was cached (it is not when the
    /// file changed too recently to be trusted, see [`set_racy_window`](Self::set_racy_window)).
    pub(crate) fn record(&mut self, key: String, hashed: &Hashed) -> bool {
        let window = i64::try_from(self.racy_window.as_nanos()).unwrap_or(i64::MAX);
        if hashed.stat.changed_ns() >= hashed.started_ns.saturating_sub(window) {
            self.dirty |= self.entries.remove(&key).is_some();
            return false;
        }
        let entry = Entry {
            size: hashed.stat.size,
            mtime_ns: hashed.stat.mtime_ns,
            ctime_ns: hashed.stat.ctime_ns,
            inode: hashed.stat.inode,
            sha256: hashed.sha256.clone(),
            git_oid: hashed.git_oid.clone(),
            binary: Some(hashed.binary),
            seen: true,
        };
        self.entries.insert(key, entry);
        self.dirty = true;
        true
    }

    /// Forgets the file `key` (it failed to hash, or disappeared).
    pub(crate) fn forget(&mut self, key: &str) {
        self.dirty |= self.entries.remove(key).is_some();
    }

    pub(crate) fn take_load_warning(&mut self) -> Option<ScanWarning> {
        self.load_warning.take()
    }

    /// Writes the cache to its file if anything changed, atomically (a temporary file in the same
    /// folder, fsynced, then renamed over the old one), creating the folder if needed. Returns
    /// whether it wrote.
    ///
    /// Entries that no scan looked at since loading are kept only while their file still exists
    /// unchanged, so a run that scans only some mappings keeps the others' entries, and deleted
    /// files drop out.
    pub fn save(&mut self) -> Result<bool, LocalError> {
        let before = self.entries.len();
        self.entries.retain(|key, entry| {
            entry.seen || FileStat::of_path(Path::new(key)).is_ok_and(|s| s == entry.stat())
        });
        self.dirty |= self.entries.len() != before;
        let Some(path) = self.path.as_deref() else {
            self.dirty = false;
            return Ok(false);
        };
        if !self.dirty {
            return Ok(false);
        }
        let file = CacheFileOut {
            version: CACHE_VERSION,
            entries: self.entries.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| LocalError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(path, &bytes)?;
        self.dirty = false;
        Ok(true)
    }
}

/// Replaces `path` with `bytes` so that a crash at any point leaves either the old or the new
/// content, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LocalError::Write { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(err(dir))?;
    let name = path
        .file_name()
        .map_or_else(|| "hash-cache".into(), |n| n.to_string_lossy().into_owned());
    // The pid and time make concurrent writers (two hubsync runs) use different temporary files;
    // the last rename wins and each result is a whole file.
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        system_time_ns(SystemTime::now())
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(err(&tmp))?;
        f.write_all(bytes).map_err(err(&tmp))?;
        f.sync_all().map_err(err(&tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(err(path))
    })();
    if result.is_err() {
        // Best effort: the original error is what matters.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Persist the rename itself; without this a power loss could bring back the old file.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed(stat: FileStat, sha: &str) -> Hashed {
        Hashed {
            stat,
            sha256: sha.to_string(),
            git_oid: Some("g".repeat(40)),
            binary: false,
            started_ns: stat.changed_ns() + 10_000_000_000,
        }
    }

    #[test]
    fn save_and_reload_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("data.txt");
        fs::write(&file, b"hello").expect("write");
        let stat = FileStat::of_path(&file).expect("stat");
        let key = file.to_string_lossy().into_owned();
        let cache_path = dir.path().join(".hubsync/hash-cache.json");

        let mut cache = HashCache::load(&cache_path);
        assert!(cache.is_empty());
        assert!(
            cache.take_load_warning().is_none(),
            "a missing cache is not a problem"
        );
        assert!(cache.record(key.clone(), &hashed(stat, "abc")));
        assert!(cache.save().expect("save"));
        assert!(
            !cache.save().expect("save"),
            "nothing changed, nothing written"
        );

        let leftovers: Vec<_> = fs::read_dir(dir.path().join(".hubsync"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["hash-cache.json"], "no temporary files left");

        let mut again = HashCache::load(&cache_path);
        assert!(again.take_load_warning().is_none());
        assert_eq!(again.len(), 1);
        assert_eq!(
            again.lookup(&key, &stat),
            Some(("abc".to_string(), Some("g".repeat(40)), false))
        );
        let mut other = stat;
        other.mtime_ns += 1;
        assert_eq!(
            again.lookup(&key, &other),
            None,
            "any stat change is a miss"
        );
    }

    #[test]
    fn corrupt_or_foreign_cache_is_ignored_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hash-cache.json");
        for (content, expect) in [
            (
                &b"{\"version\": 1, \"entries\": {\"/x\": {\"size\": "[..],
                "corrupt",
            ),
            (b"\x00\xff garbage", "corrupt"),
            (b"{\"version\": 99, \"entries\": []}", "unknown version 99"),
        ] {
            fs::write(&path, content).expect("write");
            let mut cache = HashCache::load(&path);
            assert!(cache.is_empty());
            match cache.take_load_warning() {
                Some(ScanWarning::CacheDiscarded { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.contains(expect), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            // The bad file is replaced on the next save.
            assert!(cache.save().expect("save"));
            let mut fixed = HashCache::load(&path);
            assert!(fixed.take_load_warning().is_none());
        }
    }

    #[test]
    fn recently_changed_files_are_not_cached() {
        let mut cache = HashCache::in_memory();
        let stat = FileStat {
            size: 1,
            mtime_ns: 1_000_000_000_000,
            ctime_ns: 1_000_000_000_000,
            inode: 7,
        };
        let mut h = hashed(stat, "abc");
        h.started_ns = stat.ctime_ns + 1_000_000_000;
        assert!(!cache.record("/a".into(), &h), "changed 1 s before hashing");
        assert!(cache.lookup("/a", &stat).is_none());
        cache.set_racy_window(Duration::from_millis(500));
        assert!(cache.record("/a".into(), &h));
        assert!(cache.lookup("/a", &stat).is_some());
    }

    #[test]
    fn save_drops_entries_of_vanished_files_but_keeps_unscanned_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache_path = dir.path().join("c.json");
        let kept = dir.path().join("kept");
        let gone = dir.path().join("gone");
        fs::write(&kept, b"1").expect("write");
        fs::write(&gone, b"2").expect("write");
        let mut cache = HashCache::load(&cache_path);
        for p in [&kept, &gone] {
            let stat = FileStat::of_path(p).expect("stat");
            assert!(cache.record(p.to_string_lossy().into_owned(), &hashed(stat, "x")));
        }
        cache.save().expect("save");
        fs::remove_file(&gone).expect("remove");

        // A later run that looks at neither file (it scanned other mappings).
        let mut cache = HashCache::load(&cache_path);
        assert!(cache.save().expect("save"), "the vanished entry is dropped");
        let cache = HashCache::load(&cache_path);
        assert_eq!(cache.len(), 1);
        assert!(cache.entries.contains_key(kept.to_string_lossy().as_ref()));
    }

    #[test]
    fn unwritable_cache_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, b"").expect("write");
        let path = blocker.join("hash-cache.json");
        let mut cache = HashCache::load(&path);
        let stat = FileStat::of_path(&blocker).expect("stat");
        cache.record(blocker.to_string_lossy().into_owned(), &hashed(stat, "x"));
        match cache.save() {
            Err(LocalError::Write { path: p, .. }) => assert_eq!(p, blocker),
            other => panic!("{other:?}"),
        }
    }
}
