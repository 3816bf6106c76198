//! Readiness: which changed files may be pushed now, and which must wait.
//!
//! - [`Tracker`] keeps every path a file-system event named until a round has pushed it. A path
//!   is *quiet* once no event touched it for the debounce window **and** a fresh `stat` shows
//!   the same size and mtime as when it was last seen (so writes that raise no event, through
//!   `mmap` for example, still count). Quiet paths are only re-checked when their window ends:
//!   nothing polls while nothing changes.
//! - [`TEMP_EXCLUDES`] names what trainers and editors write before renaming into place; those
//!   are never pushed nor tracked.
//! - [`MappingRule`] turns a mapping's readiness into `exclude` globs for one round
//!   ([`MappingRule::round_excludes`]): still-changing files, and — with `ready_marker` —
//!   whole *unit* folders that lack their marker or hold a changing file. The planner then
//!   never sees them, and since excludes also narrow the mapping's scope, `prune` leaves their
//!   remote copies alone too.
//!
//! A *unit* is the folder a `ready_marker` applies to: the folder matching `keep_last.pattern`
//! when the mapping has one (see [`crate::plan::retention`]), otherwise each direct sub-folder of
//! the mapping. Files outside every unit are pushed when quiet, like in a mapping without a
//! marker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::local::PathFilter;
use crate::manifest::FileMapping;
use crate::plan::{Retention, Scope};

/// Names never pushed by watch, added to every mapping's `exclude`: temporary files
/// (`*.tmp`, `*.partial`), editor backups (`*~`), lock files (`*.lock`) and dot-files and
/// dot-folders (`.*`), which tools write and then rename into place. Matched at any depth; a
/// matching folder covers its contents.
pub const TEMP_EXCLUDES: &[&str] = &["*.tmp", "*.partial", "*~", "*.lock", ".*"];

/// Whether any component of `rel` is a temporary name (see [`TEMP_EXCLUDES`]).
pub fn is_temp_name(rel: &str) -> bool {
    rel.split('/').any(|c| {
        c.starts_with('.')
            || c.ends_with('~')
            || c.ends_with(".tmp")
            || c.ends_with(".partial")
            || c.ends_with(".lock")
    })
}

/// A glob matching exactly `literal` (the characters globs treat specially are put in
/// brackets).
pub fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        match c {
            '*' | '?' | '[' | ']' | '{' | '}' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out
}

/// What `stat` says about a path: size and mtime of a file, `None` when it is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
}

impl Stamp {
    /// The stamp of a path now (`None`: missing or unreadable).
    pub fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        Some(Stamp {
            size: meta.len(),
            mtime_ns,
        })
    }
}

#[derive(Clone, Debug)]
struct Entry {
    stamp: Option<Stamp>,
    /// The last time the path was seen to change (an event, or a different stamp).
    since: Instant,
    /// A `stat` after the window ended confirmed `stamp`.
    verified: bool,
}

/// The changed paths not pushed yet, and when each last changed.
#[derive(Debug, Default)]
pub struct Tracker {
    entries: BTreeMap<PathBuf, Entry>,
}

/// Which quiet paths a round started with (and their stamps), to vouch for them during the
/// round and to forget them once it is done.
#[derive(Clone, Debug, Default)]
pub struct Snapshot(BTreeMap<PathBuf, (Instant, Option<Stamp>)>);

