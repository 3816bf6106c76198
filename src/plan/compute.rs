//! `compute`: desired state + remote snapshots → [`Plan`]. Synchronous, deterministic, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{Action, CommitSettings, FileChange, Plan, RemoteMap, RepoPlan, SCHEMA_VERSION};
use crate::api::{self, RepoId, RepoType};
use crate::remote::{RemoteFile, RemoteSnapshot, RemoteSpace};
use crate::util::secret::Secret;

/// What one repo should look like: the manifest resolved against the local scan.
#[derive(Clone, Debug)]
pub struct DesiredRepo {
    pub id: RepoId,
    pub repo_type: RepoType,
    pub revision: String,
    pub private: Option<bool>,
    pub create: bool,
    /// Every file the mappings produce, by remote path.
    pub files: BTreeMap<String, DesiredFile>,
    /// Scopes of the `prune: true` mappings: remote files inside them that are not in `files`
    /// are deleted.
    pub prune_scopes: Vec<Scope>,
    /// `keep_last` rules of the mappings (see [`super::retention`]): old matching folders are
    /// deleted from the Hub and not uploaded again.
    pub retention: Vec<super::Retention>,
    pub max_deletes: usize,
    pub commit: CommitSettings,
    /// Branches to create when missing: `(name, from)`.
    pub branches: Vec<(String, String)>,
    pub tags: Vec<TagSpec>,
    pub space: Option<DesiredSpace>,
}

/// A tag the manifest declares.
#[derive(Clone, Debug)]
pub struct TagSpec {
    pub name: String,
    pub revision: String,
    pub message: Option<String>,
}

/// A local file and the hashes the comparison needs.
#[derive(Clone, Debug)]
pub struct DesiredFile {
    pub local_path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
    /// Git blob SHA-1 of the content; `None` for files over the LFS threshold.
    pub git_oid: Option<String>,
    /// A NUL byte in the first 512 bytes (the Hub then stores the file with LFS).
    pub binary: bool,
}

/// A mapping's scope: its remote prefix filtered by its include/exclude globs, matched against
/// the path relative to the prefix exactly as the local scan matches files.
#[derive(Clone, Debug)]
pub struct Scope {
    pub prefix: String,
    pub filter: crate::local::PathFilter,
}

impl Scope {
    pub fn contains(&self, path: &str) -> bool {
        let rel = if self.prefix.is_empty() {
            path
        } else {
            match path
                .strip_prefix(&self.prefix)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(r) => r,
                None => return false,
            }
        };
        self.filter.matches(rel)
    }
}

/// Space settings the manifest declares; `None` fields are left alone.
#[derive(Clone, Debug, Default)]
pub struct DesiredSpace {
    pub sdk: Option<String>,
    pub hardware: Option<String>,
    pub sleep_time: Option<i64>,
    pub variables: Option<BTreeMap<String, String>>,
    pub secrets: Option<BTreeMap<String, Secret<String>>>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("repo `{id}` does not exist and the manifest says `create: false`")]
    RepoMissing { id: String },
    #[error("the plan for `{id}` deletes {count} files, more than `max_deletes: {max}` allows")]
    TooManyDeletes {
        id: String,
        count: usize,
        max: usize,
    },
    #[error(
        "{} local file(s) have names the Hub refuses; nothing was sent:\n{}",
        paths.len(),
        paths.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    BadPaths { paths: Vec<super::BadPath> },
}

impl PlanError {
    pub fn hints(&self) -> Vec<String> {
        match self {
            PlanError::RepoMissing { .. } => {
                vec!["create the repo, or set `create: true` on it in the manifest".into()]
            }
            PlanError::TooManyDeletes { count, .. } => vec![format!(
                "check the mapping's `prune`, `include` and `exclude`; if the deletes are intended, raise `max_deletes` to at least {count}"
            )],
            PlanError::BadPaths { .. } => vec![
                "rename those files, or leave them out with an `exclude` glob in their mapping"
                    .into(),
            ],
        }
    }
}

