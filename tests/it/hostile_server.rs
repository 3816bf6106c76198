//! The client against broken and hostile servers: HTML error pages, truncated or endless JSON,
//! wrong content types, redirects to other hosts, a wrong token, servers that hang. The real
//! hub never does these, so most cases use a tiny raw HTTP server (std threads, canned bytes)
//! that does exactly one wrong thing; the wrong-token case uses the real hub.
//!
//! Every case checks the error the library returns, and the binary is run against the worst
//! ones: it must exit 1 with a short error, never a panic or a page of HTML.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hubsync::api::{RepoId, RepoType};
use hubsync::client::{ErrorKind, HubClient, HubError, RetryPolicy};
use hubsync::util::secret::Secret;

use crate::common::{TestHub, fast_retries, hubsync, output_text, record_figures};

/// A token only these tests use, so its absence from a server's log means something.
const TOKEN: &str = "hf_hostile_server_token_5b1e";

/// What the raw server does with a request.
#[derive(Clone)]
enum Reply {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Keep the connection open and say nothing.
    Hang,
    /// Write these bytes (headers, the start of a body), then keep the connection open.
    Stall(Vec<u8>),
    /// Write these headers, then the chunk again and again until the client hangs up.
    Endless(Vec<u8>, Vec<u8>),
}

/// A raw HTTP/1.1 server on `127.0.0.1:0` that answers every request with `reply(request
/// head)` and records each request head.
struct RawServer {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    fn start(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let reply = Arc::new(reply);
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (reply, seen) = (reply.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &*reply, &seen));
            }
        });
        RawServer { url, heads }
    }

    /// The request heads received so far, lowercased.
    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn serve(
    mut stream: TcpStream,
    reply: &(dyn Fn(&str) -> Reply + Send + Sync),
    seen: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let head = head.to_ascii_lowercase();
    // Drain a request body so the client is not blocked writing it.
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        let _ = std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink());
    }
    seen.lock().unwrap().push(head.clone());
    match reply(&head) {
        Reply::Bytes(b) => {
            let _ = stream.write_all(&b);
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(20)),
        Reply::Stall(b) => {
            let _ = stream.write_all(&b);
            std::thread::sleep(Duration::from_secs(20));
        }
        Reply::Endless(headers, chunk) => {
            let _ = stream.write_all(&headers);
            while stream.write_all(&chunk).is_ok() {}
        }
    }
}

/// An HTTP answer with a body and `Connection: close`.
fn answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn client(url: &str, retry: RetryPolicy) -> HubClient {
    HubClient::builder(url)
        .token(Some(Secret::new(TOKEN.to_string())))
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn repo() -> RepoId {
    RepoId::parse("alice/x").unwrap()
}

/// `repo_info` of `alice/x` on `url`: the error it must end with.
fn repo_info_err(c: &HubClient) -> HubError {
    rt().block_on(c.repo_info(RepoType::Model, &repo(), None))
        .expect_err("a broken server's answer was accepted")
}

/// The error and its causes, as `hubsync` prints them.
fn chain(e: &HubError) -> String {
    hubsync::util::error::messages(e).join("\n  caused by: ")
}

/// `hubsync plan` of a one-repo manifest against `url`.
fn plan_against(url: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/a.txt"), "a\n").unwrap();
    std::fs::write(
        dir.path().join("hubsync.yaml"),
        "version: 1\nrepos:\n  - id: alice/x\n    files:\n      - local: ./src\n",
    )
    .unwrap();
    let mut c = hubsync(url, dir.path(), &["plan"]);
    c.env("HF_TOKEN", TOKEN);
    c.output().unwrap()
}

/// Exit 1 with a short, plain error: no panic, no HTML, no control characters, no token.
fn assert_one_screen(o: &std::process::Output, must_contain: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{}", output_text(o));
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: failed to "), "{err}");
    assert!(err.lines().count() <= 12, "more than a screen:\n{err}");
    assert!(err.len() <= 1500, "more than a screen:\n{err}");
    assert!(!err.contains('<'), "markup in the error:\n{err}");
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in the error: {err:?}"
    );
    assert!(!err.contains(TOKEN), "{err}");
    assert!(
        err.contains(must_contain),
        "expected `{must_contain}` in:\n{err}"
    );
    err
}

/// A repo-info answer as the Hub sends it (the fields hubsync requires).
const REPO_INFO: &[u8] =
    br#"{"id":"alice/x","sha":"0123456789012345678901234567890123456789","private":false,"gated":false}"#;

