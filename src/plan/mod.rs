//! The plan: plain, immutable, versioned data that says exactly what apply will do, and the pure
//! planner that computes it ([`compute`]). No I/O, no clock, no randomness; everything sorted.
//!
//! The JSON form (`plan --format json`, `plan -o`) is the contract of DESIGN.md ("The JSON plan");
//! fields are only ever added. `schemas/plan.schema.json` is generated from these types.

mod batch;
mod compute;
mod paths;
pub mod retention;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use batch::{CommitBatch, LADDER, START_RUNG, file_order, next_batch, split_commits};
pub use compute::{DesiredFile, DesiredRepo, DesiredSpace, PlanError, Scope, TagSpec, compute};
pub use paths::{BadPath, check_remote_paths};
pub use retention::{Retention, natural_cmp};

use crate::api::RepoType;

/// The version of the JSON plan document.
pub const SCHEMA_VERSION: u32 = 1;

/// The command that regenerates `schemas/plan.schema.json`.
pub const SCHEMA_REGENERATE_COMMAND: &str = "cargo run -- schema --plan > schemas/plan.schema.json";

/// The JSON Schema (draft 2020-12) of the plan document, generated from [`Plan`].
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(Plan)
}

/// [`json_schema`] as pretty JSON with a final newline: the content of
/// `schemas/plan.schema.json`.
pub fn json_schema_string() -> String {
    // `{:#}` on a `serde_json::Value` is its pretty form, and cannot fail.
    format!("{:#}\n", json_schema().as_value())
}

/// A whole plan: one entry per repo of the manifest, in manifest order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always 1 for this format.
    pub schema_version: u32,
    /// One entry per repo of the manifest (or of the `--repo` selection), in manifest order.
    pub repos: Vec<RepoPlan>,
    /// Totals over all repos.
    pub summary: Summary,
}

impl Plan {
    /// Whether any repo has an action: `false` is "No changes".
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
    /// The commit summary.
    pub message: String,
    /// Most files in one commit.
    pub max_files: usize,
    /// Most bytes in one commit.
    pub max_bytes: u64,
}

/// One change. `kind` names it; no secret value ever appears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Create the repo.
    RepoCreate {
        /// Whether the new repo is private.
        private: bool,
        /// The Space SDK (Spaces only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdk: Option<String>,
    },
    /// Change visibility (`public` / `private`).
    Visibility {
        /// The current visibility.
        from: String,
        /// The visibility the manifest asks for.
        to: String,
    },
    /// Upload a new file.
    FileAdd(FileChange),
    /// Replace a file whose content differs.
    FileUpdate(FileChange),
    /// Delete a file (only inside a `prune: true` mapping's scope).
    FileDelete {
        /// Path in the repo.
        path: String,
        /// Size of the remote file.
        size: u64,
        /// Git oid of the remote file.
        old_git_oid: String,
    },
    /// Create a branch from another revision.
    BranchCreate {
        /// The new branch.
        name: String,
        /// The branch, tag or commit it starts from.
        from: String,
    },
    /// Create a tag at a revision (a branch name means its head after this apply's commits).
    TagCreate {
        /// The new tag.
        name: String,
        /// A branch, tag or commit id.
        revision: String,
        /// The annotated tag's message, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Move a tag that points elsewhere than the commit the manifest names.
    TagMove {
        /// The tag.
        name: String,
        /// The commit it points to now.
        from: String,
        /// The commit id the manifest names.
        to: String,
    },
    /// Request other Space hardware.
    SpaceHardware {
        /// The hardware requested now, if known.
        from: Option<String>,
        /// The hardware flavour the manifest asks for.
        to: String,
    },
    /// Change the Space sleep time (seconds; -1 = never).
    SpaceSleepTime {
        /// The current sleep time; `null` means never.
        from: Option<i64>,
        /// The sleep time the manifest asks for.
        to: i64,
    },
    /// Add a Space variable (marked as managed by hubsync).
    VariableAdd { key: String, value: String },
    /// Change a Space variable's value.
    VariableChange {
        key: String,
        from: String,
        to: String,
    },
    /// Delete a Space variable hubsync set that the manifest no longer lists.
    VariableDelete { key: String },
    /// Add a Space secret (its value comes from the environment at apply time).
    SecretAdd { key: String },
    /// Set a Space secret again.
    SecretChange {
        key: String,
        /// Why the secret is set again: `value_changed`, `not_set_by_hubsync` or `edited_elsewhere`.
        reason: SecretReason,
    },
    /// Delete a Space secret hubsync set that the manifest no longer lists.
    SecretDelete { key: String },
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
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content (the LFS oid).
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
    /// Nanoseconds since the Unix epoch. (An `i64`: serde cannot read an `i128` back inside
    /// the tagged `Action`, and `i64` nanoseconds reach the year 2262.)
    pub mtime_ns: i64,
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
    /// Commits over all repos.
    pub commits: usize,
    /// Bytes of LFS content to upload over all repos.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_round_trips_through_json() {
        // `plan -o` then `apply PLANFILE`: every action must read back as written (internally
        // tagged enums buffer their fields, which rules out 128-bit integers, for example).
        let file = FileChange {
            path: "weights/model.safetensors".into(),
            size: 438_000_000,
            sha256: "a".repeat(64),
            git_oid: "b".repeat(40),
            lfs: true,
            old_git_oid: Some("c".repeat(40)),
            uploaded: true,
            local_path: "/data/model.safetensors".into(),
            mtime_ns: 1_790_000_000_123_456_789,
        };
        let repo = RepoPlan {
            id: "alice/m".into(),
            repo_type: RepoType::Space,
            revision: "main".into(),
            base_commit: Some("d".repeat(40)),
            default_branch_commit: Some("d".repeat(40)),
            actions: vec![
                Action::RepoCreate {
                    private: true,
                    sdk: Some("gradio".into()),
                },
                Action::FileAdd(file.clone()),
                Action::FileUpdate(file),
                Action::FileDelete {
                    path: "old.bin".into(),
                    size: 3,
                    old_git_oid: "e".repeat(40),
                },
                Action::TagMove {
                    name: "v1".into(),
                    from: "f".repeat(40),
                    to: "d".repeat(40),
                },
                Action::SpaceSleepTime {
                    from: Some(172_800),
                    to: -1,
                },
                Action::SecretChange {
                    key: "K".into(),
                    reason: SecretReason::EditedElsewhere,
                },
            ],
            commits: 1,
            upload_bytes: 438_000_000,
            commit: CommitSettings {
                message: "m".into(),
                max_files: 100,
                max_bytes: 5_000_000_000,
            },
        };
        let plan = Plan {
            schema_version: SCHEMA_VERSION,
            summary: summarize(std::slice::from_ref(&repo)),
            repos: vec![repo],
        };
        let text = crate::render::json(&plan);
        let back: Plan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, plan);
    }
}
