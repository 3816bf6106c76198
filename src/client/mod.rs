//! [`HubClient`]: the Hub HTTP client (reqwest + rustls). It owns the endpoint, the token, the
//! user agent, `Link` pagination, error decoding into [`HubError`] and retries of idempotent
//! calls ([`retry`]). It must not know manifests or plans: it speaks the wire types of
//! [`crate::api`] and nothing else.
//!
//! Every typed method builds its route through the `api` helpers, sends one logical request
//! (several attempts when idempotent and transient), and decodes the answer. Methods that change
//! the Hub in a way that cannot safely be repeated — [`HubClient::commit`], repo, branch and tag
//! creation and deletion — are sent exactly once; when such a call fails after it may have
//! reached the Hub, the error kind is [`ErrorKind::Ambiguous`] and the caller decides.
//!
//! The token goes only to URLs on the endpoint's origin, never to LFS storage URLs, and is never
//! logged or put in an error. Requests are logged at debug level with `tracing` (method,
//! redacted URL, status, attempt).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hubsync::client::HubError> {
//! use hubsync::api::{RepoId, RepoType};
//! use hubsync::client::HubClient;
//! use hubsync::util::secret::Secret;
//!
//! let client = HubClient::new("https://huggingface.co", Some(Secret::new("hf_…".to_string())))?;
//! let repo = RepoId::parse("alice/tiny-bert").unwrap();
//! let files = client.list_tree(RepoType::Model, &repo, "main", None, true).await?;
//! # let _ = files; Ok(()) }
//! ```

mod error;
pub mod retry;

pub use error::{ErrorKind, HubError, RedactedUrl, RequestLine, ResponseDetails, summarize_body};
pub use retry::{Idempotency, RetryPolicy};

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::api::{
    self, CommitHeader, CommitInfo, CommitLine, CommitResponse, CompletedPart, CreateBranchRequest,
    CreateRepoRequest, CreateRepoResponse, CreateTagRequest, DeleteRepoRequest, HardwareRequest,
    KeyRequest, KeyValue, LfsAction, LfsBatchRequest, LfsBatchResponse, LfsCompleteRequest,
    LfsObjectAnswer, LfsObjectSpec, LfsRef, LfsVerifyRequest, PreuploadRequest, PreuploadResponse,
    Refs, RepoId, RepoInfo, RepoSettingsRequest, RepoType, SecretEntry, SleepTimeRequest,
    SpaceRuntime, TreeEntry, VariableEntry, Visibility, WhoAmI,
};
use crate::util::io::file_chunks;
use crate::util::secret::Secret;
use retry::{TransportClass, classify_transport, is_transient_status};

/// The user agent sent with every request.
pub const USER_AGENT: &str = concat!("hubsync/", env!("CARGO_PKG_VERSION"));

/// The Hub's default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Paths per `paths-info` request (the Hub refuses more than 1000; clients send 500).
const PATHS_INFO_BATCH: usize = 500;
/// Files per preupload request, and objects per LFS batch request (`huggingface_hub`'s numbers).
const PREUPLOAD_BATCH: usize = 256;
const LFS_BATCH: usize = 256;
/// The most of an error body read into memory.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The most of a successful API answer read into memory by default (a page of a tree listing,
/// a repo's info): far above anything the Hub sends, low enough that a broken or hostile server
/// streaming without end cannot exhaust memory.
pub const DEFAULT_MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;
/// Read buffer for streamed file uploads.
const UPLOAD_CHUNK: usize = 1024 * 1024;

/// Builds a [`HubClient`].
#[derive(Debug)]
pub struct HubClientBuilder {
    endpoint: String,
    token: Option<Secret<String>>,
    user_agent: String,
    retry: RetryPolicy,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    max_answer_bytes: u64,
}

impl HubClientBuilder {
    /// The token sent as `authorization: Bearer …` to the endpoint's origin.
    pub fn token(mut self, token: Option<Secret<String>>) -> Self {
        self.token = token;
        self
    }

    /// Replaces the `hubsync/<version>` user agent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long establishing a connection may take (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the client waits for the next bytes of an answer (default 5 minutes: a commit
    /// can take the Hub more than a minute). `None` waits forever.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The largest API answer (JSON) read into memory; a longer one fails the call with
    /// [`ErrorKind::Protocol`]. Downloads are streamed and not limited. Default
    /// [`DEFAULT_MAX_ANSWER_BYTES`].
    pub fn max_answer_bytes(mut self, bytes: u64) -> Self {
        self.max_answer_bytes = bytes;
        self
    }

    pub fn build(self) -> Result<HubClient, HubError> {
        // reqwest is built without a crypto provider; install ring once per process. A second
        // install fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let trimmed = self.endpoint.trim().trim_end_matches('/').to_string();
        let endpoint = Url::parse(&trimmed)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                HubError::new(ErrorKind::InvalidUrl, "use the endpoint").with_detail(format!(
                    "`{}` is not an http(s) URL",
                    RedactedUrl::parse(&trimmed)
                ))
            })?;
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(
                HubError::new(ErrorKind::InvalidUrl, "use the endpoint").with_detail(
                    "the endpoint URL must not carry credentials; pass the token with `--token` or `HF_TOKEN`",
                ),
            );
        }

        let build = |redirect: reqwest::redirect::Policy| {
            let mut b = reqwest::Client::builder()
                .user_agent(self.user_agent.clone())
                .connect_timeout(self.connect_timeout)
                .redirect(redirect)
                .tls_backend_rustls();
            if let Some(t) = self.read_timeout {
                b = b.read_timeout(t);
            }
            b.build().map_err(|e| {
                HubError::new(ErrorKind::InvalidUrl, "set up the HTTP client")
                    .with_reqwest_source(e)
            })
        };
        let http = build(reqwest::redirect::Policy::limited(10))?;
        // HEAD metadata requests follow redirects on the Hub's own origin only: a redirect to
        // storage is where the metadata is read from (hub-api.md §7.2). Writes use this client
        // too, so their bodies never follow a redirect to another host.
        let origin = endpoint.origin();
        let http_head = build(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if attempt.url().origin() == origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))?;

        Ok(HubClient {
            http,
            http_head,
            base: trimmed,
            endpoint,
            token: self.token,
            retry: self.retry,
            max_answer_bytes: self.max_answer_bytes,
        })
    }
}

/// A client of one Hub endpoint. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    http_head: reqwest::Client,
    /// The endpoint without a trailing `/`, to which API paths are appended.
    base: String,
    endpoint: Url,
    token: Option<Secret<String>>,
    retry: RetryPolicy,
    max_answer_bytes: u64,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.base)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("retry", &self.retry)
            .finish()
    }
}

// ---- request machinery -----------------------------------------------------------------------

/// The body of a call, re-creatable for each attempt.
enum Payload {
    Empty,
    Bytes {
        content_type: &'static str,
        data: Bytes,
    },
    Upload(UploadSource),
}

/// One logical request.
struct Call {
    method: Method,
    url: Url,
    action: String,
    idempotency: Idempotency,
    /// Whether the token may be attached (it still is only on the endpoint's origin).
    auth: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
    payload: Payload,
    /// Read the whole body inside the retry loop (a broken body is then retried too).
    read_body: bool,
    /// Use the client that stops at cross-origin redirects.
    head_client: bool,
}

impl Call {
    fn new(method: Method, url: Url, action: impl Into<String>, idem: Idempotency) -> Call {
        Call {
            method,
            url,
            action: action.into(),
            idempotency: idem,
            auth: true,
            headers: Vec::new(),
            payload: Payload::Empty,
            read_body: true,
            head_client: false,
        }
    }

    fn get(url: Url, action: impl Into<String>) -> Call {
        Call::new(Method::GET, url, action, Idempotency::Idempotent)
    }

