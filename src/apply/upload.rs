//! Uploads: preupload (the Hub decides regular vs LFS and which files to ignore), the LFS batch
//! API, then basic or multipart transfers streamed from disk with bounded concurrency. Each
//! file's bytes are checked against the planned SHA-256 while they stream; a file that changed
//! since planning fails alone and is left out of the commits. Must not choose what to send.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};

use super::{ApplyError, ApplyEvent, RepoCtx};
use crate::api::{
    CompletedPart, LfsCompleteRequest, LfsObjectAnswer, LfsObjectSpec, LfsVerifyRequest,
    PreuploadFile, PreuploadRequest, UploadMode,
};
use crate::client::{MultipartPlan, UploadSource};
use crate::plan::{Action, FileChange};
use crate::util::error::one_line;

/// Preupload takes at most this many paths a call (like `huggingface_hub`).
const PREUPLOAD_BATCH: usize = 256;
/// Preupload requests in flight at once.
const PREUPLOAD_CONCURRENCY: usize = 4;
/// LFS batch requests carry at most this many objects.
const LFS_BATCH: usize = 256;

/// What the upload side has learned and done so far. It is shared with the commit chain through
/// [`Progress`], so that commits start as soon as their own files are settled instead of after
/// every upload.
#[derive(Clone, Debug, Default)]
pub(crate) struct Uploaded {
    pub bytes: u64,
    /// Files that failed, with why: left out of the commits.
    pub failed: Vec<(String, String)>,
    failed_paths: HashSet<String>,
    /// The Hub's upload mode per path.
    pub modes: HashMap<String, UploadMode>,
    /// Paths the Hub said to ignore (its `.gitignore`).
    pub ignored: HashSet<String>,
    /// Paths ready to commit: regular (or ignored) per the Hub, or LFS and uploaded.
    settled: HashSet<String>,
    /// The upload side has stopped; `Some(true)` after an error that stops the repo.
    ended: Option<bool>,
    /// LFS objects by SHA-256: the paths waiting for an upload in flight, or the outcome.
    objects: HashMap<String, Object>,
}

#[derive(Clone, Debug)]
enum Object {
    InFlight(Vec<String>),
    Done(Result<(), String>),
}

impl Uploaded {
    pub fn is_failed(&self, path: &str) -> bool {
        self.failed_paths.contains(path)
    }

    /// Whether the added or updated file at `path` is ready to commit.
    pub fn is_settled(&self, path: &str) -> bool {
        self.settled.contains(path)
    }

    /// The upload side has stopped; `true` when it stopped on an error.
    pub fn ended(&self) -> Option<bool> {
        self.ended
    }

    /// Records that `path` failed (once) and tells about it: it is left out of the commits.
    pub fn fail(&mut self, ctx: &RepoCtx<'_>, path: &str, why: String) {
        if self.failed_paths.insert(path.to_string()) {
            ctx.emit(ApplyEvent::UploadFailed {
                repo: ctx.plan.id.clone(),
                path: path.to_string(),
                error: why.clone(),
            });
            self.failed.push((path.to_string(), why));
        }
    }

    /// The transfer of `sha256` ended: settles every path waiting for it, or fails them all
    /// with the object's error.
    fn object_done(&mut self, ctx: &RepoCtx<'_>, sha256: &str, outcome: Result<(), String>) {
        let waiting = match self.objects.remove(sha256) {
            Some(Object::InFlight(paths)) => paths,
            _ => Vec::new(),
        };
        match &outcome {
            Ok(()) => self.settled.extend(waiting),
            Err(why) => {
                for path in &waiting {
                    self.fail(ctx, path, why.clone());
                }
            }
        }
        self.objects
            .insert(sha256.to_string(), Object::Done(outcome));
    }
}

/// The upload side's state, watched by the commit chain: every change wakes it.
pub(crate) type Progress = tokio::sync::watch::Sender<Uploaded>;

