//! [`WatchEvent`]: what `hubsync watch` reports — the vocabulary of `--format json` (one JSON
//! object a line, tagged by `type`) and of the human lines. The dispatcher emits these and
//! nothing else; `cli` renders them. Must not depend on render.

use serde::{Deserialize, Serialize};

/// One thing that happened while watching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WatchEvent {
    /// Watching began: the folders are watched and the first reconcile is about to run.
    Started {
        /// `namespace/name` of every watched repo.
        repos: Vec<String>,
        /// The mapped folders, watched recursively.
        folders: Vec<String>,
        debounce_ms: u64,
        /// `--every`, when given.
        every_ms: Option<u64>,
        max_commits_per_hour: u32,
    },
    /// A round pushed something (rounds with nothing to do are silent).
    Round {
        /// Counts from 1; the first round is the reconcile at start.
        round: u64,
        /// The repos that changed, in manifest order.
        repos: Vec<RoundRepo>,
        /// File changes committed (adds, updates and deletes) over all repos.
        files: usize,
        /// LFS bytes uploaded.
        bytes: u64,
        duration_ms: u64,
        /// Files the round's scan read and hashed; the others came from the hash cache.
        hashed_files: u64,
        hashed_bytes: u64,
        /// When the next push is due, in ms from now: 0 when more is already waiting, `null`
        /// when the next push waits for a change.
        next_push_ms: Option<u64>,
    },
    /// A push is due but held back.
    Waiting {
        reason: WaitReason,
        /// The repo held back, when one is.
        repo: Option<String>,
        /// How long, in ms.
        wait_ms: u64,
    },
    /// Something failed. Unless `fatal`, watch goes on and retries.
    Error {
        message: String,
        /// `hint: …` lines that say how to fix it.
        hints: Vec<String>,
        /// When the push is retried, in ms from now (`null`: on the next change, or never when
        /// `fatal`).
        retry_ms: Option<u64>,
        fatal: bool,
    },
    /// The first SIGINT/SIGTERM arrived: the round in flight finishes and complete pending
    /// files are pushed before exit. A second signal aborts at once.
    Stopping {
        /// Changed paths not pushed yet.
        pending: usize,
    },
    /// Watch ended.
    Stopped {
        reason: StopReason,
        /// Rounds that ran.
        rounds: u64,
        /// Commits made.
        commits: usize,
        /// Changed paths left unpushed (still changing, or held back by the commit budget).
        unpushed: usize,
    },
}

/// What one repo got in a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundRepo {
    pub repo: String,
    /// Commit ids, oldest first.
    pub commits: Vec<String>,
    /// File changes committed.
    pub files: usize,
    /// LFS bytes uploaded.
    pub bytes: u64,
    /// Files left out because they changed while being uploaded; the next round takes them.
    pub changed_during_upload: Vec<String>,
}

/// Why a due push waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The repo made `--max-commits-per-hour` commits in the last hour.
    CommitBudget,
    /// The Hub answered 429; watch backs off and coalesces.
    RateLimited,
}

/// Why watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// SIGINT or SIGTERM; pending changes were flushed.
    Signal,
    /// A second signal: stopped at once, nothing partial committed.
    Aborted,
    /// A persistent error (authentication, a repo that is gone).
    Error,
}
