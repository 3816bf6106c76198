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

use futures::{StreamExt, TryStreamExt};

use crate::api::{self, EntryType, RepoId, RepoType};
use crate::client::{HubClient, HubError};

/// Which repo to read, and the branch its files go to.
#[derive(Clone, Debug)]
pub struct Target {
    pub repo_type: RepoType,
    pub id: RepoId,
    pub revision: String,
}

/// How many repos are read at once.
const CONCURRENT_REPOS: usize = 8;

/// Reads one repo. Costs a fixed number of requests plus one per page of its tree.
pub async fn snapshot(client: &HubClient, target: &Target) -> Result<RemoteSnapshot, HubError> {
    let (t, id) = (target.repo_type, &target.id);
    let Some(info) = client.try_repo_info(t, id, None).await? else {
        return Ok(RemoteSnapshot::default());
    };
    let refs = client.list_refs(t, id, false).await?;
    let branches: BTreeMap<String, String> = refs
        .branches
        .into_iter()
        .map(|r| (r.name, r.target_commit))
        .collect();
    let tags: BTreeMap<String, String> = refs
        .tags
        .into_iter()
        .map(|r| (r.name, r.target_commit))
        .collect();
    let default_head = branches.get("main").cloned().or(info.sha.clone());
    let head = branches.get(&target.revision).cloned();
    let mut files = BTreeMap::new();
    let mut gitattributes = None;
    // The tree is read at a commit id, so every page comes from the same snapshot.
    if let Some(commit) = head.as_ref().or(default_head.as_ref()) {
        for e in client.list_tree(t, id, commit, None, true).await? {
            if e.kind == EntryType::File {
                files.insert(
                    e.path,
                    RemoteFile {
                        oid: e.oid,
                        size: e.size,
                        lfs: e.lfs.map(|l| l.oid),
                    },
                );
            }
        }
        gitattributes = match files.get(".gitattributes") {
            // The default file needs no download.
            Some(f) if f.oid == api::git_blob_oid(api::DEFAULT_GITATTRIBUTES.as_bytes()) => {
                Some(api::DEFAULT_GITATTRIBUTES.to_string())
            }
            Some(f) if f.lfs.is_none() && f.size <= 1024 * 1024 => {
                let bytes = client
                    .download(t, id, commit, ".gitattributes", None)
                    .await?
                    .bytes()
                    .await?;
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        };
    }
    let space = if t == RepoType::Space {
        let runtime = client.get_space_runtime(id).await?;
        let variables = client
            .get_space_variables(id)
            .await?
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        let secrets = client
            .get_space_secrets(id)
            .await?
            .into_iter()
            .map(|(k, s)| {
                let updated_at_ms = api::parse_date(&s.updated_at).unwrap_or(0);
                (
                    k,
                    RemoteSecret {
                        description: s.description,
                        updated_at_ms,
                    },
                )
            })
            .collect();
        Some(RemoteSpace {
            hardware: runtime.hardware.requested,
            sleep_time: runtime.gc_timeout,
            variables,
            secrets,
        })
    } else {
        None
    };
    Ok(RemoteSnapshot {
        exists: true,
        private: info.private,
        default_head,
        head,
        files,
        gitattributes,
        branches,
        tags,
        space,
    })
}

/// Reads every target concurrently (bounded), keyed like [`crate::plan::RemoteMap`].
pub async fn snapshot_all(
    client: &HubClient,
    targets: &[Target],
) -> Result<crate::plan::RemoteMap, HubError> {
    futures::stream::iter(targets.iter().cloned())
        .map(|target| async move {
            let snap = snapshot(client, &target).await?;
            Ok::<_, HubError>(((target.repo_type, target.id.to_string()), snap))
        })
        .buffer_unordered(CONCURRENT_REPOS)
        .try_collect()
        .await
}