/// The state of a repo that does not exist yet, as it will be right after creation.
fn fresh_repo(private: bool, space: bool) -> RemoteSnapshot {
    let attrs = api::DEFAULT_GITATTRIBUTES;
    let mut files = BTreeMap::new();
    files.insert(
        ".gitattributes".to_string(),
        RemoteFile {
            oid: api::git_blob_oid(attrs.as_bytes()),
            size: attrs.len() as u64,
            lfs: None,
        },
    );
    RemoteSnapshot {
        exists: false,
        private,
        files,
        gitattributes: Some(attrs.to_string()),
        space: space.then(|| RemoteSpace {
            hardware: Some("cpu-basic".into()),
            sleep_time: Some(172_800),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Computes the plan. `remote` holds a snapshot for every repo that was read.
pub fn compute(desired: &[DesiredRepo], remote: &RemoteMap) -> Result<Plan, PlanError> {
    let mut repos = Vec::with_capacity(desired.len());
    for d in desired {
        repos.push(plan_repo(d, remote.get(&(d.repo_type, d.id.to_string())))?);
    }
    let summary = super::summarize(&repos);
    Ok(Plan {
        schema_version: SCHEMA_VERSION,
        repos,
        summary,
    })
}

fn plan_repo(d: &DesiredRepo, snapshot: Option<&RemoteSnapshot>) -> Result<RepoPlan, PlanError> {
    let id = d.id.to_string();
    let is_space = d.repo_type == RepoType::Space;
    let mut actions = Vec::new();
    let fresh;
    let r = match snapshot {
        Some(s) if s.exists => s,
        _ => {
            if !d.create {
                return Err(PlanError::RepoMissing { id });
            }
            let private = d.private.unwrap_or(false);
            let sdk = if is_space {
                Some(
                    d.space
                        .as_ref()
                        .and_then(|s| s.sdk.clone())
                        .unwrap_or_else(|| "gradio".into()),
                )
            } else {
                None
            };
            actions.push(Action::RepoCreate { private, sdk });
            fresh = fresh_repo(private, is_space);
            &fresh
        }
    };
    let vis = |p: bool| if p { "private" } else { "public" }.to_string();
    if r.exists
        && let Some(p) = d.private
        && p != r.private
    {
        actions.push(Action::Visibility {
            from: vis(r.private),
            to: vis(p),
        });
    }
    let mut branches: BTreeSet<String> = r.branches.keys().cloned().collect();
    if !r.exists {
        branches.insert("main".into());
    }
    if !branches.contains(&d.revision) {
        actions.push(Action::BranchCreate {
            name: d.revision.clone(),
            from: "main".into(),
        });
        branches.insert(d.revision.clone());
    }

    // Retention: folders not to upload, folders to retire, folders prune must leave alone.
    let mut skip: BTreeSet<&str> = BTreeSet::new();
    let mut protected: BTreeSet<&str> = BTreeSet::new();
    let mut retired: BTreeSet<&str> = BTreeSet::new();
    for rule in &d.retention {
        let v = rule.verdict(
            r.files.keys().map(String::as_str),
            d.files.keys().map(String::as_str),
        );
        let folder = |p: &str| rule.folder_of_repo_path(p).map(str::to_string);
        for p in d.files.keys() {
            if folder(p).is_some_and(|f| v.skip_local.contains(&f)) {
                skip.insert(p);
            }
        }
        for p in r.files.keys() {
            match folder(p) {
                Some(f) if v.delete_remote.contains(&f) && rule.scope.contains(p) => {
                    retired.insert(p);
                }
                Some(f) if v.frozen.contains(&f) || v.skip_local.contains(&f) => {
                    protected.insert(p);
                }
                _ => {}
            }
        }
    }

    // Files: adds and updates in path order, then deletes in path order.
    let lfs = api::lfs_matcher(r.gitattributes.as_deref().unwrap_or(""));
    let remote_lfs: BTreeSet<&str> = r.files.values().filter_map(|f| f.lfs.as_deref()).collect();
    let mut upload_bytes = 0u64;
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    for (path, f) in &d.files {
        if skip.contains(path.as_str()) {
            continue;
        }
        let is_lfs = api::wants_lfs(path, f.size, f.binary, &lfs) || f.git_oid.is_none();
        let git_oid = if is_lfs {
            api::lfs_git_oid(&f.sha256, f.size)
        } else {
            f.git_oid.clone().unwrap_or_default()
        };
        let existing = r.files.get(path);
        let same = existing.is_some_and(|e| match &e.lfs {
            Some(sha) => *sha == f.sha256,
            None => Some(&e.oid) == f.git_oid.as_ref(),
        });
        if same {
            continue;
        }
        let uploaded = is_lfs && remote_lfs.contains(f.sha256.as_str());
        if is_lfs && !uploaded && counted.insert(&f.sha256) {
            upload_bytes += f.size;
        }
        let change = FileChange {
            path: path.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            git_oid,
            lfs: is_lfs,
            old_git_oid: existing.map(|e| e.oid.clone()),
            uploaded,
            local_path: f.local_path.clone(),
            mtime_ns: f.mtime_ns,
        };
        actions.push(if existing.is_some() {
            Action::FileUpdate(change)
        } else {
            Action::FileAdd(change)
        });
    }
    let deletes: Vec<Action> = r
        .files
        .iter()
        .filter(|(p, _)| *p != ".gitattributes")
        .filter(|(p, _)| {
            retired.contains(p.as_str())
                || (!d.files.contains_key(*p)
                    && !protected.contains(p.as_str())
                    && d.prune_scopes.iter().any(|s| s.contains(p)))
        })
        .map(|(p, f)| Action::FileDelete {
            path: p.clone(),
            size: f.size,
            old_git_oid: f.oid.clone(),
        })
        .collect();
    if deletes.len() > d.max_deletes {
        return Err(PlanError::TooManyDeletes {
            id,
            count: deletes.len(),
            max: d.max_deletes,
        });
    }
    actions.extend(deletes);
    let commits = super::split_commits(&actions, &d.commit).len();

    // Refs.
    for (name, from) in &d.branches {
        if !branches.contains(name) {
            actions.push(Action::BranchCreate {
                name: name.clone(),
                from: from.clone(),
            });
            branches.insert(name.clone());
        }
    }
    for t in &d.tags {
        // A revision is a commit id only when no branch or tag has that name (`cafe123` could
        // be either); commit ids are compared in lowercase, as the Hub writes them.
        let commit = (is_commit_id(&t.revision)
            && !branches.contains(&t.revision)
            && !r.tags.contains_key(&t.revision))
        .then(|| t.revision.to_ascii_lowercase());
        match (r.tags.get(&t.name), commit) {
            (None, _) => actions.push(Action::TagCreate {
                name: t.name.clone(),
                revision: t.revision.clone(),
                message: t.message.clone(),
            }),
            (Some(target), Some(commit)) if !target.starts_with(&commit) => {
                actions.push(Action::TagMove {
                    name: t.name.clone(),
                    from: target.clone(),
                    to: commit,
                })
            }
            (Some(_), _) => {}
        }
    }

    // Space settings.
    if let (true, Some(ds)) = (is_space, &d.space) {
        let rs = r.space.clone().unwrap_or_default();
        if let Some(h) = &ds.hardware
            && rs.hardware.as_ref() != Some(h)
        {
            actions.push(Action::SpaceHardware {
                from: rs.hardware.clone(),
                to: h.clone(),
            });
        }
        if let Some(s) = ds.sleep_time {
            let current = rs.sleep_time.unwrap_or(-1);
            if current != s {
                actions.push(Action::SpaceSleepTime {
                    from: rs.sleep_time,
                    to: s,
                });
            }
        }
        if let Some(vars) = &ds.variables {
            for (k, v) in vars {
                match rs.variables.get(k) {
                    None => actions.push(Action::VariableAdd {
                        key: k.clone(),
                        value: v.clone(),
                    }),
                    Some(old) if old != v => actions.push(Action::VariableChange {
                        key: k.clone(),
                        from: old.clone(),
                        to: v.clone(),
                    }),
                    Some(_) => {}
                }
            }
            // Only variables hubsync set are deleted; others were made by hand and are left alone.
            for k in rs
                .variables
                .keys()
                .filter(|k| !vars.contains_key(*k) && rs.managed_variables.contains(*k))
            {
                actions.push(Action::VariableDelete { key: k.clone() });
            }
        }
        if let Some(secrets) = &ds.secrets {
            for (k, v) in secrets {
                match rs.secrets.get(k) {
                    None => actions.push(Action::SecretAdd { key: k.clone() }),
                    Some(meta) => {
                        if let Some(reason) = super::secrets::verdict(v.expose(), meta) {
                            actions.push(Action::SecretChange {
                                key: k.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
            // Likewise only secrets hubsync set (they carry its fingerprint).
            let managed = |k: &String| {
                rs.secrets[k]
                    .description
                    .as_deref()
                    .and_then(super::secrets::parse)
                    .is_some()
            };
            for k in rs
                .secrets
                .keys()
                .filter(|k| !secrets.contains_key(*k) && managed(k))
            {
                actions.push(Action::SecretDelete { key: k.clone() });
            }
        }
    }

    Ok(RepoPlan {
        id: d.id.to_string(),
        repo_type: d.repo_type,
        revision: d.revision.clone(),
        base_commit: if r.exists { r.head.clone() } else { None },
        default_branch_commit: if r.exists {
            r.default_head.clone()
        } else {
            None
        },
        actions,
        commits,
        upload_bytes,
        commit: d.commit.clone(),
    })
}

fn is_commit_id(rev: &str) -> bool {
    rev.len() >= 7 && rev.len() <= 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}