const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>\
    <script>window.location='http://phish.example'</script></head>\n<body><h1>Bad Gateway</h1>\
    <p>The proxy received an invalid response. cf-ray: 7d1e</p></body></html>\n";

#[test]
fn html_error_pages_are_named_not_dumped() {
    // 502 with an HTML page, retried (it is transient) and then reported.
    let s = RawServer::start(|_| {
        Reply::Bytes(answer(
            "502 Bad Gateway",
            &[("content-type", "text/html; charset=utf-8")],
            HTML_PAGE.as_bytes(),
        ))
    });
    let retry = RetryPolicy {
        max_retries: 2,
        ..fast_retries()
    };
    let e = repo_info_err(&client(&s.url, retry));
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(
        e.to_string(),
        format!(
            "failed to read model `alice/x`: the Hub answered 502 Bad Gateway to `GET {}/api/models/alice/x` (HTML error page) after 3 attempts",
            s.url
        )
    );
    assert_eq!(s.heads().len(), 3);

    // A proxy's login page with `200 OK` and no doctype: still not the Hub's JSON, still named.
    let s = RawServer::start(|_| {
        Reply::Bytes(answer(
            "200 OK",
            &[("content-type", "text/html")],
            b"<head><title>Sign in to the Wi-Fi</title></head><form action=/login>",
        ))
    });
    let e = repo_info_err(&client(&s.url, fast_retries()));
    assert_eq!(e.kind(), ErrorKind::Decode);
    let text = chain(&e);
    assert!(text.contains("200 with body `HTML error page`"), "{text}");
    assert!(!text.contains('<'), "{text}");

    // The binary, on a 403 page from a firewall (not retried).
    let s = RawServer::start(|_| {
        Reply::Bytes(answer(
            "403 Forbidden",
            &[("content-type", "text/html")],
            HTML_PAGE.as_bytes(),
        ))
    });
    let err = assert_one_screen(&plan_against(&s.url), "(HTML error page)");
    assert!(
        err.contains(&format!(
            "the Hub answered 403 Forbidden to `GET {}/api/models/alice/x` (HTML error page)",
            s.url
        )),
        "{err}"
    );
    record_figures(
        "hostile_server::html_error_pages_are_named_not_dumped",
        serde_json::json!({ "bad_inputs": 3 }),
    );
}

#[test]
fn truncated_and_garbled_json_is_a_decode_error() {
    let truncated = br#"{"id":"alice/x","private":false,"sha":"0123456789abcdef"#;
    let s = RawServer::start(|_| {
        Reply::Bytes(answer(
            "200 OK",
            &[("content-type", "application/json")],
            truncated,
        ))
    });
    let e = repo_info_err(&client(&s.url, fast_retries()));
    assert_eq!(e.kind(), ErrorKind::Decode);
    let text = chain(&e);
    assert!(text.contains("EOF while parsing"), "{text}");
    assert_eq!(
        s.heads().len(),
        1,
        "a bad answer is not a transient failure"
    );
    assert_one_screen(&plan_against(&s.url), "EOF while parsing");

    // A body cut short of its Content-Length: the connection broke, retried, then reported.
    let s = RawServer::start(|_| {
        let mut b = answer(
            "200 OK",
            &[("content-type", "application/json")],
            b"{\"id\":",
        );
        let at = b
            .windows(17)
            .position(|w| w == b"content-length: 6")
            .unwrap();
        b.splice(at..at + 17, b"content-length: 600".iter().copied());
        Reply::Bytes(b)
    });
    let e = repo_info_err(&client(&s.url, fast_retries()));
    assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: true }, "{e}");
    assert_eq!(s.heads().len(), 6);

    // JSON nested a million deep: serde's recursion limit, not a stack overflow.
    let deep = format!("{{\"gated\":{}", "[".repeat(1_000_000));
    let s = RawServer::start(move |_| {
        Reply::Bytes(answer(
            "200 OK",
            &[("content-type", "application/json")],
            deep.as_bytes(),
        ))
    });
    let e = repo_info_err(&client(&s.url, fast_retries()));
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(
        chain(&e).contains("recursion limit exceeded"),
        "{}",
        chain(&e)
    );
    record_figures(
        "hostile_server::truncated_and_garbled_json_is_a_decode_error",
        serde_json::json!({ "bad_inputs": 3 }),
    );
}

