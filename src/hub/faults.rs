//! Fault injection for the local Hub (`hub serve --faults SPEC`), off unless asked for. It sits
//! between the connection and the router, so it can do what a real network and a real Hub do:
//! answer 5xx or 429, delay, drop the connection mid-body, and — the important one — apply a
//! commit and then lose its response.
//!
//! SPEC is a comma-separated list of `[ROUTE:]KIND=VALUE`:
//! - `seed=N`: seed of the deterministic random generator (default 0).
//! - `http500=P`, `http502=P`, `http503=P`, `http429=P`: answer that status with probability P
//!   (429 carries `Retry-After: 1` and `RateLimit: "api";r=0;t=1`).
//! - `reset=P`: close the connection without an answer (for uploads, after reading part of the
//!   body; for downloads, after sending part of the body).
//! - `lost_commit_response=P`: apply a commit, then close the connection instead of answering.
//! - `delay=DUR[@P]`: wait DUR (e.g. `200ms`, `1s`) before handling the request.
//! - `slow_body=DUR[@P]`: wait DUR between 64 KiB chunks of a download.
//!
//! ROUTE limits a rule to one route label: whoami, repo_create, repo_delete, repo_info, tree,
//! paths_info, refs, commits, preupload, commit, branch, tag, settings, space, lfs_batch,
//! lfs_verify, lfs_upload, lfs_part, lfs_complete, resolve, other.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode};
use futures::StreamExt;
use serde::Serialize;

/// One kind of fault.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Status(u16),
    Reset,
    LostCommitResponse,
    Delay(Duration),
    SlowBody(Duration),
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    route: Option<String>,
    kind: Kind,
    probability: f64,
}

/// A parsed `--faults` spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    seed: u64,
    rules: Vec<Rule>,
}

const ROUTES: &[&str] = &[
    "whoami",
    "repo_create",
    "repo_delete",
    "repo_info",
    "tree",
    "paths_info",
    "refs",
    "commits",
    "preupload",
    "commit",
    "branch",
    "tag",
    "settings",
    "space",
    "lfs_batch",
    "lfs_verify",
    "lfs_upload",
    "lfs_part",
    "lfs_complete",
    "resolve",
    "other",
];

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 200ms, 1s)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms or s)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a probability"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("probability `{s}` must be between 0 and 1"))
    }
}

impl std::str::FromStr for FaultSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<FaultSpec, String> {
        let mut out = FaultSpec::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected KIND=VALUE"))?;
            let (route, kind) = match key.split_once(':') {
                Some((r, k)) => {
                    if !ROUTES.contains(&r) {
                        return Err(format!(
                            "`{item}`: unknown route `{r}` (one of {})",
                            ROUTES.join(", ")
                        ));
                    }
                    (Some(r.to_string()), k)
                }
                None => (None, key),
            };
            let timed = |v: &str| -> Result<(Duration, f64), String> {
                match v.split_once('@') {
                    Some((d, p)) => Ok((parse_duration(d)?, parse_probability(p)?)),
                    None => Ok((parse_duration(v)?, 1.0)),
                }
            };
            let (kind, probability) = match kind {
                "seed" if route.is_none() => {
                    out.seed = value
                        .parse()
                        .map_err(|_| format!("`{item}`: seed must be an integer"))?;
                    continue;
                }
                "http500" => (Kind::Status(500), parse_probability(value)?),
                "http502" => (Kind::Status(502), parse_probability(value)?),
                "http503" => (Kind::Status(503), parse_probability(value)?),
                "http429" => (Kind::Status(429), parse_probability(value)?),
                "reset" => (Kind::Reset, parse_probability(value)?),
                "lost_commit_response" => (Kind::LostCommitResponse, parse_probability(value)?),
                "delay" => {
                    let (d, p) = timed(value)?;
                    (Kind::Delay(d), p)
                }
                "slow_body" => {
                    let (d, p) = timed(value)?;
                    (Kind::SlowBody(d), p)
                }
                other => return Err(format!("`{item}`: unknown fault `{other}`")),
            };
            out.rules.push(Rule {
                route,
                kind,
                probability,
            });
        }
        Ok(out)
    }
}

/// Per-route request counts and injected faults, for `/admin/stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Traffic {
    pub requests: BTreeMap<String, u64>,
    pub faults: BTreeMap<String, u64>,
}