/// Size and mtime of a file now, to compare with the plan; the mtime is read the way the local
/// scan reads it, so an untouched file always matches. Like the scan, this does not follow a
/// symlink: a file replaced by a link (or a folder, or a FIFO) is no longer the planned file.
pub(crate) fn stat(path: &Path) -> std::io::Result<(u64, i64)> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is no longer a regular file (now {})", file_kind(&meta)),
        ));
    }
    let stat = crate::local::FileStat::from_metadata(&meta);
    Ok((stat.size, stat.mtime_ns))
}

/// What a non-regular file is, for messages.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    if t.is_symlink() {
        return "a symlink";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    "not a regular file"
}

/// Why a local file no longer matches the plan, if it does not.
pub fn moved_since_plan(f: &FileChange) -> Option<String> {
    match stat(&f.local_path) {
        Err(e) => Some(format!("cannot read `{}`: {e}", f.local_path.display())),
        Ok((size, _)) if size != f.size => Some(format!(
            "`{}` changed since planning: {} bytes, planned {}",
            f.local_path.display(),
            size,
            f.size
        )),
        Ok((_, mtime)) if mtime != f.mtime_ns => Some(format!(
            "`{}` was modified since planning (its mtime changed)",
            f.local_path.display()
        )),
        Ok(_) => None,
    }
}

/// The first 512 bytes of a file, base64-encoded (the preupload `sample`); empty when the file
/// cannot be read (the upload then fails on its own).
fn sample(path: &Path) -> String {
    use std::io::Read;
    let mut buf = Vec::with_capacity(512);
    if let Ok(f) = crate::util::io::open_regular(path) {
        let _ = f.take(512).read_to_end(&mut buf);
    }
    base64::engine::general_purpose::STANDARD.encode(&buf)
}

/// Files checked against the plan, with the preupload entries of those still as planned.
struct Checked {
    live: Vec<FileChange>,
    samples: Vec<PreuploadFile>,
    moved: Vec<(String, String)>,
}

/// Blocking: `stat`s every file against the plan and reads the sample of those unchanged.
fn check_and_sample(files: Vec<FileChange>) -> Checked {
    let mut out = Checked {
        live: Vec::with_capacity(files.len()),
        samples: Vec::with_capacity(files.len()),
        moved: Vec::new(),
    };
    for f in files {
        match moved_since_plan(&f) {
            Some(why) => out.moved.push((f.path.clone(), why)),
            None => {
                out.samples.push(PreuploadFile {
                    sample: sample(&f.local_path),
                    path: f.path.clone(),
                    size: f.size,
                });
                out.live.push(f);
            }
        }
    }
    out
}

/// Preuploads every added or updated file, then uploads the LFS objects the Hub does not have,
/// recording in `progress` each file as it becomes ready to commit. Runs beside the commit chain:
/// preupload answers arrive in batches, in order, and LFS transfers (bounded) start as soon as
/// their batch is answered. Marks `progress` ended when it returns, whatever the outcome.
pub(crate) async fn upload_all(
    ctx: &RepoCtx<'_>,
    actions: &[&Action],
    progress: &Progress,
) -> Result<(), ApplyError> {
    let result = upload_files(ctx, actions, progress).await;
    progress.send_modify(|u| u.ended = Some(result.is_err()));
    result
}

