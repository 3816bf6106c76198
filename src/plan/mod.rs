//! The plan: plain, immutable, versioned data that says exactly what apply will do, and the pure
//! planner that computes it ([`compute`]). No I/O, no clock, no randomness; everything sorted.
//!
//! The JSON form (`plan --format json`, `plan -o`) is the contract of DESIGN.md ("The JSON plan");
//! fields are only ever added. `schemas/plan.schema.json` is generated from these types.

mod batch;
mod compute;
pub mod retention;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use batch::{CommitBatch, split_commits};
pub use compute::{DesiredFile, DesiredRepo, DesiredSpace, PlanError, Scope, TagSpec, compute};
pub use retention::{Retention, natural_cmp};

use crate::api::RepoType;

/// The version of the JSON plan document.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole plan: one entry per repo of the manifest, in manifest order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always 1 for this format.
    pub schema_version: u32,
    pub repos: Vec<RepoPlan>,
    pub summary: Summary,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.repos.iter().any(|r| !r.actions.is_empty())
    }
}

/// What will happen to one repo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoPlan {
    /// `namespace/name`.
    pub id: String,
    #[serde(rename = "type")]
    pub repo_type: RepoType,
    /// The branch files are committed to.
    pub revision: String,
    /// The head commit of `revision` the plan was computed against; `null` when the repo or
    /// the branch does not exist yet. Apply refuses to run if the head has moved.
    pub base_commit: Option<String>,
    /// Head of the default branch when the plan was computed (the branch `revision` is created
    /// from when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch_commit: Option<String>,
    /// Actions in the order apply performs them.
    pub actions: Vec<Action>,
    /// Number of commits apply will make.
    pub commits: usize,
    /// Bytes of LFS content apply will upload (objects the Hub already has do not count).
    pub upload_bytes: u64,
    /// Commit message and caps apply uses.
    pub commit: CommitSettings,
}

/// The commit message and batching caps of a repo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitSettings {
    pub message: String,
    pub max_files: usize,
    pub max_bytes: u64,
}

/// One change. `kind` names it; no secret value ever appears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Create the repo.
    RepoCreate {
        private: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdk: Option<String>,
    },
    /// Change visibility (`public` / `private`).
    Visibility {
        from: String,
        to: String,
    },
    /// Upload a new file.
    FileAdd(FileChange),
    /// Replace a file whose content differs.
    FileUpdate(FileChange),
    /// Delete a file (only inside a `prune: true` mapping's scope).
    FileDelete {
        path: String,
        size: u64,
        old_git_oid: String,
    },
    /// Create a branch from another revision.
    BranchCreate {
        name: String,
        from: String,
    },
    /// Create a tag at a revision (a branch name means its head after this apply's commits).
    TagCreate {
        name: String,
        revision: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Move a tag that points elsewhere than the commit the manifest names.
    TagMove {
        name: String,
        from: String,
        to: String,
    },
    /// Request other Space hardware.
    SpaceHardware {
        from: Option<String>,
        to: String,
    },
    /// Change the Space sleep time (seconds; -1 = never).
    SpaceSleepTime {
        from: Option<i64>,
        to: i64,
    },
    VariableAdd {
        key: String,
        value: String,
    },
    VariableChange {
        key: String,
        from: String,
        to: String,
    },
    VariableDelete {
        key: String,
    },
    SecretAdd {
        key: String,
    },
    SecretChange {
        key: String,
        /// Why the secret is set again: `value_changed`, `not_set_by_hubsync` or `edited_elsewhere`.
        reason: SecretReason,
    },
    SecretDelete {
        key: String,
    },
}

/// Why a secret is re-set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretReason {
    /// The manifest's value differs from the fingerprint hubsync recorded.
    ValueChanged,
    /// The secret exists but carries no hubsync fingerprint, so its value is unknown.
    NotSetByHubsync,
    /// The secret was updated after hubsync last set it.
    EditedElsewhere,
}

/// A file to upload, with what apply needs to check it has not changed since planning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileChange {
    /// Path in the repo.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Git blob SHA-1 (of the LFS pointer for LFS files).
    pub git_oid: String,
    /// Whether the file goes up through LFS.
    pub lfs: bool,
    /// The remote git oid being replaced (updates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_git_oid: Option<String>,
    /// Whether the Hub already holds this LFS object (no upload needed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uploaded: bool,
    /// The local file and its modification time when planned (staleness check).
    pub local_path: PathBuf,
    pub mtime_ns: i128,
}

/// Totals over all repos.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Things created: files, repos, branches, tags, variables, secrets.
    pub add: usize,
    /// Things changed in place.
    pub change: usize,
    /// Things deleted.
    pub delete: usize,
    pub commits: usize,
    pub upload_bytes: u64,
}

/// How an action counts in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Add,
    Change,
    Delete,
}

impl Action {
    pub fn effect(&self) -> Effect {
        match self {
            Action::RepoCreate { .. }
            | Action::FileAdd(_)
            | Action::BranchCreate { .. }
            | Action::TagCreate { .. }
            | Action::VariableAdd { .. }
            | Action::SecretAdd { .. } => Effect::Add,
            Action::FileDelete { .. }
            | Action::VariableDelete { .. }
            | Action::SecretDelete { .. } => Effect::Delete,
            Action::Visibility { .. }
            | Action::FileUpdate(_)
            | Action::TagMove { .. }
            | Action::SpaceHardware { .. }
            | Action::SpaceSleepTime { .. }
            | Action::VariableChange { .. }
            | Action::SecretChange { .. } => Effect::Change,
        }
    }

    /// The file path, for file actions.
    pub fn file_path(&self) -> Option<&str> {
        match self {
            Action::FileAdd(f) | Action::FileUpdate(f) => Some(&f.path),
            Action::FileDelete { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Computes the summary of a list of repo plans.
pub fn summarize(repos: &[RepoPlan]) -> Summary {
    let mut s = Summary::default();
    for r in repos {
        for a in &r.actions {
            match a.effect() {
                Effect::Add => s.add += 1,
                Effect::Change => s.change += 1,
                Effect::Delete => s.delete += 1,
            }
        }
        s.commits += r.commits;
        s.upload_bytes += r.upload_bytes;
    }
    s
}

/// Everything the remote side looked like, per repo, as the planner sees it.
pub type RemoteMap = BTreeMap<(RepoType, String), crate::remote::RemoteSnapshot>;
