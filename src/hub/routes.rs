//! Thin HTTP handlers of the local Hub. Routing is done on the raw path, because the Hub's
//! clients put `%2F`-escaped revisions and paths in one segment (`tree/main/a%2Fb`) as well as
//! raw slashes (`tree/main/a/b`), and both must mean the same thing (hub-api.md §1.2).
//! Every error carries `X-Error-Code` (where one applies), `X-Error-Message` and `{"error"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncSeekExt;

use super::HubState;
use super::auth::{self, Caller};
use super::parse::{self, valid_oid};
use super::store::{self, CommitRequest, FlatTree, RefKind, Repo, StoreError};
use super::writeback;
use crate::api::{self, ErrorCode, RepoType};

const JSON_LIMIT: usize = 16 * 1024 * 1024;
/// Regular files travel base64-encoded inside the commit body; the Hub caps regular content at
/// about 1 GB per commit, we cap the whole body at 512 MiB.
const COMMIT_LIMIT: usize = 512 * 1024 * 1024;
/// The Hub refuses paths-info requests with more paths than this (413).
const PATHS_INFO_MAX: usize = 1000;

pub fn router(state: HubState) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// A Hub-shaped error response.
#[derive(Debug)]
pub struct HubErr {
    status: StatusCode,
    code: Option<ErrorCode>,
    message: String,
    url: Option<String>,
    repo_commit: Option<String>,
}

impl HubErr {
    fn new(status: StatusCode, message: impl Into<String>) -> HubErr {
        HubErr {
            status,
            code: None,
            message: message.into(),
            url: None,
            repo_commit: None,
        }
    }