async fn upload_files(
    ctx: &RepoCtx<'_>,
    actions: &[&Action],
    progress: &Progress,
) -> Result<(), ApplyError> {
    let changes: Vec<&FileChange> = actions
        .iter()
        .filter_map(|a| match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => Some(f),
            _ => None,
        })
        .collect();
    // LFS files, one preupload batch at a time, from the preupload loop to the transfer loop.
    let (lfs_tx, lfs_rx) = futures::channel::mpsc::unbounded::<Vec<FileChange>>();

    // Preupload: the Hub's word on regular vs LFS, and on ignored paths. Each batch checks its
    // files against the plan and reads their samples on the blocking pool (that is 10,000
    // `stat`s and `open`s for 10,000 files); batches go to the Hub concurrently (preupload only
    // reads) and are taken in order.
    let preuploads = async move {
        let mut answered = futures::stream::iter(changes.chunks(PREUPLOAD_BATCH))
            .map(|chunk| async move {
                let files: Vec<FileChange> = chunk.iter().map(|f| (*f).clone()).collect();
                let checked = tokio::task::spawn_blocking(move || check_and_sample(files))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                let answer = if checked.live.is_empty() {
                    None
                } else {
                    let req = PreuploadRequest {
                        files: checked.samples,
                        git_ignore: None,
                        git_attributes: None,
                    };
                    Some(
                        ctx.client
                            .preupload(ctx.repo_type, &ctx.id, &ctx.plan.revision, &req)
                            .await
                            .map_err(|e| ctx.hub_err(e))?,
                    )
                };
                Ok::<_, ApplyError>((checked.live, checked.moved, answer))
            })
            .buffered(PREUPLOAD_CONCURRENCY);
        while let Some(batch) = answered.next().await {
            let (live, moved, answer) = batch?;
            let mut lfs = Vec::new();
            progress.send_modify(|u| {
                for (path, why) in moved {
                    u.fail(ctx, &path, why);
                }
                for a in answer.map(|a| a.files).unwrap_or_default() {
                    if a.should_ignore {
                        u.ignored.insert(a.path.clone());
                    }
                    u.modes.insert(a.path, a.upload_mode);
                }
                for f in live {
                    let Some(mode) = u.modes.get(&f.path) else {
                        u.fail(
                            ctx,
                            &f.path,
                            "the preupload answer did not mention this file".into(),
                        );
                        continue;
                    };
                    if *mode == UploadMode::Lfs && f.size > 0 && !u.ignored.contains(&f.path) {
                        lfs.push(f);
                    } else {
                        u.settled.insert(f.path);
                    }
                }
            });
            if !lfs.is_empty() {
                // The receiver lives as long as this loop does (they are joined).
                let _ = lfs_tx.unbounded_send(lfs);
            }
        }
        Ok::<_, ApplyError>(())
    };

    // LFS objects, once per distinct content: the batch API for each preupload batch's new
    // objects, then the transfers, at most `uploads` at once across batches.
    let transfers = lfs_rx
        .then(|files| async move {
            let mut leaders: BTreeMap<String, FileChange> = BTreeMap::new();
            progress.send_modify(|u| {
                for f in files {
                    match u.objects.get_mut(&f.sha256) {
                        Some(Object::InFlight(waiting)) => waiting.push(f.path.clone()),
                        Some(Object::Done(Ok(()))) => {
                            u.settled.insert(f.path.clone());
                        }
                        Some(Object::Done(Err(why))) => {
                            let why = why.clone();
                            u.fail(ctx, &f.path, why);
                        }
                        None => {
                            u.objects
                                .insert(f.sha256.clone(), Object::InFlight(vec![f.path.clone()]));
                            leaders.insert(f.sha256.clone(), f);
                        }
                    }
                }
            });
            let specs: Vec<LfsObjectSpec> = leaders
                .values()
                .map(|f| LfsObjectSpec {
                    oid: f.sha256.clone(),
                    size: f.size,
                })
                .collect();
            let mut jobs = Vec::new();
            for chunk in specs.chunks(LFS_BATCH) {
                let resp = ctx
                    .client
                    .lfs_batch(ctx.repo_type, &ctx.id, Some(&ctx.plan.revision), chunk)
                    .await
                    .map_err(|e| ctx.hub_err(e))?;
                for obj in resp.objects {
                    if let Some(f) = leaders.remove(&obj.oid) {
                        jobs.push(Ok((obj, f)));
                    }
                }
            }
            // Objects the batch answer did not mention cannot be committed.
            progress.send_modify(|u| {
                for sha in leaders.keys() {
                    let why = "the LFS batch answer did not mention this object".to_string();
                    u.object_done(ctx, sha, Err(why));
                }
            });
            Ok::<_, ApplyError>(futures::stream::iter(jobs))
        })
        .try_flatten()
        .map_ok(|(obj, f): (LfsObjectAnswer, FileChange)| async move {
            ctx.emit(ApplyEvent::UploadStarted {
                repo: ctx.plan.id.clone(),
                path: f.path.clone(),
                size: f.size,
            });
            let r = upload_one(ctx, &obj, &f).await;
            if let Ok(sent) = &r {
                ctx.emit(ApplyEvent::UploadDone {
                    repo: ctx.plan.id.clone(),
                    path: f.path.clone(),
                    size: f.size,
                    skipped: !sent,
                });
            }
            progress.send_modify(|u| {
                if r == Ok(true) {
                    u.bytes += f.size;
                }
                // Every path waiting for the object settles or fails with it.
                u.object_done(ctx, &obj.oid, r.map(|_| ()));
            });
            Ok::<_, ApplyError>(())
        })
        .try_buffer_unordered(ctx.opts.uploads.max(1))
        .try_for_each(|()| futures::future::ready(Ok(())));

    futures::try_join!(preuploads, transfers)?;
    Ok(())
}

