//! Apply: execute a [`Plan`] exactly. Per repo, in order: create the repo → settings → the
//! target branch → uploads and head-chained commits (side by side: a commit waits only for its
//! own files) → branches → tags → Space settings.
//! Independent repos run concurrently (bounded). Emits [`ApplyEvent`]s; never prints and never
//! re-plans on its own, except to work out what is left after an ambiguous commit failure.
//!
//! The commit chain is what makes apply safe to interrupt and to re-run: every commit carries
//! `parentCommit` (the planned head first, then the id the previous commit returned), so a
//! commit can never land twice. When a commit's outcome is unknown (lost response, 5xx, 412),
//! apply re-reads the branch head and tree and recomputes what is left instead of re-sending.

mod commit;
pub mod events;
mod upload;

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;

pub use events::ApplyEvent;
pub use upload::moved_since_plan;

use crate::api::{RepoId, RepoType, Visibility};
use crate::client::{CreateRepoOptions, ErrorKind, HubClient, HubError};
use crate::plan::{Action, Plan, RepoPlan};
use crate::util::secret::Secret;

/// Secret values by `(repo id, key)`: the plan never holds them.
pub type SecretValues = BTreeMap<(String, String), Secret<String>>;

/// Where apply sends its events.
pub type Emit<'a> = &'a (dyn Fn(ApplyEvent) + Send + Sync);

/// Concurrency limits.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Repos applied at once.
    pub repos: usize,
    /// Files uploaded at once, per repo.
    pub uploads: usize,
    /// Parts of one multipart upload sent at once.
    pub parts: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            repos: 4,
            uploads: 8,
            parts: 8,
        }
    }
}

/// A commit apply made.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CommitRef {
    pub oid: String,
    pub url: String,
}

/// What happened to one repo.
#[derive(Debug)]
pub struct RepoReport {
    pub id: String,
    pub repo_type: RepoType,
    pub commits: Vec<CommitRef>,
    pub bytes_uploaded: u64,
    pub elapsed_ms: u64,
    /// Files that could not be uploaded (left out of the commits), with why.
    pub failed_files: Vec<(String, String)>,
    /// The error that stopped this repo, if any.
    pub error: Option<ApplyError>,
}

/// The outcome of an apply.
#[derive(Debug)]
pub struct ApplyReport {
    pub repos: Vec<RepoReport>,
    pub elapsed_ms: u64,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.repos
            .iter()
            .all(|r| r.error.is_none() && r.failed_files.is_empty())
    }

    pub fn commits(&self) -> usize {
        self.repos.iter().map(|r| r.commits.len()).sum()
    }

    pub fn bytes_uploaded(&self) -> u64 {
        self.repos.iter().map(|r| r.bytes_uploaded).sum()
    }
}

/// Why a repo's apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("failed to apply the plan to {repo_type} `{repo}`")]
    Hub {
        repo: String,
        repo_type: RepoType,
        #[source]
        source: HubError,
    },
    #[error(
        "someone else changed {repo_type} `{repo}` while applying: {} planned path(s) changed remotely: {}",
        paths.len(),
        paths.iter().take(10).map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
    )]
    Conflict {
        repo: String,
        repo_type: RepoType,
        paths: Vec<String>,
    },
    #[error(
        "the branch `{revision}` of {repo_type} `{repo}` kept moving; gave up after {attempts} attempts"
    )]
    Unstable {
        repo: String,
        repo_type: RepoType,
        revision: String,
        attempts: usize,
    },
    #[error("the value of secret `{key}` of `{repo}` is missing (set its environment variable)")]
    MissingSecret { repo: String, key: String },
}

impl ApplyError {
    pub fn hints(&self) -> Vec<String> {
        match self {
            ApplyError::Hub { source, .. } => source.hints(),
            ApplyError::Conflict { .. } | ApplyError::Unstable { .. } => {
                vec!["run `hubsync plan` again to see the current state, then apply".into()]
            }
            ApplyError::MissingSecret { .. } => Vec::new(),
        }
    }
}

/// Context shared by the steps of one repo.
pub(crate) struct RepoCtx<'a> {
    pub client: &'a HubClient,
    pub repo_type: RepoType,
    pub id: RepoId,
    pub plan: &'a RepoPlan,
    pub opts: &'a ApplyOptions,
    pub emit: Emit<'a>,
}

impl RepoCtx<'_> {
    pub fn hub_err(&self, source: HubError) -> ApplyError {
        ApplyError::Hub {
            repo: self.plan.id.clone(),
            repo_type: self.repo_type,
            source,
        }
    }

    pub fn emit(&self, e: ApplyEvent) {
        (self.emit)(e)
    }
}

