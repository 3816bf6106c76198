//! `ApplyEvent`: what apply reports as it goes — the vocabulary of `--format json` (one JSON
//! object a line, tagged by `type`) and of the progress display. Must not depend on render.

use serde::{Deserialize, Serialize};

/// One thing that happened during apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApplyEvent {
    /// A repo was created.
    RepoCreated { repo: String, url: String },
    /// An LFS upload began.
    UploadStarted {
        repo: String,
        path: String,
        size: u64,
    },
    /// An LFS upload finished; `skipped` when the Hub already had the object.
    UploadDone {
        repo: String,
        path: String,
        size: u64,
        skipped: bool,
    },
    /// A file could not be uploaded; it is left out of the commits.
    UploadFailed {
        repo: String,
        path: String,
        error: String,
    },
    /// A commit landed.
    CommitCreated {
        repo: String,
        commit: String,
        url: String,
        files: usize,
        parent: Option<String>,
    },
    /// A branch or tag was created or moved.
    RefCreated {
        repo: String,
        kind: String,
        name: String,
        target: String,
    },
    /// A repo or Space setting changed (never carries a secret value).
    SettingChanged {
        repo: String,
        setting: String,
        value: Option<String>,
    },
    /// Someone else committed meanwhile; apply re-read the branch and went on.
    HeadMoved {
        repo: String,
        from: String,
        to: String,
    },
    /// The end of the run.
    Done {
        repos: usize,
        commits: usize,
        bytes_uploaded: u64,
        elapsed_ms: u64,
        failed_files: usize,
    },
}