/// Uploads one object; `Ok(false)` when the Hub already had it.
async fn upload_one(
    ctx: &RepoCtx<'_>,
    obj: &LfsObjectAnswer,
    f: &FileChange,
) -> Result<bool, String> {
    let client = ctx.client;
    if let Some(err) = &obj.error {
        return Err(format!(
            "the Hub refused the object: {} {}",
            err.code, err.message
        ));
    }
    let Some(actions) = &obj.actions else {
        return Ok(false);
    };
    let Some(upload) = &actions.upload else {
        return Ok(false);
    };
    let plan = MultipartPlan::from_action(upload, f.size).map_err(|e| e.to_string())?;
    match plan {
        None => {
            client
                .lfs_upload(
                    &upload.href,
                    UploadSource::verified_file(&f.local_path, f.size, &f.sha256),
                )
                .await
                .map_err(|e| one_line(&e))?;
        }
        Some(plan) => {
            let parts: Vec<Result<CompletedPart, String>> =
                futures::stream::iter(plan.parts.iter())
                    .map(|(number, url)| {
                        let offset = u64::from(number - 1) * plan.chunk_size;
                        let len = plan.chunk_size.min(f.size.saturating_sub(offset));
                        async move {
                            let etag = client
                                .lfs_upload_part(
                                    url,
                                    UploadSource::file_range(&f.local_path, offset, len),
                                )
                                .await
                                .map_err(|e| one_line(&e))?;
                            Ok(CompletedPart {
                                part_number: *number,
                                etag,
                            })
                        }
                    })
                    .buffer_unordered(ctx.opts.parts.max(1))
                    .collect()
                    .await;
            let mut completed = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
            completed.sort_by_key(|p| p.part_number);
            // The parts were read from disk in any order: make sure the file is the planned one
            // before the Hub assembles them (the Hub checks the sha256 as well).
            if let Some(why) = moved_since_plan(f) {
                return Err(why);
            }
            client
                .lfs_complete(
                    &upload.href,
                    &LfsCompleteRequest {
                        oid: obj.oid.clone(),
                        parts: completed,
                    },
                )
                .await
                .map_err(|e| one_line(&e))?;
        }
    }
    if let Some(verify) = &actions.verify {
        client
            .lfs_verify(
                &verify.href,
                &LfsVerifyRequest {
                    oid: obj.oid.clone(),
                    size: obj.size,
                },
            )
            .await
            .map_err(|e| one_line(&e))?;
    }
    Ok(true)
}