    fn json(mut self, body: &impl Serialize) -> Call {
        let data = serde_json::to_vec(body).expect("API request bodies serialize");
        self.payload = Payload::Bytes {
            content_type: "application/json",
            data: data.into(),
        };
        self
    }

    fn body(mut self, content_type: &'static str, data: impl Into<Bytes>) -> Call {
        self.payload = Payload::Bytes {
            content_type,
            data: data.into(),
        };
        self
    }

    fn header(mut self, name: HeaderName, value: &'static str) -> Call {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    fn request_line(&self) -> RequestLine {
        RequestLine {
            method: self.method.to_string(),
            url: RedactedUrl::new(&self.url),
        }
    }
}

/// A successful answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// The final URL, after redirects.
    url: Url,
    /// The whole body when the call asked for it.
    body: Bytes,
    /// The unread response when the call did not.
    response: Option<reqwest::Response>,
    request: RequestLine,
    action: String,
}

impl Answer {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, HubError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let excerpt = summarize_body(self.header("content-type").as_deref(), &self.body)
                .unwrap_or_else(|| "empty".into());
            HubError::new(ErrorKind::Decode, self.action.clone())
                .with_request(self.request.clone())
                .with_detail(format!("{} with body `{excerpt}`", self.status.as_u16()))
                .with_source(e)
        })
    }

    fn header(&self, name: &str) -> Option<String> {
        header_str(&self.headers, name)
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// What went wrong with one attempt.
enum Failure {
    Status {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    Transport(reqwest::Error),
}

impl HubClient {
    /// A client for `endpoint` (for example `https://huggingface.co`), with the default retry
    /// policy and timeouts.
    pub fn new(endpoint: &str, token: Option<Secret<String>>) -> Result<HubClient, HubError> {
        HubClient::builder(endpoint).token(token).build()
    }

    pub fn builder(endpoint: &str) -> HubClientBuilder {
        HubClientBuilder {
            endpoint: endpoint.to_string(),
            token: None,
            user_agent: USER_AGENT.to_string(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Some(Duration::from_secs(300)),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    /// The endpoint, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The URL of an API or web path (already percent-encoded) on the endpoint.
    fn url(&self, path: &str) -> Result<Url, HubError> {
        Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            HubError::new(ErrorKind::InvalidUrl, "build a request URL")
                .with_detail(format!("`{path}` on `{}`", self.base))
                .with_source(e)
        })
    }

    /// A URL the Hub handed out (LFS actions), with `https://huggingface.co` rewritten to the
    /// endpoint the way `huggingface_hub` does.
    fn hub_given_url(&self, href: &str, action: &str) -> Result<Url, HubError> {
        let href = match href.strip_prefix(DEFAULT_ENDPOINT) {
            Some(rest)
                if self.base != DEFAULT_ENDPOINT && (rest.is_empty() || rest.starts_with('/')) =>
            {
                format!("{}{rest}", self.base)
            }
            _ => href.to_string(),
        };
        Url::parse(&href).map_err(|e| {
            HubError::new(ErrorKind::InvalidUrl, action.to_string())
                .with_detail(format!("the Hub gave `{}`", RedactedUrl::parse(&href)))
                .with_source(e)
        })
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.endpoint.origin()
    }

    /// Sends a call, retrying transient failures of idempotent calls per the policy.
    async fn execute(&self, call: Call) -> Result<Answer, HubError> {
        let request = call.request_line();
        // Only reads follow a redirect to another origin (a download's storage URL). A write
        // redirected elsewhere stops at the redirect: its body (file contents, a Space secret's
        // value) must never reach a host the user did not name, token or not.
        let reads = matches!(call.method, Method::GET | Method::HEAD);
        let client = if call.head_client || !reads {
            &self.http_head
        } else {
            &self.http
        };
        let idempotent = call.idempotency == Idempotency::Idempotent;
        let mut retry = 0u32;
        loop {
            let attempt = retry + 1;
            let mut builder = client.request(call.method.clone(), call.url.clone());
            for (name, value) in &call.headers {
                builder = builder.header(name, value);
            }
            if call.auth
                && self.same_origin(&call.url)
                && let Some(token) = &self.token
            {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        HubError::new(ErrorKind::Unauthorized, call.action.clone())
                            .with_detail("the token contains characters not allowed in a header")
                    })?;
                value.set_sensitive(true);
                builder = builder.header(header::AUTHORIZATION, value);
            }
            // Whether this body can be sent once more after this attempt.
            let mut replayable = true;
            match &call.payload {
                Payload::Empty => {}
                Payload::Bytes { content_type, data } => {
                    builder = builder
                        .header(header::CONTENT_TYPE, *content_type)
                        .body(data.clone());
                }
                Payload::Upload(source) => {
                    replayable = source.replayable();
                    match source.body_for_attempt().await {
                        Ok(Some((body, len))) => {
                            builder = builder.header(header::CONTENT_LENGTH, len).body(body);
                        }
                        Ok(None) => {
                            return Err(HubError::new(ErrorKind::Io, call.action.clone())
                                .with_request(request)
                                .with_detail("the upload body was already consumed")
                                .with_attempts(attempt));
                        }
                        Err(e) => {
                            return Err(HubError::new(ErrorKind::Io, call.action.clone())
                                .with_request(request)
                                .with_detail(source.describe())
                                .with_attempts(attempt)
                                .with_source(e));
                        }
                    }
                }
            }

            let started = Instant::now();
            let failure = match builder.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    tracing::debug!(
                        method = %request.method,
                        url = %request.url,
                        status = status.as_u16(),
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "hub request"
                    );
                    if status.is_success() || (call.head_client && status.is_redirection()) {
                        let headers = resp.headers().clone();
                        let url = resp.url().clone();
                        if !call.read_body {
                            return Ok(Answer {
                                status,
                                headers,
                                url,
                                body: Bytes::new(),
                                response: Some(resp),
                                request,
                                action: call.action,
                            });
                        }
                        match read_capped(resp, self.max_answer_bytes).await {
                            Ok(body) => {
                                return Ok(Answer {
                                    status,
                                    headers,
                                    url,
                                    body,
                                    response: None,
                                    request,
                                    action: call.action,
                                });
                            }
                            Err(Capped::Transport(e)) => Failure::Transport(e),
                            Err(Capped::TooLarge) => {
                                return Err(HubError::new(ErrorKind::Protocol, call.action)
                                    .with_request(request)
                                    .with_attempts(attempt)
                                    .with_detail(format!(
                                        "the answer is longer than {} bytes, more than any Hub answer; is the endpoint a Hub?",
                                        self.max_answer_bytes
                                    )));
                            }
                        }
                    } else {
                        let headers = resp.headers().clone();
                        let body = read_limited(resp, ERROR_BODY_LIMIT).await;
                        Failure::Status {
                            status: status.as_u16(),
                            headers,
                            body,
                        }
                    }
                }
                Err(e) => Failure::Transport(e),
            };

            match failure {
                Failure::Status {
                    status,
                    headers,
                    body,
                } => {
                    let details = ResponseDetails::from_parts(status, &headers, &body);
                    if idempotent
                        && replayable
                        && is_transient_status(status)
                        && let Some(wait) = self.retry.delay(retry, details.retry_after)
                    {
                        tracing::debug!(
                            method = %request.method,
                            url = %request.url,
                            status,
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            "retrying a transient hub error"
                        );
                        tokio::time::sleep(wait).await;
                        retry += 1;
                        continue;
                    }
                    let mut err = HubError::from_response(call.action, request, details)
                        .with_attempts(attempt);
                    if (300..400).contains(&status)
                        && let Some(location) = header_str(&headers, "location")
                    {
                        err = err.with_detail(format!(
                            "not following its redirect to `{}`: a write is never sent to another host",
                            RedactedUrl::parse(&location)
                        ));
                    }
                    // A gateway timeout or a bad gateway says nothing about whether the backend
                    // processed the request (the Hub's commit timeout is 60 s, and the commit
                    // may still land): for a non-idempotent call that is ambiguous.
                    if !idempotent && matches!(status, 408 | 502 | 504) {
                        err = err.with_kind(ErrorKind::Ambiguous);
                    }
                    return Err(err);
                }
                Failure::Transport(e) if is_content_changed(&e) => {
                    return Err(HubError::new(ErrorKind::Io, call.action)
                        .with_request(request)
                        .with_attempts(attempt)
                        .with_reqwest_source(e));
                }
                Failure::Transport(e) => {
                    let class = classify_transport(&e);
                    tracing::debug!(
                        method = %request.method,
                        url = %request.url,
                        attempt,
                        class = ?class,
                        cause = %crate::util::error::one_line(&e.without_url_ref()),
                        "hub request failed"
                    );
                    if idempotent
                        && replayable
                        && class != TransportClass::Fatal
                        && let Some(wait) = self.retry.delay(retry, None)
                    {
                        tokio::time::sleep(wait).await;
                        retry += 1;
                        continue;
                    }
                    let kind = match (class, idempotent) {
                        (TransportClass::MaybeSent, false) => ErrorKind::Ambiguous,
                        (TransportClass::MaybeSent, true) => {
                            ErrorKind::Transport { maybe_sent: true }
                        }
                        (TransportClass::NotSent | TransportClass::Fatal, _) => {
                            ErrorKind::Transport { maybe_sent: false }
                        }
                    };
                    return Err(HubError::new(kind, call.action)
                        .with_request(request)
                        .with_attempts(attempt)
                        .with_reqwest_source(e));
                }
            }
        }
    }

    async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, HubError> {
        self.execute(call).await?.decode()
    }

    /// GETs `first` and every `Link: <…>; rel="next"` page after it, concatenating the arrays.
    async fn get_all_pages<T: DeserializeOwned>(
        &self,
        first: Url,
        action: &str,
    ) -> Result<Vec<T>, HubError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0u32;
        while let Some(url) = next.take() {
            let answer = self.execute(Call::get(url.clone(), action)).await?;
            let page: Vec<T> = answer.decode()?;
            items.extend(page);
            pages += 1;
            if let Some(link) = next_link(&answer.headers, &answer.url) {
                if link == url {
                    return Err(HubError::new(ErrorKind::Protocol, action.to_string())
                        .with_request(answer.request)
                        .with_detail("the `Link` header points at the same page again"));
                }
                next = Some(link);
            }
        }
        tracing::debug!(pages, items = items.len(), action, "paginated listing");
        Ok(items)
    }
}

