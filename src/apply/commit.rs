//! The commit chain: file actions split into batches (`plan::split_commits`), each sent as one
//! NDJSON commit whose `parentCommit` is the head the previous one returned. When a commit's
//! fate is unknown — a lost response, a 5xx, or a 412 because the branch moved — the branch is
//! re-read and what is left is recomputed from the remote tree: changes already there are
//! dropped (so nothing is committed twice), changes still to do are sent again on the new head,
//! and paths someone else changed in the meantime stop apply with a conflict.
//!
//! The chain runs beside the uploads: each batch is sent once the upload side
//! ([`Progress`]) has settled every file in it.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::upload::{Progress, Uploaded};
use super::{ApplyError, ApplyEvent, CommitRef, RepoCtx};
use crate::api::{
    CommitDelete, CommitFile, CommitHeader, CommitLfsFile, CommitLine, EntryType, UploadMode,
};
use crate::client::ErrorKind;
use crate::plan::{Action, LADDER, START_RUNG, file_order, next_batch, split_commits};
use crate::util::error::one_line;

/// How many times a branch may move under us before apply gives up.
const MAX_RECOVERIES: usize = 10;
/// How many times a rate-limited commit is retried.
const MAX_RATE_LIMITED: usize = 6;
/// A commit answered within this climbs one rung of the batch-size ladder ...
const QUICK_COMMIT: Duration = Duration::from_secs(20);
/// ... and one answered after this steps down one (the Hub times commits out at 60 s).
const SLOW_COMMIT: Duration = Duration::from_secs(40);
/// The next commit's regular files are read ahead only up to this many bytes, so that two
/// batches in memory stay well under the RSS budget.
const PREBUILD_MAX_INLINE: u64 = 16 * 1024 * 1024;

