//! [`HubError`]: what failed talking to the Hub, with the diagnostics a user (or a bug report)
//! needs, and the [`ErrorKind`] callers match on.
//!
//! An error records the action being attempted ("read repo info of `alice/x`"), the request
//! (method and [`RedactedUrl`]), and, when the Hub answered, the status, `X-Error-Code`,
//! `X-Error-Message`, `X-Request-Id` and a short excerpt of the body. It never holds the token:
//! the `Authorization` header is not recorded, URLs are redacted before they are stored, and the
//! reqwest errors kept as sources have their URL stripped.
//!
//! This module must not print; `render` shows the error and its [`HubError::hints`].

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::api::{self, ErrorCode};

/// How long a body excerpt kept in an error may be, in characters.
const EXCERPT_CHARS: usize = 300;

/// What kind of failure an [`HubError`] is; callers match on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The repo does not exist or is invisible to this token (`X-Error-Code: RepoNotFound`).
    RepoNotFound,
    /// The branch, tag or commit does not exist (`X-Error-Code: RevisionNotFound`).
    RevisionNotFound,
    /// The file or folder does not exist at that revision (`X-Error-Code: EntryNotFound`).
    EntryNotFound,
    /// The repo is gated and this token has not been granted access (`X-Error-Code: GatedRepo`).
    GatedRepo,
    /// A 404 without any of the codes above.
    NotFound,
    /// 401: no token, or an invalid one.
    Unauthorized,
    /// 403: the token is valid but may not do this (a read token on a write, for example).
    Forbidden,
    /// 409: the repo, branch or tag already exists.
    Conflict,
    /// 412: the commit's `parentCommit` is no longer the head of the branch.
    PreconditionFailed,
    /// 400, 413 or 422: the Hub refused the request as malformed.
    BadRequest,
    /// 429, with the wait the Hub asked for when it said.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx.
    Server,
    /// Any other unexpected status.
    Status,
    /// The request could not be completed at the transport level (connection refused, reset,
    /// timeout). `maybe_sent` is false only when the request provably never reached the Hub.
    Transport { maybe_sent: bool },
    /// A non-idempotent request (commit, repo or ref creation, …) failed in a way that leaves it
    /// unknown whether the Hub applied it: the connection broke after the request was sent, or a
    /// gateway answered 502/504/408. Re-read the state before trying again.
    Ambiguous,
    /// The Hub answered with a body that is not what the API promises (bad JSON).
    Decode,
    /// The Hub answered without something the protocol requires (a header, a multipart part).
    Protocol,
    /// The endpoint or a URL given by the Hub is not a valid URL.
    InvalidUrl,
    /// Reading a local file to upload failed.
    Io,
}

impl ErrorKind {
    /// Whether the Hub said the thing asked about does not exist (any of the not-found kinds).
    pub fn is_not_found(self) -> bool {
        matches!(
            self,
            ErrorKind::RepoNotFound
                | ErrorKind::RevisionNotFound
                | ErrorKind::EntryNotFound
                | ErrorKind::NotFound
        )
    }
}

/// An HTTP method and a redacted URL: what a request was, safe to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLine {
    pub method: String,
    pub url: RedactedUrl,
}

impl fmt::Display for RequestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// What the Hub answered on a failed request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseDetails {
    pub status: u16,
    /// `X-Error-Code`, as sent (known codes are also in [`ResponseDetails::code`]).
    pub raw_code: Option<String>,
    pub code: Option<ErrorCode>,
    /// `X-Error-Message`.
    pub message: Option<String>,
    /// `X-Request-Id`, else `X-Amzn-Trace-Id`, else `X-Amz-Cf-Id`.
    pub request_id: Option<String>,
    /// A short, single-line summary of the body (see [`summarize_body`]).
    pub body_excerpt: Option<String>,
    /// `X-Repo-Commit`, sent with resolve 404s ("absent at this commit").
    pub repo_commit: Option<String>,
    /// The wait the Hub asked for (`Retry-After`, or `RateLimit` with `r=0`).
    pub retry_after: Option<Duration>,
}