/// Why a capped read of an answer failed.
enum Capped {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a whole answer, failing as soon as it is known to exceed `limit` bytes (from its
/// `Content-Length`, or while reading).
async fn read_capped(mut resp: reqwest::Response, limit: u64) -> Result<Bytes, Capped> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(Capped::TooLarge);
    }
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Transport)? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(Capped::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Reads at most `limit` bytes of a response body, ignoring errors (it is only diagnostics).
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}

trait WithoutUrlRef {
    /// A printable view of the error without its URL.
    fn without_url_ref(&self) -> UrlFree<'_>;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> UrlFree<'_> {
        UrlFree(self)
    }
}

/// Displays a reqwest error without the URL part reqwest appends (it may be signed).
struct UrlFree<'a>(&'a reqwest::Error);

impl std::fmt::Display for UrlFree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.to_string();
        match (self.0.url(), s.find(" for url (")) {
            (Some(_), Some(i)) => f.write_str(&s[..i]),
            _ => f.write_str(&s),
        }
    }
}

impl std::fmt::Debug for UrlFree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for UrlFree<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self.0)
    }
}

// ---- pagination ------------------------------------------------------------------------------

/// One link of a `Link` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkValue {
    pub url: String,
    /// The `rel` values, lower-cased (`rel="next last"` gives two).
    pub rels: Vec<String>,
}

/// Parses a `Link` header value: `<url>; rel="next", <url2>; rel="last"`. Commas inside `<…>`
/// and inside quoted parameters do not split links.
pub fn parse_link_header(value: &str) -> Vec<LinkValue> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let url = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];
        // Parameters run to the next comma outside quotes.
        let mut in_quotes = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..end];
        rest = &rest[end..];
        let mut rels = Vec::new();
        for param in params.split(';') {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("rel")
            {
                rels.extend(
                    v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .map(str::to_ascii_lowercase),
                );
            }
        }
        links.push(LinkValue { url, rels });
    }
    links
}

/// The `rel="next"` URL among all `Link` headers, resolved against the current URL.
pub fn next_link(headers: &HeaderMap, current: &Url) -> Option<Url> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_link_header)
        .find(|l| l.rels.iter().any(|r| r == "next"))
        .and_then(|l| current.join(&l.url).ok())
}

// ---- uploads ---------------------------------------------------------------------------------

/// The bytes of an upload (an LFS object or one multipart part). Bytes and file ranges are
/// re-read for every attempt, so their uploads are retried; a caller-made stream is sent once.
pub struct UploadSource(Source);

enum Source {
    Bytes(Bytes),
    File {
        path: PathBuf,
        /// `None`: the whole file.
        range: Option<(u64, u64)>,
    },
    Body {
        body: Mutex<Option<reqwest::Body>>,
        len: u64,
    },
    Verified {
        path: PathBuf,
        size: u64,
        sha256: String,
    },
}

/// The bytes read while uploading a file did not hash to what was planned: the file changed.
/// Uploads fail with this in their cause chain and are not retried.
#[derive(Debug, thiserror::Error)]
#[error("`{}` changed since it was planned: expected sha256 {expected} ({size} bytes), read {got}", path.display())]
pub struct ContentChanged {
    pub path: PathBuf,
    pub size: u64,
    pub expected: String,
    pub got: String,
}

/// Whether an error chain contains [`ContentChanged`].
pub fn is_content_changed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<ContentChanged>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<ContentChanged>())
        {
            return true;
        }
        source = e.source();
    }
    false
}

impl UploadSource {
    pub fn bytes(data: impl Into<Bytes>) -> UploadSource {
        UploadSource(Source::Bytes(data.into()))
    }

    /// The whole file at `path`, streamed.
    pub fn file(path: impl Into<PathBuf>) -> UploadSource {
        UploadSource(Source::File {
            path: path.into(),
            range: None,
        })
    }

    /// `len` bytes of the file at `path` from `offset`, streamed (a multipart part).
    pub fn file_range(path: impl Into<PathBuf>, offset: u64, len: u64) -> UploadSource {
        UploadSource(Source::File {
            path: path.into(),
            range: Some((offset, len)),
        })
    }

    /// A body of exactly `len` bytes made by the caller; sent once, never retried.
    pub fn body(body: reqwest::Body, len: u64) -> UploadSource {
        UploadSource(Source::Body {
            body: Mutex::new(Some(body)),
            len,
        })
    }

    /// The whole file at `path`, streamed and hashed on the way: if it is not `size` bytes
    /// with this sha256, the upload fails with [`ContentChanged`] instead of completing.
    pub fn verified_file(
        path: impl Into<PathBuf>,
        size: u64,
        sha256: impl Into<String>,
    ) -> UploadSource {
        UploadSource(Source::Verified {
            path: path.into(),
            size,
            sha256: sha256.into(),
        })
    }

    fn replayable(&self) -> bool {
        !matches!(self.0, Source::Body { .. })
    }

    fn describe(&self) -> String {
        match &self.0 {
            Source::Bytes(_) => "in-memory data".into(),
            Source::File { path, .. } => format!("reading `{}`", path.display()),
            Source::Body { .. } => "a caller-provided body".into(),
            Source::Verified { path, .. } => format!("reading `{}`", path.display()),
        }
    }

