//! Fault injection for the local Hub (`hub serve --faults SPEC`), off unless asked for. It sits
//! between the connection and the router, so it can do what a real network and a real Hub do:
//! answer 5xx or 429, delay, drop the connection mid-body, and — the important one — apply a
//! commit and then lose its response.
//!
//! SPEC is a comma-separated list of `[ROUTE:]KIND=WHEN` rules, plus two settings:
//! - `seed=N`: seed of the deterministic random generator (default 0).
//! - `retry_after=SECS`: the wait an injected 429 asks for (default 1).
//! - `http500=WHEN`, `http502=WHEN`, `http503=WHEN`, `http504=WHEN`, `http429=WHEN`: answer that
//!   status (a 429 carries `Retry-After: SECS`, `RateLimit: "api";r=0;t=SECS` and
//!   `RateLimit-Policy`). Injected answers are Hub-shaped: `X-Error-Message`, `X-Request-Id`
//!   and a JSON `{"error"}`.
//! - `reset=WHEN`: close the connection without an answer (for uploads, after reading part of
//!   the body; for downloads, after sending part of the body).
//! - `lost_commit_response=WHEN`: apply a commit, then close the connection instead of
//!   answering.
//! - `delay=DUR[@WHEN]`: wait DUR (e.g. `200ms`, `1s`) before handling the request.
//! - `slow_body=DUR[@WHEN]`: wait DUR between 64 KiB chunks of a download.
//!
//! WHEN says which requests a rule hits, among those it sees (the requests on its route that
//! reach it; an earlier rule that answers ends the request):
//! - `P`, a probability between 0 and 1: each request is hit with probability P, drawn from the
//!   seeded generator, so one seed always gives the same sequence of faults. Each route draws
//!   from its own stream: which commits are hit does not depend on how preuploads or uploads
//!   running at the same time happen to interleave with them.
//! - `xN`: exactly the first N requests, without a random draw, so a test can script "fails
//!   twice, then succeeds" (`tree:http503=x2`). Rules run in order, so
//!   `commit:http503=x1,commit:http429=x1` answers 503, then 429, then lets commits through.
//!
//! ROUTE limits a rule to one route label: whoami, repo_create, repo_delete, repo_info, tree,
//! paths_info, refs, commits, preupload, commit, branch, tag, settings, space, lfs_batch,
//! lfs_verify, lfs_upload, lfs_part, lfs_complete, resolve, other.
//!
//! `/admin/stats`, the tests' window on the counters, is never faulted and never counted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Which of the requests a rule sees it hits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum When {
    /// Each one, with this probability (one random draw per request).
    Probability(f64),
    /// The first N, without a draw.
    First(u64),
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    route: Option<String>,
    kind: Kind,
    when: When,
}

/// A parsed `--faults` spec.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    seed: u64,
    /// Seconds an injected 429 asks the client to wait.
    retry_after: u64,
    rules: Vec<Rule>,
}