    fn coded(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> HubErr {
        HubErr {
            code: Some(code),
            ..HubErr::new(status, message)
        }
    }

    fn bad(message: impl Into<String>) -> HubErr {
        HubErr::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found() -> HubErr {
        HubErr::new(StatusCode::NOT_FOUND, "Not Found")
    }
}

impl From<StoreError> for HubErr {
    fn from(e: StoreError) -> HubErr {
        use StoreError::*;
        let msg = e.to_string();
        match e {
            RepoNotFound => HubErr::coded(
                StatusCode::NOT_FOUND,
                ErrorCode::RepoNotFound,
                "Repository not found",
            ),
            RevisionNotFound(_) => {
                HubErr::coded(StatusCode::NOT_FOUND, ErrorCode::RevisionNotFound, msg)
            }
            EntryNotFound(_) => HubErr::coded(StatusCode::NOT_FOUND, ErrorCode::EntryNotFound, msg),
            RepoExists(_) | RefExists(_) => HubErr::new(StatusCode::CONFLICT, msg),
            ParentMismatch => HubErr::new(StatusCode::PRECONDITION_FAILED, msg),
            InvalidPath(_) | LfsObjectMissing(_) => {
                HubErr::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
            }
            BadRequest(_) => HubErr::bad(msg),
            Forbidden(_) => HubErr::new(StatusCode::FORBIDDEN, msg),
            Db(e) => {
                tracing::error!(error = %e, "database error");
                HubErr::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
            Io(e) => {
                tracing::error!(error = %e, "storage error");
                HubErr::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl IntoResponse for HubErr {
    fn into_response(self) -> Response {
        let body = api::ErrorBody {
            error: self.message.clone(),
            url: self.url,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        if let Some(code) = self.code {
            h.insert(api::X_ERROR_CODE, HeaderValue::from_static(code.as_str()));
        }
        // Header values must be visible ASCII; the JSON body keeps the full text.
        let ascii: String = self
            .message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&ascii) {
            h.insert(api::X_ERROR_MESSAGE, v);
        }
        if let Some(c) = self
            .repo_commit
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            h.insert(api::X_REPO_COMMIT, c);
        }
        resp
    }
}

type HResult = Result<Response, HubErr>;

/// Everything a handler needs about the request.
struct Ctx {
    st: HubState,
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    caller: Caller,
    origin: String,
    path: String,
    body: Body,
}

impl Ctx {
    fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("1" | "true" | "True" | "TRUE"))
    }

    /// The whole request body, refused with 413 past `limit` bytes. A declared
    /// `Content-Length` over the limit is refused before a byte of the body is read.
    async fn bytes(&mut self, limit: usize) -> Result<bytes::Bytes, HubErr> {
        let too_large = || {
            HubErr::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            )
        };
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut stream = std::mem::replace(&mut self.body, Body::empty()).into_data_stream();
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            // A body that broke off is the client's problem, not a size problem.
            let chunk =
                chunk.map_err(|e| HubErr::bad(format!("failed to read the request body: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    async fn json<T: DeserializeOwned>(&mut self) -> Result<T, HubErr> {
        let b = self.bytes(JSON_LIMIT).await?;
        let b = if b.iter().all(u8::is_ascii_whitespace) {
            bytes::Bytes::from_static(b"{}")
        } else {
            b
        };
        serde_json::from_slice(&b).map_err(|e| HubErr::bad(format!("invalid JSON body: {e}")))
    }

    /// The repo, if the caller may see it; hidden repos are reported as missing.
    fn repo_read(&self, t: RepoType, ns: &str, name: &str) -> Result<Repo, HubErr> {
        let repo = self.st.store.find_repo(t, ns, name)?;
        match repo {
            Some(r) if self.caller.can_read(&r.namespace, r.private) => Ok(r),
            _ => {
                // The Hub answers 401 to anonymous callers, 404 to authenticated ones.
                let status = if matches!(self.caller, Caller::Anonymous) {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::NOT_FOUND
                };
                Err(HubErr::coded(
                    status,
                    ErrorCode::RepoNotFound,
                    format!("Repository not found: {}/{ns}/{name}", t.plural()),
                ))
            }
        }
    }

    fn repo_write(&self, t: RepoType, ns: &str, name: &str) -> Result<Repo, HubErr> {
        let repo = self.repo_read(t, ns, name)?;
        self.require_write(&repo.namespace)?;
        Ok(repo)
    }

    fn require_write(&self, namespace: &str) -> Result<(), HubErr> {
        if self.caller.can_write(namespace) {
            return Ok(());
        }
        Err(match &self.caller {
            Caller::Anonymous => HubErr::new(
                StatusCode::UNAUTHORIZED,
                "You must be authenticated to do this; pass a write token",
            ),
            Caller::User {
                role: auth::Role::Read,
                ..
            } if self.caller.is_member(namespace) => HubErr::new(
                StatusCode::FORBIDDEN,
                "This token has read-only access; use a write token",
            ),
            Caller::User { .. } => HubErr::new(
                StatusCode::FORBIDDEN,
                format!("You don't have the rights to write to the namespace `{namespace}`"),
            ),
        })
    }

    fn repo_url(&self, repo: &Repo) -> String {
        format!(
            "{}/{}{}",
            self.origin,
            repo.repo_type.url_prefix(),
            repo.full_name()
        )
    }
}

fn dec(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Decodes and joins segments: `a%2Fb` and `a`,`b` both give `a/b`.
fn join(segs: &[&str]) -> String {
    segs.iter().map(|s| dec(s)).collect::<Vec<_>>().join("/")
}

async fn dispatch(State(st): State<HubState>, req: Request) -> Response {
    let request_id = {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        hex::encode(b)
    };
    let mut resp = match handle(st, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(api::X_REQUEST_ID, v);
    }
    resp
}

async fn handle(st: HubState, req: Request) -> HResult {
    let (parts, body) = req.into_parts();
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let path = parts.uri.path().to_string();
    // LFS storage URLs carry no Authorization header: they authorise themselves.
    let caller = if path.starts_with("/lfs-upload/") {
        Ok(Caller::Anonymous)
    } else {
        auth::identify(&st.config.users, bearer).map_err(|_| {
            HubErr::new(
                StatusCode::UNAUTHORIZED,
                "Invalid credentials in Authorization header",
            )
        })
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let query = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut ctx = Ctx {
        origin: format!("http://{host}"),
        st,
        method: parts.method,
        headers: parts.headers,
        query,
        caller: Caller::Anonymous,
        path: path.clone(),
        body,
    };
    let result = match caller {
        Ok(caller) => {
            ctx.caller = caller;
            route(&mut ctx, &path).await
        }
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    // A request refused before its body was read: read the rest so the client can reuse the
    // connection (clients keep connections alive), or close it when the body is large.
    if !resp.status().is_success() {
        let body = std::mem::replace(&mut ctx.body, Body::empty());
        let drained = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            axum::body::to_bytes(body, DRAIN_LIMIT),
        )
        .await;
        if !matches!(drained, Ok(Ok(_))) {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    Ok(resp)
}

/// Bytes of an unread request body drained after an error, to keep the connection usable.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

async fn route(ctx: &mut Ctx, path: &str) -> HResult {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    tracing::debug!(method = %ctx.method, path = %path, "request");
    match segs.as_slice() {
        ["api", rest @ ..] => api_route(ctx, rest).await,
        ["lfs-upload", rest @ ..] => lfs_upload(ctx, rest).await,
        ["admin", "stats"] if ctx.st.config.admin => {
            let st = ctx.st.clone();
            let stats = blocking(move || st.store.stats()).await?;
            let traffic = ctx.st.faults.traffic();
            Ok(json(&serde_json::json!({
                "commits_created": stats.commits_created,
                "lfs_objects_uploaded": stats.lfs_objects_uploaded,
                "lfs_bytes_received": stats.lfs_bytes_received,
                "requests": traffic.requests,
                "faults": traffic.faults,
            })))
        }
        _ => web_route(ctx, &segs).await,
    }
}

/// Runs a storage call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, HubErr> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            HubErr::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}"),
            )
        })?
        .map_err(HubErr::from)
}

fn json<T: Serialize>(v: &T) -> Response {
    axum::Json(v).into_response()
}

// ---- /api ------------------------------------------------------------------------------------

async fn api_route(ctx: &mut Ctx, segs: &[&str]) -> HResult {
    let m = ctx.method.clone();
    match segs {
        ["whoami-v2"] if m == Method::GET => whoami(ctx),
        ["agent-harnesses"] => Ok(json(
            &serde_json::json!({"standardEnvVars": [], "harnesses": {}}),
        )),
        ["repos", "create"] if m == Method::POST => create_repo(ctx).await,
        ["repos", "delete"] if m == Method::DELETE => delete_repo(ctx).await,
        ["validate-yaml"] if m == Method::POST => validate_yaml(ctx).await,
        [plural, ns, name, rest @ ..] => {
            let Some(t) = RepoType::from_plural(plural) else {
                return Err(HubErr::not_found());
            };
            let (ns, name) = (dec(ns), dec(name));
            repo_route(ctx, t, &ns, &name, rest).await
        }
        _ => Err(HubErr::not_found()),
    }
}

async fn repo_route(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, rest: &[&str]) -> HResult {
    let m = ctx.method.clone();
    let is_space = t == RepoType::Space;
    match rest {
        [] if m == Method::GET => repo_info(ctx, t, ns, name, None).await,
        ["revision", rev @ ..] if m == Method::GET && !rev.is_empty() => {
            let rev = join(rev);
            repo_info(ctx, t, ns, name, Some(rev)).await
        }
        ["tree", rest @ ..] if m == Method::GET && !rest.is_empty() => {
            let (rev, path) = split_rev(rest);
            list_tree(ctx, t, ns, name, &rev, &path).await
        }
        ["paths-info", rev @ ..] if m == Method::POST && !rev.is_empty() => {
            paths_info(ctx, t, ns, name, &join(rev)).await
        }
        ["refs"] if m == Method::GET => list_refs(ctx, t, ns, name).await,
        ["commits", rev @ ..] if m == Method::GET && !rev.is_empty() => {
            list_commits(ctx, t, ns, name, &join(rev)).await
        }
        ["preupload", rev @ ..] if m == Method::POST && !rev.is_empty() => {
            preupload(ctx, t, ns, name, &join(rev)).await
        }
        ["commit", rev @ ..] if m == Method::POST && !rev.is_empty() => {
            commit(ctx, t, ns, name, &join(rev)).await
        }
        ["branch", b @ ..] if !b.is_empty() && (m == Method::POST || m == Method::DELETE) => {
            branch(ctx, t, ns, name, &join(b)).await
        }
        ["tag", r @ ..] if !r.is_empty() && (m == Method::POST || m == Method::DELETE) => {
            tag(ctx, t, ns, name, &join(r)).await
        }
        ["settings"] if m == Method::PUT => settings(ctx, t, ns, name).await,
        [x, ..] if x.starts_with("xet-") => Err(HubErr::not_found_msg(
            "Xet is not available on this local hub; set HF_HUB_DISABLE_XET=1 so uploads use LFS",
        )),
        ["secrets"] if is_space => space_keys(ctx, ns, name, true).await,
        ["variables"] if is_space => space_keys(ctx, ns, name, false).await,
        ["hardware" | "sleeptime" | "runtime" | "pause" | "restart"] if is_space => {
            space_runtime(ctx, ns, name, rest[0]).await
        }
        _ => Err(HubErr::not_found()),
    }
}

impl HubErr {
    fn not_found_msg(msg: &str) -> HubErr {
        HubErr::new(StatusCode::NOT_FOUND, msg)
    }
}

/// Splits `{rev}/{path...}`, accepting a raw `refs/pr/1` revision as JS sends it in tree URLs.
fn split_rev(segs: &[&str]) -> (String, String) {
    if segs.len() >= 3
        && segs[0] == "refs"
        && matches!(segs[1], "pr" | "heads" | "tags" | "convert")
    {
        (join(&segs[..3]), join(&segs[3..]))
    } else {
        (dec(segs[0]), join(&segs[1..]))
    }
}

fn whoami(ctx: &Ctx) -> HResult {
    let Caller::User {
        user,
        role,
        token_name,
    } = &ctx.caller
    else {
        return Err(HubErr::new(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials in Authorization header",
        ));
    };
    let id = hex::encode(Sha256::digest(user.name.as_bytes()))[..24].to_string();
    let body = api::WhoAmI {
        kind: "user".into(),
        id,
        name: user.name.clone(),
        fullname: user.name.clone(),
        orgs: user
            .orgs
            .iter()
            .map(|o| api::OrgInfo {
                kind: "org".into(),
                name: o.clone(),
                fullname: o.clone(),
            })
            .collect(),
        auth: api::AuthInfo {
            kind: "access_token".into(),
            access_token: Some(api::AccessTokenInfo {
                display_name: token_name.to_string(),
                role: match role {
                    auth::Role::Read => "read".into(),
                    auth::Role::Write => "write".into(),
                },
            }),
        },
    };
    Ok(json(&body))
}

const SDKS: [&str; 4] = ["gradio", "streamlit", "docker", "static"];

async fn create_repo(ctx: &mut Ctx) -> HResult {
    let Some(me) = ctx.caller.name().map(str::to_string) else {
        return Err(HubErr::new(
            StatusCode::UNAUTHORIZED,
            "You must be authenticated to create a repo",
        ));
    };
    let req: api::CreateRepoRequest = ctx.json().await?;
    let t = req.repo_type.unwrap_or(RepoType::Model);
    let ns = req.organization.clone().unwrap_or(me);
    for part in [&ns, &req.name] {
        api::validate_id_part(part).map_err(|e| HubErr::bad(format!("Invalid repo name: {e}")))?;
    }
    if !ctx.caller.can_write(&ns) {
        let mut e = HubErr::new(
            StatusCode::FORBIDDEN,
            format!("You don't have the rights to create a {t} under the namespace \"{ns}\""),
        );
        if ctx.caller.is_member(&ns) {
            e.message = "This token has read-only access; use a write token".into();
        }
        return Err(e);
    }
    if t == RepoType::Space {
        match req.sdk.as_deref() {
            Some(s) if SDKS.contains(&s) => {}
            Some(s) => {
                return Err(HubErr::bad(format!(
                    "Invalid sdk `{s}`: expected one of {}",
                    SDKS.join(", ")
                )));
            }
            None => {
                return Err(HubErr::bad(
                    "sdk is required when creating a Space (gradio, streamlit, docker or static)",
                ));
            }
        }
    }
    let private = match (req.visibility, req.private) {
        (Some(api::Visibility::Private), _) => true,
        (Some(_), _) => false,
        (None, p) => p.unwrap_or(false),
    };
    let st = ctx.st.clone();
    let (ns2, name2, sdk) = (ns.clone(), req.name.clone(), req.sdk.clone());
    let created = blocking(move || {
        st.store
            .create_repo(t, &ns2, &name2, private, sdk.as_deref())
    })
    .await;
    let repo = match created {
        Ok(r) => r,
        Err(mut e) if e.status == StatusCode::CONFLICT => {
            // `create_repo(exist_ok=True)` reads `url` from the 409 body.
            e.url = Some(format!(
                "{}/{}{ns}/{}",
                ctx.origin,
                t.url_prefix(),
                req.name
            ));
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if t == RepoType::Space {
        let st = ctx.st.clone();
        let r = repo.clone();
        let (hw, sleep) = (req.hardware.clone(), req.sleep_time_seconds);
        let secrets = req.secrets.clone().unwrap_or_default();
        let variables = req.variables.clone().unwrap_or_default();
        blocking(move || {
            st.store.update_space(&r, hw.as_deref(), sleep, None)?;
            for kv in &secrets {
                st.store
                    .set_space_key(&r, true, &kv.key, &kv.value, kv.description.as_deref())?;
            }
            for kv in &variables {
                st.store
                    .set_space_key(&r, false, &kv.key, &kv.value, kv.description.as_deref())?;
            }
            Ok(())
        })
        .await?;
    }
    Ok(json(&api::CreateRepoResponse {
        url: ctx.repo_url(&repo),
        name: repo.full_name(),
        id: format!("{:024x}", repo.db_id),
    }))
}

async fn delete_repo(ctx: &mut Ctx) -> HResult {
    let req: api::DeleteRepoRequest = ctx.json().await?;
    let t = req.repo_type.unwrap_or(RepoType::Model);
    let ns = req
        .organization
        .clone()
        .or_else(|| ctx.caller.name().map(str::to_string))
        .ok_or_else(|| {
            HubErr::new(
                StatusCode::UNAUTHORIZED,
                "You must be authenticated to delete a repo",
            )
        })?;
    let repo = ctx.repo_write(t, &ns, &req.name)?;
    let st = ctx.st.clone();
    blocking(move || st.store.delete_repo(&repo)).await?;
    Ok((StatusCode::OK, "OK").into_response())
}

async fn validate_yaml(ctx: &mut Ctx) -> HResult {
    let req: api::ValidateYamlRequest = ctx.json().await?;
    let errors: Vec<serde_json::Value> = match front_matter(&req.content) {
        Some(yaml) => match serde_saphyr::from_str::<serde_json::Value>(yaml) {
            Ok(serde_json::Value::Object(_) | serde_json::Value::Null) => vec![],
            Ok(_) => vec![serde_json::json!({"message": "YAML metadata must be a mapping"})],
            Err(e) => vec![serde_json::json!({"message": format!("Invalid YAML metadata: {}", e)})],
        },
        None => vec![],
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((
        status,
        axum::Json(serde_json::json!({"errors": errors, "warnings": []})),
    )
        .into_response())
}

fn front_matter(content: &str) -> Option<&str> {
    let rest = content
        .strip_prefix("---\n")
        .or_else(|| content.strip_prefix("---\r\n"))?;
    let end = rest.find("\n---")?;
    Some(&rest[..end])
}

fn gated_json(g: &Option<String>) -> serde_json::Value {
    match g {
        Some(m) => serde_json::Value::String(m.clone()),
        None => serde_json::Value::Bool(false),
    }
}

async fn repo_info(
    ctx: &mut Ctx,
    t: RepoType,
    ns: &str,
    name: &str,
    rev: Option<String>,
) -> HResult {
    let repo = ctx.repo_read(t, ns, name)?;
    let st = ctx.st.clone();
    let r = repo.clone();
    let rev = rev.unwrap_or_else(|| "main".to_string());
    let (commit, tree) = blocking(move || {
        let c = st.store.resolve(&r, &rev)?.commit;
        let tree = st.store.flat_tree(&c.tree)?;
        Ok((c, tree))
    })
    .await?;
    let blobs = ctx.flag("blobs");
    let siblings = tree
        .files
        .iter()
        .map(|(path, f)| api::Sibling {
            rfilename: path.clone(),
            size: blobs.then_some(f.size),
            blob_id: blobs.then(|| f.oid.clone()),
            lfs: if blobs {
                f.lfs.as_ref().map(|sha| api::SiblingLfs {
                    size: f.size,
                    sha256: sha.clone(),
                    pointer_size: api::lfs_pointer(sha, f.size).len() as u64,
                })
            } else {
                None
            },
        })
        .collect();
    let info = api::RepoInfo {
        internal_id: format!("{:024x}", repo.db_id),
        id: repo.full_name(),
        author: repo.namespace.clone(),
        sha: Some(commit.oid.clone()),
        private: repo.private,
        gated: gated_json(&repo.gated),
        disabled: false,
        last_modified: Some(api::format_date(commit.ms)),
        created_at: Some(api::format_date(repo.created_ms)),
        tags: vec![],
        siblings,
        sdk: repo.sdk.clone(),
        runtime: (t == RepoType::Space).then(|| runtime_of(&repo)),
    };
    let mut value = serde_json::to_value(&info).map_err(|e| HubErr::bad(e.to_string()))?;
    // With `expand`, only the listed properties come back, plus `_id` and `id`.
    let expand: Vec<&str> = ctx
        .query
        .iter()
        .filter(|(k, _)| k == "expand" || k == "expand[]")
        .map(|(_, v)| v.as_str())
        .collect();
    if !expand.is_empty()
        && let serde_json::Value::Object(map) = &mut value
    {
        map.insert("xetEnabled".into(), serde_json::Value::Bool(false));
        map.retain(|k, _| k == "_id" || k == "id" || expand.contains(&k.as_str()));
    }
    Ok(json(&value))
}

fn runtime_of(repo: &Repo) -> api::SpaceRuntime {
    let stage = repo.stage.clone().unwrap_or_else(|| "NO_APP_FILE".into());
    let requested = repo.hardware.clone();
    api::SpaceRuntime {
        stage: stage.clone(),
        hardware: api::SpaceHardware {
            current: if stage == "RUNNING" {
                requested.clone()
            } else {
                None
            },
            requested,
        },
        storage: None,
        gc_timeout: repo.sleep_time.filter(|s| *s >= 0),
        dev_mode: false,
        sdk: repo.sdk.clone(),
    }
}

/// Entries of a tree under `dir` ("" = root), sorted by path.
type Listed<'a> = (String, Option<&'a store::FileEntry>, Option<&'a String>);

fn entries_under<'a>(tree: &'a FlatTree, dir: &str, recursive: bool) -> Vec<Listed<'a>> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let keep = |p: &str| p.starts_with(&prefix) && (recursive || !p[prefix.len()..].contains('/'));
    let mut out: Vec<Listed<'a>> = Vec::new();
    for (p, d) in tree
        .dirs
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
    {
        if keep(p) {
            out.push((p.clone(), None, Some(d)));
        }
    }
    for (p, f) in tree
        .files
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
    {
        if keep(p) {
            out.push((p.clone(), Some(f), None));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn tree_entry(path: &str, file: Option<&store::FileEntry>, dir: Option<&String>) -> api::TreeEntry {
    match (file, dir) {
        (Some(f), _) => api::TreeEntry {
            kind: api::EntryType::File,
            oid: f.oid.clone(),
            size: f.size,
            path: path.to_string(),
            lfs: f.lfs.as_ref().map(|sha| api::TreeLfs {
                oid: sha.clone(),
                size: f.size,
                pointer_size: api::lfs_pointer(sha, f.size).len() as u64,
            }),
            last_commit: None,
        },
        (None, dir) => api::TreeEntry {
            kind: api::EntryType::Directory,
            oid: dir.cloned().unwrap_or_default(),
            size: 0,
            path: path.to_string(),
            lfs: None,
            last_commit: None,
        },
    }
}

/// Fills `lastCommit` by walking history until each entry's oid last changed.
fn fill_last_commits(
    st: &HubState,
    repo: &Repo,
    head: &store::Commit,
    entries: &mut [api::TreeEntry],
) -> Result<(), StoreError> {
    let mut pending: Vec<usize> = (0..entries.len()).collect();
    let mut cur = Some(head.clone());
    let mut depth = 0;
    while let Some(c) = cur {
        if pending.is_empty() || depth > 2000 {
            break;
        }
        depth += 1;
        let tree = st.store.flat_tree(&c.tree)?;
        let parent = match &c.parent {
            Some(p) => st.store.commit_by_oid(repo, p)?,
            None => None,
        };
        let ptree = match &parent {
            Some(p) => Some(st.store.flat_tree(&p.tree)?),
            None => None,
        };
        let oid_in = |t: &FlatTree, path: &str| -> Option<String> {
            t.files
                .get(path)
                .map(|f| f.oid.clone())
                .or_else(|| t.dirs.get(path).cloned())
        };
        pending.retain(|&i| {
            let e = &mut entries[i];
            let now = oid_in(&tree, &e.path);
            let before = ptree.as_ref().and_then(|t| oid_in(t, &e.path));
            if now != before {
                e.last_commit = Some(api::LastCommit {
                    id: c.oid.clone(),
                    title: c.title.clone(),
                    date: api::format_date(c.ms),
                });
                false
            } else {
                true
            }
        });
        cur = parent;
    }
    Ok(())
}

async fn list_tree(
    ctx: &mut Ctx,
    t: RepoType,
    ns: &str,
    name: &str,
    rev: &str,
    path: &str,
) -> HResult {
    let repo = ctx.repo_read(t, ns, name)?;
    let recursive = ctx.flag("recursive");
    let expand = ctx.flag("expand");
    // The cursor pins the commit, so every page lists the same snapshot.
    let (cursor_commit, offset) = match ctx.q("cursor").and_then(|c| c.split_once('.')) {
        Some((c, o)) => (
            Some(c.to_string()),
            o.parse::<usize>()
                .map_err(|_| HubErr::bad("invalid cursor"))?,
        ),
        None => (None, 0),
    };
    let page_size = if expand {
        ctx.st.config.page_size.min(50)
    } else {
        ctx.st.config.page_size
    };
    let st = ctx.st.clone();
    let (r, rev2, dir) = (
        repo.clone(),
        cursor_commit.unwrap_or_else(|| rev.to_string()),
        path.trim_matches('/').to_string(),
    );
    let (commit, page, more) = blocking(move || {
        let c = st.store.resolve(&r, &rev2)?.commit;
        let tree = st.store.flat_tree(&c.tree)?;
        if !dir.is_empty() && !tree.dirs.contains_key(&dir) {
            return Err(StoreError::EntryNotFound(format!(
                "{dir} does not exist on \"{rev2}\""
            )));
        }
        let all = entries_under(&tree, &dir, recursive);
        let more = all.len() > offset + page_size;
        let mut page: Vec<api::TreeEntry> = all
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|(p, f, d)| tree_entry(p, *f, *d))
            .collect();
        if expand {
            fill_last_commits(&st, &r, &c, &mut page)?;
        }
        Ok((c, page, more))
    })
    .await?;
    let mut resp = json(&page);
    if more {
        let next = format!(
            "{}{}?recursive={recursive}&expand={expand}&cursor={}.{}",
            ctx.origin,
            ctx.path,
            commit.oid,
            offset + page_size
        );
        set_link(&mut resp, &next);
    }
    Ok(resp)
}

fn set_link(resp: &mut Response, next: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
        resp.headers_mut().insert(header::LINK, v);
    }
}

async fn paths_info(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, rev: &str) -> HResult {
    let repo = ctx.repo_read(t, ns, name)?;
    let is_form = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (paths, expand) = if is_form {
        let b = ctx.bytes(JSON_LIMIT).await?;
        let mut paths = Vec::new();
        let mut expand = false;
        for (k, v) in url::form_urlencoded::parse(&b) {
            match k.as_ref() {
                "paths" => paths.push(v.into_owned()),
                "expand" => expand = matches!(v.as_ref(), "1" | "true" | "True"),
                _ => {}
            }
        }
        (paths, expand)
    } else {
        let req: api::PathsInfoRequest = ctx.json().await?;
        (req.paths, req.expand)
    };
    if paths.len() > PATHS_INFO_MAX {
        return Err(HubErr::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too many parameters",
        ));
    }
    let st = ctx.st.clone();
    let rev = rev.to_string();
    let entries = blocking(move || {
        let c = st.store.resolve(&repo, &rev)?.commit;
        let tree = st.store.flat_tree(&c.tree)?;
        let mut out = Vec::new();
        for p in paths {
            let p = p.trim_matches('/').to_string();
            if let Some(f) = tree.files.get(&p) {
                out.push(tree_entry(&p, Some(f), None));
            } else if let Some(d) = tree.dirs.get(&p) {
                out.push(tree_entry(&p, None, Some(d)));
            }
        }
        if expand {
            fill_last_commits(&st, &repo, &c, &mut out)?;
        }
        Ok(out)
    })
    .await?;
    Ok(json(&entries))
}

async fn list_refs(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str) -> HResult {
    let repo = ctx.repo_read(t, ns, name)?;
    let include_prs = ctx.flag("include_prs");
    let st = ctx.st.clone();
    let refs = blocking(move || {
        let conv = |kind: RefKind, v: Vec<(String, String, Option<String>)>| {
            v.into_iter()
                .map(|(name, target, _)| api::GitRefInfo {
                    git_ref: kind.full(&name),
                    name,
                    target_commit: target,
                })
                .collect::<Vec<_>>()
        };
        Ok(api::Refs {
            branches: conv(RefKind::Branch, st.store.list_refs(&repo, RefKind::Branch)?),
            converts: vec![],
            tags: conv(RefKind::Tag, st.store.list_refs(&repo, RefKind::Tag)?),
            pull_requests: if include_prs {
                Some(conv(RefKind::Pr, st.store.list_refs(&repo, RefKind::Pr)?))
            } else {
                None
            },
        })
    })
    .await?;
    Ok(json(&refs))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn list_commits(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, rev: &str) -> HResult {
    let repo = ctx.repo_read(t, ns, name)?;
    let (cursor_commit, offset) = match ctx.q("cursor").and_then(|c| c.split_once('.')) {
        Some((c, o)) => (
            Some(c.to_string()),
            o.parse::<usize>()
                .map_err(|_| HubErr::bad("invalid cursor"))?,
        ),
        None => (None, 0),
    };
    let limit = match ctx.q("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| HubErr::bad("invalid limit"))?
            .clamp(1, 1000),
        None => ctx.st.config.page_size,
    };
    let formatted = ctx
        .query
        .iter()
        .any(|(k, v)| (k == "expand[]" || k == "expand") && v == "formatted");
    let st = ctx.st.clone();
    let rev2 = cursor_commit.unwrap_or_else(|| rev.to_string());
    let (head, commits, total) = blocking(move || {
        let head = st.store.resolve(&repo, &rev2)?.commit;
        let (page, total) = st.store.history(&repo, &head.oid, offset, limit)?;
        Ok((head, page, total))
    })
    .await?;
    let body: Vec<serde_json::Value> = commits
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({
                "id": c.oid,
                "title": c.title,
                "message": c.message,
                "date": api::format_date(c.ms),
                "authors": [{"user": c.author, "avatar": ""}],
                "parents": c.parent.iter().collect::<Vec<_>>(),
            });
            if formatted {
                v["formatted"] = serde_json::json!({"title": html_escape(&c.title), "message": html_escape(&c.message)});
            }
            v
        })
        .collect();
    let mut resp = json(&body);
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        resp.headers_mut().insert(api::X_TOTAL_COUNT, v);
    }
    if offset + commits.len() < total {
        let mut q: Vec<(String, String)> = ctx
            .query
            .iter()
            .filter(|(k, _)| k != "cursor")
            .cloned()
            .collect();
        q.push((
            "cursor".into(),
            format!("{}.{}", head.oid, offset + commits.len()),
        ));
        let qs = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        set_link(&mut resp, &format!("{}{}?{qs}", ctx.origin, ctx.path));
    }
    Ok(resp)
}

/// `.gitignore` patterns, for `shouldIgnore`.
fn ignore_patterns(text: &str) -> globset::GlobSet {
    let mut b = globset::GlobSetBuilder::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        api::add_git_pattern(&mut b, line.trim_end_matches('/'), true);
    }
    b.build().unwrap_or_else(|_| globset::GlobSet::empty())
}

async fn preupload(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, rev: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let req: api::PreuploadRequest = ctx.json().await?;
    let st = ctx.st.clone();
    let rev = rev.to_string();
    let resp = blocking(move || {
        let c = st.store.resolve(&repo, &rev)?.commit;
        let tree = st.store.flat_tree(&c.tree)?;
        let mut attrs = match tree.files.get(".gitattributes") {
            Some(f) if f.lfs.is_none() => {
                String::from_utf8_lossy(&st.store.read_blob(&f.oid)?).into_owned()
            }
            _ => String::new(),
        };
        if let Some(extra) = &req.git_attributes {
            attrs.push('\n');
            attrs.push_str(extra);
        }
        let lfs = st.lfs_matcher(&attrs);
        let ignore = match (&req.git_ignore, tree.files.get(".gitignore")) {
            (Some(text), _) => ignore_patterns(text),
            (None, Some(f)) if f.lfs.is_none() => {
                ignore_patterns(&String::from_utf8_lossy(&st.store.read_blob(&f.oid)?))
            }
            _ => globset::GlobSet::empty(),
        };
        let mut files = Vec::new();
        for f in req.files {
            let sample = base64::engine::general_purpose::STANDARD
                .decode(&f.sample)
                .unwrap_or_default();
            let binary = sample.contains(&0);
            let mode = if f.size > api::LFS_THRESHOLD
                || (f.size > 0 && (lfs.is_match(&f.path) || binary))
            {
                api::UploadMode::Lfs
            } else {
                api::UploadMode::Regular
            };
            let oid = tree
                .files
                .get(&f.path)
                .map(|e| e.lfs.clone().unwrap_or_else(|| e.oid.clone()));
            files.push(api::PreuploadAnswer {
                should_ignore: ignore.is_match(&f.path),
                path: f.path,
                upload_mode: mode,
                oid,
            });
        }
        Ok(api::PreuploadResponse {
            files,
            commit_oid: c.oid,
        })
    })
    .await?;
    Ok(json(&resp))
}

async fn commit(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, rev: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let body = ctx.bytes(COMMIT_LIMIT).await?;
    let (header, ops) = parse::parse_commit_body(&body).map_err(HubErr::bad)?;
    let create_pr = ctx.flag("create_pr");
    let req = CommitRequest {
        revision: rev.to_string(),
        create_pr,
        parent: header.parent_commit,
        summary: header.summary,
        description: header.description,
        author: ctx.caller.name().unwrap_or("anonymous").to_string(),
        ops,
    };
    let st = ctx.st.clone();
    let r = repo.clone();
    let out = blocking(move || st.store.commit(&r, req)).await?;
    let base = ctx.repo_url(&repo);
    Ok(json(&api::CommitResponse {
        success: true,
        commit_url: format!("{base}/commit/{}", out.oid),
        commit_oid: out.oid,
        hook_output: String::new(),
        pull_request_url: out.pr_number.map(|n| format!("{base}/discussions/{n}")),
    }))
}

async fn branch(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, branch: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let st = ctx.st.clone();
    let branch = branch.to_string();
    if ctx.method == Method::DELETE {
        if branch == "main" {
            return Err(HubErr::new(
                StatusCode::FORBIDDEN,
                "Cannot delete refs/heads/main",
            ));
        }
        blocking(move || st.store.delete_ref(&repo, RefKind::Branch, &branch))
            .await
            .map_err(|mut e| {
                e.message = format!(
                    "Invalid rev id: {}",
                    e.message.trim_start_matches("invalid rev id: ")
                );
                e
            })?;
        return Ok(json(&serde_json::json!({})));
    }
    if branch.starts_with("refs/") || api::validate_ref_name(&branch).is_err() {
        return Err(HubErr::bad(format!(
            "Invalid reference for a branch: {branch}"
        )));
    }
    let req: api::CreateBranchRequest = ctx.json().await?;
    let start = req.starting_point.unwrap_or_else(|| "main".to_string());
    blocking(move || {
        st.store
            .create_ref(&repo, RefKind::Branch, &branch, &start, None)
    })
    .await?;
    Ok(json(&serde_json::json!({})))
}

async fn tag(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str, rev_or_tag: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let st = ctx.st.clone();
    let arg = rev_or_tag.to_string();
    if ctx.method == Method::DELETE {
        blocking(move || st.store.delete_ref(&repo, RefKind::Tag, &arg)).await?;
        return Ok(json(&serde_json::json!({})));
    }
    let req: api::CreateTagRequest = ctx.json().await?;
    if req.tag.starts_with("refs/") || api::validate_ref_name(&req.tag).is_err() {
        return Err(HubErr::bad(format!("Invalid tag name: {:?}", req.tag)));
    }
    blocking(move || {
        st.store
            .create_ref(&repo, RefKind::Tag, &req.tag, &arg, req.message.as_deref())
    })
    .await?;
    Ok(json(&serde_json::json!({})))
}

async fn settings(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let req: api::RepoSettingsRequest = ctx.json().await?;
    let private = match (req.visibility, req.private) {
        (Some(api::Visibility::Private), _) => Some(true),
        (Some(_), _) => Some(false),
        (None, p) => p,
    };
    let gated = match req.gated {
        None => None,
        Some(api::Gated::Off(false)) => Some(None),
        Some(api::Gated::Off(true)) => {
            return Err(HubErr::bad("gated must be \"auto\", \"manual\" or false"));
        }
        Some(api::Gated::Mode(api::GatedMode::Auto)) => Some(Some("auto".to_string())),
        Some(api::Gated::Mode(api::GatedMode::Manual)) => Some(Some("manual".to_string())),
    };
    let st = ctx.st.clone();
    let repo = blocking(move || st.store.update_repo_settings(&repo, private, gated)).await?;
    Ok(json(
        &serde_json::json!({"private": repo.private, "gated": gated_json(&repo.gated)}),
    ))
}

fn valid_space_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 256
}

async fn space_keys(ctx: &mut Ctx, ns: &str, name: &str, secrets: bool) -> HResult {
    let m = ctx.method.clone();
    // Secrets are write-only and their metadata is for maintainers; variables are readable.
    let repo = if secrets || m != Method::GET {
        ctx.repo_write(RepoType::Space, ns, name)?
    } else {
        ctx.repo_read(RepoType::Space, ns, name)?
    };
    let st = ctx.st.clone();
    if m == Method::POST {
        let kv: api::KeyValue = ctx.json().await?;
        if !valid_space_key(&kv.key) {
            return Err(HubErr::bad(format!(
                "Invalid key `{}`: use letters, digits and `_`, not starting with a digit",
                kv.key
            )));
        }
        let (st2, r) = (st.clone(), repo.clone());
        blocking(move || {
            st2.store
                .set_space_key(&r, secrets, &kv.key, &kv.value, kv.description.as_deref())
        })
        .await?;
        if secrets {
            return Ok(json(&serde_json::json!({})));
        }
    } else if m == Method::DELETE {
        let k: api::KeyRequest = ctx.json().await?;
        let (st2, r) = (st.clone(), repo.clone());
        blocking(move || st2.store.delete_space_key(&r, secrets, &k.key)).await?;
        if secrets {
            return Ok(json(&serde_json::json!({})));
        }
    } else if m != Method::GET {
        return Err(HubErr::not_found());
    }
    let keys = blocking(move || st.store.space_keys(&repo, secrets)).await?;
    if secrets {
        let map: BTreeMap<String, api::SecretEntry> = keys
            .into_iter()
            .map(|k| {
                (
                    k.key,
                    api::SecretEntry {
                        description: k.description,
                        updated_at: api::format_date(k.updated_ms),
                    },
                )
            })
            .collect();
        Ok(json(&map))
    } else {
        let map: BTreeMap<String, api::VariableEntry> = keys
            .into_iter()
            .map(|k| {
                (
                    k.key,
                    api::VariableEntry {
                        value: k.value.unwrap_or_default(),
                        description: k.description,
                        updated_at: api::format_date(k.updated_ms),
                    },
                )
            })
            .collect();
        Ok(json(&map))
    }
}

async fn space_runtime(ctx: &mut Ctx, ns: &str, name: &str, action: &str) -> HResult {
    let m = ctx.method.clone();
    let repo = match (action, &m) {
        ("runtime", &Method::GET) => ctx.repo_read(RepoType::Space, ns, name)?,
        ("runtime", _) => return Err(HubErr::not_found()),
        (_, &Method::POST) => ctx.repo_write(RepoType::Space, ns, name)?,
        _ => return Err(HubErr::not_found()),
    };
    let (hardware, sleep, stage): (Option<String>, Option<i64>, Option<String>) = match action {
        "hardware" => {
            let req: api::HardwareRequest = ctx.json().await?;
            if req.flavor.trim().is_empty() {
                return Err(HubErr::bad("flavor must not be empty"));
            }
            (Some(req.flavor), req.sleep_time_seconds, None)
        }
        "sleeptime" => {
            let req: api::SleepTimeRequest = ctx.json().await?;
            if req.seconds < -1 {
                return Err(HubErr::bad(
                    "seconds must be -1 (never sleep) or a positive number",
                ));
            }
            (None, Some(req.seconds), None)
        }
        "pause" => (None, None, Some("PAUSED".to_string())),
        "restart" => {
            let st = ctx.st.clone();
            let r = repo.clone();
            let has_app = blocking(move || {
                let c = st.store.resolve(&r, "main")?.commit;
                let tree = st.store.flat_tree(&c.tree)?;
                Ok(tree
                    .files
                    .keys()
                    .any(|p| p != ".gitattributes" && p != "README.md"))
            })
            .await?;
            (
                None,
                None,
                Some(if has_app { "RUNNING" } else { "NO_APP_FILE" }.to_string()),
            )
        }
        _ => (None, None, None),
    };
    let st = ctx.st.clone();
    let repo = blocking(move || {
        st.store
            .update_space(&repo, hardware.as_deref(), sleep, stage.as_deref())
    })
    .await?;
    Ok(json(&runtime_of(&repo)))
}

// ---- non-API routes: resolve and the LFS batch API -------------------------------------------

async fn web_route(ctx: &mut Ctx, segs: &[&str]) -> HResult {
    let (t, rest) = match segs {
        ["datasets", rest @ ..] => (RepoType::Dataset, rest),
        ["spaces", rest @ ..] => (RepoType::Space, rest),
        rest => (RepoType::Model, rest),
    };
    match rest {
        [ns, name, "resolve", rev, path @ ..]
            if !path.is_empty() && (ctx.method == Method::GET || ctx.method == Method::HEAD) =>
        {
            let (ns, name, rev, path) = (dec(ns), dec(name), dec(rev), join(path));
            resolve(ctx, t, &ns, &name, &rev, &path).await
        }
        [ns, name_git, "info", "lfs", "objects", action] if ctx.method == Method::POST => {
            let Some(name) = name_git.strip_suffix(".git") else {
                return Err(HubErr::not_found());
            };
            let (ns, name) = (dec(ns), dec(name));
            match *action {
                "batch" => lfs_batch(ctx, t, &ns, &name).await,
                "verify" => lfs_verify(ctx, t, &ns, &name).await,
                _ => Err(HubErr::not_found()),
            }
        }
        _ => Err(HubErr::not_found()),
    }
}

/// Parses a single `bytes=` range against `total`.
fn parse_range(v: &str, total: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // Multiple ranges: serve the whole file, as servers may.
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (total.saturating_sub(n), total.saturating_sub(1))),
        (a, "") => a.parse::<u64>().ok().map(|a| (a, total.saturating_sub(1))),
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => Some((a, b.min(total.saturating_sub(1)))),
            _ => None,
        },
    };
    Some(match r {
        Some((a, b)) if a < total && a <= b => Ok((a, b)),
        _ => Err(()),
    })
}

