//! The commit chain: file actions split into batches (`plan::split_commits`), each sent as one
//! NDJSON commit whose `parentCommit` is the head the previous one returned. When a commit's
//! fate is unknown — a lost response, a 5xx, or a 412 because the branch moved — the branch is
//! re-read and what is left is recomputed from the remote tree: changes already there are
//! dropped (so nothing is committed twice), changes still to do are sent again on the new head,
//! and paths someone else changed in the meantime stop apply with a conflict.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::upload::{Uploaded, error_text};
use super::{ApplyError, ApplyEvent, CommitRef, RepoCtx};
use crate::api::{
    CommitDelete, CommitFile, CommitHeader, CommitLfsFile, CommitLine, EntryType, UploadMode,
};
use crate::client::ErrorKind;
use crate::plan::{Action, LADDER, START_RUNG, file_order, next_batch, split_commits};

/// How many times a branch may move under us before apply gives up.
const MAX_RECOVERIES: usize = 10;
/// How many times a rate-limited commit is retried.
const MAX_RATE_LIMITED: usize = 6;

pub(crate) async fn commit_all(
    ctx: &RepoCtx<'_>,
    actions: &[&Action],
    up: &Uploaded,
    mut head: Option<String>,
    failed: &mut Vec<(String, String)>,
) -> Result<Vec<CommitRef>, ApplyError> {
    let mut remaining: Vec<Action> = actions
        .iter()
        .filter(|a| {
            a.file_path()
                .is_some_and(|p| !up.is_failed(p) && !up.ignored.contains(p))
        })
        .map(|a| (*a).clone())
        .collect();
    let caps = &ctx.plan.commit;
    let planned = split_commits(&remaining, caps).len();
    let mut made = Vec::new();
    let (mut recoveries, mut rate_limited) = (0usize, 0usize);
    // Batch size climbs while commits are quick and steps down after slow or failed ones.
    let mut rung = START_RUNG;
    loop {
        if remaining.is_empty() {
            break;
        }
        let batch = next_batch(&remaining, &file_order(&remaining), caps, LADDER[rung]);
        let batch_actions: Vec<Action> = batch
            .actions
            .iter()
            .map(|i| remaining[*i].clone())
            .collect();
        let (lines, changed) = build_lines(&batch_actions, up).await;
        if !changed.is_empty() {
            // Left out of the commits, and reported: apply must not end "complete" without them.
            for (path, why) in changed {
                ctx.emit(ApplyEvent::UploadFailed {
                    repo: ctx.plan.id.clone(),
                    path: path.clone(),
                    error: why.clone(),
                });
                remaining.retain(|a| a.file_path() != Some(path.as_str()));
                failed.push((path, why));
            }
            continue;
        }
        let n = made.len() + 1;
        let summary = if planned > 1 {
            format!("{} (part {n}/{})", caps.message, planned.max(n))
        } else {
            caps.message.clone()
        };
        let header = CommitHeader {
            summary,
            description: describe(&batch_actions),
            parent_commit: head.clone(),
        };
        match ctx
            .client
            .commit(
                ctx.repo_type,
                &ctx.id,
                &ctx.plan.revision,
                &header,
                &lines,
                false,
            )
            .await
        {
            Ok(resp) => {
                ctx.emit(ApplyEvent::CommitCreated {
                    repo: ctx.plan.id.clone(),
                    commit: resp.commit_oid.clone(),
                    url: resp.commit_url.clone(),
                    files: batch_actions.len(),
                    parent: head.clone(),
                });
                made.push(CommitRef {
                    oid: resp.commit_oid.clone(),
                    url: resp.commit_url,
                });
                head = Some(resp.commit_oid);
                let mut done = vec![false; remaining.len()];
                for &i in &batch.actions {
                    done[i] = true;
                }
                let mut i = 0;
                remaining.retain(|_| {
                    i += 1;
                    !done[i - 1]
                });
            }
            Err(e)
                if matches!(e.kind(), ErrorKind::RateLimited { .. })
                    && rate_limited < MAX_RATE_LIMITED =>
            {
                // A 429 is an answer: the commit was not applied. Wait as told, then retry.
                rate_limited += 1;
                let wait = e
                    .retry_after()
                    .unwrap_or(Duration::from_secs(1 << rate_limited.min(5)));
                tokio::time::sleep(wait.min(Duration::from_secs(120))).await;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::PreconditionFailed
                        | ErrorKind::Ambiguous
                        | ErrorKind::Server
                        | ErrorKind::Transport { .. }
                ) =>
            {
                recoveries += 1;
                if !matches!(e.kind(), ErrorKind::PreconditionFailed) {
                    rung = rung.saturating_sub(2);
                }
                if recoveries > MAX_RECOVERIES {
                    return Err(ApplyError::Unstable {
                        repo: ctx.plan.id.clone(),
                        repo_type: ctx.repo_type,
                        revision: ctx.plan.revision.clone(),
                        attempts: recoveries,
                    });
                }
                tracing::debug!(error = %error_text(&e), "commit outcome unknown; re-reading the branch");
                // Give a struggling Hub a moment before reading it again.
                if !matches!(e.kind(), ErrorKind::PreconditionFailed) {
                    tokio::time::sleep(Duration::from_millis(200 * recoveries as u64)).await;
                }
                let (new_head, left) = reconcile(ctx, &remaining).await?;
                if new_head != head
                    && let (Some(from), Some(to)) = (&head, &new_head)
                {
                    ctx.emit(ApplyEvent::HeadMoved {
                        repo: ctx.plan.id.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
                head = new_head;
                remaining = left;
            }
            Err(e) => return Err(ctx.hub_err(e)),
        }
    }
    Ok(made)
}

/// The NDJSON lines of a batch, reading regular files now and checking them against the plan.
/// Returns the lines, and the files that changed since planning (which must be left out).
async fn build_lines(batch: &[Action], up: &Uploaded) -> (Vec<CommitLine>, Vec<(String, String)>) {
    let mut lines = Vec::with_capacity(batch.len());
    let mut changed = Vec::new();
    for a in batch {
        match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => {
                let lfs = match up.modes.get(&f.path) {
                    Some(m) => *m == UploadMode::Lfs && f.size > 0,
                    None => f.lfs,
                };
                if lfs {
                    lines.push(CommitLine::LfsFile(CommitLfsFile {
                        path: f.path.clone(),
                        algo: Some("sha256".into()),
                        oid: f.sha256.clone(),
                        size: Some(f.size),
                        old_path: None,
                    }));
                    continue;
                }
                match tokio::fs::read(&f.local_path).await {
                    Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == f.sha256 => {
                        lines.push(CommitLine::File(CommitFile {
                            path: f.path.clone(),
                            content: base64::engine::general_purpose::STANDARD.encode(&bytes),
                            encoding: "base64".into(),
                            old_path: None,
                        }));
                    }
                    Ok(_) => changed.push((
                        f.path.clone(),
                        format!(
                            "`{}` changed since planning (its sha256 differs)",
                            f.local_path.display()
                        ),
                    )),
                    Err(e) => changed.push((
                        f.path.clone(),
                        format!("cannot read `{}`: {e}", f.local_path.display()),
                    )),
                }
            }
            Action::FileDelete { path, .. } => {
                lines.push(CommitLine::DeletedFile(CommitDelete { path: path.clone() }))
            }
            _ => {}
        }
    }
    (lines, changed)
}

/// The commit description: what changed, one path a line (bounded).
fn describe(batch: &[Action]) -> String {
    const MAX_LINES: usize = 200;
    let mut out = String::from("Applied by hubsync.\n");
    for a in batch.iter().take(MAX_LINES) {
        let (sign, path) = match a {
            Action::FileAdd(f) => ("+", f.path.as_str()),
            Action::FileUpdate(f) => ("~", f.path.as_str()),
            Action::FileDelete { path, .. } => ("-", path.as_str()),
            _ => continue,
        };
        out.push_str(&format!("\n{sign} {path}"));
    }
    if batch.len() > MAX_LINES {
        out.push_str(&format!("\n… and {} more", batch.len() - MAX_LINES));
    }
    out
}

/// Re-reads the branch head and tree, and splits `remaining` into what is already done (dropped),
/// what is still to do (returned), and what someone else changed (a conflict).
async fn reconcile(
    ctx: &RepoCtx<'_>,
    remaining: &[Action],
) -> Result<(Option<String>, Vec<Action>), ApplyError> {
    let head = super::current_head(ctx).await?;
    let Some(commit) = head.clone() else {
        return Err(ApplyError::Conflict {
            repo: ctx.plan.id.clone(),
            repo_type: ctx.repo_type,
            paths: vec![format!("branch `{}` was deleted", ctx.plan.revision)],
        });
    };
    let tree: BTreeMap<String, (String, Option<String>)> = ctx
        .client
        .list_tree(ctx.repo_type, &ctx.id, &commit, None, true)
        .await
        .map_err(|e| ctx.hub_err(e))?
        .into_iter()
        .filter(|e| e.kind == EntryType::File)
        .map(|e| (e.path, (e.oid, e.lfs.map(|l| l.oid))))
        .collect();
    let mut left = Vec::new();
    let mut conflicts = Vec::new();
    for a in remaining {
        match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => {
                let now = tree.get(&f.path);
                let done = now.is_some_and(|(oid, lfs)| {
                    lfs.as_deref() == Some(f.sha256.as_str()) || *oid == f.git_oid
                });
                let untouched = now.map(|(oid, _)| oid.clone()) == f.old_git_oid;
                if done {
                    continue;
                } else if untouched {
                    left.push(a.clone());
                } else {
                    conflicts.push(f.path.clone());
                }
            }
            Action::FileDelete {
                path, old_git_oid, ..
            } => match tree.get(path) {
                None => continue,
                Some((oid, _)) if oid == old_git_oid => left.push(a.clone()),
                Some(_) => conflicts.push(path.clone()),
            },
            _ => {}
        }
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflict {
            repo: ctx.plan.id.clone(),
            repo_type: ctx.repo_type,
            paths: conflicts,
        });
    }
    Ok((head, left))
}