    /// A fresh body and its length, or `None` when a one-shot body was already used.
    async fn body_for_attempt(&self) -> std::io::Result<Option<(reqwest::Body, u64)>> {
        match &self.0 {
            Source::Bytes(b) => Ok(Some((reqwest::Body::from(b.clone()), b.len() as u64))),
            Source::Body { body, len } => Ok(body
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .map(|b| (b, *len))),
            Source::Verified { path, size, sha256 } => {
                use sha2::Digest;
                let (file, len) = open_at(path, 0).await?;
                let (p, sz, exp) = (path.clone(), *size, sha256.clone());
                let changed = move |got: String| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        ContentChanged {
                            path: p.clone(),
                            size: sz,
                            expected: exp.clone(),
                            got,
                        },
                    )
                };
                if len != *size {
                    return Err(changed(format!("a file of {len} bytes")));
                }
                let expected = sha256.clone();
                let stream = Box::pin(file_chunks(file, *size, UPLOAD_CHUNK));
                let stream = futures::stream::unfold(
                    (stream, sha2::Sha256::new(), 0u64, false),
                    move |(mut stream, mut hasher, mut seen, done)| {
                        let (expected, changed) = (expected.clone(), changed.clone());
                        let size = len;
                        async move {
                            if done {
                                return None;
                            }
                            match stream.next().await {
                                Some(Ok(chunk)) => {
                                    hasher.update(&chunk);
                                    seen += chunk.len() as u64;
                                    if seen == size {
                                        // Check before the last bytes leave, so a changed file
                                        // never completes an upload.
                                        let got = hex::encode(hasher.clone().finalize());
                                        if got != expected {
                                            return Some((
                                                Err(changed(got)),
                                                (stream, hasher, seen, true),
                                            ));
                                        }
                                    }
                                    Some((Ok(chunk), (stream, hasher, seen, false)))
                                }
                                Some(Err(e)) => Some((Err(e), (stream, hasher, seen, true))),
                                None if seen != size => Some((
                                    Err(changed(format!("only {seen} bytes"))),
                                    (stream, hasher, seen, true),
                                )),
                                None => None,
                            }
                        }
                    },
                );
                Ok(Some((reqwest::Body::wrap_stream(stream), *size)))
            }
            Source::File { path, range } => {
                let offset = range.map_or(0, |(offset, _)| offset);
                let (file, file_len) = open_at(path, offset).await?;
                let len = range.map_or(file_len, |(_, len)| len);
                if offset.saturating_add(len) > file_len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file is {file_len} bytes long, shorter than the {len} bytes at offset {offset} to upload (did it change?)"
                        ),
                    ));
                }
                let stream = file_chunks(file, len, UPLOAD_CHUNK);
                Ok(Some((reqwest::Body::wrap_stream(stream), len)))
            }
        }
    }
}

/// The regular file at `path` (never blocking on a FIFO in its place), positioned at `offset`,
/// and its length.
async fn open_at(path: &Path, offset: u64) -> std::io::Result<(std::fs::File, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut file = crate::util::io::open_regular(&path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(offset))?;
        Ok((file, len))
    })
    .await
    .map_err(std::io::Error::other)?
}

impl std::fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Bytes(b) => write!(f, "UploadSource::Bytes({} bytes)", b.len()),
            Source::File { path, range } => {
                write!(f, "UploadSource::File({}, {range:?})", path.display())
            }
            Source::Body { len, .. } => write!(f, "UploadSource::Body({len} bytes)"),
            Source::Verified { path, size, .. } => {
                write!(
                    f,
                    "UploadSource::Verified({}, {size} bytes)",
                    path.display()
                )
            }
        }
    }
}

/// The parts of a multipart LFS upload, read from the upload action's `header` map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartPlan {
    pub chunk_size: u64,
    /// `(part number, URL)`, sorted by part number.
    pub parts: Vec<(u32, String)>,
}

impl MultipartPlan {
    /// `None` when the action is a basic (single PUT) upload, i.e. has no `chunk_size`.
    /// Errors when the part count is not `ceil(size / chunk_size)`.
    pub fn from_action(action: &LfsAction, size: u64) -> Result<Option<MultipartPlan>, HubError> {
        let Some(chunk) = action.header.get("chunk_size") else {
            return Ok(None);
        };
        let protocol = |detail: String| {
            HubError::new(ErrorKind::Protocol, "plan a multipart upload").with_detail(detail)
        };
        let chunk_size: u64 = chunk
            .trim()
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| protocol(format!("`chunk_size` is `{chunk}`, not a positive number")))?;
        let mut parts: Vec<(u32, String)> = action
            .header
            .iter()
            .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|(k, v)| k.parse::<u32>().ok().map(|n| (n, v.clone())))
            .collect();
        parts.sort_by_key(|(n, _)| *n);
        let expected = size.div_ceil(chunk_size);
        if parts.len() as u64 != expected {
            return Err(protocol(format!(
                "the Hub gave {} part URLs for {size} bytes in chunks of {chunk_size}; expected {expected}",
                parts.len()
            )));
        }
        Ok(Some(MultipartPlan { chunk_size, parts }))
    }
}

/// What [`HubClient::upload_lfs_object`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LfsTransfer {
    /// The Hub already had the object (no `actions`).
    AlreadyPresent,
    /// One PUT.
    Basic,
    /// This many part PUTs and a completion.
    Multipart { parts: usize },
}

// ---- downloads -------------------------------------------------------------------------------

/// A byte range of a download: `bytes=start-end` (inclusive end) or `bytes=start-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive; `None` reads to the end.
    pub end: Option<u64>,
}

impl ByteRange {
    fn header_value(self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{end}", self.start),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// What a resolve `HEAD` says about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMetadata {
    /// `X-Repo-Commit`: the full commit the revision resolved to.
    pub commit: String,
    /// `X-Linked-Etag`, else `ETag`, without `W/` and quotes: the git blob SHA-1 of a regular
    /// file, the sha256 of an LFS file.
    pub etag: String,
    /// `X-Linked-Size`, else `Content-Length`.
    pub size: u64,
    /// Where the bytes are, when the Hub redirected to another origin (storage).
    pub location: Option<String>,
}

/// An open download: metadata from the headers, and the body to stream.
pub struct Download {
    pub status: u16,
    /// `X-Repo-Commit`.
    pub commit: Option<String>,
    /// `X-Linked-Etag`, else `ETag`, unquoted.
    pub etag: Option<String>,
    /// `Content-Length` of this answer (the range length on a 206).
    pub content_length: Option<u64>,
    /// `Content-Range`, on a 206.
    pub content_range: Option<String>,
    response: reqwest::Response,
    action: String,
    request: RequestLine,
}

impl Download {
    /// The whole body in memory.
    pub async fn bytes(self) -> Result<Bytes, HubError> {
        let Download {
            response,
            action,
            request,
            ..
        } = self;
        response.bytes().await.map_err(|e| {
            HubError::new(ErrorKind::Transport { maybe_sent: true }, action)
                .with_request(request)
                .with_reqwest_source(e)
        })
    }

    /// The body as a stream of chunks. A broken stream is not retried: resume with a range.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, HubError>> + Send {
        let Download {
            response,
            action,
            request,
            ..
        } = self;
        response.bytes_stream().map(move |r| {
            r.map_err(|e| {
                HubError::new(ErrorKind::Transport { maybe_sent: true }, action.clone())
                    .with_request(request.clone())
                    .with_reqwest_source(e)
            })
        })
    }
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("status", &self.status)
            .field("commit", &self.commit)
            .field("etag", &self.etag)
            .field("content_length", &self.content_length)
            .field("request", &self.request)
            .finish()
    }
}

/// Strips `W/` and quotes from an ETag.
fn unquote_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

// ---- typed API -------------------------------------------------------------------------------