impl ResponseDetails {
    /// Reads the diagnostic headers and the body of a failed response.
    pub fn from_parts(status: u16, headers: &HeaderMap, body: &[u8]) -> ResponseDetails {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let raw_code = header(api::X_ERROR_CODE);
        let content_type = header("content-type");
        ResponseDetails {
            status,
            code: raw_code.as_deref().and_then(ErrorCode::parse),
            raw_code,
            message: header(api::X_ERROR_MESSAGE).map(|m| one_line(&m, EXCERPT_CHARS)),
            request_id: header(api::X_REQUEST_ID)
                .or_else(|| header("x-amzn-trace-id"))
                .or_else(|| header("x-amz-cf-id")),
            body_excerpt: summarize_body(content_type.as_deref(), body),
            repo_commit: header(api::X_REPO_COMMIT),
            retry_after: super::retry::server_delay_hint(status, headers),
        }
    }

    /// The best human message: `X-Error-Message`, else the body summary.
    pub fn best_message(&self) -> Option<&str> {
        self.message.as_deref().or(self.body_excerpt.as_deref())
    }

    /// The kind this answer maps to, in the order `huggingface_hub` evaluates them.
    pub fn kind(&self) -> ErrorKind {
        // A 401 caused by a bad token is an auth problem even if a code came with it.
        let bad_credentials = self.status == 401
            && self
                .message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("invalid credentials"));
        if !bad_credentials {
            match self.code {
                Some(ErrorCode::RevisionNotFound) => return ErrorKind::RevisionNotFound,
                Some(ErrorCode::EntryNotFound) => return ErrorKind::EntryNotFound,
                Some(ErrorCode::GatedRepo) => return ErrorKind::GatedRepo,
                Some(ErrorCode::RepoNotFound) => return ErrorKind::RepoNotFound,
                None => {}
            }
        }
        match self.status {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            412 => ErrorKind::PreconditionFailed,
            400 | 413 | 422 => ErrorKind::BadRequest,
            429 => ErrorKind::RateLimited {
                retry_after: self.retry_after,
            },
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Status,
        }
    }
}