#[test]
fn wrong_content_types() {
    // Valid JSON labelled as text is read (like `huggingface_hub`, the body decides).
    let s = RawServer::start(|_| {
        Reply::Bytes(answer(
            "200 OK",
            &[("content-type", "text/plain")],
            REPO_INFO,
        ))
    });
    let info = rt()
        .block_on(client(&s.url, fast_retries()).repo_info(RepoType::Model, &repo(), None))
        .unwrap();
    assert_eq!(info.id, "alice/x");

    // Binary garbage as JSON: a decode error whose excerpt cannot drive a terminal.
    let mut garbage = b"\x1b[2J\x1b]0;pwned\x07".to_vec();
    garbage.extend((0u8..=255).cycle().take(2000));
    let s = RawServer::start(move |_| {
        Reply::Bytes(answer(
            "200 OK",
            &[("content-type", "application/octet-stream")],
            &garbage,
        ))
    });
    let e = repo_info_err(&client(&s.url, fast_retries()));
    assert_eq!(e.kind(), ErrorKind::Decode);
    let text = chain(&e);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(
        text.contains("200 with body `2014 bytes of binary data`"),
        "{text}"
    );
    assert_one_screen(
        &plan_against(&s.url),
        "with body `2014 bytes of binary data`",
    );

    // An error status whose body is an image.
    let s = RawServer::start(|_| {
        Reply::Bytes(answer(
            "500 Internal Server Error",
            &[("content-type", "image/png")],
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        ))
    });
    let e = repo_info_err(&client(&s.url, RetryPolicy::none()));
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(
        !chain(&e).chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        chain(&e)
    );
    record_figures(
        "hostile_server::wrong_content_types",
        serde_json::json!({ "bad_inputs": 3 }),
    );
}

#[test]
fn a_redirect_to_another_host_never_carries_the_token() {
    let elsewhere = RawServer::start(|_| {
        Reply::Bytes(answer(
            "200 OK",
            &[("content-type", "application/json")],
            REPO_INFO,
        ))
    });
    let target = elsewhere.url.clone();
    let hub = RawServer::start(move |head| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        Reply::Bytes(answer(
            "307 Temporary Redirect",
            &[("location", &format!("{target}{path}"))],
            b"",
        ))
    });

    // A read follows, without the token.
    let c = client(&hub.url, fast_retries());
    let info = rt()
        .block_on(c.repo_info(RepoType::Model, &repo(), None))
        .unwrap();
    assert_eq!(info.id, "alice/x");
    assert!(
        hub.heads()[0].contains(&format!("authorization: bearer {TOKEN}")),
        "the Hub itself gets the token"
    );

    // A write stops at the redirect: neither its body nor the token goes elsewhere.
    let e = rt()
        .block_on(c.create_branch(RepoType::Model, &repo(), "dev", None))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "failed to create the branch `dev` in model `alice/x`: the Hub answered 307 Temporary Redirect to `POST {}/api/models/alice/x/branch/dev`: not following its redirect to `{}/api/models/alice/x/branch/dev`: a write is never sent to another host",
            hub.url, elsewhere.url
        )
    );

    // The binary, with the token in the environment, ends with an error (the other host has
    // no such repo tree) and has not sent the token there either.
    let o = plan_against(&hub.url);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        output_text(&o)
    );
    let heads = elsewhere.heads();
    assert!(heads.len() >= 3, "{heads:?}");
    for head in &heads {
        assert!(!head.contains("authorization"), "{head}");
        assert!(!head.contains(&TOKEN.to_ascii_lowercase()), "{head}");
        assert!(
            head.starts_with("get "),
            "only reads were redirected: {head}"
        );
    }

    // A redirect loop ends, and `file://` is not a place to read from.
    let looping = RawServer::start(|head| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        Reply::Bytes(answer("302 Found", &[("location", &path)], b""))
    });
    let e = repo_info_err(&client(&looping.url, RetryPolicy::none()));
    assert!(chain(&e).contains("too many redirects"), "{}", chain(&e));
    assert!(looping.heads().len() <= 11);
    let local_file = RawServer::start(|_| {
        Reply::Bytes(answer(
            "302 Found",
            &[("location", "file:///etc/passwd")],
            b"",
        ))
    });
    let e = repo_info_err(&client(&local_file.url, RetryPolicy::none()));
    assert!(!chain(&e).contains("root:"), "{}", chain(&e));
    record_figures(
        "hostile_server::a_redirect_to_another_host_never_carries_the_token",
        serde_json::json!({
            "bad_inputs": 3,
            "secrets_checked": heads.len(),
        }),
    );
}

