//! The remote side: reads each repo's state over the Hub API into a [`RemoteSnapshot`] — head
//! commit of the target revision, the recursive tree (all pages), refs, and for Spaces the
//! runtime, variables and secret keys. Must not write to the Hub.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one repo looks like on the Hub, as far as the planner cares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSnapshot {
    pub exists: bool,
    #[serde(default)]
    pub private: bool,
    /// Head of the default branch (`main`).
    #[serde(default)]
    pub default_head: Option<String>,
    /// Head of the target revision; `None` when that branch does not exist.
    #[serde(default)]
    pub head: Option<String>,
    /// Files at `head` (or at `default_head` when the target branch is missing).
    #[serde(default)]
    pub files: BTreeMap<String, RemoteFile>,
    /// Text of `.gitattributes` at that commit (decides which files go through LFS).
    #[serde(default)]
    pub gitattributes: Option<String>,
    #[serde(default)]
    pub branches: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub space: Option<RemoteSpace>,
}

/// A file in the remote tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteFile {
    /// Git blob SHA-1 (of the pointer, for LFS files).
    pub oid: String,
    pub size: u64,
    /// The LFS sha256, for LFS files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<String>,
}

/// A Space's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSpace {
    /// Requested hardware flavour.
    pub hardware: Option<String>,
    /// Sleep time in seconds (`gcTimeout`); `None` means never.
    pub sleep_time: Option<i64>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, RemoteSecret>,
}

/// A secret's metadata: the Hub never returns its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSecret {
    #[serde(default)]
    pub description: Option<String>,
    /// `updatedAt`, unix milliseconds.
    pub updated_at_ms: i64,
}