/// Applies every repo of `plan`. Per-repo failures are in the report; this never stops the
/// other repos.
pub async fn apply(
    client: &HubClient,
    plan: &Plan,
    secrets: &SecretValues,
    opts: &ApplyOptions,
    emit: Emit<'_>,
) -> ApplyReport {
    let started = Instant::now();
    let mut indexed: Vec<(usize, RepoReport)> =
        futures::stream::iter(plan.repos.iter().enumerate())
            .map(|(i, rp)| async move { (i, apply_repo(client, rp, secrets, opts, emit).await) })
            .buffer_unordered(opts.repos.max(1))
            .collect()
            .await;
    indexed.sort_by_key(|(i, _)| *i);
    let report = ApplyReport {
        repos: indexed.into_iter().map(|(_, r)| r).collect(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    emit(ApplyEvent::Done {
        repos: report.repos.len(),
        commits: report.commits(),
        bytes_uploaded: report.bytes_uploaded(),
        elapsed_ms: report.elapsed_ms,
        failed_files: report.repos.iter().map(|r| r.failed_files.len()).sum(),
    });
    report
}

async fn apply_repo(
    client: &HubClient,
    rp: &RepoPlan,
    secrets: &SecretValues,
    opts: &ApplyOptions,
    emit: Emit<'_>,
) -> RepoReport {
    let started = Instant::now();
    let mut report = RepoReport {
        id: rp.id.clone(),
        repo_type: rp.repo_type,
        commits: Vec::new(),
        bytes_uploaded: 0,
        elapsed_ms: 0,
        failed_files: Vec::new(),
        error: None,
    };
    if rp.actions.is_empty() {
        return report;
    }
    let id = match RepoId::parse(&rp.id) {
        Ok(id) => id,
        Err(e) => {
            report.error = Some(ApplyError::Hub {
                repo: rp.id.clone(),
                repo_type: rp.repo_type,
                source: HubError::new(ErrorKind::BadRequest, "read the plan").with_detail(e),
            });
            return report;
        }
    };
    let ctx = RepoCtx {
        client,
        repo_type: rp.repo_type,
        id,
        plan: rp,
        opts,
        emit,
    };
    if let Err(e) = run_repo(&ctx, secrets, &mut report).await {
        report.error = Some(e);
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

async fn run_repo(
    ctx: &RepoCtx<'_>,
    secrets: &SecretValues,
    report: &mut RepoReport,
) -> Result<(), ApplyError> {
    let (client, t, id, rp) = (ctx.client, ctx.repo_type, &ctx.id, ctx.plan);
    let repo_label = rp.id.clone();
    let mut head = rp.base_commit.clone();

    // 1. The repo and its visibility.
    for a in &rp.actions {
        match a {
            Action::RepoCreate { private, sdk } => {
                let opts = CreateRepoOptions {
                    visibility: Some(if *private {
                        Visibility::Private
                    } else {
                        Visibility::Public
                    }),
                    sdk: sdk.clone(),
                    hardware: None,
                    sleep_time_seconds: None,
                };
                match client.create_repo(t, id, &opts).await {
                    Ok(resp) => ctx.emit(ApplyEvent::RepoCreated {
                        repo: repo_label.clone(),
                        url: resp.url,
                    }),
                    // A lost answer: the repo may exist now, which is what we wanted.
                    Err(e) if matches!(e.kind(), ErrorKind::Ambiguous | ErrorKind::Conflict) => {
                        if client
                            .try_repo_info(t, id, None)
                            .await
                            .map_err(|e| ctx.hub_err(e))?
                            .is_none()
                        {
                            return Err(ctx.hub_err(e));
                        }
                    }
                    Err(e) => return Err(ctx.hub_err(e)),
                }
            }
            Action::Visibility { to, .. } => {
                let req = crate::api::RepoSettingsRequest {
                    visibility: Some(if to == "private" {
                        Visibility::Private
                    } else {
                        Visibility::Public
                    }),
                    ..Default::default()
                };
                client
                    .update_settings(t, id, &req)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                ctx.emit(ApplyEvent::SettingChanged {
                    repo: repo_label.clone(),
                    setting: "visibility".into(),
                    value: Some(to.clone()),
                });
            }
            _ => {}
        }
    }

    // 2. The target branch, when it does not exist yet.
    let creates_target = rp
        .actions
        .iter()
        .any(|a| matches!(a, Action::BranchCreate { name, .. } if *name == rp.revision));
    if creates_target {
        let from = rp
            .default_branch_commit
            .clone()
            .unwrap_or_else(|| "main".into());
        create_branch(ctx, &rp.revision, &from).await?;
    }
    if head.is_none() {
        head = current_head(ctx).await?;
    }

    // 3. Uploads and 4. commits, side by side: each commit waits only for its own files (an LFS
    // object is always uploaded before the commit that names it), so the first commits land
    // while later files are still going up.
    let file_actions: Vec<&Action> = rp
        .actions
        .iter()
        .filter(|a| a.file_path().is_some())
        .collect();
    if !file_actions.is_empty() {
        let progress = upload::Progress::new(upload::Uploaded::default());
        let uploads = async {
            // An upload error ends the commit chain (through `progress`), not this join: the
            // commit in flight is seen through, then the error is reported.
            Ok::<_, ApplyError>(upload::upload_all(ctx, &file_actions, &progress).await)
        };
        let commits = commit::commit_all(ctx, &file_actions, &progress, head.clone());
        let joined = futures::future::try_join(uploads, commits).await;
        let up = progress.borrow();
        report.bytes_uploaded = up.bytes;
        report.failed_files = up.failed.clone();
        drop(up);
        let (uploaded, commits) = joined?;
        report.commits = commits;
        uploaded?;
    }

    // 5. Other branches, then tags (a tag on a branch lands on its head after the commits).
    for a in &rp.actions {
        if let Action::BranchCreate { name, from } = a
            && *name != rp.revision
        {
            create_branch(ctx, name, from).await?;
        }
    }
    for a in &rp.actions {
        match a {
            Action::TagCreate {
                name,
                revision,
                message,
            } => {
                match client
                    .create_tag(t, id, name, revision, message.as_deref())
                    .await
                {
                    Ok(()) => {}
                    // Created by an earlier, interrupted run.
                    Err(e) if e.kind() == ErrorKind::Conflict => {}
                    Err(e) => return Err(ctx.hub_err(e)),
                }
                ctx.emit(ApplyEvent::RefCreated {
                    repo: repo_label.clone(),
                    kind: "tag".into(),
                    name: name.clone(),
                    target: revision.clone(),
                });
            }
            Action::TagMove { name, to, .. } => {
                match client.delete_tag(t, id, name).await {
                    Ok(()) => {}
                    Err(e) if e.kind().is_not_found() => {}
                    Err(e) => return Err(ctx.hub_err(e)),
                }
                client
                    .create_tag(t, id, name, to, None)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                ctx.emit(ApplyEvent::RefCreated {
                    repo: repo_label.clone(),
                    kind: "tag".into(),
                    name: name.clone(),
                    target: to.clone(),
                });
            }
            _ => {}
        }
    }

    // 6. Space settings.
    for a in &rp.actions {
        let (setting, value) = match a {
            Action::SpaceHardware { to, .. } => {
                client
                    .request_space_hardware(id, to, None)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                ("hardware".to_string(), Some(to.clone()))
            }
            Action::SpaceSleepTime { to, .. } => {
                client
                    .set_space_sleep_time(id, *to)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                ("sleep_time".to_string(), Some(to.to_string()))
            }
            Action::VariableAdd { key, value } | Action::VariableChange { key, to: value, .. } => {
                client
                    .add_space_variable(id, key, value, None)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                (format!("variable {key}"), Some(value.clone()))
            }
            Action::VariableDelete { key } => {
                client
                    .delete_space_variable(id, key)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                (format!("variable {key}"), None)
            }
            Action::SecretAdd { key } | Action::SecretChange { key, .. } => {
                let Some(value) = secrets.get(&(rp.id.clone(), key.clone())) else {
                    return Err(ApplyError::MissingSecret {
                        repo: rp.id.clone(),
                        key: key.clone(),
                    });
                };
                let mut salt = [0u8; 16];
                getrandom::fill(&mut salt).map_err(|e| {
                    ctx.hub_err(
                        HubError::new(ErrorKind::Io, "make a salt").with_detail(e.to_string()),
                    )
                })?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let description = crate::plan::secrets::description(value.expose(), &salt, now);
                client
                    .add_space_secret(id, key, value, Some(&description))
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                (format!("secret {key}"), None)
            }
            Action::SecretDelete { key } => {
                client
                    .delete_space_secret(id, key)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                (format!("secret {key}"), None)
            }
            _ => continue,
        };
        ctx.emit(ApplyEvent::SettingChanged {
            repo: repo_label.clone(),
            setting,
            value,
        });
    }
    Ok(())
}

async fn create_branch(ctx: &RepoCtx<'_>, name: &str, from: &str) -> Result<(), ApplyError> {
    match ctx
        .client
        .create_branch(ctx.repo_type, &ctx.id, name, Some(from))
        .await
    {
        Ok(()) => {}
        // Created by an earlier, interrupted run (or its answer was lost).
        Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::Ambiguous) => {}
        Err(e) => return Err(ctx.hub_err(e)),
    }
    ctx.emit(ApplyEvent::RefCreated {
        repo: ctx.plan.id.clone(),
        kind: "branch".into(),
        name: name.to_string(),
        target: from.to_string(),
    });
    Ok(())
}

/// The head of the target branch now.
pub(crate) async fn current_head(ctx: &RepoCtx<'_>) -> Result<Option<String>, ApplyError> {
    let refs = ctx
        .client
        .list_refs(ctx.repo_type, &ctx.id, false)
        .await
        .map_err(|e| ctx.hub_err(e))?;
    Ok(refs
        .branches
        .into_iter()
        .find(|b| b.name == ctx.plan.revision)
        .map(|b| b.target_commit))
}
