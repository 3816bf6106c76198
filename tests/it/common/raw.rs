//! Raw HTTP/1.1 over a plain `TcpStream`, for requests no well-behaved client would send: `..`
//! segments that `url` would normalise away, lying `Content-Length`s, header floods, bodies cut
//! off half-way. Blocking and dependency-free on purpose, so what goes on the wire is exactly
//! what the test wrote.
//!
//! ```ignore
//! let r = raw::req("GET", "/api/models/alice/r/tree/main/..").token(TOKEN).send(hub.url())?;
//! assert_eq!(r.status, 404);
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response as read off the wire.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (naming the body) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {}", self.status, self.text()))
    }

    /// `X-Error-Code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.header("x-error-code")
    }

    /// Everything a client could read: status line, headers and body, for leak checks.
    pub fn everything(&self) -> String {
        let mut s = format!("{}\n", self.status);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&self.text());
        s
    }
}

/// A request being built; see [`req`].
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send `Content-Length` for the body (off when the test sets its own framing).
    auto_length: bool,
}

/// Starts a request with `method` and the exact request target `target` (sent verbatim).
pub fn req(method: &str, target: &str) -> Request {
    Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        auto_length: true,
    }
}

impl Request {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            self.auto_length = false;
        }
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `Authorization: Bearer TOKEN`, when `token` is some.
    pub fn token(self, token: Option<&str>) -> Self {
        match token {
            Some(t) => self.header("authorization", &format!("Bearer {t}")),
            None => self,
        }
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("content-type", content_type)
    }

    pub fn json(self, v: &serde_json::Value) -> Self {
        self.body("application/json", v.to_string())
    }

    /// The bytes this request puts on the wire.
    pub fn to_bytes(&self, host: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: {host}\r\n",
            self.method, self.target
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let bodyless = matches!(self.method.as_str(), "GET" | "HEAD") && self.body.is_empty();
        if self.auto_length && !bodyless {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends the request to `base` (`http://HOST:PORT`) and reads the whole response.
    pub fn send(&self, base: &str) -> std::io::Result<Response> {
        let host = host_of(base);
        let mut s = connect(base)?;
        s.write_all(&self.to_bytes(host))?;
        read_response(&mut s, self.method == "HEAD")
    }
}

fn host_of(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

/// A connection to `base` with generous timeouts, so a hung server fails the test instead of
/// hanging it.
pub fn connect(base: &str) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(host_of(base))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

/// Reads one response until the server closes the connection.
pub fn read_response(s: &mut TcpStream, head_only: bool) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, head_only)
}

fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<Response> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no response head (connection closed early?)"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(rest.len());
        rest[..len.min(rest.len())].to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