pub(crate) async fn commit_all(
    ctx: &RepoCtx<'_>,
    actions: &[&Action],
    progress: &Progress,
    mut head: Option<String>,
) -> Result<Vec<CommitRef>, ApplyError> {
    let mut remaining: Vec<Action> = actions.iter().map(|a| (*a).clone()).collect();
    let caps = &ctx.plan.commit;
    let planned = split_commits(&remaining, caps).len();
    let mut made = Vec::new();
    let (mut recoveries, mut rate_limited) = (0usize, 0usize);
    // Batch size climbs while commits are quick and steps down after slow or failed ones.
    let mut rung = START_RUNG;
    // The lines of the commit expected next, built while the current one is in flight.
    let mut prebuilt: Option<(Vec<String>, LinesTask)> = None;
    let mut uploads = progress.subscribe();
    'chain: loop {
        // The next batch, once the upload side has settled every file in it.
        let (batch, batch_actions, work, next) = {
            let up = uploads.borrow_and_update();
            if up.ended() == Some(true) {
                // The upload side stopped on an error (reported by the caller); the commits
                // made so far stand.
                break;
            }
            remaining.retain(|a| {
                a.file_path()
                    .is_none_or(|p| !up.is_failed(p) && !up.ignored.contains(p))
            });
            if remaining.is_empty() {
                break;
            }
            let batch = next_batch(&remaining, &file_order(&remaining), caps, LADDER[rung]);
            let batch_actions: Vec<Action> = batch
                .actions
                .iter()
                .map(|i| remaining[*i].clone())
                .collect();
            let waiting: Vec<String> = batch_actions
                .iter()
                .filter(|a| !ready(a, &up))
                .filter_map(|a| a.file_path().map(str::to_string))
                .collect();
            if !waiting.is_empty() {
                if up.ended().is_none() {
                    drop(up);
                    // Wake for each change, but look only at this batch's files (a change is
                    // one settled file; recomputing the batch each time would be quadratic).
                    loop {
                        if uploads.changed().await.is_err() {
                            // The upload side is gone (it cannot be, while we run).
                            break 'chain;
                        }
                        let up = uploads.borrow_and_update();
                        let decided = |p: &String| {
                            up.is_settled(p) || up.is_failed(p) || up.ignored.contains(p)
                        };
                        if up.ended().is_some() || waiting.iter().all(decided) {
                            break;
                        }
                    }
                    continue;
                }
                // The upload side ended without a word on these files: they cannot be
                // committed. (Not expected: every file is settled or failed by then.)
                drop(up);
                progress.send_modify(|u| {
                    for p in &waiting {
                        u.fail(ctx, p, "the upload did not finish".into());
                    }
                });
                continue;
            }
            let work = with_modes(&batch_actions, &up);
            let next = prebuild_candidate(&remaining, &batch.actions, caps, rung, &up);
            (batch, batch_actions, work, next)
        };
        let paths: Vec<&str> = batch_actions.iter().filter_map(Action::file_path).collect();
        let (lines, changed) = match prebuilt.take() {
            Some((p, task)) if p == paths => join(task).await,
            _ => join(spawn_lines(work)).await,
        };
        if !changed.is_empty() {
            // Left out of the commits, and reported: apply must not end "complete" without them.
            progress.send_modify(|u| {
                for (path, why) in changed {
                    u.fail(ctx, &path, why);
                }
            });
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
        // Read and encode the next batch while the Hub works on this one, assuming this commit
        // succeeds quickly (the usual case); if not, the guess is dropped and rebuilt.
        if let Some((next_paths, next_work)) = next {
            prebuilt = Some((next_paths, spawn_lines(next_work)));
        }
        let sent = std::time::Instant::now();
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
                // Climb the ladder while commits stay well under the Hub's 60 s timeout (as the
                // plan predicts); step down after a slow one.
                let took = sent.elapsed();
                if took < QUICK_COMMIT {
                    rung = (rung + 1).min(LADDER.len() - 1);
                } else if took > SLOW_COMMIT {
                    rung = rung.saturating_sub(1);
                }
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
                tracing::debug!(error = %one_line(&e), "commit outcome unknown; re-reading the branch");
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

/// Whether a file action can be committed now: deletes always, adds and updates once the upload
/// side has settled their file.
fn ready(a: &Action, up: &Uploaded) -> bool {
    match a {
        Action::FileAdd(f) | Action::FileUpdate(f) => up.is_settled(&f.path),
        _ => true,
    }
}

/// A batch's actions, each with whether it goes as an LFS pointer.
type Work = Vec<(Action, bool)>;

/// Each action of a batch with whether it goes as an LFS pointer (the Hub's preupload word).
fn with_modes(batch: &[Action], up: &Uploaded) -> Work {
    batch
        .iter()
        .map(|a| {
            let lfs = match a {
                Action::FileAdd(f) | Action::FileUpdate(f) => match up.modes.get(&f.path) {
                    Some(m) => *m == UploadMode::Lfs && f.size > 0,
                    None => f.lfs,
                },
                _ => false,
            };
            (a.clone(), lfs)
        })
        .collect()
}

/// The batch expected after `current` (indexes into `remaining`) if the commit in flight is
/// quick, with its work, when all its files are settled and its inline bytes are modest.
fn prebuild_candidate(
    remaining: &[Action],
    current: &[usize],
    caps: &crate::plan::CommitSettings,
    rung: usize,
    up: &Uploaded,
) -> Option<(Vec<String>, Work)> {
    let mut in_batch = vec![false; remaining.len()];
    for &i in current {
        in_batch[i] = true;
    }
    let rest: Vec<Action> = remaining
        .iter()
        .zip(&in_batch)
        .filter(|(_, b)| !**b)
        .map(|(a, _)| a.clone())
        .collect();
    let next_rung = (rung + 1).min(LADDER.len() - 1);
    let next = next_batch(&rest, &file_order(&rest), caps, LADDER[next_rung]);
    let actions: Vec<Action> = next.actions.iter().map(|i| rest[*i].clone()).collect();
    let inline: u64 = actions
        .iter()
        .map(|a| match a {
            Action::FileAdd(f) | Action::FileUpdate(f) if !f.lfs => f.size,
            _ => 0,
        })
        .sum();
    if actions.is_empty() || inline > PREBUILD_MAX_INLINE || !actions.iter().all(|a| ready(a, up)) {
        return None;
    }
    let paths = actions
        .iter()
        .filter_map(Action::file_path)
        .map(str::to_string)
        .collect();
    Some((paths, with_modes(&actions, up)))
}

/// Lines of a commit, and the files that changed since planning.
type Lines = (Vec<CommitLine>, Vec<(String, String)>);
type LinesTask = tokio::task::JoinHandle<Lines>;

async fn join(task: LinesTask) -> Lines {
    task.await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The NDJSON lines of a batch, reading regular files now and checking them against the plan.
/// Yields the lines, and the files that changed since planning (which must be left out). The
/// files are read, hashed and encoded on the blocking pool, in one task.
fn spawn_lines(work: Work) -> LinesTask {
    tokio::task::spawn_blocking(move || build_lines_blocking(work))
}

fn build_lines_blocking(work: Work) -> (Vec<CommitLine>, Vec<(String, String)>) {
    let mut lines = Vec::with_capacity(work.len());
    let mut changed = Vec::new();
    for (a, lfs) in work {
        match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => {
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
                match crate::util::io::read_regular(&f.local_path) {
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
                lines.push(CommitLine::DeletedFile(CommitDelete { path }))
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