async fn resolve(
    ctx: &mut Ctx,
    t: RepoType,
    ns: &str,
    name: &str,
    rev: &str,
    path: &str,
) -> HResult {
    let repo = ctx.repo_read(t, ns, name)?;
    let st = ctx.st.clone();
    let (rev2, path2) = (rev.to_string(), path.to_string());
    let (commit, entry) = blocking(move || {
        let c = st.store.resolve(&repo, &rev2)?.commit;
        let tree = st.store.flat_tree(&c.tree)?;
        Ok((c.oid.clone(), tree.files.get(&path2).cloned()))
    })
    .await?;
    let Some(entry) = entry else {
        let mut e = HubErr::coded(
            StatusCode::NOT_FOUND,
            ErrorCode::EntryNotFound,
            format!("Entry not found: {path}"),
        );
        e.repo_commit = Some(commit);
        return Err(e);
    };
    let total = entry.size;
    let range = match ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => match parse_range(v, total) {
            Some(Ok(r)) => Some(r),
            Some(Err(())) => {
                let mut resp = HubErr::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "Requested range not satisfiable",
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
            None => None,
        },
        None => None,
    };
    let (start, end) = range.unwrap_or((0, total.saturating_sub(1)));
    let len = if total == 0 { 0 } else { end - start + 1 };
    let mut headers = HeaderMap::new();
    let etag = format!("\"{}\"", entry.lfs.as_deref().unwrap_or(&entry.oid));
    let hv = |s: &str| HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""));
    headers.insert(api::X_REPO_COMMIT, hv(&commit));
    headers.insert(header::ETAG, hv(&etag));
    if entry.lfs.is_some() {
        headers.insert(api::X_LINKED_ETAG, hv(&etag));
        headers.insert(api::X_LINKED_SIZE, hv(&total.to_string()));
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let status = if range.is_some() {
        headers.insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{end}/{total}")),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    if ctx.method == Method::HEAD {
        return Ok((status, headers, Body::empty()).into_response());
    }
    let body = match &entry.lfs {
        None => {
            let st = ctx.st.clone();
            let oid = entry.oid.clone();
            let data = blocking(move || st.store.read_blob(&oid)).await?;
            let slice = if total == 0 {
                Vec::new()
            } else {
                data[start as usize..=end as usize].to_vec()
            };
            Body::from(slice)
        }
        Some(sha) => {
            let mut f = tokio::fs::File::open(ctx.st.store.lfs_path(sha))
                .await
                .map_err(|e| HubErr::from(StoreError::Io(e)))?;
            f.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| HubErr::from(StoreError::Io(e)))?;
            Body::from_stream(crate::util::io::file_chunks(
                f.into_std().await,
                len,
                1024 * 1024,
            ))
        }
    };
    Ok((status, headers, body).into_response())
}