impl Snapshot {
    /// Whether `path` was quiet at the start of the round with exactly this stamp.
    pub fn vouches(&self, path: &Path, stamp: Stamp) -> bool {
        self.0.get(path).is_some_and(|(_, s)| *s == Some(stamp))
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// An event named `path` at `now`; `stamp` is what `stat` says now.
    pub fn touch(&mut self, path: PathBuf, stamp: Option<Stamp>, now: Instant) {
        self.entries.insert(
            path,
            Entry {
                stamp,
                since: now,
                verified: false,
            },
        );
    }

    /// A path found changed without an event (at start, or after lost events), last modified
    /// at `since`.
    pub fn seed(&mut self, path: PathBuf, stamp: Option<Stamp>, since: Instant) {
        self.entries.entry(path).or_insert(Entry {
            stamp,
            since,
            verified: false,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Re-`stat`s the paths whose window ended since they were last checked; a path whose stamp
    /// moved starts a new window.
    pub fn refresh(
        &mut self,
        now: Instant,
        debounce: Duration,
        stat: impl Fn(&Path) -> Option<Stamp>,
    ) {
        for (path, e) in &mut self.entries {
            if e.verified || e.since + debounce > now {
                continue;
            }
            let current = stat(path);
            if current == e.stamp {
                e.verified = true;
            } else {
                e.stamp = current;
                e.since = now;
            }
        }
    }

    fn quiet(e: &Entry, now: Instant, debounce: Duration) -> bool {
        e.verified && e.since + debounce <= now
    }

    /// Whether a round should start for the tracked paths: some path is quiet, and either all
    /// are (the folder settled) or a quiet path has waited `max_delay` beyond its window (a
    /// file that never settles, a log appended to forever, must not hold the others back).
    pub fn ready(&self, now: Instant, debounce: Duration, max_delay: Duration) -> bool {
        let mut any_quiet = false;
        let mut all_quiet = true;
        let mut overdue = false;
        for e in self.entries.values() {
            if Self::quiet(e, now, debounce) {
                any_quiet = true;
                overdue |= e.since + debounce + max_delay <= now;
            } else {
                all_quiet = false;
            }
        }
        any_quiet && (all_quiet || overdue)
    }

    /// When [`ready`](Self::ready) could next change without an event: the end of the
    /// earliest open window, or the moment a quiet path becomes overdue.
    pub fn next_check(
        &self,
        now: Instant,
        debounce: Duration,
        max_delay: Duration,
    ) -> Option<Instant> {
        self.entries
            .values()
            .map(|e| {
                if Self::quiet(e, now, debounce) {
                    e.since + debounce + max_delay
                } else {
                    e.since + debounce
                }
            })
            .filter(|t| *t > now)
            .min()
            .or_else(|| {
                // A window that ended but whose stat is pending: check at once.
                self.entries
                    .values()
                    .any(|e| !e.verified && e.since + debounce <= now)
                    .then_some(now)
            })
    }

    /// The paths that are not quiet: a round leaves them out.
    pub fn busy(&self, now: Instant, debounce: Duration) -> Vec<PathBuf> {
        self.entries
            .iter()
            .filter(|(_, e)| !Self::quiet(e, now, debounce))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The quiet paths now, for [`forget`](Self::forget) after the round.
    pub fn snapshot(&self, now: Instant, debounce: Duration) -> Snapshot {
        Snapshot(
            self.entries
                .iter()
                .filter(|(_, e)| Self::quiet(e, now, debounce))
                .map(|(p, e)| (p.clone(), (e.since, e.stamp)))
                .collect(),
        )
    }

    /// Forgets the paths a round pushed, unless they changed again meanwhile.
    pub fn forget(&mut self, snapshot: &Snapshot) {
        for (path, (since, _)) in &snapshot.0 {
            if self.entries.get(path).is_some_and(|e| e.since == *since) {
                self.entries.remove(path);
            }
        }
    }
}

/// What watch needs to know about one mapping: where it is, what it selects, and its units.
#[derive(Clone, Debug)]
pub struct MappingRule {
    /// Index of the repo in the manifest, and of the mapping in the repo.
    pub repo: usize,
    pub mapping: usize,
    /// The local folder (absolute).
    pub root: PathBuf,
    /// The repo path prefix.
    pub remote: String,
    /// The mapping's own include/exclude.
    pub filter: PathFilter,
    /// `ready_marker`, when set.
    pub marker: Option<String>,
    /// `keep_last.pattern`, compiled, which names the unit folders when set.
    pub units: Option<Retention>,
}

impl MappingRule {
    pub fn new(repo: usize, mapping: usize, f: &FileMapping) -> Result<MappingRule, crate::Error> {
        let filter = PathFilter::new(&f.include, &f.exclude)?;
        let units = match &f.keep_last {
            Some(k) => Some(Retention::new(
                Scope {
                    prefix: String::new(),
                    filter: filter.clone(),
                },
                &k.pattern,
                k.count as usize,
            )?),
            None => None,
        };
        Ok(MappingRule {
            repo,
            mapping,
            root: f.local_path.clone(),
            remote: f.remote.clone(),
            filter,
            marker: f.ready_marker.clone(),
            units,
        })
    }

    /// `path` relative to the root, `/`-separated, when it is under the root (and not the root).
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        let rel = parts?.join("/");
        (!rel.is_empty()).then_some(rel)
    }

    /// Whether an event on `rel` can matter to this mapping.
    pub fn watches(&self, rel: &str, is_file: bool) -> bool {
        if is_temp_name(rel) {
            return false;
        }
        if is_file {
            self.filter.matches(rel)
        } else {
            !self.filter.is_excluded(rel)
        }
    }

    /// The unit folder holding `rel` (relative to the root), when the mapping has a marker.
    pub fn unit_of<'a>(&self, rel: &'a str) -> Option<&'a str> {
        self.marker.as_ref()?;
        match &self.units {
            Some(r) => r.folder_of(rel),
            None => rel.split_once('/').map(|(first, _)| first),
        }
    }

    /// The unit of a repo path, when it is under this mapping's prefix.
    pub fn unit_of_repo_path<'a>(&self, repo_path: &'a str) -> Option<&'a str> {
        let rel = if self.remote.is_empty() {
            repo_path
        } else {
            repo_path
                .strip_prefix(self.remote.as_str())?
                .strip_prefix('/')?
        };
        self.unit_of(rel)
    }

