//! Which failures are worth retrying, and how long to wait.
//!
//! A failure is *transient* when trying again may succeed: the connection could not be made or
//! broke (refused, reset, timed out), or the Hub answered 408, 429, 500, 502, 503 or 504 (the set
//! `huggingface_hub`'s `http_backoff` retries). Everything else is *fatal*.
//!
//! Only [`Idempotency::Idempotent`] calls are retried automatically. A non-idempotent call (a
//! commit, creating a repo, branch or tag) is sent once: when it fails after it may have reached
//! the Hub, the client reports [`ErrorKind::Ambiguous`](super::ErrorKind::Ambiguous) and the
//! caller decides (apply re-reads the head instead of re-sending).
//!
//! The wait before retry `n` (0-based) is `base_delay * 2^n`, capped at `max_delay`: 1, 2, 4, 8,
//! 8 s by default, like `huggingface_hub`. No jitter, so tests are deterministic. When the Hub
//! says how long to wait (`RateLimit: "api";r=0;t=N` on a 429 means `N + 1` s, else
//! `Retry-After: N`), that wait is used instead, unless it exceeds `max_server_delay`, in which
//! case the call fails at once with the wait in the error.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// How a client retries transient failures of idempotent calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub base_delay: Duration,
    /// Cap of the doubling wait.
    pub max_delay: Duration,
    /// The longest server-requested wait (`Retry-After`, `RateLimit`) the client will sleep.
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries waiting 1, 2, 4, 8, 8 s; server-requested waits up to the Hub's 5-minute
    /// rate-limit window (plus the one second `huggingface_hub` adds).
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            max_server_delay: Duration::from_secs(301),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry `retry` (0-based), ignoring server hints.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry `retry` given the server's hint, or `None` when the client should
    /// not retry (retries used up, or the server asks for longer than `max_server_delay`).
    pub fn delay(&self, retry: u32, server_hint: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        match server_hint {
            Some(hint) if hint > self.max_server_delay => None,
            Some(hint) => Some(hint),
            None => Some(self.backoff(retry)),
        }
    }
}

/// Whether a call may be sent again without changing its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, content-addressed uploads, and calls that set a value: retried when transient.
    Idempotent,
    /// Commits and creations: sent once; a failure after sending is ambiguous.
    NotIdempotent,
}

/// Whether a status is worth retrying (`huggingface_hub`'s set).
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// How a transport error (no HTTP answer) is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransportClass {
    /// The request never left: connection refused, DNS, connect timeout. Transient.
    NotSent,
    /// The request may have reached the Hub: reset, timeout, or the answer broke. Transient.
    MaybeSent,
    /// Retrying cannot help (TLS certificate errors, invalid requests, redirect loops).
    Fatal,
}

pub(crate) fn classify_transport(err: &reqwest::Error) -> TransportClass {
    if err.is_builder() || err.is_redirect() || is_tls_error(err) {
        return TransportClass::Fatal;
    }
    if err.is_connect() {
        return TransportClass::NotSent;
    }
    if err.is_timeout() || err.is_request() || err.is_body() || err.is_decode() {
        return TransportClass::MaybeSent;
    }
    TransportClass::Fatal
}

/// Whether a rustls error (a certificate problem, not a network one) is in the cause chain.
fn is_tls_error(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// `Retry-After` in its delay-seconds form; HTTP dates are ignored, as the Hub sends seconds.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A parsed `RateLimit: "api";r=<remaining>;t=<seconds to reset>` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The bucket: `api`, `resolvers` or `pages`.
    pub resource: String,
    pub remaining: u64,
    pub reset: Duration,
}

/// Parses the first item of a `RateLimit` header.
pub fn parse_rate_limit(value: &str) -> Option<RateLimit> {
    let item = value.split(',').next()?;
    let mut parts = item.split(';').map(str::trim);
    let resource = parts.next()?.trim_matches('"').to_string();
    let mut remaining = None;
    let mut reset = None;
    for param in parts {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim() {
            "r" => remaining = v.parse::<u64>().ok(),
            "t" => reset = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    Some(RateLimit {
        resource,
        remaining: remaining?,
        reset: Duration::from_secs(reset?),
    })
}

/// How long the Hub asked the client to wait: on a 429 whose `RateLimit` says no requests are
/// left, until the window resets plus one second; otherwise `Retry-After`, if any.
pub fn server_delay_hint(status: u16, headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if status == 429
        && let Some(rl) = header("ratelimit").and_then(parse_rate_limit)
        && rl.remaining == 0
    {
        return Some(rl.reset + Duration::from_secs(1));
    }
    header("retry-after").and_then(parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn default_backoff_is_huggingface_hubs() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (0..5)
            .map(|n| p.delay(n, None).unwrap().as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 8]);
        assert_eq!(p.delay(5, None), None);
        assert_eq!(RetryPolicy::none().delay(0, None), None);
        assert_eq!(p.backoff(40), Duration::from_secs(8));
    }

    #[test]
    fn server_hints_win_unless_too_long() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(3600))), None);
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn rate_limit_header() {
        assert_eq!(
            parse_rate_limit(r#""api";r=0;t=55"#),
            Some(RateLimit {
                resource: "api".into(),
                remaining: 0,
                reset: Duration::from_secs(55)
            })
        );
        assert_eq!(
            parse_rate_limit(r#""resolvers" ; t=9 ; r=12"#).map(|r| (r.remaining, r.reset)),
            Some((12, Duration::from_secs(9)))
        );
        assert_eq!(parse_rate_limit(r#""api";r=0"#), None);
        assert_eq!(parse_rate_limit("garbage"), None);
    }

    #[test]
    fn hint_prefers_rate_limit_on_429() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit", HeaderValue::from_static(r#""api";r=0;t=4"#));
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(server_delay_hint(429, &h), Some(Duration::from_secs(5)));
        assert_eq!(server_delay_hint(503, &h), Some(Duration::from_secs(2)));
        h.insert("ratelimit", HeaderValue::from_static(r#""api";r=3;t=4"#));
        assert_eq!(server_delay_hint(429, &h), Some(Duration::from_secs(2)));
        assert_eq!(server_delay_hint(429, &HeaderMap::new()), None);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 422, 501] {
            assert!(!is_transient_status(s), "{s}");
        }
    }
}