/// The signature that makes an upload URL self-authorising for one object of one repo.
fn upload_sig(secret: &str, repo_db_id: i64, oid: &str, size: u64) -> String {
    let mut h = Sha256::new();
    h.update(format!("{secret}|{repo_db_id}|{oid}|{size}").as_bytes());
    hex::encode(h.finalize())[..40].to_string()
}

async fn lfs_batch(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let body = ctx.bytes(JSON_LIMIT).await?;
    let req = parse::parse_lfs_batch(&body).map_err(HubErr::bad)?;
    let chunk = ctx.st.config.multipart_chunk_size.max(1);
    let mut objects = Vec::new();
    let mut any_multipart = false;
    for obj in req.objects {
        let problem = if valid_oid(&obj.oid) {
            parse::lfs_size_problem(obj.size, chunk)
        } else {
            Some("oid must be 64 lowercase hex characters".into())
        };
        if let Some(message) = problem {
            objects.push(api::LfsObjectAnswer {
                oid: obj.oid,
                size: obj.size,
                authenticated: None,
                actions: None,
                error: Some(api::LfsObjectError { code: 422, message }),
            });
            continue;
        }
        let st = ctx.st.clone();
        let (r, oid) = (repo.clone(), obj.oid.clone());
        let have = blocking(move || st.store.repo_lfs_object(&r, &oid)).await?;
        if have == Some(obj.size) {
            objects.push(api::LfsObjectAnswer {
                oid: obj.oid,
                size: obj.size,
                authenticated: Some(true),
                actions: None,
                error: None,
            });
            continue;
        }
        let sig = upload_sig(&ctx.st.secret, repo.db_id, &obj.oid, obj.size);
        let href = format!(
            "{}/lfs-upload/{}/{}/{}/{sig}",
            ctx.origin, repo.db_id, obj.oid, obj.size
        );
        let mut header = BTreeMap::new();
        if obj.size > chunk {
            any_multipart = true;
            let parts = obj.size.div_ceil(chunk);
            header.insert("chunk_size".to_string(), chunk.to_string());
            for n in 1..=parts {
                header.insert(format!("{n:05}"), format!("{href}/{n}"));
            }
        }
        let verify = format!(
            "{}/{}{}.git/info/lfs/objects/verify",
            ctx.origin,
            t.url_prefix(),
            repo.full_name()
        );
        objects.push(api::LfsObjectAnswer {
            oid: obj.oid,
            size: obj.size,
            authenticated: Some(true),
            actions: Some(api::LfsActions {
                upload: Some(api::LfsAction { href, header }),
                verify: Some(api::LfsAction {
                    href: verify,
                    header: BTreeMap::new(),
                }),
            }),
            error: None,
        });
    }
    let body = api::LfsBatchResponse {
        transfer: if any_multipart { "multipart" } else { "basic" }.into(),
        objects,
    };
    let mut resp = json(&body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(api::GIT_LFS_JSON),
    );
    Ok(resp)
}