/// An error talking to the Hub. Cheap to move (one box); match on [`HubError::kind`].
pub struct HubError(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    /// What was being attempted, fitting "failed to …": "read repo info of `alice/x`".
    action: String,
    request: Option<RequestLine>,
    response: Option<ResponseDetails>,
    /// Extra words for kinds without a response (protocol violations, I/O).
    detail: Option<String>,
    attempts: u32,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl HubError {
    pub(crate) fn new(kind: ErrorKind, action: impl Into<String>) -> HubError {
        HubError(Box::new(Inner {
            kind,
            action: action.into(),
            request: None,
            response: None,
            detail: None,
            attempts: 1,
            source: None,
        }))
    }

    /// An error built from a failed response.
    pub(crate) fn from_response(
        action: impl Into<String>,
        request: RequestLine,
        details: ResponseDetails,
    ) -> HubError {
        let mut e = HubError::new(details.kind(), action);
        e.0.request = Some(request);
        e.0.response = Some(details);
        e
    }

    pub(crate) fn with_request(mut self, request: RequestLine) -> Self {
        self.0.request = Some(request);
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.0.attempts = attempts;
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// A reqwest error as a source, with its URL removed (it may carry a signed query).
    pub(crate) fn with_reqwest_source(self, source: reqwest::Error) -> Self {
        self.with_source(source.without_url())
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// What was being attempted, phrased to follow "failed to".
    pub fn action(&self) -> &str {
        &self.0.action
    }

    /// The request that failed, when there was one.
    pub fn request(&self) -> Option<&RequestLine> {
        self.0.request.as_ref()
    }

    /// The Hub's answer, when it answered.
    pub fn response(&self) -> Option<&ResponseDetails> {
        self.0.response.as_ref()
    }

    pub fn status(&self) -> Option<u16> {
        self.0.response.as_ref().map(|r| r.status)
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        self.0.response.as_ref().and_then(|r| r.code)
    }

    pub fn error_message(&self) -> Option<&str> {
        self.0.response.as_ref().and_then(|r| r.message.as_deref())
    }

    pub fn request_id(&self) -> Option<&str> {
        self.0
            .response
            .as_ref()
            .and_then(|r| r.request_id.as_deref())
    }

    pub fn body_excerpt(&self) -> Option<&str> {
        self.0
            .response
            .as_ref()
            .and_then(|r| r.body_excerpt.as_deref())
    }

    /// How many times the request was sent (more than 1 after retries).
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// The wait the Hub asked for, on a 429 or 503.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.response.as_ref().and_then(|r| r.retry_after)
    }

    /// Whether the Hub said the thing asked about does not exist.
    pub fn is_not_found(&self) -> bool {
        self.0.kind.is_not_found()
    }

    /// Whether the request may have taken effect on the Hub even though it failed: always for
    /// [`ErrorKind::Ambiguous`], and for transport failures that happened after sending.
    pub fn may_have_been_applied(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::Ambiguous | ErrorKind::Transport { maybe_sent: true }
        )
    }

    /// "hint: …" lines (without the prefix) saying how to fix this error.
    pub fn hints(&self) -> Vec<String> {
        let mut hints = Vec::new();
        match self.0.kind {
            ErrorKind::Unauthorized => hints.push(
                "set `HF_TOKEN` or pass `--token` with a valid token (`hf auth login` writes one)"
                    .to_string(),
            ),
            ErrorKind::Forbidden => hints.push(
                "use a token with the `write` role for this namespace (a read token cannot change repos)"
                    .to_string(),
            ),
            ErrorKind::RepoNotFound => hints.push(
                "check the repo id and type; a private repo is invisible without a token that can read it (set `HF_TOKEN` or pass `--token`)"
                    .to_string(),
            ),
            ErrorKind::RevisionNotFound => hints.push(
                "check the branch, tag or commit name; list the repo's refs on the Hub".to_string(),
            ),
            ErrorKind::EntryNotFound | ErrorKind::NotFound => hints.push(
                "the file is not at this revision; re-run `hubsync plan` to read the repo again"
                    .to_string(),
            ),
            ErrorKind::GatedRepo => hints.push(
                "the repo is gated; request access on its Hub page with the account of your token"
                    .to_string(),
            ),
            ErrorKind::Conflict => hints.push(
                "it already exists on the Hub; re-run `hubsync plan` to see the current state"
                    .to_string(),
            ),
            ErrorKind::PreconditionFailed => hints.push(
                "the branch moved since the plan was made; re-run `hubsync plan`".to_string(),
            ),
            ErrorKind::BadRequest => hints.push(
                "the Hub refused the request as invalid; check the paths and names it names"
                    .to_string(),
            ),
            ErrorKind::RateLimited { retry_after } => hints.push(match retry_after {
                Some(d) => format!(
                    "the Hub is rate-limiting this token; wait {}s and run the command again",
                    d.as_secs().max(1)
                ),
                None => "the Hub is rate-limiting this token; wait a few minutes and run the command again"
                    .to_string(),
            }),
            ErrorKind::Server | ErrorKind::Status => {
                hints.push("the Hub failed; run the command again later".to_string())
            }
            ErrorKind::Transport { .. } => hints.push(
                "check the endpoint (`--endpoint` or `HF_ENDPOINT`) and the network connection"
                    .to_string(),
            ),
            ErrorKind::Ambiguous => hints.push(
                "the Hub may have applied the change; run `hubsync plan` to see the current state before applying again"
                    .to_string(),
            ),
            ErrorKind::Decode | ErrorKind::Protocol => hints.push(
                "the endpoint does not answer like the Hugging Face Hub; check `--endpoint` or `HF_ENDPOINT`"
                    .to_string(),
            ),
            ErrorKind::InvalidUrl => hints.push(
                "pass a full URL such as `https://huggingface.co` to `--endpoint` or `HF_ENDPOINT`"
                    .to_string(),
            ),
            ErrorKind::Io => {}
        }
        if let Some(id) = self.request_id()
            && matches!(
                self.0.kind,
                ErrorKind::Server | ErrorKind::Status | ErrorKind::Ambiguous
            )
        {
            hints.push(format!(
                "if it keeps failing, report the request id `{id}` to the Hub's maintainers"
            ));
        }
        hints
    }

    /// The short phrase for the kind, used in `Display`.
    fn summary(&self) -> String {
        let i = &self.0;
        match i.kind {
            ErrorKind::Transport { maybe_sent: false } => "could not reach the Hub".into(),
            ErrorKind::Transport { maybe_sent: true } => "the connection to the Hub failed".into(),
            ErrorKind::Ambiguous if i.response.is_none() => {
                "the connection broke after the request was sent; the Hub may have applied it"
                    .into()
            }
            ErrorKind::Decode => "the Hub's answer could not be decoded".into(),
            ErrorKind::InvalidUrl => "invalid URL".into(),
            ErrorKind::Io => "could not read the local data".into(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        write!(f, "failed to {}", i.action)?;
        match &i.response {
            Some(r) => {
                let reason = reqwest::StatusCode::from_u16(r.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, ": the Hub answered {} {reason}", r.status)?;
                if let Some(req) = &i.request {
                    write!(f, " to `{req}`")?;
                }
                match (&r.raw_code, r.best_message()) {
                    (Some(code), Some(m)) => write!(f, " ({code}: {m})")?,
                    (Some(code), None) => write!(f, " ({code})")?,
                    (None, Some(m)) => write!(f, " ({m})")?,
                    (None, None) => {}
                }
                if i.kind == ErrorKind::Ambiguous {
                    f.write_str("; the Hub may have applied it")?;
                }
            }
            None => {
                let summary = self.summary();
                if !summary.is_empty() {
                    write!(f, ": {summary}")?;
                }
                if let Some(req) = &i.request {
                    write!(f, " (`{req}`)")?;
                }
            }
        }
        if let Some(detail) = &i.detail {
            write!(f, ": {detail}")?;
        }
        if i.attempts > 1 {
            write!(f, " after {} attempts", i.attempts)?;
        }
        if let Some(id) = self.request_id() {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        f.debug_struct("HubError")
            .field("kind", &i.kind)
            .field("action", &i.action)
            .field("request", &i.request)
            .field("response", &i.response)
            .field("detail", &i.detail)
            .field("attempts", &i.attempts)
            .field("source", &i.source)
            .finish()
    }
}

impl std::error::Error for HubError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

// ---- URL redaction ---------------------------------------------------------------------------

/// Query parameters whose values are credentials (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "key-pair-id",
    "policy",
];

/// A URL that is safe to print: user info and credential-bearing query values are masked.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    pub fn new(url: &url::Url) -> RedactedUrl {
        let mut out = format!("{}://", url.scheme());
        if !url.username().is_empty() || url.password().is_some() {
            out.push_str("****@");
        }
        if let Some(host) = url.host_str() {
            out.push_str(host);
        }
        if let Some(port) = url.port() {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(url.path());
        if let Some(query) = url.query() {
            out.push('?');
            let parts: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}=****"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&parts.join("&"));
        }
        RedactedUrl(out)
    }

    /// Redacts a URL given as text; text that does not parse is replaced entirely.
    pub fn parse(url: &str) -> RedactedUrl {
        match url::Url::parse(url) {
            Ok(u) => RedactedUrl::new(&u),
            Err(_) => RedactedUrl("<invalid URL>".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_secret_param(key: &str) -> bool {
    let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
    SECRET_PARAMS.iter().any(|p| key.eq_ignore_ascii_case(p))
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

// ---- body decoding ---------------------------------------------------------------------------

/// Summarises an error body on one line: the messages of a Hub JSON error (`{"error": "…"}`,
/// `{"error": [..]}`, `{"error": "code", "error_description": "…"}`, `{"errors": [{"message"}]}`,
/// `{"message": "…"}`), "HTML error page" for HTML, "N bytes of binary data" for what is not
/// text, else the text itself, truncated.
pub fn summarize_body(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    // Not text (an image, a compressed page, garbage): its bytes would only be noise.
    if body.contains(&0) || std::str::from_utf8(body).is_err() {
        return Some(format!("{} bytes of binary data", body.len()));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let lower_start: String = text
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if ct.starts_with("text/html")
        || lower_start.starts_with("<!doctype html")
        || lower_start.starts_with("<html")
    {
        return Some("HTML error page".into());
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(m) = json_error_message(&value)
    {
        return Some(one_line(&m, EXCERPT_CHARS));
    }
    Some(one_line(text, EXCERPT_CHARS))
}

fn json_error_message(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let obj = value.as_object()?;
    let strings = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(o) => {
                            o.get("message").and_then(Value::as_str).map(str::to_string)
                        }
                        _ => None,
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            _ => None,
        }
    };
    if let Some(e) = obj.get("error").and_then(strings) {
        return Some(match obj.get("error_description").and_then(Value::as_str) {
            Some(d) => format!("{e}: {d}"),
            None => e,
        });
    }
    if let Some(e) = obj.get("errors").and_then(strings) {
        return Some(e);
    }
    obj.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Collapses whitespace and control characters into single spaces and truncates to `max`
/// characters (with `…`), so server text stays on one line.
fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn body_shapes() {
        let j = Some("application/json");
        assert_eq!(
            summarize_body(j, br#"{"error":"Repository not found"}"#).as_deref(),
            Some("Repository not found")
        );
        assert_eq!(
            summarize_body(j, br#"{"error":["a","b"]}"#).as_deref(),
            Some("a; b")
        );
        assert_eq!(
            summarize_body(
                j,
                br#"{"error":"invalid_grant","error_description":"expired"}"#
            )
            .as_deref(),
            Some("invalid_grant: expired")
        );
        assert_eq!(
            summarize_body(j, br#"{"errors":[{"message":"bad yaml"},{"message":"x"}]}"#).as_deref(),
            Some("bad yaml; x")
        );
        // JSON detected without a content type; other JSON kept verbatim.
        assert_eq!(
            summarize_body(None, br#"{"message":"m"}"#).as_deref(),
            Some("m")
        );
        assert_eq!(
            summarize_body(j, br#"{"detail":1}"#).as_deref(),
            Some(r#"{"detail":1}"#)
        );
        assert_eq!(
            summarize_body(Some("text/html; charset=utf-8"), b"<p>oops</p>").as_deref(),
            Some("HTML error page")
        );
        assert_eq!(
            summarize_body(None, b"  <!DOCTYPE html><html>...").as_deref(),
            Some("HTML error page")
        );
        assert_eq!(
            summarize_body(Some("text/plain"), b"bad\n\tthing\r\n").as_deref(),
            Some("bad thing")
        );
        assert_eq!(summarize_body(None, b"   "), None);
        assert_eq!(
            summarize_body(Some("image/png"), b"\x89PNG\r\n\x1a\n\0\0").as_deref(),
            Some("10 bytes of binary data")
        );
        let long = "x".repeat(1000);
        let s = summarize_body(None, long.as_bytes()).unwrap();
        assert_eq!(s.chars().count(), EXCERPT_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn kinds_follow_codes_then_status() {
        let d = |status, code: Option<&str>, msg: Option<&str>| {
            let mut pairs = Vec::new();
            if let Some(c) = code {
                pairs.push(("x-error-code", c));
            }
            if let Some(m) = msg {
                pairs.push(("x-error-message", m));
            }
            ResponseDetails::from_parts(status, &headers(&pairs), b"").kind()
        };
        assert_eq!(d(404, Some("RepoNotFound"), None), ErrorKind::RepoNotFound);
        assert_eq!(d(401, Some("RepoNotFound"), None), ErrorKind::RepoNotFound);
        assert_eq!(
            d(
                401,
                Some("RepoNotFound"),
                Some("Invalid credentials in Authorization header")
            ),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            d(404, Some("RevisionNotFound"), None),
            ErrorKind::RevisionNotFound
        );
        assert_eq!(
            d(404, Some("EntryNotFound"), None),
            ErrorKind::EntryNotFound
        );
        assert_eq!(d(403, Some("GatedRepo"), None), ErrorKind::GatedRepo);
        assert_eq!(d(404, Some("SomethingNew"), None), ErrorKind::NotFound);
        assert_eq!(d(401, None, None), ErrorKind::Unauthorized);
        assert_eq!(d(403, None, None), ErrorKind::Forbidden);
        assert_eq!(d(409, None, None), ErrorKind::Conflict);
        assert_eq!(d(412, None, None), ErrorKind::PreconditionFailed);
        assert_eq!(d(422, None, None), ErrorKind::BadRequest);
        assert_eq!(d(502, None, None), ErrorKind::Server);
        assert_eq!(d(418, None, None), ErrorKind::Status);
        assert_eq!(
            d(429, None, None),
            ErrorKind::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn details_keep_diagnostics() {
        let h = headers(&[
            ("x-error-code", "RepoNotFound"),
            ("x-error-message", "Repository\t not  found"),
            ("x-amzn-trace-id", "Root=1-abc"),
            ("content-type", "application/json"),
            ("retry-after", "7"),
        ]);
        let d = ResponseDetails::from_parts(404, &h, br#"{"error":"Repository not found"}"#);
        assert_eq!(d.code, Some(ErrorCode::RepoNotFound));
        assert_eq!(d.message.as_deref(), Some("Repository not found"));
        assert_eq!(d.request_id.as_deref(), Some("Root=1-abc"));
        assert_eq!(d.body_excerpt.as_deref(), Some("Repository not found"));
        assert_eq!(d.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn urls_are_redacted() {
        let r = RedactedUrl::parse(
            "https://user:pass@hub.example:8443/lfs/up?token=abc&part=1&X-Amz-Signature=zz&Sig=q",
        );
        assert_eq!(
            r.as_str(),
            "https://****@hub.example:8443/lfs/up?token=****&part=1&X-Amz-Signature=****&Sig=****"
        );
        assert_eq!(
            RedactedUrl::parse("http://127.0.0.1:1/api/models/a/b?recursive=true").as_str(),
            "http://127.0.0.1:1/api/models/a/b?recursive=true"
        );
        assert_eq!(RedactedUrl::parse("not a url").as_str(), "<invalid URL>");
        assert_eq!(
            format!("{:?}", RedactedUrl::parse("http://h/?access_token=s3cret")),
            "\"http://h/?access_token=****\""
        );
    }

    #[test]
    fn display_is_a_failed_to_fragment() {
        let h = headers(&[
            ("x-error-code", "RepoNotFound"),
            ("x-error-message", "Repository not found"),
            ("x-request-id", "r-1"),
        ]);
        let e = HubError::from_response(
            "read repo info of `alice/x`",
            RequestLine {
                method: "GET".into(),
                url: RedactedUrl::parse("http://h/api/models/alice/x?token=tok_SECRET"),
            },
            ResponseDetails::from_parts(404, &h, b""),
        );
        assert_eq!(e.kind(), ErrorKind::RepoNotFound);
        assert_eq!(
            e.to_string(),
            "failed to read repo info of `alice/x`: the Hub answered 404 Not Found to \
             `GET http://h/api/models/alice/x?token=****` (RepoNotFound: Repository not found) \
             [request id r-1]"
        );
        assert!(!format!("{e:?}").contains("tok_SECRET"));
        assert!(e.hints()[0].contains("check the repo id"));

        let e = HubError::new(ErrorKind::Ambiguous, "commit to `alice/x`")
            .with_request(RequestLine {
                method: "POST".into(),
                url: RedactedUrl::parse("http://h/api/models/alice/x/commit/main"),
            })
            .with_attempts(1);
        assert_eq!(
            e.to_string(),
            "failed to commit to `alice/x`: the connection broke after the request was sent; \
             the Hub may have applied it (`POST http://h/api/models/alice/x/commit/main`)"
        );
        assert!(e.may_have_been_applied());
        assert!(e.hints()[0].contains("hubsync plan"));
    }
}
