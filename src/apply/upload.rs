//! Uploads: preupload (the Hub decides regular vs LFS and which files to ignore), the LFS batch
//! API, then basic or multipart transfers streamed from disk with bounded concurrency. Each
//! file's bytes are checked against the planned SHA-256 while they stream; a file that changed
//! since planning fails alone and is left out of the commits. Must not choose what to send.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine;
use futures::StreamExt;

use super::{ApplyError, ApplyEvent, RepoCtx};
use crate::api::{
    CompletedPart, LfsCompleteRequest, LfsObjectAnswer, LfsObjectSpec, LfsVerifyRequest,
    PreuploadFile, PreuploadRequest, UploadMode,
};
use crate::client::{MultipartPlan, UploadSource};
use crate::plan::{Action, FileChange};

/// Preupload takes at most this many paths a call (like `huggingface_hub`).
const PREUPLOAD_BATCH: usize = 256;
/// Preupload requests in flight at once.
const PREUPLOAD_CONCURRENCY: usize = 4;
/// LFS batch requests carry at most this many objects.
const LFS_BATCH: usize = 256;

/// What the upload phase learned and did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Uploaded {
    pub bytes: u64,
    /// Files that failed, with why: left out of the commits.
    pub failed: Vec<(String, String)>,
    /// The Hub's upload mode per path.
    pub modes: BTreeMap<String, UploadMode>,
    /// Paths the Hub said to ignore (its `.gitignore`).
    pub ignored: BTreeSet<String>,
}

impl Uploaded {
    pub fn is_failed(&self, path: &str) -> bool {
        self.failed.iter().any(|(p, _)| p == path)
    }
}

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
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(512).read_to_end(&mut buf);
    }
    base64::engine::general_purpose::STANDARD.encode(&buf)
}

pub(crate) async fn upload_all(
    ctx: &RepoCtx<'_>,
    actions: &[&Action],
) -> Result<Uploaded, ApplyError> {
    let mut out = Uploaded::default();
    let changes: Vec<&FileChange> = actions
        .iter()
        .filter_map(|a| match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => Some(f),
            _ => None,
        })
        .collect();
    if changes.is_empty() {
        return Ok(out);
    }
    let repo = ctx.plan.id.clone();
    let fail = |out: &mut Uploaded, path: &str, why: String| {
        ctx.emit(ApplyEvent::UploadFailed {
            repo: repo.clone(),
            path: path.to_string(),
            error: why.clone(),
        });
        out.failed.push((path.to_string(), why));
    };

    // Preupload: the Hub's word on regular vs LFS, and on ignored paths.
    let mut live = Vec::new();
    for f in &changes {
        if let Some(why) = moved_since_plan(f) {
            fail(&mut out, &f.path, why);
        } else {
            live.push(*f);
        }
    }
    // Samples are read on the blocking pool, a whole batch at a time; batches go to the Hub
    // concurrently (preupload only reads).
    let answers: Vec<Result<crate::api::PreuploadResponse, ApplyError>> =
        futures::stream::iter(live.chunks(PREUPLOAD_BATCH))
            .map(|chunk| async move {
                let paths: Vec<(String, std::path::PathBuf, u64)> = chunk
                    .iter()
                    .map(|f| (f.path.clone(), f.local_path.clone(), f.size))
                    .collect();
                let files = tokio::task::spawn_blocking(move || {
                    paths
                        .into_iter()
                        .map(|(path, local, size)| PreuploadFile {
                            sample: sample(&local),
                            path,
                            size,
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                let req = PreuploadRequest {
                    files,
                    git_ignore: None,
                    git_attributes: None,
                };
                ctx.client
                    .preupload(ctx.repo_type, &ctx.id, &ctx.plan.revision, &req)
                    .await
                    .map_err(|e| ctx.hub_err(e))
            })
            .buffer_unordered(PREUPLOAD_CONCURRENCY)
            .collect()
            .await;
    for resp in answers {
        for a in resp?.files {
            if a.should_ignore {
                out.ignored.insert(a.path.clone());
            }
            out.modes.insert(a.path, a.upload_mode);
        }
    }

    // LFS objects, once per distinct content.
    let mut by_sha: BTreeMap<&str, Vec<&FileChange>> = BTreeMap::new();
    for f in &live {
        let lfs = out.modes.get(&f.path) == Some(&UploadMode::Lfs) && f.size > 0;
        if lfs && !out.ignored.contains(&f.path) {
            by_sha.entry(f.sha256.as_str()).or_default().push(f);
        }
    }
    let specs: Vec<LfsObjectSpec> = by_sha
        .values()
        .map(|fs| LfsObjectSpec {
            oid: fs[0].sha256.clone(),
            size: fs[0].size,
        })
        .collect();
    let mut answers: Vec<LfsObjectAnswer> = Vec::new();
    for chunk in specs.chunks(LFS_BATCH) {
        let resp = ctx
            .client
            .lfs_batch(ctx.repo_type, &ctx.id, Some(&ctx.plan.revision), chunk)
            .await
            .map_err(|e| ctx.hub_err(e))?;
        answers.extend(resp.objects);
    }
    let results: Vec<(String, Result<bool, String>)> = futures::stream::iter(answers.iter())
        .filter_map(|obj| {
            let file = by_sha.get(obj.oid.as_str()).map(|v| v[0]);
            async move { file.map(|f| (obj, f)) }
        })
        .map(|(obj, f)| async move {
            ctx.emit(ApplyEvent::UploadStarted {
                repo: ctx.plan.id.clone(),
                path: f.path.clone(),
                size: f.size,
            });
            let r = upload_one(ctx, obj, f).await;
            if let Ok(sent) = &r {
                ctx.emit(ApplyEvent::UploadDone {
                    repo: ctx.plan.id.clone(),
                    path: f.path.clone(),
                    size: f.size,
                    skipped: !sent,
                });
            }
            (obj.oid.clone(), r)
        })
        .buffer_unordered(ctx.opts.uploads.max(1))
        .collect()
        .await;
    for (sha, r) in results {
        let files = by_sha.get(sha.as_str()).cloned().unwrap_or_default();
        match r {
            Ok(true) => out.bytes += files.first().map(|f| f.size).unwrap_or(0),
            Ok(false) => {}
            Err(why) => {
                for f in files {
                    fail(&mut out, &f.path, why.clone());
                }
            }
        }
    }
    // Objects the batch answer did not mention cannot be committed.
    for (sha, files) in &by_sha {
        if !answers.iter().any(|a| a.oid == *sha) {
            for f in files {
                fail(
                    &mut out,
                    &f.path,
                    "the LFS batch answer did not mention this object".into(),
                );
            }
        }
    }
    Ok(out)
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
                .map_err(|e| error_text(&e))?;
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
                                .map_err(|e| error_text(&e))?;
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
                .map_err(|e| error_text(&e))?;
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
            .map_err(|e| error_text(&e))?;
    }
    Ok(true)
}

/// An error with its causes on one line.
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}