async fn lfs_verify(ctx: &mut Ctx, t: RepoType, ns: &str, name: &str) -> HResult {
    let repo = ctx.repo_write(t, ns, name)?;
    let req: api::LfsVerifyRequest = ctx.json().await?;
    let st = ctx.st.clone();
    let oid = req.oid.clone();
    let have = blocking(move || st.store.repo_lfs_object(&repo, &oid)).await?;
    match have {
        Some(size) if size == req.size => Ok(json(&serde_json::json!({}))),
        Some(size) => Err(HubErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("object {} has size {size}, not {}", req.oid, req.size),
        )),
        None => Err(HubErr::new(
            StatusCode::NOT_FOUND,
            format!("object {} not found", req.oid),
        )),
    }
}

/// Streams a request body to `path`, returning its sha256 and length; stops past `max` bytes.
/// The file the parts of a multipart upload are written into, in its parts folder.
const PARTS_DATA: &str = "data";
/// Received bytes are flushed to disk every this many bytes, so that the disk writes while the
/// network sends (instead of one long fsync when the object is complete).
const WRITEBACK_BYTES: u64 = 32 * 1024 * 1024;
/// A multipart part's received chunks are written to disk in batches of this many bytes.
const WRITE_BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// The ETag of a multipart part: names the part, its length and its object.
fn part_etag(oid: &str, n: u64, len: u64) -> String {
    hex::encode(Sha256::digest(format!("{oid}:{n}:{len}").as_bytes()))[..32].to_string()
}