/// The live injector: the spec, a deterministic generator and the counters.
pub struct Faults {
    spec: FaultSpec,
    rng: Mutex<u64>,
    traffic: Mutex<Traffic>,
}

/// What to do with one request.
pub enum Verdict {
    /// Answer this response without calling the router.
    Respond(Response<Body>),
    /// Close the connection now.
    Reset,
    /// Call the router, then apply these.
    Pass {
        reset_body: bool,
        lose_commit: bool,
        slow_body: Option<Duration>,
    },
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Faults {
        let seed = spec.seed;
        Faults {
            spec,
            rng: Mutex::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            traffic: Mutex::new(Traffic::default()),
        }
    }

    pub fn traffic(&self) -> Traffic {
        self.traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// splitmix64: small, deterministic for a seed, good enough for fault draws.
    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn count(&self, map: fn(&mut Traffic) -> &mut BTreeMap<String, u64>, key: &str) {
        let mut t = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        *map(&mut t).entry(key.to_string()).or_default() += 1;
    }

    /// Decides the fate of a request on `route`.
    pub async fn decide(&self, route: &str) -> Verdict {
        self.count(|t| &mut t.requests, route);
        let mut reset_body = false;
        let mut lose_commit = false;
        let mut slow_body = None;
        for rule in &self.spec.rules {
            if rule.route.as_deref().is_some_and(|r| r != route) {
                continue;
            }
            if rule.kind == Kind::LostCommitResponse && route != "commit" {
                continue;
            }
            if self.draw() >= rule.probability {
                continue;
            }
            let name = match &rule.kind {
                Kind::Status(s) => format!("http{s}"),
                Kind::Reset => "reset".into(),
                Kind::LostCommitResponse => "lost_commit_response".into(),
                Kind::Delay(_) => "delay".into(),
                Kind::SlowBody(_) => "slow_body".into(),
            };
            self.count(|t| &mut t.faults, &format!("{route}:{name}"));
            match &rule.kind {
                Kind::Delay(d) => tokio::time::sleep(*d).await,
                Kind::SlowBody(d) => slow_body = Some(*d),
                Kind::LostCommitResponse => lose_commit = true,
                Kind::Reset if matches!(route, "lfs_upload" | "lfs_part" | "resolve") => {
                    reset_body = true
                }
                Kind::Reset => return Verdict::Reset,
                Kind::Status(s) => return Verdict::Respond(status_response(*s)),
            }
        }
        Verdict::Pass {
            reset_body,
            lose_commit,
            slow_body,
        }
    }
}

fn status_response(status: u16) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let msg = if status == 429 {
        "You have exceeded the rate limit (injected fault)"
    } else {
        "Internal Error (injected fault)"
    };
    let mut resp = Response::new(Body::from(serde_json::json!({ "error": msg }).to_string()));
    *resp.status_mut() = code;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        crate::api::X_ERROR_MESSAGE,
        HeaderValue::from_static("injected fault"),
    );
    if status == 429 {
        h.insert("retry-after", HeaderValue::from_static("1"));
        h.insert("ratelimit", HeaderValue::from_static("\"api\";r=0;t=1"));
        h.insert(
            "ratelimit-policy",
            HeaderValue::from_static("\"fixed window\";\"api\";q=1000;w=300"),
        );
    }
    resp
}

/// Reads at most half of a request body, then fails: the client sees its upload cut off.
pub async fn truncate_request(body: Body) -> std::io::Error {
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > 64 * 1024 {
            break;
        }
    }
    std::io::Error::other("injected reset during upload")
}

/// A response body that stops after `limit` bytes with an error (the connection is dropped),
/// optionally pausing between chunks.
pub fn cut_body(body: Body, limit: usize, slow: Option<Duration>) -> Body {
    let stream = body.into_data_stream();
    let stream = futures::stream::unfold(
        (stream, 0usize, false),
        move |(mut s, sent, done)| async move {
            if done {
                return None;
            }
            if sent >= limit {
                return Some((
                    Err(std::io::Error::other("injected reset during download")),
                    (s, sent, true),
                ));
            }
            if let Some(d) = slow {
                tokio::time::sleep(d).await;
            }
            match s.next().await {
                Some(Ok(chunk)) => {
                    let n = chunk.len();
                    Some((Ok(chunk), (s, sent + n, false)))
                }
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), (s, sent, true))),
                None => None,
            }
        },
    );
    Body::from_stream(stream)
}