/// Options of [`HubClient::create_repo`] besides the type and id.
#[derive(Clone, Debug, Default)]
pub struct CreateRepoOptions {
    /// `None` lets the Hub choose (public).
    pub visibility: Option<Visibility>,
    /// Required for Spaces: `gradio`, `streamlit`, `docker` or `static`.
    pub sdk: Option<String>,
    /// Space hardware flavour to start with.
    pub hardware: Option<String>,
    /// Space sleep time in seconds.
    pub sleep_time_seconds: Option<i64>,
}

fn space_path(repo: &RepoId) -> String {
    api::api_repo_path(RepoType::Space, repo)
}

impl HubClient {
    /// `GET /api/whoami-v2`: who the token belongs to.
    pub async fn whoami(&self) -> Result<WhoAmI, HubError> {
        let url = self.url("/api/whoami-v2")?;
        self.json(Call::get(url, "read the token's identity")).await
    }

    /// `GET /api/{type}s/{id}[/revision/{rev}]`.
    pub async fn repo_info(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: Option<&str>,
    ) -> Result<RepoInfo, HubError> {
        let mut path = api::api_repo_path(repo_type, repo);
        if let Some(rev) = revision {
            path.push_str(&format!("/revision/{}", api::encode_segment(rev)));
        }
        let url = self.url(&path)?;
        let action = match revision {
            Some(rev) => format!("read {repo_type} `{repo}` at `{rev}`"),
            None => format!("read {repo_type} `{repo}`"),
        };
        self.json(Call::get(url, action)).await
    }