/// Writes a received body into a file on the blocking pool: chunks are written at their offset
/// in batches of [`WRITE_BATCH_BYTES`], the disk is asked to start writing every
/// [`WRITEBACK_BYTES`] (so it works while the network sends, instead of in one long `fsync` at the
/// end), and [`BodyWriter::finish`] can wait until all of it is on disk. Several writers of one
/// file (the parts of an upload) share a lock: parallel writers to one file only spin on its
/// inode lock, burning the CPU the hashing needs. A hasher, if given, sees the bytes in order
/// (and the bytes it saw may then leave the page cache).
struct BodyWriter {
    file: Arc<std::fs::File>,
    lock: Arc<std::sync::Mutex<()>>,
    hasher: Option<Sha256>,
    /// Where the next batch goes.
    at: u64,
    pending: Vec<bytes::Bytes>,
    pending_len: u64,
    /// Where the bytes the disk was not yet asked to write begin.
    unsynced_from: u64,
    /// Where the bytes not yet dropped from the page cache begin.
    cached_from: u64,
}

impl BodyWriter {
    fn new(file: std::fs::File, at: u64, lock: Arc<std::sync::Mutex<()>>) -> BodyWriter {
        BodyWriter {
            file: Arc::new(file),
            lock,
            hasher: None,
            at,
            pending: Vec::new(),
            pending_len: 0,
            unsynced_from: at,
            cached_from: at,
        }
    }