/// The route label of a request, for rules and counters.
pub fn route_of(method: &Method, path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", "whoami-v2"] => "whoami",
        ["api", "repos", "create"] => "repo_create",
        ["api", "repos", "delete"] => "repo_delete",
        ["api", _, _, _] => "repo_info",
        ["api", _, _, _, op, ..] => match *op {
            "revision" => "repo_info",
            "tree" => "tree",
            "paths-info" => "paths_info",
            "refs" => "refs",
            "commits" => "commits",
            "preupload" => "preupload",
            "commit" => "commit",
            "branch" => "branch",
            "tag" => "tag",
            "settings" => "settings",
            "secrets" | "variables" | "hardware" | "sleeptime" | "runtime" | "pause"
            | "restart" => "space",
            _ => "other",
        },
        ["lfs-upload", _, _, _, _] if method == Method::PUT => "lfs_upload",
        ["lfs-upload", _, _, _, _] => "lfs_complete",
        ["lfs-upload", _, _, _, _, _] => "lfs_part",
        [.., "objects", "batch"] => "lfs_batch",
        [.., "objects", "verify"] => "lfs_verify",
        _ if segs.contains(&"resolve") => "resolve",
        _ => "other",
    }
}

/// Applies `verdict` around a call to the router.
pub async fn run(
    faults: &Faults,
    router: axum::Router,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    use tower::ServiceExt;
    let route = route_of(req.method(), req.uri().path());
    match faults.decide(route).await {
        Verdict::Respond(r) => Ok(r),
        Verdict::Reset => Err(std::io::Error::other("injected connection reset")),
        Verdict::Pass {
            reset_body,
            lose_commit,
            slow_body,
        } => {
            let req = req.map(Body::new);
            if reset_body && route != "resolve" {
                return Err(truncate_request(req.into_body()).await);
            }
            let resp = router
                .oneshot(req)
                .await
                .unwrap_or_else(|never| match never {});
            if lose_commit && resp.status().is_success() {
                // The commit is applied; the client never learns its id.
                return Err(std::io::Error::other("injected lost commit response"));
            }
            if reset_body || slow_body.is_some() {
                let limit = if reset_body { 64 * 1024 } else { usize::MAX };
                return Ok(resp.map(|b| cut_body(b, limit, slow_body)));
            }
            Ok(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let s: FaultSpec = "seed=7,http500=0.1,commit:lost_commit_response=0.5,delay=200ms@0.2"
            .parse()
            .unwrap();
        assert_eq!(s.seed, 7);
        assert_eq!(s.rules.len(), 3);
        assert_eq!(s.rules[1].route.as_deref(), Some("commit"));
        assert_eq!(s.rules[2].kind, Kind::Delay(Duration::from_millis(200)));
        assert!("http500=2".parse::<FaultSpec>().is_err());
        assert!("nope:http500=0.1".parse::<FaultSpec>().is_err());
        assert!("wat=1".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn draws_are_deterministic() {
        let a = Faults::new("seed=3".parse().unwrap());
        let b = Faults::new("seed=3".parse().unwrap());
        let xa: Vec<f64> = (0..5).map(|_| a.draw()).collect();
        let xb: Vec<f64> = (0..5).map(|_| b.draw()).collect();
        assert_eq!(xa, xb);
        assert!(xa.iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn routes() {
        assert_eq!(
            route_of(&Method::POST, "/api/models/a/b/commit/main"),
            "commit"
        );
        assert_eq!(route_of(&Method::GET, "/api/datasets/a/b"), "repo_info");
        assert_eq!(
            route_of(&Method::GET, "/datasets/a/b/resolve/main/x.txt"),
            "resolve"
        );
        assert_eq!(
            route_of(&Method::POST, "/a/b.git/info/lfs/objects/batch"),
            "lfs_batch"
        );
        assert_eq!(route_of(&Method::PUT, "/lfs-upload/1/o/2/s"), "lfs_upload");
        assert_eq!(route_of(&Method::PUT, "/lfs-upload/1/o/2/s/3"), "lfs_part");
    }
}