    /// The unit folders on disk now (relative to the root).
    fn unit_folders(&self) -> Vec<String> {
        let mut out = Vec::new();
        let walker = walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.file_type().is_dir());
        let mut walker = walker;
        // Sorted, so the excludes (and the plans they shape) are deterministic.
        while let Some(entry) = walker.next() {
            let Ok(entry) = entry else { continue };
            let Some(rel) = self.relative(entry.path()) else {
                continue;
            };
            if is_temp_name(&rel) || self.filter.prunes_dir(&rel) {
                walker.skip_current_dir();
                continue;
            }
            // A folder is a unit when a file directly in it would belong to it.
            if self.unit_of(&format!("{rel}/x")) == Some(rel.as_str()) {
                out.push(rel);
                walker.skip_current_dir();
            } else if self.units.is_none() {
                // Without a pattern, units are the direct sub-folders only.
                walker.skip_current_dir();
            }
        }
        out
    }

    /// The globs to add to this mapping's `exclude` for a round, given the busy paths: temporary
    /// names, busy files, and units that are not ready (no marker yet, or a busy file inside).
    /// Reads the folder (the unit folders and their markers).
    pub fn round_excludes(&self, busy: &[PathBuf]) -> Vec<String> {
        let mut out: Vec<String> = TEMP_EXCLUDES.iter().map(|s| s.to_string()).collect();
        let busy_rel: Vec<String> = busy.iter().filter_map(|p| self.relative(p)).collect();
        if let Some(marker) = &self.marker {
            for unit in self.unit_folders() {
                let has_marker = self.root.join(&unit).join(marker).is_file();
                let prefix = format!("{unit}/");
                let settling = busy_rel.iter().any(|b| b.starts_with(&prefix));
                if !has_marker || settling {
                    out.push(format!("/{}/", escape_glob(&unit)));
                }
            }
        }
        for rel in &busy_rel {
            out.push(format!("/{}", escape_glob(rel)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        for t in [
            "a.tmp",
            "x/a.partial",
            "a~",
            ".a",
            "x/.hidden/y",
            "w.lock",
            "d.tmp/x",
        ] {
            assert!(is_temp_name(t), "{t}");
        }
        for t in [
            "a.txt",
            "checkpoint-5/model.safetensors",
            "tmpfile",
            "x/a.tmp.json",
        ] {
            assert!(!is_temp_name(t), "{t}");
        }
    }

    #[test]
    fn escaped_globs_match_only_the_literal() {
        for name in ["a*b", "a?b", "[x]", "{a,b}", "plain", "dir/wé ird!,name"] {
            let f = PathFilter::new(&[], &[format!("/{}", escape_glob(name))]).unwrap();
            assert!(!f.matches(name), "{name} is excluded");
            assert!(f.matches("other"), "{name}: others stay");
            assert!(f.matches(&format!("x{name}")), "{name}: no wildcard");
        }
        let f = PathFilter::new(&[], &["/a[*]b".into()]).unwrap();
        assert!(f.matches("axb"));
    }

    #[test]
    fn quiet_after_the_window_and_a_stable_stat() {
        let t0 = Instant::now();
        let d = Duration::from_millis(100);
        let max = Duration::from_millis(300);
        let stamp = Some(Stamp {
            size: 1,
            mtime_ns: 1,
        });
        let mut t = Tracker::new();
        t.touch("a".into(), stamp, t0);
        t.refresh(t0 + d / 2, d, |_| stamp);
        assert!(!t.ready(t0 + d / 2, d, max));
        assert_eq!(t.next_check(t0 + d / 2, d, max), Some(t0 + d));
        // The window ends but the file grew: a new window.
        let grown = Some(Stamp {
            size: 2,
            mtime_ns: 2,
        });
        t.refresh(t0 + d, d, |_| grown);
        assert!(!t.ready(t0 + d, d, max));
        assert_eq!(t.busy(t0 + d, d), vec![PathBuf::from("a")]);
        t.refresh(t0 + 2 * d, d, |_| grown);
        assert!(t.ready(t0 + 2 * d, d, max));
        assert!(t.busy(t0 + 2 * d, d).is_empty());
    }

    #[test]
    fn a_busy_path_holds_others_back_only_until_overdue() {
        let t0 = Instant::now();
        let d = Duration::from_millis(100);
        let max = Duration::from_millis(300);
        let s = Some(Stamp {
            size: 1,
            mtime_ns: 1,
        });
        let mut t = Tracker::new();
        t.touch("quiet".into(), s, t0);
        let mut now = t0;
        // "log" changes every 50 ms forever.
        while now < t0 + d + max {
            t.touch("log".into(), s, now);
            t.refresh(now, d, |_| s);
            assert!(!t.ready(now, d, max), "{:?}", now - t0);
            now += Duration::from_millis(50);
        }
        t.touch("log".into(), s, now);
        t.refresh(now, d, |_| s);
        assert!(t.ready(now, d, max));
        assert_eq!(t.busy(now, d), vec![PathBuf::from("log")]);

        // A round pushes "quiet"; "log" stays; a path changed during the round stays too.
        let snap = t.snapshot(now, d);
        t.touch("quiet".into(), s, now + d);
        t.forget(&snap);
        assert_eq!(t.len(), 2);
        let later = now + 2 * d;
        t.refresh(later, d, |_| s);
        let snap = t.snapshot(later, d);
        t.forget(&snap);
        assert_eq!(t.len(), 0);
    }

    fn mapping(root: &Path, marker: Option<&str>, keep: Option<&str>) -> MappingRule {
        let f = FileMapping {
            local: root.into(),
            local_path: root.into(),
            remote: "ckpt".into(),
            include: vec![],
            exclude: vec![],
            prune: false,
            ready_marker: marker.map(str::to_string),
            keep_last: keep.map(|p| crate::manifest::KeepLast {
                pattern: p.into(),
                count: 2,
            }),
            location: Default::default(),
        };
        MappingRule::new(0, 0, &f).unwrap()
    }

    #[test]
    fn units_without_their_marker_or_still_changing_are_excluded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["checkpoint-1", "checkpoint-2", "checkpoint-3", "logs"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("w.bin"), b"x").unwrap();
        }
        std::fs::write(root.join("checkpoint-1/state.json"), b"{}").unwrap();
        std::fs::write(root.join("checkpoint-2/state.json"), b"{}").unwrap();
        let busy = vec![root.join("checkpoint-2/w.bin"), root.join("top.txt")];

        let m = mapping(root, Some("state.json"), Some("checkpoint-*"));
        let ex = m.round_excludes(&busy);
        assert_eq!(&ex[..TEMP_EXCLUDES.len()], TEMP_EXCLUDES);
        assert_eq!(
            &ex[TEMP_EXCLUDES.len()..],
            [
                "/checkpoint-2/",
                "/checkpoint-3/",
                "/checkpoint-2/w.bin",
                "/top.txt"
            ]
        );
        assert_eq!(m.unit_of("checkpoint-3/w.bin"), Some("checkpoint-3"));
        assert_eq!(
            m.unit_of("logs/w.bin"),
            None,
            "`logs` is no unit with a pattern"
        );
        assert_eq!(
            m.unit_of_repo_path("ckpt/checkpoint-3/w.bin"),
            Some("checkpoint-3")
        );
        assert_eq!(m.unit_of_repo_path("other/checkpoint-3/w.bin"), None);

        // Without `keep_last`, every direct sub-folder is a unit.
        let m = mapping(root, Some("state.json"), None);
        let ex = m.round_excludes(&[]);
        assert_eq!(&ex[TEMP_EXCLUDES.len()..], ["/checkpoint-3/", "/logs/"]);
        assert_eq!(m.unit_of("logs/w.bin"), Some("logs"));
        assert_eq!(m.unit_of("top.txt"), None);

        // Without a marker there are no units.
        let m = mapping(root, None, Some("checkpoint-*"));
        assert_eq!(m.round_excludes(&[]).len(), TEMP_EXCLUDES.len());
        assert_eq!(m.unit_of("checkpoint-3/w.bin"), None);
    }
}