    /// Queues `chunk`; writes the batch when it is full. Says whether it wrote.
    async fn push(&mut self, chunk: bytes::Bytes) -> std::io::Result<bool> {
        self.pending_len += chunk.len() as u64;
        self.pending.push(chunk);
        if self.pending_len < WRITE_BATCH_BYTES {
            return Ok(false);
        }
        self.write(false).await?;
        Ok(true)
    }

    /// Writes what is queued; with `sync`, returns once everything written is on disk.
    async fn finish(&mut self, sync: bool) -> std::io::Result<()> {
        self.write(sync).await
    }

    async fn write(&mut self, sync: bool) -> std::io::Result<()> {
        let chunks = std::mem::take(&mut self.pending);
        let at = self.at;
        let end = at + self.pending_len;
        self.pending_len = 0;
        // Mid-body, start the disk writing what arrived (without waiting); `sync` waits for it.
        let kick = (!sync && end - self.unsynced_from >= WRITEBACK_BYTES)
            .then(|| (self.unsynced_from, end - self.unsynced_from));
        // Written bytes leave the page cache once on disk (see [`writeback`]) when nobody reads
        // them back: when this writer hashes them itself (a multipart upload's parts are hashed
        // by reading the file). With each kick, the windows kicked before it go (they had a
        // window's time to reach the disk); with `sync`, everything does.
        let drop_behind = self.hasher.is_some();
        let forget_until = match (drop_behind, kick, sync) {
            (true, Some(_), _) => self.unsynced_from,
            (true, None, true) => end,
            _ => self.cached_from,
        };
        let forget = (forget_until > self.cached_from)
            .then(|| (self.cached_from, forget_until - self.cached_from));
        self.cached_from = forget_until;
        if kick.is_some() || sync {
            self.unsynced_from = end;
        }
        let (file, lock, mut hasher) = (self.file.clone(), self.lock.clone(), self.hasher.take());
        self.hasher = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Sha256>> {
            use std::os::unix::fs::FileExt;
            {
                let _one = lock.lock().unwrap_or_else(|e| e.into_inner());
                let mut at = at;
                for c in &chunks {
                    file.write_all_at(c, at)?;
                    at += c.len() as u64;
                }
            }
            if let Some(h) = hasher.as_mut() {
                for c in &chunks {
                    h.update(c);
                }
            }
            if let Some((from, len)) = kick {
                if let Some((from, len)) = forget {
                    writeback::drop_behind(&file, from, len);
                }
                writeback::start(&file, from, len);
            }
            if sync {
                file.sync_data()?;
                if let Some((from, len)) = forget {
                    writeback::forget(&file, from, len);
                }
            }
            Ok(hasher)
        })
        .await
        .map_err(std::io::Error::other)??;
        self.at = end;
        Ok(())
    }
}

/// The next chunk of an upload body, counted in `total`; refused with `too_long` once the body
/// passes `max` bytes.
async fn next_chunk(
    stream: &mut axum::body::BodyDataStream,
    total: &mut u64,
    max: u64,
    too_long: impl Fn() -> String,
) -> Result<Option<bytes::Bytes>, HubErr> {
    let Some(chunk) = stream.next().await else {
        return Ok(None);
    };
    let chunk = chunk.map_err(|e| HubErr::bad(format!("upload interrupted: {e}")))?;
    *total += chunk.len() as u64;
    if *total > max {
        return Err(HubErr::bad(too_long()));
    }
    Ok(Some(chunk))
}