#[test]
fn a_wrong_token_gets_401_and_the_token_hint() {
    let hub = TestHub::start();
    let wrong = "hf_wrong_token_for_the_test_0000";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/a.txt"), "a\n").unwrap();
    std::fs::write(
        dir.path().join("hubsync.yaml"),
        "version: 1\nrepos:\n  - id: alice/x\n    files:\n      - local: ./src\n",
    )
    .unwrap();
    let hint = "\n\nhint: set `HF_TOKEN` or pass `--token` with a valid token (`hf auth login` writes one)\n";
    let from_env = {
        let mut c = hubsync(hub.url(), dir.path(), &["plan"]);
        c.env("HF_TOKEN", wrong);
        c.output().unwrap()
    };
    let from_flag = hubsync(hub.url(), dir.path(), &["--token", wrong, "apply", "-y"])
        .output()
        .unwrap();
    for o in [&from_env, &from_flag] {
        let err = assert_one_screen(o, "401 Unauthorized");
        assert!(err.ends_with(hint), "{err}");
        assert!(!err.contains(wrong), "{err}");
        assert!(!String::from_utf8_lossy(&o.stdout).contains(wrong));
    }
    // Nothing was created with the right token's user either.
    let e = rt()
        .block_on(hub.write_client().repo_info(RepoType::Model, &repo(), None))
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");

    let e = rt().block_on(hub.client(Some(wrong)).whoami()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(!chain(&e).contains(wrong));
    record_figures(
        "hostile_server::a_wrong_token_gets_401_and_the_token_hint",
        serde_json::json!({ "bad_inputs": 3, "secrets_checked": 5 }),
    );
}

#[test]
fn a_server_that_hangs_hits_the_read_timeout() {
    let timeout = Duration::from_millis(400);
    let quick = |url: &str| {
        HubClient::builder(url)
            .token(Some(Secret::new(TOKEN.to_string())))
            .retry_policy(RetryPolicy::none())
            .read_timeout(Some(timeout))
            .build()
            .unwrap()
    };
    // Silent after the request.
    let s = RawServer::start(|_| Reply::Hang);
    let started = Instant::now();
    let e = repo_info_err(&quick(&s.url));
    let took = started.elapsed();
    assert!(took >= timeout && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: true }, "{e}");
    assert!(chain(&e).contains("timed out"), "{}", chain(&e));

    // A commit to it is ambiguous: it may have landed.
    let started = Instant::now();
    let e = rt()
        .block_on(quick(&s.url).create_branch(RepoType::Model, &repo(), "dev", None))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");

    // Headers, half a body, then silence: the timeout covers every read, not just the first.
    let s = RawServer::start(|_| {
        let mut b = answer(
            "200 OK",
            &[("content-type", "application/json")],
            &[b' '; 100],
        );
        b.truncate(b.len() - 50);
        Reply::Stall(b)
    });
    let started = Instant::now();
    let e = repo_info_err(&quick(&s.url));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: true }, "{e}");
    record_figures(
        "hostile_server::a_server_that_hangs_hits_the_read_timeout",
        serde_json::json!({ "bad_inputs": 3 }),
    );
}

#[test]
fn an_endless_answer_is_cut_off() {
    let cap = 1024 * 1024;
    let capped = |url: &str| {
        HubClient::builder(url)
            .retry_policy(RetryPolicy::none())
            .max_answer_bytes(cap)
            .build()
            .unwrap()
    };
    // No length, and no end.
    let s = RawServer::start(|_| {
        Reply::Endless(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n["
                .to_vec(),
            b"0,".repeat(32 * 1024),
        )
    });
    let started = Instant::now();
    let e = repo_info_err(&capped(&s.url));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "failed to read model `alice/x` (`GET {}/api/models/alice/x`): the answer is longer than {cap} bytes, more than any Hub answer; is the endpoint a Hub?",
            s.url
        )
    );

    // A length announced far over the cap fails before reading.
    let s = RawServer::start(|_| {
        Reply::Stall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 99999999999\r\n\r\n[".to_vec(),
        )
    });
    let started = Instant::now();
    let e = repo_info_err(&capped(&s.url));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    record_figures(
        "hostile_server::an_endless_answer_is_cut_off",
        serde_json::json!({ "bad_inputs": 2 }),
    );
}