impl Default for FaultSpec {
    fn default() -> FaultSpec {
        FaultSpec {
            seed: 0,
            retry_after: 1,
            rules: Vec::new(),
        }
    }
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

/// A probability `P` (0 to 1) or `xN` (the first N requests).
fn parse_when(s: &str) -> Result<When, String> {
    if let Some(n) = s.strip_prefix('x') {
        return n
            .parse()
            .map(When::First)
            .map_err(|_| format!("`{s}`: expected `xN` with N a whole number of requests"));
    }
    let p: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a probability (0 to 1) or `xN`"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(When::Probability(p))
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
            let timed = |v: &str| -> Result<(Duration, When), String> {
                match v.split_once('@') {
                    Some((d, w)) => Ok((parse_duration(d)?, parse_when(w)?)),
                    None => Ok((parse_duration(v)?, When::Probability(1.0))),
                }
            };
            let (kind, when) = match kind {
                "seed" if route.is_none() => {
                    out.seed = value
                        .parse()
                        .map_err(|_| format!("`{item}`: seed must be an integer"))?;
                    continue;
                }
                "retry_after" if route.is_none() => {
                    out.retry_after = value.parse().map_err(|_| {
                        format!("`{item}`: retry_after must be a whole number of seconds")
                    })?;
                    continue;
                }
                "http500" => (Kind::Status(500), parse_when(value)?),
                "http502" => (Kind::Status(502), parse_when(value)?),
                "http503" => (Kind::Status(503), parse_when(value)?),
                "http504" => (Kind::Status(504), parse_when(value)?),
                "http429" => (Kind::Status(429), parse_when(value)?),
                "reset" => (Kind::Reset, parse_when(value)?),
                "lost_commit_response" => (Kind::LostCommitResponse, parse_when(value)?),
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
            out.rules.push(Rule { route, kind, when });
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
    /// The generator's state, one stream per route.
    rng: Mutex<BTreeMap<String, u64>>,
    /// Requests each rule has seen, for `xN` rules.
    seen: Vec<AtomicU64>,
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
        Faults {
            seen: spec.rules.iter().map(|_| AtomicU64::new(0)).collect(),
            spec,
            rng: Mutex::new(BTreeMap::new()),
            traffic: Mutex::new(Traffic::default()),
        }
    }

    pub fn traffic(&self) -> Traffic {
        self.traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// splitmix64 on `route`'s stream: small, deterministic for a seed, good enough for fault
    /// draws.
    fn draw(&self, route: &str) -> f64 {
        let mut streams = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let s = streams.entry(route.to_string()).or_insert_with(|| {
            // FNV-1a of the route label, mixed into the seed.
            let label = route.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            self.spec.seed ^ 0x9e37_79b9_7f4a_7c15 ^ label
        });
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
        for (rule, seen) in self.spec.rules.iter().zip(&self.seen) {
            if rule.route.as_deref().is_some_and(|r| r != route) {
                continue;
            }
            if rule.kind == Kind::LostCommitResponse && route != "commit" {
                continue;
            }
            let hit = match rule.when {
                When::Probability(p) => self.draw(route) < p,
                When::First(n) => seen.fetch_add(1, Ordering::SeqCst) < n,
            };
            if !hit {
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
                Kind::Status(s) => {
                    return Verdict::Respond(status_response(*s, self.spec.retry_after));
                }
            }
        }
        Verdict::Pass {
            reset_body,
            lose_commit,
            slow_body,
        }
    }
}

/// An injected error answer, shaped like the Hub's.
fn status_response(status: u16, retry_after: u64) -> Response<Body> {
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
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    if let Ok(v) = HeaderValue::from_str(&format!("fault-{}", hex::encode(id))) {
        h.insert(crate::api::X_REQUEST_ID, v);
    }
    if status == 429 {
        h.insert("retry-after", HeaderValue::from(retry_after));
        if let Ok(v) = HeaderValue::from_str(&format!("\"api\";r=0;t={retry_after}")) {
            h.insert("ratelimit", v);
        }
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
        ["admin", ..] => "admin",
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
    if route == "admin" {
        let resp = router.oneshot(req.map(Body::new)).await;
        return Ok(resp.unwrap_or_else(|never| match never {}));
    }
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
    fn parses_counts_and_settings() {
        let s: FaultSpec = "tree:http503=x2,delay=10ms@x1,retry_after=600,http504=0"
            .parse()
            .unwrap();
        assert_eq!(s.retry_after, 600);
        assert_eq!(s.rules[0].when, When::First(2));
        assert_eq!(s.rules[1].when, When::First(1));
        assert_eq!(s.rules[2].kind, Kind::Status(504));
        assert_eq!(FaultSpec::default().retry_after, 1);
        for bad in [
            "http503=x",
            "http503=x-1",
            "http503=x1.5",
            "tree:retry_after=1",
            "retry_after=1s",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    fn status_of(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Respond(r) => Some(r.status().as_u16()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn first_n_hits_exactly_the_first_requests_each_rule_sees() {
        let f = Faults::new(
            "commit:http503=x1,commit:http429=x1,tree:http500=x2"
                .parse()
                .unwrap(),
        );
        let mut commits = Vec::new();
        for _ in 0..4 {
            commits.push(status_of(&f.decide("commit").await));
        }
        assert_eq!(commits, [Some(503), Some(429), None, None]);
        // Other routes are not counted against a rule that does not see them.
        let mut trees = Vec::new();
        for _ in 0..3 {
            trees.push(status_of(&f.decide("tree").await));
            assert_eq!(status_of(&f.decide("refs").await), None);
        }
        assert_eq!(trees, [Some(500), Some(500), None]);
        let t = f.traffic();
        assert_eq!(t.requests["commit"], 4);
        assert_eq!(t.faults["commit:http503"], 1);
        assert_eq!(t.faults["commit:http429"], 1);
        assert_eq!(t.faults["tree:http500"], 2);
        // `xN` rules take no random draws, so they leave the seeded sequence alone.
        let plain = Faults::new("seed=5".parse().unwrap());
        assert_eq!(plain.draw("tree"), {
            let g = Faults::new("seed=5,http503=x3".parse().unwrap());
            let _ = g.decide("tree").await;
            g.draw("tree")
        });
    }

    #[tokio::test]
    async fn injected_429s_say_how_long_to_wait() {
        let f = Faults::new("http429=x1,retry_after=600".parse().unwrap());
        let Verdict::Respond(r) = f.decide("refs").await else {
            panic!("expected an answer");
        };
        let h = r.headers();
        assert_eq!(h["retry-after"], "600");
        assert_eq!(h["ratelimit"], "\"api\";r=0;t=600");
        assert!(h.contains_key("ratelimit-policy"));
        assert!(
            h[crate::api::X_REQUEST_ID]
                .to_str()
                .unwrap()
                .starts_with("fault-")
        );
    }

    #[test]
    fn draws_are_deterministic() {
        let a = Faults::new("seed=3".parse().unwrap());
        let b = Faults::new("seed=3".parse().unwrap());
        // Draws on another route in between change nothing on this one.
        let xa: Vec<f64> = (0..5).map(|_| a.draw("commit")).collect();
        let xb: Vec<f64> = (0..5)
            .map(|_| {
                b.draw("preupload");
                b.draw("commit")
            })
            .collect();
        assert_eq!(xa, xb);
        assert!(xa.iter().all(|x| (0.0..1.0).contains(x)));
        assert_ne!(
            a.draw("commit"),
            a.draw("preupload"),
            "routes have their own streams"
        );
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
        assert_eq!(route_of(&Method::GET, "/admin/stats"), "admin");
    }
}