/// Writes multipart part `n` into `data` (in the upload's parts folder, shared by its parts) at
/// its place (parts are `part_size` bytes); it must be exactly `expected` bytes, and `parts` hashes
/// it as it is written. The part is on disk when this returns. The folder and file are created
/// with the first byte, and a part refused or cut off leaves nothing behind when it was the
/// upload's only one (see [`Registry::abandon`](crate::hub::parts::Registry::abandon)).
async fn receive_at(
    body: Body,
    data: &std::path::Path,
    n: u64,
    part_size: u64,
    expected: u64,
    parts: &Arc<crate::hub::parts::Registry>,
) -> Result<(), HubErr> {
    let io = |e: std::io::Error| HubErr::from(StoreError::Io(e));
    let offset = part_size * (n - 1);
    parts.part_started(data, n);
    let mut writer: Option<BodyWriter> = None;
    let mut total = 0u64;
    let mut stream = body.into_data_stream();
    let received = async {
        let too_long = || format!("part {n} must be {expected} bytes; it is longer");
        while let Some(chunk) = next_chunk(&mut stream, &mut total, expected, too_long).await? {
            let w = match &mut writer {
                Some(w) => w,
                None => {
                    if let Some(dir) = data.parent() {
                        tokio::fs::create_dir_all(dir).await.map_err(io)?;
                    }
                    let f = tokio::fs::OpenOptions::new()
                        .create(true)
                        .write(true)
                        .truncate(false)
                        .open(data)
                        .await
                        .map_err(io)?
                        .into_std()
                        .await;
                    writer.insert(BodyWriter::new(f, offset, parts.writer(data)))
                }
            };
            if w.push(chunk).await.map_err(io)? {
                parts.part_written(data, n, w.at - offset, part_size);
            }
        }
        if total != expected {
            return Err(HubErr::bad(format!(
                "part {n} must be {expected} bytes, got {total}"
            )));
        }
        if let Some(w) = &mut writer {
            w.finish(true).await.map_err(io)?;
            parts.part_written(data, n, w.at - offset, part_size);
        }
        Ok(())
    }
    .await;
    if received.is_err() {
        drop(writer);
        let (parts, data) = (parts.clone(), data.to_path_buf());
        let _ = tokio::task::spawn_blocking(move || parts.abandon(&data, n)).await;
    }
    received
}

/// Receives a basic upload into `path`, hashing it; at most `max` bytes. The caller installs the
/// file (which syncs it).
async fn receive(body: Body, path: &std::path::Path, max: u64) -> Result<(String, u64), HubErr> {
    let io = |e: std::io::Error| HubErr::from(StoreError::Io(e));
    let file = tokio::fs::File::create(path)
        .await
        .map_err(io)?
        .into_std()
        .await;
    let mut writer = BodyWriter::new(file, 0, Arc::default());
    writer.hasher = Some(Sha256::new());
    let mut total = 0u64;
    let mut stream = body.into_data_stream();
    let received = async {
        let too_long = || format!("upload is larger than the declared {max} bytes");
        while let Some(chunk) = next_chunk(&mut stream, &mut total, max, too_long).await? {
            writer.push(chunk).await.map_err(io)?;
        }
        writer.finish(false).await.map_err(io)
    }
    .await;
    if let Err(e) = received {
        // An upload cut off or refused half-way leaves nothing behind.
        drop(writer);
        let _ = tokio::fs::remove_file(path).await;
        return Err(e);
    }
    let hasher = writer.hasher.take().expect("set above");
    Ok((hex::encode(hasher.finalize()), total))
}

async fn lfs_upload(ctx: &mut Ctx, segs: &[&str]) -> HResult {
    let (repo_id, oid, size, sig, part) = match segs {
        [r, o, s, g] => (*r, *o, *s, *g, None),
        [r, o, s, g, p] => (*r, *o, *s, *g, Some(*p)),
        _ => return Err(HubErr::not_found()),
    };
    let forbidden = || HubErr::new(StatusCode::FORBIDDEN, "invalid or expired upload URL");
    let repo_db_id: i64 = repo_id.parse().map_err(|_| forbidden())?;
    let size: u64 = size.parse().map_err(|_| forbidden())?;
    if !valid_oid(oid) || upload_sig(&ctx.st.secret, repo_db_id, oid, size) != sig {
        return Err(forbidden());
    }
    // The repo must still exist (a deleted and recreated repo gets a new id).
    let st = ctx.st.clone();
    let exists =
        blocking(move || Ok(st.store.list_repos()?.iter().any(|r| r.db_id == repo_db_id))).await?;
    if !exists {
        return Err(forbidden());
    }
    let chunk = ctx.st.config.multipart_chunk_size.max(1);
    let body = std::mem::replace(&mut ctx.body, Body::empty());
    match (part, ctx.method.clone()) {
        (None, Method::PUT) => {
            let temp = ctx.st.store.temp_path("upload");
            let (got, len) = receive(body, &temp, size).await?;
            if got != oid || len != size {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(HubErr::bad(format!(
                    "uploaded content does not match the object: expected {size} bytes with sha256 {oid}, got {len} bytes with sha256 {got}"
                )));
            }
            let st = ctx.st.clone();
            let oid = oid.to_string();
            blocking(move || st.store.install_lfs_object(repo_db_id, &oid, size, &temp)).await?;
            Ok(StatusCode::OK.into_response())
        }
        (Some(n), Method::PUT) => {
            let parts = size.div_ceil(chunk);
            let n: u64 = n.parse().map_err(|_| HubErr::bad("invalid part number"))?;
            if n == 0 || n > parts {
                return Err(HubErr::bad(format!(
                    "part number {n} out of range 1..={parts}"
                )));
            }
            let expected = if n == parts {
                size - chunk * (parts - 1)
            } else {
                chunk
            };
            let dir = ctx.st.store.parts_dir(repo_db_id, oid);
            // Every part goes straight to its place in one file, so completing the upload needs
            // no copy; the part is on disk before it is acknowledged.
            let data = dir.join(PARTS_DATA);
            receive_at(body, &data, n, chunk, expected, &ctx.st.parts).await?;
            let tag = part_etag(oid, n, expected);
            tokio::fs::write(dir.join(format!("{n}-{tag}")), b"")
                .await
                .map_err(|e| HubErr::from(StoreError::Io(e)))?;
            ctx.st.parts.part_received(&data, n, chunk);
            let mut resp = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("\"{tag}\"")) {
                resp.headers_mut().insert(header::ETAG, v);
            }
            Ok(resp)
        }
        (None, Method::POST) => {
            ctx.body = body;
            let req: api::LfsCompleteRequest = ctx.json().await?;
            if req.oid != oid {
                return Err(HubErr::bad("completion oid does not match the upload URL"));
            }
            let parts = size.div_ceil(chunk);
            let dir = ctx.st.store.parts_dir(repo_db_id, oid);
            for n in 1..=parts {
                let Some(p) = req.parts.iter().find(|p| u64::from(p.part_number) == n) else {
                    return Err(HubErr::bad(format!(
                        "part {n} is missing from the completion request"
                    )));
                };
                let tag = p.etag.trim_matches('"');
                // The etag becomes part of a file name: only the hex the hub handed out.
                let is_ours = tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit());
                let path = dir.join(format!("{n}-{tag}"));
                if !is_ours || !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    return Err(HubErr::bad(format!(
                        "part {n} with etag {} was not uploaded",
                        p.etag
                    )));
                }
            }
            let st = ctx.st.clone();
            let oid = oid.to_string();
            blocking(move || {
                let data = dir.join(PARTS_DATA);
                // Mostly hashed already, while the parts arrived.
                let got = match st.parts.finish(&data, chunk, parts) {
                    Some(h) => h,
                    None => crate::hub::parts::hash_file(&data)?.0,
                };
                let len = std::fs::metadata(&data)?.len();
                if got != oid || len != size {
                    return Err(StoreError::BadRequest(format!(
                        "uploaded parts do not match the object: expected {size} bytes with sha256 {oid}, got {len} bytes with sha256 {got}"
                    )));
                }
                st.store.install_lfs_object(repo_db_id, &oid, size, &data)?;
                let _ = std::fs::remove_dir_all(&dir);
                Ok(())
            })
            .await?;
            Ok(json(&serde_json::json!({})))
        }
        _ => Err(HubErr::not_found()),
    }
}
