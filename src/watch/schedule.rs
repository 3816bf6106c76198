//! Scheduling state that outlives a round: the per-repo commit budget and the error backoff.
//!
//! [`Budget`] counts the commits watch made to each repo in the last hour (a sliding window)
//! and is saved to `.hubsync/watch-commits.json` beside the manifest, so a restart does not
//! reset it. The Hub allows about 128 commits an hour per repo; the default budget of 100
//! leaves room for other writers. Watch never exceeds it: a repo out of budget is left out of
//! rounds until a slot frees up, and a round that would need more commits than remain is cut
//! to what fits (the rest coalesces into a later round).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The budget window.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Commits per repo per hour when `--max-commits-per-hour` is not given.
pub const DEFAULT_MAX_COMMITS_PER_HOUR: u32 = 100;

/// Commits made per repo in the last [`WINDOW`].
#[derive(Debug)]
pub struct Budget {
    per_hour: usize,
    /// Commit times (ms since the Unix epoch) per repo id, oldest first.
    log: BTreeMap<String, Vec<u64>>,
    path: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    commits: BTreeMap<String, Vec<u64>>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Budget {
    /// A budget kept only in memory.
    #[cfg(test)]
    pub fn in_memory(per_hour: u32) -> Budget {
        Budget {
            per_hour: per_hour as usize,
            log: BTreeMap::new(),
            path: None,
        }
    }

    /// The budget saved at `path`; a missing or unreadable file starts empty.
    pub fn load(path: PathBuf, per_hour: u32) -> Budget {
        let log = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Saved>(&b).ok())
            .filter(|s| s.version == 1)
            .map(|s| s.commits)
            .unwrap_or_default();
        Budget {
            per_hour: per_hour as usize,
            log,
            path: Some(path),
        }
    }

    fn recent(&self, repo: &str, now: SystemTime) -> &[u64] {
        let floor = ms(now).saturating_sub(WINDOW.as_millis() as u64);
        let all = self.log.get(repo).map_or(&[][..], Vec::as_slice);
        let start = all.partition_point(|t| *t <= floor);
        &all[start..]
    }

    /// Commits `repo` may still make now.
    pub fn remaining(&self, repo: &str, now: SystemTime) -> usize {
        self.per_hour.saturating_sub(self.recent(repo, now).len())
    }

    /// How long until `repo` may commit again (zero when it may now).
    pub fn wait(&self, repo: &str, now: SystemTime) -> Duration {
        let recent = self.recent(repo, now);
        if recent.len() < self.per_hour {
            return Duration::ZERO;
        }
        // The slot frees when the oldest commit that fills the budget leaves the window.
        let oldest = recent[recent.len() - self.per_hour];
        let frees = oldest + WINDOW.as_millis() as u64 + 1;
        Duration::from_millis(frees.saturating_sub(ms(now)))
    }

    /// Records `n` commits to `repo` at `now` and saves the budget (best effort).
    pub fn record(&mut self, repo: &str, n: usize, now: SystemTime) {
        if n == 0 {
            return;
        }
        let floor = ms(now).saturating_sub(WINDOW.as_millis() as u64);
        let entry = self.log.entry(repo.to_string()).or_default();
        entry.retain(|t| *t > floor);
        entry.extend(std::iter::repeat_n(ms(now), n));
        self.log.retain(|_, v| !v.is_empty());
        if let Some(path) = &self.path
            && let Err(e) = save(path, &self.log)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not save the commit budget");
        }
    }
}

fn save(path: &std::path::Path, log: &BTreeMap<String, Vec<u64>>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(
        &mut tmp,
        &Saved {
            version: 1,
            commits: log.clone(),
        },
    )?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Exponential backoff after failed rounds: 1 s, 2 s, 4 s, … up to a minute.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    /// The wait after one more failure; `at_least` is what the Hub asked for (429).
    pub fn fail(&mut self, at_least: Option<Duration>) -> Duration {
        let wait = Self::BASE
            .saturating_mul(1 << self.failures.min(6))
            .min(Self::MAX);
        self.failures += 1;
        wait.max(at_least.unwrap_or_default())
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut b = Budget::in_memory(3);
        assert_eq!(b.remaining("a", t0), 3);
        b.record("a", 2, t0);
        b.record("a", 1, t0 + Duration::from_secs(600));
        assert_eq!(b.remaining("a", t0 + Duration::from_secs(601)), 0);
        assert_eq!(b.remaining("b", t0), 3, "budgets are per repo");
        // The first two leave the window an hour after t0.
        let now = t0 + Duration::from_secs(1800);
        assert_eq!(b.wait("a", now), Duration::from_millis(1_800_001));
        assert_eq!(b.remaining("a", t0 + WINDOW + Duration::from_secs(1)), 2);
        assert_eq!(
            b.wait("a", t0 + WINDOW + Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn saved_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".hubsync/watch-commits.json");
        let now = SystemTime::now();
        let mut b = Budget::load(path.clone(), 2);
        b.record("alice/x", 2, now);
        let b = Budget::load(path, 2);
        assert_eq!(b.remaining("alice/x", now), 0);
    }

    #[test]
    fn backoff_doubles_and_honours_the_hub() {
        let mut b = Backoff::default();
        assert_eq!(b.fail(None), Duration::from_secs(1));
        assert_eq!(b.fail(None), Duration::from_secs(2));
        assert_eq!(
            b.fail(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        for _ in 0..10 {
            b.fail(None);
        }
        assert_eq!(b.fail(None), Duration::from_secs(60));
        b.reset();
        assert_eq!(b.fail(None), Duration::from_secs(1));
    }
}