    /// Like [`HubClient::repo_info`], but a repo that does not exist (or is invisible to this
    /// token) is `None`. A missing revision is still an error.
    pub async fn try_repo_info(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: Option<&str>,
    ) -> Result<Option<RepoInfo>, HubError> {
        match self.repo_info(repo_type, repo, revision).await {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind() == ErrorKind::RepoNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/repos/create`. Not retried; an existing repo is [`ErrorKind::Conflict`].
    pub async fn create_repo(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        options: &CreateRepoOptions,
    ) -> Result<CreateRepoResponse, HubError> {
        let body = CreateRepoRequest {
            name: repo.name().to_string(),
            organization: Some(repo.namespace().to_string()),
            repo_type: (repo_type != RepoType::Model).then_some(repo_type),
            visibility: options.visibility,
            sdk: options.sdk.clone(),
            hardware: options.hardware.clone(),
            sleep_time_seconds: options.sleep_time_seconds,
            ..CreateRepoRequest::default()
        };
        let url = self.url("/api/repos/create")?;
        let call = Call::new(
            Method::POST,
            url,
            format!("create {repo_type} `{repo}`"),
            Idempotency::NotIdempotent,
        )
        .json(&body);
        self.json(call).await
    }

    /// `DELETE /api/repos/delete`. Not retried (a repeat would say "not found").
    pub async fn delete_repo(&self, repo_type: RepoType, repo: &RepoId) -> Result<(), HubError> {
        let body = DeleteRepoRequest {
            name: repo.name().to_string(),
            organization: Some(repo.namespace().to_string()),
            repo_type: (repo_type != RepoType::Model).then_some(repo_type),
        };
        let url = self.url("/api/repos/delete")?;
        let call = Call::new(
            Method::DELETE,
            url,
            format!("delete {repo_type} `{repo}`"),
            Idempotency::NotIdempotent,
        )
        .json(&body);
        self.execute(call).await.map(drop)
    }

    /// `PUT /api/{type}s/{id}/settings` (visibility, gating). Setting a value twice leaves the
    /// same state, so this is retried.
    pub async fn update_settings(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        settings: &RepoSettingsRequest,
    ) -> Result<serde_json::Value, HubError> {
        let url = self.url(&format!("{}/settings", api::api_repo_path(repo_type, repo)))?;
        let call = Call::new(
            Method::PUT,
            url,
            format!("update the settings of {repo_type} `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(settings);
        let answer = self.execute(call).await?;
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        answer.decode()
    }

    /// `GET /api/{type}s/{id}/tree/{rev}[/{path}]?recursive=…&expand=false`, every page.
    /// A missing folder is [`ErrorKind::EntryNotFound`].
    pub async fn list_tree(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        path: Option<&str>,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>, HubError> {
        let mut p = format!(
            "{}/tree/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(revision)
        );
        if let Some(path) = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
            // Like `huggingface_hub`: the path is one segment, its slashes encoded.
            p.push('/');
            p.push_str(&api::encode_segment(path));
        }
        let mut url = self.url(&p)?;
        url.query_pairs_mut()
            .append_pair("recursive", if recursive { "true" } else { "false" })
            .append_pair("expand", "false");
        let action = format!("list the files of {repo_type} `{repo}` at `{revision}`");
        self.get_all_pages(url, &action).await
    }

    /// `POST /api/{type}s/{id}/paths-info/{rev}` (form-encoded, 500 paths a request). Paths that
    /// do not exist are left out of the answer.
    pub async fn paths_info(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        paths: &[String],
    ) -> Result<Vec<TreeEntry>, HubError> {
        let url = self.url(&format!(
            "{}/paths-info/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(revision)
        ))?;
        let mut entries = Vec::new();
        for chunk in paths.chunks(PATHS_INFO_BATCH) {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for p in chunk {
                form.append_pair("paths", p);
            }
            form.append_pair("expand", "false");
            let call = Call::new(
                Method::POST,
                url.clone(),
                format!("read path info in {repo_type} `{repo}` at `{revision}`"),
                Idempotency::Idempotent,
            )
            .body("application/x-www-form-urlencoded", form.finish());
            let page: Vec<TreeEntry> = self.json(call).await?;
            entries.extend(page);
        }
        Ok(entries)
    }

    /// `GET /api/{type}s/{id}/refs[?include_prs=1]`.
    pub async fn list_refs(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        include_prs: bool,
    ) -> Result<Refs, HubError> {
        let mut url = self.url(&format!("{}/refs", api::api_repo_path(repo_type, repo)))?;
        if include_prs {
            url.query_pairs_mut().append_pair("include_prs", "1");
        }
        self.json(Call::get(
            url,
            format!("list the refs of {repo_type} `{repo}`"),
        ))
        .await
    }

    /// `GET /api/{type}s/{id}/commits/{rev}`, every page, newest first.
    pub async fn list_commits(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
    ) -> Result<Vec<CommitInfo>, HubError> {
        let url = self.url(&format!(
            "{}/commits/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(revision)
        ))?;
        let action = format!("list the commits of {repo_type} `{repo}` at `{revision}`");
        self.get_all_pages(url, &action).await
    }

    /// `POST /api/{type}s/{id}/preupload/{rev}`, 256 files a request; the answers are merged
    /// (`commitOid` is the last one's). It only reads, so it is retried.
    pub async fn preupload(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        request: &PreuploadRequest,
    ) -> Result<PreuploadResponse, HubError> {
        let url = self.url(&format!(
            "{}/preupload/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(revision)
        ))?;
        let action = format!("ask how to upload files to {repo_type} `{repo}` at `{revision}`");
        let mut merged = PreuploadResponse {
            files: Vec::new(),
            commit_oid: String::new(),
        };
        // One request even with no files, so the caller still learns the head.
        let chunks: Vec<_> = if request.files.is_empty() {
            vec![&request.files[..]]
        } else {
            request.files.chunks(PREUPLOAD_BATCH).collect()
        };
        for files in chunks {
            let body = PreuploadRequest {
                files: files.to_vec(),
                git_ignore: request.git_ignore.clone(),
                git_attributes: request.git_attributes.clone(),
            };
            let call = Call::new(
                Method::POST,
                url.clone(),
                action.clone(),
                Idempotency::Idempotent,
            )
            .json(&body);
            let answer: PreuploadResponse = self.json(call).await?;
            merged.files.extend(answer.files);
            merged.commit_oid = answer.commit_oid;
        }
        Ok(merged)
    }

    /// `POST {prefix}{id}.git/info/lfs/objects/batch` for an upload, 256 objects a request;
    /// objects are answered in the same order. `revision: None` omits `ref` (for `create_pr`).
    pub async fn lfs_batch(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: Option<&str>,
        objects: &[LfsObjectSpec],
    ) -> Result<LfsBatchResponse, HubError> {
        let url = self.url(&format!(
            "{}.git/info/lfs/objects/batch",
            api::web_repo_path(repo_type, repo)
        ))?;
        let action = format!("negotiate LFS uploads to {repo_type} `{repo}`");
        let mut merged = LfsBatchResponse {
            transfer: "basic".into(),
            objects: Vec::new(),
        };
        for (i, chunk) in objects.chunks(LFS_BATCH).enumerate() {
            let body = LfsBatchRequest {
                operation: "upload".into(),
                transfers: vec!["basic".into(), "multipart".into()],
                objects: chunk.to_vec(),
                hash_algo: Some("sha256".into()),
                git_ref: revision.map(|r| LfsRef {
                    name: r.to_string(),
                }),
            };
            let call = Call::new(
                Method::POST,
                url.clone(),
                action.clone(),
                Idempotency::Idempotent,
            )
            .header(header::ACCEPT, api::GIT_LFS_JSON)
            .body(
                api::GIT_LFS_JSON,
                serde_json::to_vec(&body).expect("LFS batch serializes"),
            );
            let answer: LfsBatchResponse = self.json(call).await?;
            if i == 0 {
                merged.transfer = answer.transfer;
            }
            merged.objects.extend(answer.objects);
        }
        Ok(merged)
    }

    /// A basic LFS upload: `PUT` the bytes to the action's `href`, without the token.
    /// Content-addressed, so it is retried.
    pub async fn lfs_upload(&self, href: &str, source: UploadSource) -> Result<(), HubError> {
        let action = "upload an LFS object";
        let url = self.hub_given_url(href, action)?;
        let mut call = Call::new(Method::PUT, url, action, Idempotency::Idempotent);
        call.auth = false;
        call.payload = Payload::Upload(source);
        self.execute(call).await.map(drop)
    }

    /// One part of a multipart upload: `PUT` to the part URL (used verbatim, without the token);
    /// returns the `ETag` the storage answered, quotes included.
    pub async fn lfs_upload_part(
        &self,
        part_url: &str,
        source: UploadSource,
    ) -> Result<String, HubError> {
        let action = "upload a part of an LFS object";
        let url = Url::parse(part_url).map_err(|e| {
            HubError::new(ErrorKind::InvalidUrl, action)
                .with_detail(format!("the Hub gave `{}`", RedactedUrl::parse(part_url)))
                .with_source(e)
        })?;
        let mut call = Call::new(Method::PUT, url, action, Idempotency::Idempotent);
        call.auth = false;
        call.payload = Payload::Upload(source);
        let answer = self.execute(call).await?;
        answer.header("etag").ok_or_else(|| {
            HubError::new(ErrorKind::Protocol, action)
                .with_request(answer.request)
                .with_detail("the storage answered without an `ETag` header")
        })
    }

    /// Completes a multipart upload: `POST` the part ETags to the upload `href`, without the
    /// token. Retried: completing the same object twice is harmless.
    pub async fn lfs_complete(
        &self,
        href: &str,
        request: &LfsCompleteRequest,
    ) -> Result<(), HubError> {
        let action = "complete a multipart LFS upload";
        let url = self.hub_given_url(href, action)?;
        let mut call = Call::new(Method::POST, url, action, Idempotency::Idempotent)
            .header(header::ACCEPT, api::GIT_LFS_JSON)
            .body(
                api::GIT_LFS_JSON,
                serde_json::to_vec(request).expect("LFS completion serializes"),
            );
        call.auth = false;
        self.execute(call).await.map(drop)
    }

    /// `POST` to the verify `href` with the token: the Hub confirms it holds the object.
    pub async fn lfs_verify(&self, href: &str, request: &LfsVerifyRequest) -> Result<(), HubError> {
        let action = format!("verify the LFS object `{}`", request.oid);
        let url = self.hub_given_url(href, &action)?;
        let call = Call::new(Method::POST, url, action, Idempotency::Idempotent)
            .header(header::ACCEPT, api::GIT_LFS_JSON)
            .body(
                api::GIT_LFS_JSON,
                serde_json::to_vec(request).expect("LFS verify serializes"),
            );
        self.execute(call).await.map(drop)
    }

    /// Carries out one object of an LFS batch answer with the file at `path`: nothing when the
    /// Hub has it, else a basic PUT or the multipart parts (in order) and completion, then
    /// verify when asked. An object error in the answer is [`ErrorKind::BadRequest`].
    pub async fn upload_lfs_object(
        &self,
        object: &LfsObjectAnswer,
        path: &Path,
    ) -> Result<LfsTransfer, HubError> {
        if let Some(err) = &object.error {
            return Err(HubError::new(
                ErrorKind::BadRequest,
                format!("upload the LFS object `{}`", object.oid),
            )
            .with_detail(format!(
                "the LFS batch answered {}: {}",
                err.code, err.message
            )));
        }
        let Some(actions) = &object.actions else {
            return Ok(LfsTransfer::AlreadyPresent);
        };
        let Some(upload) = &actions.upload else {
            return Ok(LfsTransfer::AlreadyPresent);
        };
        let transfer = match MultipartPlan::from_action(upload, object.size)? {
            None => {
                self.lfs_upload(&upload.href, UploadSource::file(path))
                    .await?;
                LfsTransfer::Basic
            }
            Some(plan) => {
                let mut completed = Vec::with_capacity(plan.parts.len());
                for (number, part_url) in &plan.parts {
                    let offset = u64::from(number - 1) * plan.chunk_size;
                    let len = plan.chunk_size.min(object.size.saturating_sub(offset));
                    let etag = self
                        .lfs_upload_part(part_url, UploadSource::file_range(path, offset, len))
                        .await?;
                    completed.push(CompletedPart {
                        part_number: *number,
                        etag,
                    });
                }
                let parts = completed.len();
                self.lfs_complete(
                    &upload.href,
                    &LfsCompleteRequest {
                        oid: object.oid.clone(),
                        parts: completed,
                    },
                )
                .await?;
                LfsTransfer::Multipart { parts }
            }
        };
        if let Some(verify) = &actions.verify {
            self.lfs_verify(
                &verify.href,
                &LfsVerifyRequest {
                    oid: object.oid.clone(),
                    size: object.size,
                },
            )
            .await?;
        }
        Ok(transfer)
    }

    /// `POST /api/{type}s/{id}/commit/{rev}`: the header line then `operations` as NDJSON.
    /// Sent exactly once. A stale `parentCommit` is [`ErrorKind::PreconditionFailed`]; a
    /// failure after the body may have reached the Hub is [`ErrorKind::Ambiguous`], and the
    /// caller must re-read the branch head before deciding to commit again.
    pub async fn commit(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        header: &CommitHeader,
        operations: &[CommitLine],
        create_pr: bool,
    ) -> Result<CommitResponse, HubError> {
        debug_assert!(
            !operations
                .iter()
                .any(|l| matches!(l, CommitLine::Header(_))),
            "the header line comes from `header`"
        );
        let mut body = Vec::new();
        for line in std::iter::once(&CommitLine::Header(header.clone())).chain(operations) {
            serde_json::to_writer(&mut body, line).expect("commit lines serialize");
            body.push(b'\n');
        }
        let mut url = self.url(&format!(
            "{}/commit/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(revision)
        ))?;
        if create_pr {
            url.query_pairs_mut().append_pair("create_pr", "1");
        }
        let call = Call::new(
            Method::POST,
            url,
            format!("commit to {repo_type} `{repo}` at `{revision}`"),
            Idempotency::NotIdempotent,
        )
        .body(api::NDJSON, body);
        self.json(call).await
    }

    /// `POST /api/{type}s/{id}/branch/{branch}`, from `starting_point` (a branch, tag or commit)
    /// or the default branch. An existing branch is [`ErrorKind::Conflict`]. Not retried.
    pub async fn create_branch(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        branch: &str,
        starting_point: Option<&str>,
    ) -> Result<(), HubError> {
        let url = self.url(&format!(
            "{}/branch/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(branch)
        ))?;
        let call = Call::new(
            Method::POST,
            url,
            format!("create the branch `{branch}` in {repo_type} `{repo}`"),
            Idempotency::NotIdempotent,
        )
        .json(&CreateBranchRequest {
            starting_point: starting_point.map(str::to_string),
        });
        self.execute(call).await.map(drop)
    }

    /// `DELETE /api/{type}s/{id}/branch/{branch}`. Not retried.
    pub async fn delete_branch(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        branch: &str,
    ) -> Result<(), HubError> {
        let url = self.url(&format!(
            "{}/branch/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(branch)
        ))?;
        let call = Call::new(
            Method::DELETE,
            url,
            format!("delete the branch `{branch}` of {repo_type} `{repo}`"),
            Idempotency::NotIdempotent,
        );
        self.execute(call).await.map(drop)
    }

    /// `POST /api/{type}s/{id}/tag/{revision}` with `{"tag", "message"?}`: tags `revision`.
    /// An existing tag is [`ErrorKind::Conflict`]. Not retried.
    pub async fn create_tag(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        tag: &str,
        revision: &str,
        message: Option<&str>,
    ) -> Result<(), HubError> {
        let url = self.url(&format!(
            "{}/tag/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(revision)
        ))?;
        let call = Call::new(
            Method::POST,
            url,
            format!("create the tag `{tag}` at `{revision}` in {repo_type} `{repo}`"),
            Idempotency::NotIdempotent,
        )
        .json(&CreateTagRequest {
            tag: tag.to_string(),
            message: message.map(str::to_string),
        });
        self.execute(call).await.map(drop)
    }

    /// `DELETE /api/{type}s/{id}/tag/{tag}`. Not retried.
    pub async fn delete_tag(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        tag: &str,
    ) -> Result<(), HubError> {
        let url = self.url(&format!(
            "{}/tag/{}",
            api::api_repo_path(repo_type, repo),
            api::encode_segment(tag)
        ))?;
        let call = Call::new(
            Method::DELETE,
            url,
            format!("delete the tag `{tag}` of {repo_type} `{repo}`"),
            Idempotency::NotIdempotent,
        );
        self.execute(call).await.map(drop)
    }

    // ---- Spaces --------------------------------------------------------------------------
    //
    // Secret and variable writes set or remove one key, and hardware and sleep-time requests
    // set one value: repeating them leaves the same state, so they are retried.

    /// `GET /api/spaces/{id}/secrets`: keys and metadata, never values.
    pub async fn get_space_secrets(
        &self,
        repo: &RepoId,
    ) -> Result<BTreeMap<String, SecretEntry>, HubError> {
        let url = self.url(&format!("{}/secrets", space_path(repo)))?;
        self.json(Call::get(
            url,
            format!("list the secrets of space `{repo}`"),
        ))
        .await
    }

    /// `POST /api/spaces/{id}/secrets`: adds or replaces a secret.
    pub async fn add_space_secret(
        &self,
        repo: &RepoId,
        key: &str,
        value: &Secret<String>,
        description: Option<&str>,
    ) -> Result<(), HubError> {
        let url = self.url(&format!("{}/secrets", space_path(repo)))?;
        let call = Call::new(
            Method::POST,
            url,
            format!("set the secret `{key}` of space `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(&KeyValue {
            key: key.to_string(),
            value: value.expose().clone(),
            description: description.map(str::to_string),
        });
        self.execute(call).await.map(drop)
    }

    /// `DELETE /api/spaces/{id}/secrets`; a missing key is not an error.
    pub async fn delete_space_secret(&self, repo: &RepoId, key: &str) -> Result<(), HubError> {
        let url = self.url(&format!("{}/secrets", space_path(repo)))?;
        let call = Call::new(
            Method::DELETE,
            url,
            format!("delete the secret `{key}` of space `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(&KeyRequest {
            key: key.to_string(),
        });
        self.execute(call).await.map(drop)
    }

    /// `GET /api/spaces/{id}/variables`.
    pub async fn get_space_variables(
        &self,
        repo: &RepoId,
    ) -> Result<BTreeMap<String, VariableEntry>, HubError> {
        let url = self.url(&format!("{}/variables", space_path(repo)))?;
        self.json(Call::get(
            url,
            format!("list the variables of space `{repo}`"),
        ))
        .await
    }

    /// `POST /api/spaces/{id}/variables`: adds or replaces a variable; returns all of them.
    pub async fn add_space_variable(
        &self,
        repo: &RepoId,
        key: &str,
        value: &str,
        description: Option<&str>,
    ) -> Result<BTreeMap<String, VariableEntry>, HubError> {
        let url = self.url(&format!("{}/variables", space_path(repo)))?;
        let call = Call::new(
            Method::POST,
            url,
            format!("set the variable `{key}` of space `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(&KeyValue {
            key: key.to_string(),
            value: value.to_string(),
            description: description.map(str::to_string),
        });
        self.json(call).await
    }

    /// `DELETE /api/spaces/{id}/variables`; returns the remaining variables.
    pub async fn delete_space_variable(
        &self,
        repo: &RepoId,
        key: &str,
    ) -> Result<BTreeMap<String, VariableEntry>, HubError> {
        let url = self.url(&format!("{}/variables", space_path(repo)))?;
        let call = Call::new(
            Method::DELETE,
            url,
            format!("delete the variable `{key}` of space `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(&KeyRequest {
            key: key.to_string(),
        });
        self.json(call).await
    }

    /// `POST /api/spaces/{id}/hardware`.
    pub async fn request_space_hardware(
        &self,
        repo: &RepoId,
        flavor: &str,
        sleep_time_seconds: Option<i64>,
    ) -> Result<SpaceRuntime, HubError> {
        let url = self.url(&format!("{}/hardware", space_path(repo)))?;
        let call = Call::new(
            Method::POST,
            url,
            format!("request the hardware `{flavor}` for space `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(&HardwareRequest {
            flavor: flavor.to_string(),
            sleep_time_seconds,
        });
        self.json(call).await
    }

    /// `POST /api/spaces/{id}/sleeptime` (`-1`: never sleep). The runtime's `gcTimeout` says
    /// the value back.
    pub async fn set_space_sleep_time(
        &self,
        repo: &RepoId,
        seconds: i64,
    ) -> Result<SpaceRuntime, HubError> {
        let url = self.url(&format!("{}/sleeptime", space_path(repo)))?;
        let call = Call::new(
            Method::POST,
            url,
            format!("set the sleep time of space `{repo}`"),
            Idempotency::Idempotent,
        )
        .json(&SleepTimeRequest { seconds });
        self.json(call).await
    }

    /// `GET /api/spaces/{id}/runtime`.
    pub async fn get_space_runtime(&self, repo: &RepoId) -> Result<SpaceRuntime, HubError> {
        let url = self.url(&format!("{}/runtime", space_path(repo)))?;
        self.json(Call::get(
            url,
            format!("read the runtime of space `{repo}`"),
        ))
        .await
    }

    // ---- downloads -----------------------------------------------------------------------

    fn resolve_url(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        path: &str,
    ) -> Result<Url, HubError> {
        self.url(&format!(
            "{}/resolve/{}/{}",
            api::web_repo_path(repo_type, repo),
            api::encode_segment(revision),
            api::encode_path(path)
        ))
    }

    /// `HEAD {prefix}{id}/resolve/{rev}/{path}`: the file's commit, ETag and size, following
    /// redirects on the Hub's origin only. Retried when transient.
    pub async fn file_metadata(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        path: &str,
    ) -> Result<FileMetadata, HubError> {
        let url = self.resolve_url(repo_type, repo, revision, path)?;
        let action =
            format!("read the metadata of `{path}` in {repo_type} `{repo}` at `{revision}`");
        let mut call = Call::new(Method::HEAD, url, action.clone(), Idempotency::Idempotent)
            .header(header::ACCEPT_ENCODING, "identity");
        call.head_client = true;
        let answer = self.execute(call).await?;
        let missing = |what: &str| {
            HubError::new(ErrorKind::Protocol, action.clone())
                .with_request(answer.request.clone())
                .with_detail(format!("the answer has no `{what}` header"))
        };
        let commit = answer
            .header(api::X_REPO_COMMIT)
            .ok_or_else(|| missing("X-Repo-Commit"))?;
        let etag = answer
            .header(api::X_LINKED_ETAG)
            .or_else(|| answer.header("etag"))
            .map(|e| unquote_etag(&e))
            .ok_or_else(|| missing("ETag"))?;
        let redirected = answer.status.is_redirection();
        let size = answer
            .header(api::X_LINKED_SIZE)
            .or_else(|| {
                (!redirected)
                    .then(|| answer.header("content-length"))
                    .flatten()
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| missing("X-Linked-Size"))?;
        let location = if redirected {
            answer
                .header("location")
                .and_then(|l| answer.url.join(&l).ok())
                .map(|u| u.to_string())
        } else {
            None
        };
        Ok(FileMetadata {
            commit,
            etag,
            size,
            location,
        })
    }

    /// `GET {prefix}{id}/resolve/{rev}/{path}`, optionally a byte range, returned unread so it
    /// can be streamed. Failures before the body starts are retried; a broken body is not.
    pub async fn download(
        &self,
        repo_type: RepoType,
        repo: &RepoId,
        revision: &str,
        path: &str,
        range: Option<ByteRange>,
    ) -> Result<Download, HubError> {
        let url = self.resolve_url(repo_type, repo, revision, path)?;
        let action = format!("download `{path}` from {repo_type} `{repo}` at `{revision}`");
        let mut call = Call::get(url, action.clone());
        call.read_body = false;
        if let Some(range) = range {
            call.headers.push((
                header::RANGE,
                HeaderValue::from_str(&range.header_value()).expect("range header is ASCII"),
            ));
        }
        let mut answer = self.execute(call).await?;
        let response = answer.response.take().expect("unread response requested");
        Ok(Download {
            status: answer.status.as_u16(),
            commit: answer.header(api::X_REPO_COMMIT),
            etag: answer
                .header(api::X_LINKED_ETAG)
                .or_else(|| answer.header("etag"))
                .map(|e| unquote_etag(&e)),
            content_length: response.content_length(),
            content_range: answer.header("content-range"),
            response,
            action,
            request: answer.request,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let links = parse_link_header(
            r#"<https://hub/api/models/a/b/tree/main?recursive=1&cursor=x,y>; rel="next", <https://hub/last>; rel="last""#,
        );
        assert_eq!(
            links,
            vec![
                LinkValue {
                    url: "https://hub/api/models/a/b/tree/main?recursive=1&cursor=x,y".into(),
                    rels: vec!["next".into()]
                },
                LinkValue {
                    url: "https://hub/last".into(),
                    rels: vec!["last".into()]
                },
            ]
        );
        assert_eq!(
            parse_link_header(r#"<u>;rel=next"#)[0].rels,
            vec!["next".to_string()]
        );
        assert_eq!(
            parse_link_header(r#"<u>; title="a, b"; rel="prev next""#)[0].rels,
            vec!["prev".to_string(), "next".to_string()]
        );
        assert!(parse_link_header("garbage").is_empty());
    }

    #[test]
    fn next_link_resolves_and_ignores_other_rels() {
        let current = Url::parse("http://127.0.0.1:9/api/models/a/b/tree/main?x=1").unwrap();
        let mut h = HeaderMap::new();
        h.append(
            header::LINK,
            HeaderValue::from_static(r#"<http://o/prev>; rel="prev""#),
        );
        assert_eq!(next_link(&h, &current), None);
        h.append(
            header::LINK,
            HeaderValue::from_static(r#"</api/models/a/b/tree/main?cursor=3>; rel="next""#),
        );
        assert_eq!(
            next_link(&h, &current).unwrap().as_str(),
            "http://127.0.0.1:9/api/models/a/b/tree/main?cursor=3"
        );
    }

    #[test]
    fn multipart_plans() {
        let mut header = BTreeMap::new();
        header.insert("chunk_size".to_string(), "4".to_string());
        header.insert("00002".to_string(), "http://s/2".to_string());
        header.insert("00001".to_string(), "http://s/1".to_string());
        header.insert("00003".to_string(), "http://s/3".to_string());
        let action = LfsAction {
            href: "http://s/complete".into(),
            header,
        };
        let plan = MultipartPlan::from_action(&action, 10).unwrap().unwrap();
        assert_eq!(plan.chunk_size, 4);
        assert_eq!(
            plan.parts.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let err = MultipartPlan::from_action(&action, 13).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        let basic = LfsAction {
            href: "http://s/put".into(),
            header: BTreeMap::new(),
        };
        assert_eq!(MultipartPlan::from_action(&basic, 10).unwrap(), None);
    }

    #[test]
    fn endpoints_are_validated_and_normalised() {
        let c = HubClient::new("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!(c.endpoint(), "http://127.0.0.1:8080");
        assert_eq!(
            HubClient::new("localhost", None).unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        let err = HubClient::new("https://u:p@hub.example", None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
        assert!(!err.to_string().contains(":p@"));
    }

    #[test]
    fn hub_urls_are_rewritten_to_the_endpoint_and_tokens_stay_home() {
        let c = HubClient::new(
            "http://127.0.0.1:8080",
            Some(Secret::new("hf_secret".to_string())),
        )
        .unwrap();
        let u = c
            .hub_given_url(
                "https://huggingface.co/alice/x.git/info/lfs/objects/verify",
                "t",
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8080/alice/x.git/info/lfs/objects/verify"
        );
        assert!(c.same_origin(&u));
        assert!(!c.same_origin(&Url::parse("http://127.0.0.1:8081/x").unwrap()));
        assert!(!format!("{c:?}").contains("hf_secret"));
    }

    #[test]
    fn etags_are_unquoted() {
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
        assert_eq!(unquote_etag("\"abc\""), "abc");
        assert_eq!(unquote_etag("abc"), "abc");
    }

    #[test]
    fn ranges() {
        assert_eq!(
            ByteRange {
                start: 3,
                end: Some(9)
            }
            .header_value(),
            "bytes=3-9"
        );
        assert_eq!(
            ByteRange {
                start: 3,
                end: None
            }
            .header_value(),
            "bytes=3-"
        );
    }

    #[tokio::test]
    async fn upload_sources_read_ranges_and_refuse_short_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        std::fs::write(&p, b"0123456789").unwrap();
        let (_, len) = UploadSource::file_range(&p, 4, 3)
            .body_for_attempt()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len, 3);
        let (_, len) = UploadSource::file(&p)
            .body_for_attempt()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len, 10);
        assert!(
            UploadSource::file_range(&p, 8, 3)
                .body_for_attempt()
                .await
                .is_err()
        );
        let once = UploadSource::body(reqwest::Body::from("x"), 1);
        assert!(once.body_for_attempt().await.unwrap().is_some());
        assert!(once.body_for_attempt().await.unwrap().is_none());
    }
}
