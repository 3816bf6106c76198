//! The validated manifest: what the rest of hubsync reads. Defaults are applied, repo ids and
//! names are checked, `local` paths are resolved against the manifest's folder, and Space secrets
//! hold their values from the environment in [`Secret`]s that never print.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{Diagnostic, ManifestError};
use super::raw::SpaceSdk;
use super::span::Location;
use crate::api::{RepoId, RepoType};
use crate::util::secret::Secret;

/// Commit message used when the manifest gives none.
pub const DEFAULT_COMMIT_MESSAGE: &str = "Sync with hubsync";
/// Most files in one commit when the manifest gives no `max_files`.
pub const DEFAULT_MAX_FILES: u64 = 1000;
/// Most bytes in one commit when the manifest gives no `max_bytes` (5 GB).
pub const DEFAULT_MAX_BYTES: u64 = 5_000_000_000;
/// Most deletions a plan may hold for one repo when the manifest gives no `max_deletes`.
pub const DEFAULT_MAX_DELETES: u64 = 100;
/// Branch files go to when a repo gives no `revision`.
pub const DEFAULT_REVISION: &str = "main";

/// A validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file, as the user named it (for messages).
    pub file: PathBuf,
    /// The folder relative `local` paths were resolved against.
    pub base_dir: PathBuf,
    /// `endpoint:` from the manifest, without a trailing `/`.
    pub endpoint: Option<String>,
    /// The repos, in manifest order.
    pub repos: Vec<RepoSpec>,
}

impl Manifest {
    /// Number of file mappings over all repos.
    pub fn mapping_count(&self) -> usize {
        self.repos.iter().map(|r| r.files.len()).sum()
    }

    /// The repo with this id and type.
    pub fn repo(&self, id: &RepoId, repo_type: RepoType) -> Option<&RepoSpec> {
        self.repos
            .iter()
            .find(|r| &r.id == id && r.repo_type == repo_type)
    }

    /// An error about this manifest at the given locations, for stages after validation (for
    /// example `plan`, when two mappings turn out to produce the same file).
    pub fn error(&self, diagnostics: Vec<Diagnostic>) -> ManifestError {
        ManifestError::Invalid {
            file: self.file.clone(),
            diagnostics,
        }
    }
}

/// One repo and what it should hold.
#[derive(Clone, Debug)]
pub struct RepoSpec {
    pub id: RepoId,
    pub repo_type: RepoType,
    /// Desired visibility; `None` leaves it as it is.
    pub private: Option<bool>,
    /// Create the repo when missing.
    pub create: bool,
    /// Branch the files go to.
    pub revision: String,
    pub files: Vec<FileMapping>,
    /// Refuse a plan deleting more files than this.
    pub max_deletes: u64,
    /// Commit settings, with `defaults.commit` and the built-in defaults applied.
    pub commit: CommitSettings,
    pub branches: Vec<BranchSpec>,
    pub tags: Vec<TagSpec>,
    /// Only for Spaces.
    pub space: Option<SpaceSpec>,
    /// Where the repo's entry starts in the manifest.
    pub location: Location,
}

/// How changes are split into commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitSettings {
    pub message: String,
    /// At least 1.
    pub max_files: u64,
    /// At least 1.
    pub max_bytes: u64,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            message: DEFAULT_COMMIT_MESSAGE.to_string(),
            max_files: DEFAULT_MAX_FILES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// A local folder mapped to a path prefix in a repo.
#[derive(Clone, Debug)]
pub struct FileMapping {
    /// `local` as written in the manifest (for messages).
    pub local: PathBuf,
    /// `local` resolved against the manifest's folder (absolute when the manifest was loaded from
    /// a file).
    pub local_path: PathBuf,
    /// Path prefix in the repo, without leading or trailing `/`; empty for the repo root. Already
    /// checked with [`crate::api::validate_repo_path`].
    pub remote: String,
    /// Globs relative to `local`; empty means every file. Syntax already checked with `globset`.
    pub include: Vec<String>,
    /// Globs relative to `local` to leave out.
    pub exclude: Vec<String>,
    /// Delete repo files in this mapping's scope that are absent locally.
    pub prune: bool,
    /// Relative path of the file that marks a folder ready to push.
    pub ready_marker: Option<String>,
    pub keep_last: Option<KeepLast>,
    /// Where the mapping starts in the manifest.
    pub location: Location,
}

impl FileMapping {
    /// The repo path a file at `relative` (relative to `local`, `/`-separated) is uploaded to.
    pub fn remote_path(&self, relative: &str) -> String {
        if self.remote.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{}", self.remote, relative)
        }
    }
}

/// Keep the `count` newest folders matching `pattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepLast {
    pub pattern: String,
    /// At least 1.
    pub count: u64,
}

/// A branch to create when missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchSpec {
    pub name: String,
    /// Where to start it; `None` is the repo's default branch.
    pub from: Option<String>,
}

/// A tag to create when missing (or move, when `revision` is a commit id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagSpec {
    pub name: String,
    /// A branch, tag or commit id; defaults to the repo's `revision`.
    pub revision: String,
    pub message: Option<String>,
}

/// Desired Space settings. `None` fields are left as they are.
#[derive(Clone, Debug)]
pub struct SpaceSpec {
    pub sdk: Option<SpaceSdk>,
    pub hardware: Option<String>,
    /// Seconds, or -1 for never.
    pub sleep_time: Option<i64>,
    pub variables: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SpaceSecret>,
}

/// A Space secret: which environment variable it came from, and its value (never printed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceSecret {
    /// The `VAR` of `${VAR}`.
    pub env_var: String,
    pub value: Secret<String>,
}
