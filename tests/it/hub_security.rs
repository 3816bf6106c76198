//! The local hub's security (issue 6): hostile requests are refused with the Hub's status codes
//! and error shape, and nothing is stored. Every case compares a [`Snapshot`] of everything the
//! hub holds (repo heads and trees, refs, Space settings, LFS objects, in-flight uploads and the
//! `/admin/stats` counters) before and after.
//!
//! Requests go over [`raw`] HTTP so that what reaches the server is exactly what the test wrote:
//! `url` (and so reqwest) normalises `..` and `%2e%2e` segments away; a hostile client does not.
//!
//! Read routes answer a path that leaves the repo with 404 `EntryNotFound` (there is no such
//! entry; nothing is read from disk by path), write routes refuse it with 422 like the Hub
//! (hub-api.md §2.3), and bad ref and repo names are 400s.

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::TestHub;
use crate::common::raw::{self, Response};

/// `bob`, another user with a write token, in no org.
const BOB: &str = "hf_bob_write_0123456789";
/// A token nobody has.
const BAD: &str = "hf_nobody_0123456789abcdef";
const ALICE: Option<&str> = Some(TestHub::WRITE_TOKEN);
const ALICE_READ: Option<&str> = Some(TestHub::READ_TOKEN);

/// Content of alice's private repos; none of it may appear in any refused response.
const SECRETS: [&str; 5] = [
    "TOP-SECRET-CONTENT",
    "TOP-SECRET-PLANS",
    "plans.txt",
    "TOP-SECRET-VAR",
    "TOP-SECRET-APP",
];

const NDJSON: &str = "application/x-ndjson";
const LFS_JSON: &str = "application/vnd.git-lfs+json";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// An NDJSON commit body: a header, then `ops`.
fn ndjson(summary: &str, ops: &[Value]) -> String {
    let mut out = json!({"key": "header", "value": {"summary": summary}}).to_string();
    out.push('\n');
    for op in ops {
        out.push_str(&op.to_string());
        out.push('\n');
    }
    out
}

fn file_op(path: &str, content: &[u8]) -> Value {
    json!({"key": "file", "value": {"path": path, "content": b64(content), "encoding": "base64"}})
}

fn lfs_op(path: &str, oid: &str, size: usize) -> Value {
    json!({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}})
}

/// Sends `r` and panics if the connection fails.
fn send(hub: &TestHub, r: raw::Request) -> Response {
    let shown = format!("{r:?}");
    r.send(hub.url())
        .unwrap_or_else(|e| panic!("request failed: {e}\n{shown}\nlog:\n{}", hub.log()))
}

fn ok(what: &str, r: Response) -> Response {
    assert!(
        (200..300).contains(&r.status),
        "{what}: expected success, got {}",
        r.everything()
    );
    r
}

/// The upload action the LFS batch API of `repo` gives `token` for one object: its `href` as a
/// path on the hub, and the whole action.
fn upload_action(
    f: &Fixture,
    repo: &str,
    token: Option<&str>,
    oid: &str,
    size: usize,
) -> (String, serde_json::Value) {
    let r = ok(
        &format!("batch for {repo}"),
        send(
            &f.hub,
            raw::req("POST", &format!("/{repo}.git/info/lfs/objects/batch"))
                .token(token)
                .body(
                    LFS_JSON,
                    json!({"operation": "upload", "objects": [{"oid": oid, "size": size}]})
                        .to_string(),
                ),
        ),
    );
    let action = r.json()["objects"][0]["actions"]["upload"].clone();
    let href = action["href"].as_str().expect("an upload href");
    let path = href
        .strip_prefix(f.hub.url())
        .expect("a hub URL")
        .to_string();
    (path, action)
}

/// Asserts a Hub-shaped error: the status, `X-Error-Code` (or none), `X-Error-Message`, and a
/// JSON `{"error": "..."}` body (HEAD responses have no body).
fn hub_error(what: &str, r: &Response, status: u16, code: Option<&str>) {
    assert_eq!(r.status, status, "{what}: {}", r.everything());
    assert_eq!(r.code(), code, "{what}: {}", r.everything());
    assert!(
        r.header("x-error-message").is_some_and(|m| !m.is_empty()),
        "{what}: no X-Error-Message: {}",
        r.everything()
    );
    if !r.body.is_empty() {
        assert!(
            r.json()["error"].is_string(),
            "{what}: body is not {{\"error\"}}: {}",
            r.everything()
        );
    }
}

fn no_leak(what: &str, r: &Response, forbidden: &[String]) {
    let all = r.everything();
    for s in forbidden {
        assert!(!all.contains(s.as_str()), "{what}: leaked `{s}`: {all}");
    }
}

/// The fixture: alice's hub (with `--admin` and bob) holding
/// - `alice/pub` (public model: `a.txt`, `dir/b.txt`, LFS `w.bin`, branch `dev`, tag `v1`),
/// - `alice/priv` (private model: `secret.txt`, `hidden/plans.txt`, LFS `secret.bin`),
/// - `acme/org` (public model of alice's org),
/// - `alice/sp` (public Space with a variable and a secret),
/// - `alice/psp` (private Space with `app.py` and a variable),
/// - `bob/bobs` (bob's public model with his own LFS object).
struct Fixture {
    hub: TestHub,
    /// sha256 of `alice/pub`'s `w.bin`.
    pub_lfs: String,
    /// sha256 of `alice/priv`'s `secret.bin`.
    priv_lfs: String,
    /// sha256 of an object only `bob/bobs` holds.
    bob_lfs: String,
    /// Strings that must never appear in a refused response.
    forbidden: Vec<String>,
}

impl Fixture {
    /// A fixture over `hub` as it is, for tests that need other hub options; the LFS oids are
    /// empty and nothing is forbidden beyond [`SECRETS`].
    fn bare(hub: TestHub) -> Fixture {
        Fixture {
            hub,
            pub_lfs: String::new(),
            priv_lfs: String::new(),
            bob_lfs: String::new(),
            forbidden: SECRETS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Uploads `content` as an LFS object of the repo at `web` (`alice/pub`, `spaces/alice/sp`) and
/// returns its sha256 and upload URL (path only).
fn upload_lfs(hub: &TestHub, web: &str, token: Option<&str>, content: &[u8]) -> (String, String) {
    let oid = sha256(content);
    let r = ok(
        "lfs batch",
        send(
            hub,
            raw::req("POST", &format!("/{web}.git/info/lfs/objects/batch"))
                .token(token)
                .body(
                    LFS_JSON,
                    json!({"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
                       "objects": [{"oid": oid, "size": content.len()}]})
                    .to_string(),
                ),
        ),
    );
    let href = r.json()["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap_or_else(|| panic!("no upload action: {}", r.text()))
        .to_string();
    let target = href.strip_prefix(hub.url()).unwrap().to_string();
    ok(
        "lfs upload",
        send(
            hub,
            raw::req("PUT", &target).body("application/octet-stream", content),
        ),
    );
    (oid, target)
}

fn create_repo(hub: &TestHub, token: Option<&str>, body: Value) {
    ok(
        "create repo",
        send(
            hub,
            raw::req("POST", "/api/repos/create")
                .token(token)
                .json(&body),
        ),
    );
}

fn commit(hub: &TestHub, api: &str, token: Option<&str>, ops: &[Value]) -> Response {
    send(
        hub,
        raw::req("POST", &format!("/api/{api}/commit/main"))
            .token(token)
            .body(NDJSON, ndjson("fixture", ops)),
    )
}

fn fixture() -> Fixture {
    let hub = TestHub::builder()
        .admin()
        .arg("--extra-user")
        .arg(format!("bob:{BOB}"))
        .start();
    let h = &hub;
    create_repo(h, ALICE, json!({"name": "pub"}));
    create_repo(h, ALICE, json!({"name": "priv", "private": true}));
    create_repo(h, ALICE, json!({"name": "org", "organization": "acme"}));
    create_repo(
        h,
        ALICE,
        json!({"name": "sp", "type": "space", "sdk": "gradio",
        "variables": [{"key": "K", "value": "public-var"}],
        "secrets": [{"key": "S", "value": "SECRET-VALUE"}]}),
    );
    create_repo(
        h,
        ALICE,
        json!({"name": "psp", "type": "space", "sdk": "gradio",
        "private": true, "variables": [{"key": "PV", "value": "TOP-SECRET-VAR"}]}),
    );
    create_repo(h, Some(BOB), json!({"name": "bobs"}));

    let pub_bytes = b"PUBLIC-LFS-OBJECT".repeat(10);
    let (pub_lfs, _) = upload_lfs(h, "alice/pub", ALICE, &pub_bytes);
    ok(
        "commit alice/pub",
        commit(
            h,
            "models/alice/pub",
            ALICE,
            &[
                file_op("a.txt", b"hello"),
                file_op("dir/b.txt", b"bee"),
                lfs_op("w.bin", &pub_lfs, pub_bytes.len()),
            ],
        ),
    );
    ok(
        "branch dev",
        send(
            h,
            raw::req("POST", "/api/models/alice/pub/branch/dev")
                .token(ALICE)
                .json(&json!({})),
        ),
    );
    ok(
        "tag v1",
        send(
            h,
            raw::req("POST", "/api/models/alice/pub/tag/main")
                .token(ALICE)
                .json(&json!({"tag": "v1"})),
        ),
    );

    let priv_bytes = b"TOP-SECRET-LFS".repeat(10);
    let (priv_lfs, _) = upload_lfs(h, "alice/priv", ALICE, &priv_bytes);
    ok(
        "commit alice/priv",
        commit(
            h,
            "models/alice/priv",
            ALICE,
            &[
                file_op("secret.txt", b"TOP-SECRET-CONTENT"),
                file_op("hidden/plans.txt", b"TOP-SECRET-PLANS"),
                lfs_op("secret.bin", &priv_lfs, priv_bytes.len()),
            ],
        ),
    );
    ok(
        "commit alice/psp",
        commit(
            h,
            "spaces/alice/psp",
            ALICE,
            &[
                file_op("app.py", b"print('TOP-SECRET-APP')"),
                file_op("src/util.py", b"pass"),
            ],
        ),
    );
    let bob_bytes = b"BOB-ONLY-OBJECT".repeat(10);
    let (bob_lfs, _) = upload_lfs(h, "bob/bobs", Some(BOB), &bob_bytes);

    let mut forbidden: Vec<String> = SECRETS.iter().map(|s| s.to_string()).collect();
    forbidden.push(priv_lfs.clone());
    for api in ["models/alice/priv", "spaces/alice/psp"] {
        let commits = ok(
            "commits",
            send(
                h,
                raw::req("GET", &format!("/api/{api}/commits/main")).token(ALICE),
            ),
        );
        for c in commits.json().as_array().unwrap() {
            forbidden.push(c["id"].as_str().unwrap().to_string());
        }
    }
    Fixture {
        hub,
        pub_lfs,
        priv_lfs,
        bob_lfs,
        forbidden,
    }
}

/// Everything the hub holds: every row of every table of its database (repos, commits, refs,
/// trees, blobs, LFS links, Space settings, counters), the LFS objects and in-flight uploads in
/// its data folder, and the `/admin/stats` counters. Reading the database directly (SQLite
/// allows a reader next to the writer) makes this cheap enough to take around every request,
/// and catches changes no API route would show.
#[derive(Debug, PartialEq)]
struct Snapshot {
    stats: Value,
    tables: Vec<(String, Vec<String>)>,
    lfs_files: Vec<String>,
    tmp_files: Vec<String>,
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn dump_tables(db: &std::path::Path) -> Vec<(String, Vec<String>)> {
    use rusqlite::types::ValueRef;
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open `{}`: {e}", db.display()));
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names.retain(|n| !n.starts_with("sqlite_"));
    names
        .into_iter()
        .map(|table| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let cols = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let mut row = Vec::with_capacity(cols);
                    for i in 0..cols {
                        row.push(match r.get_ref(i)? {
                            ValueRef::Null => "NULL".to_string(),
                            ValueRef::Integer(n) => n.to_string(),
                            ValueRef::Real(x) => x.to_string(),
                            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                            ValueRef::Blob(b) => format!("blob:{}:{}", b.len(), sha256(b)),
                        });
                    }
                    Ok(row.join(" | "))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.sort();
            (table, rows)
        })
        .collect()
}

fn snapshot(hub: &TestHub) -> Snapshot {
    let stats = ok("admin stats", send(hub, raw::req("GET", "/admin/stats"))).json();
    Snapshot {
        stats: json!({
            "commits_created": stats["commits_created"],
            "lfs_objects_uploaded": stats["lfs_objects_uploaded"],
            "lfs_bytes_received": stats["lfs_bytes_received"],
        }),
        tables: dump_tables(&hub.data_dir().join("hub.sqlite3")),
        lfs_files: files_under(&hub.data_dir().join("lfs")),
        tmp_files: files_under(&hub.data_dir().join("tmp")),
    }
}

/// Like [`refused`], for a request that itself carries `echoed`, which the error may name.
fn refused_echoing(
    f: &Fixture,
    what: &str,
    r: raw::Request,
    (status, code): (u16, Option<&str>),
    echoed: &str,
) -> Response {
    let forbidden: Vec<String> = f
        .forbidden
        .iter()
        .filter(|s| *s != echoed)
        .cloned()
        .collect();
    let before = snapshot(&f.hub);
    let resp = send(&f.hub, r);
    hub_error(what, &resp, status, code);
    no_leak(what, &resp, &forbidden);
    assert_unchanged(what, &before, &snapshot(&f.hub));
    resp
}

/// Sends `r`, checks that it is refused with `status` and `code` in the Hub's error shape
/// without leaking anything private, and that nothing changed.
fn refused(f: &Fixture, what: &str, r: raw::Request, status: u16, code: Option<&str>) -> Response {
    let before = snapshot(&f.hub);
    let resp = send(&f.hub, r);
    hub_error(what, &resp, status, code);
    no_leak(what, &resp, &f.forbidden);
    assert_unchanged(what, &before, &snapshot(&f.hub));
    resp
}

/// Fails naming what changed (the whole snapshot is too long to read).
fn assert_unchanged(what: &str, before: &Snapshot, after: &Snapshot) {
    if before == after {
        return;
    }
    let mut diff = Vec::new();
    if before.stats != after.stats {
        diff.push(format!("stats: {} -> {}", before.stats, after.stats));
    }
    for ((table, a), (_, b)) in before.tables.iter().zip(&after.tables) {
        for row in b.iter().filter(|r| !a.contains(r)) {
            diff.push(format!("{table}: + {row:.300}"));
        }
        for row in a.iter().filter(|r| !b.contains(r)) {
            diff.push(format!("{table}: - {row:.300}"));
        }
    }
    if before.lfs_files != after.lfs_files || before.tmp_files != after.tmp_files {
        diff.push(format!(
            "files: {:?} {:?} -> {:?} {:?}",
            before.lfs_files, before.tmp_files, after.lfs_files, after.tmp_files
        ));
    }
    panic!("{what}: the hub changed:\n{}", diff.join("\n"));
}

/// Every route that writes, aimed at the model `api` (`models/alice/pub`) and the Space `space`,
/// with bodies that alice's write token would get accepted. The repo deletion comes last.
fn write_routes(api: &str, space: &str, ns: &str) -> Vec<(String, raw::Request)> {
    let web = web_of(api);
    let name = api.rsplit('/').next().unwrap();
    let kind = if api.starts_with("spaces/") {
        "space"
    } else {
        "model"
    };
    let new_oid = sha256(b"never uploaded");
    let pre = json!({"files": [{"path": "x.txt", "sample": b64(b"x"), "size": 1}]});
    let batch = json!({"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
        "objects": [{"oid": new_oid, "size": 14}]});
    let r = |m: &str, t: String| raw::req(m, &t);
    vec![
        (
            "create repo".into(),
            r("POST", "/api/repos/create".into()).json(&json!({"name": "new", "organization": ns})),
        ),
        (
            "settings".into(),
            r("PUT", format!("/api/{api}/settings")).json(&json!({"private": true})),
        ),
        (
            "preupload".into(),
            r("POST", format!("/api/{api}/preupload/main")).json(&pre),
        ),
        (
            "lfs batch".into(),
            r("POST", format!("/{web}.git/info/lfs/objects/batch"))
                .body(LFS_JSON, batch.to_string()),
        ),
        (
            "lfs verify".into(),
            r("POST", format!("/{web}.git/info/lfs/objects/verify")).body(
                LFS_JSON,
                json!({"oid": sha256(&b"PUBLIC-LFS-OBJECT".repeat(10)), "size": 170}).to_string(),
            ),
        ),
        (
            "commit".into(),
            r("POST", format!("/api/{api}/commit/main"))
                .body(NDJSON, ndjson("evil", &[file_op("x.txt", b"x")])),
        ),
        (
            "create pr".into(),
            r("POST", format!("/api/{api}/commit/main?create_pr=1"))
                .body(NDJSON, ndjson("evil", &[file_op("x.txt", b"x")])),
        ),
        (
            "create branch".into(),
            r("POST", format!("/api/{api}/branch/evil")).json(&json!({})),
        ),
        (
            "delete branch".into(),
            r("DELETE", format!("/api/{api}/branch/dev")),
        ),
        (
            "create tag".into(),
            r("POST", format!("/api/{api}/tag/main")).json(&json!({"tag": "evil"})),
        ),
        (
            "delete tag".into(),
            r("DELETE", format!("/api/{api}/tag/v1")),
        ),
        (
            "list secrets".into(),
            r("GET", format!("/api/{space}/secrets")),
        ),
        (
            "add secret".into(),
            r("POST", format!("/api/{space}/secrets")).json(&json!({"key": "EVIL", "value": "v"})),
        ),
        (
            "delete secret".into(),
            r("DELETE", format!("/api/{space}/secrets")).json(&json!({"key": "S"})),
        ),
        (
            "add variable".into(),
            r("POST", format!("/api/{space}/variables"))
                .json(&json!({"key": "EVIL", "value": "v"})),
        ),
        (
            "delete variable".into(),
            r("DELETE", format!("/api/{space}/variables")).json(&json!({"key": "K"})),
        ),
        (
            "hardware".into(),
            r("POST", format!("/api/{space}/hardware")).json(&json!({"flavor": "t4-small"})),
        ),
        (
            "sleeptime".into(),
            r("POST", format!("/api/{space}/sleeptime")).json(&json!({"seconds": 60})),
        ),
        ("pause".into(), r("POST", format!("/api/{space}/pause"))),
        ("restart".into(), r("POST", format!("/api/{space}/restart"))),
        (
            "delete repo".into(),
            r("DELETE", "/api/repos/delete".into())
                .json(&json!({"name": name, "organization": ns, "type": kind})),
        ),
    ]
}

/// The non-API path of a repo: `alice/pub` for `models/alice/pub`, `spaces/alice/sp` for a Space.
fn web_of(api: &str) -> String {
    match api.strip_prefix("models/") {
        Some(id) => id.to_string(),
        None => api.to_string(),
    }
}

/// Every route that reads a repo, aimed at `api` (`models/alice/priv`), naming its `file` and
/// folder `dir`.
fn read_routes(api: &str, file: &str, dir: &str) -> Vec<(String, raw::Request)> {
    let web = web_of(api);
    let r = |m: &str, t: String| raw::req(m, &t);
    let mut out = vec![
        ("repo info".to_string(), r("GET", format!("/api/{api}"))),
        (
            "revision info".into(),
            r("GET", format!("/api/{api}/revision/main")),
        ),
        (
            "tree".into(),
            r("GET", format!("/api/{api}/tree/main?recursive=true")),
        ),
        (
            "tree of a folder".into(),
            r("GET", format!("/api/{api}/tree/main/{dir}")),
        ),
        (
            "paths-info".into(),
            r("POST", format!("/api/{api}/paths-info/main"))
                .body("application/x-www-form-urlencoded", format!("paths={file}")),
        ),
        ("refs".into(), r("GET", format!("/api/{api}/refs"))),
        (
            "commits".into(),
            r("GET", format!("/api/{api}/commits/main")),
        ),
        (
            "resolve GET".into(),
            r("GET", format!("/{web}/resolve/main/{file}")),
        ),
        (
            "resolve HEAD".into(),
            r("HEAD", format!("/{web}/resolve/main/{file}")),
        ),
    ];
    if api.starts_with("spaces/") {
        out.push((
            "variables".into(),
            r("GET", format!("/api/{api}/variables")),
        ));
        out.push(("runtime".into(), r("GET", format!("/api/{api}/runtime"))));
    }
    out
}

// ---- who may write ----------------------------------------------------------------------------

#[test]
fn anonymous_callers_cannot_write() {
    let f = fixture();
    for (what, r) in write_routes("models/alice/pub", "spaces/alice/sp", "alice") {
        refused(&f, &format!("anonymous {what}"), r, 401, None);
    }
    // Without an organization too (the namespace would be the caller's own).
    refused(
        &f,
        "anonymous create without organization",
        raw::req("POST", "/api/repos/create").json(&json!({"name": "new"})),
        401,
        None,
    );
}

#[test]
fn read_only_tokens_cannot_write() {
    let f = fixture();
    for (what, r) in write_routes("models/alice/pub", "spaces/alice/sp", "alice") {
        let resp = refused(
            &f,
            &format!("read token {what}"),
            r.token(ALICE_READ),
            403,
            None,
        );
        assert!(
            resp.text().contains("read-only"),
            "read token {what}: {}",
            resp.text()
        );
    }
    for (what, r) in write_routes("models/acme/org", "spaces/alice/sp", "acme") {
        refused(
            &f,
            &format!("read token {what} in acme"),
            r.token(ALICE_READ),
            403,
            None,
        );
    }
    // The same requests with the write token all succeed: the refusals above were about the
    // token, not about the requests.
    for (what, r) in write_routes("models/alice/pub", "spaces/alice/sp", "alice") {
        ok(&format!("write token {what}"), send(&f.hub, r.token(ALICE)));
    }
}

#[test]
fn other_users_cannot_write_to_a_namespace_they_are_not_in() {
    let f = fixture();
    for (api, ns) in [("models/alice/pub", "alice"), ("models/acme/org", "acme")] {
        for (what, r) in write_routes(api, "spaces/alice/sp", ns) {
            let resp = refused(
                &f,
                &format!("bob {what} on {api}"),
                r.token(Some(BOB)),
                403,
                None,
            );
            assert!(
                resp.text().contains("rights"),
                "bob {what}: {}",
                resp.text()
            );
        }
    }
    // Alice cannot write to bob's repo either, nor reference his LFS object from hers.
    for (what, r) in write_routes("models/bob/bobs", "spaces/alice/sp", "bob") {
        if what.contains("secret") || what.contains("variable") || what.contains("hardware") {
            continue; // Space routes above target alice's own Space.
        }
        if matches!(what.as_str(), "sleeptime" | "pause" | "restart") {
            continue;
        }
        refused(
            &f,
            &format!("alice {what} on bob/bobs"),
            r.token(ALICE),
            403,
            None,
        );
    }
    refused(
        &f,
        "alice commits bob's LFS object",
        raw::req("POST", "/api/models/alice/pub/commit/main")
            .token(ALICE)
            .body(
                NDJSON,
                ndjson("steal", &[lfs_op("stolen.bin", &f.bob_lfs, 150)]),
            ),
        422,
        None,
    );
    // And bob cannot reference alice's private object (its oid is not a key to it); the
    // error names only the oid bob sent.
    refused_echoing(
        &f,
        "bob commits alice's private LFS object",
        raw::req("POST", "/api/models/bob/bobs/commit/main")
            .token(Some(BOB))
            .body(
                NDJSON,
                ndjson("steal", &[lfs_op("stolen.bin", &f.priv_lfs, 140)]),
            ),
        (422, None),
        &f.priv_lfs,
    );
}

// ---- who may read -----------------------------------------------------------------------------

#[test]
fn private_repos_are_invisible_on_every_route() {
    let f = fixture();
    let cases = [
        ("models/alice/priv", "secret.txt", "hidden"),
        ("models/alice/priv", "secret.bin", "hidden"),
        ("spaces/alice/psp", "app.py", "src"),
    ];
    for (api, file, dir) in cases {
        let mut routes = read_routes(api, file, dir);
        // Writes too: a private repo does not exist for outsiders, so they get 404, not 403.
        routes.extend(
            write_routes(api, api, "alice")
                .into_iter()
                .filter(|(w, _)| w != "create repo")
                .filter(|(w, _)| api.starts_with("spaces/") || !w.contains("secret"))
                .filter(|(w, _)| {
                    api.starts_with("spaces/")
                        || !["variable", "hardware", "sleeptime", "pause", "restart"]
                            .iter()
                            .any(|s| w.contains(s))
                }),
        );
        for (what, r) in routes {
            let what = format!("{what} of {api}");
            refused(
                &f,
                &format!("anonymous {what}"),
                r.clone(),
                401,
                Some("RepoNotFound"),
            );
            refused(
                &f,
                &format!("bob {what}"),
                r.clone().token(Some(BOB)),
                404,
                Some("RepoNotFound"),
            );
        }
        // Alice's read token sees every read route.
        for (what, r) in read_routes(api, file, dir) {
            ok(
                &format!("alice reads {what} of {api}"),
                send(&f.hub, r.token(ALICE_READ)),
            );
        }
    }
    // A repo that does not exist looks exactly like a private one.
    let missing = send(
        &f.hub,
        raw::req("GET", "/api/models/alice/nope").token(Some(BOB)),
    );
    let hidden = send(
        &f.hub,
        raw::req("GET", "/api/models/alice/priv").token(Some(BOB)),
    );
    assert_eq!(
        (missing.status, missing.code()),
        (hidden.status, hidden.code())
    );
}

#[test]
fn invalid_tokens_are_refused_on_every_route() {
    let f = fixture();
    let mut routes = read_routes("models/alice/pub", "a.txt", "dir");
    routes.extend(read_routes("models/alice/priv", "secret.txt", "hidden"));
    routes.extend(read_routes("spaces/alice/sp", ".gitattributes", "src"));
    routes.extend(write_routes("models/alice/pub", "spaces/alice/sp", "alice"));
    routes.extend([
        ("whoami".to_string(), raw::req("GET", "/api/whoami-v2")),
        (
            "validate-yaml".into(),
            raw::req("POST", "/api/validate-yaml")
                .json(&json!({"content": "---\na: 1\n---\n", "repoType": "model"})),
        ),
        (
            "agent harnesses".into(),
            raw::req("GET", "/api/agent-harnesses"),
        ),
        ("admin stats".into(), raw::req("GET", "/admin/stats")),
        ("unknown route".into(), raw::req("GET", "/api/nothing/here")),
    ]);
    // Upload URLs are the exception: they authorise themselves and, like a storage bucket's
    // pre-signed URLs, ignore the Authorization header (clients send none).
    for (what, r) in routes {
        let resp = refused(
            &f,
            &format!("invalid token {what}"),
            r.token(Some(BAD)),
            401,
            None,
        );
        assert_eq!(
            resp.header("x-error-message"),
            Some("Invalid credentials in Authorization header"),
            "{what}"
        );
    }
}

// ---- path traversal ---------------------------------------------------------------------------

#[test]
fn path_traversal_in_url_parameters_finds_nothing() {
    let f = fixture();
    let get = |t: &str| raw::req("GET", t).token(ALICE);
    let entry = Some("EntryNotFound");
    let rev = Some("RevisionNotFound");
    let repo = Some("RepoNotFound");
    let cases: Vec<(&str, u16, Option<&str>)> = vec![
        // resolve: the file path.
        (
            "/alice/pub/resolve/main/../priv/resolve/main/secret.txt",
            404,
            entry,
        ),
        (
            "/alice/pub/resolve/main/%2e%2e/priv/resolve/main/secret.txt",
            404,
            entry,
        ),
        (
            "/alice/pub/resolve/main/%2E%2E%2F..%2Fhub.sqlite3",
            404,
            entry,
        ),
        (
            "/alice/pub/resolve/main/dir%2F..%2F..%2F..%2Fhub.sqlite3",
            404,
            entry,
        ),
        ("/alice/pub/resolve/main//etc/passwd", 404, entry),
        ("/alice/pub/resolve/main/%2Fetc%2Fpasswd", 404, entry),
        ("/alice/pub/resolve/main/..%5C..%5Chub.sqlite3", 404, entry),
        ("/alice/pub/resolve/main/.git/config", 404, entry),
        ("/alice/pub/resolve/main/.git%2FHEAD", 404, entry),
        // resolve: the revision and the repo id.
        ("/alice/pub/resolve/..%2F..%2Fmain/a.txt", 404, rev),
        ("/alice/pub/resolve/%2e%2e/a.txt", 404, rev),
        ("/alice/..%2Fpriv/resolve/main/secret.txt", 404, repo),
        ("/alice/%2e%2e/resolve/main/secret.txt", 404, repo),
        ("/alice/pub/../priv/resolve/main/secret.txt", 404, None),
        ("/alice%2Fpriv/x/resolve/main/secret.txt", 404, repo),
        // tree: the folder, the revision and the repo id.
        ("/api/models/alice/pub/tree/main/..", 404, entry),
        ("/api/models/alice/pub/tree/main/%2e%2e", 404, entry),
        ("/api/models/alice/pub/tree/main/dir%2F..%2F..", 404, entry),
        ("/api/models/alice/pub/tree/main/dir/../..", 404, entry),
        ("/api/models/alice/pub/tree/main/..%5Cdir", 404, entry),
        ("/api/models/alice/pub/tree/main/.git", 404, entry),
        ("/api/models/alice/pub/tree/..%2Fmain", 404, rev),
        ("/api/models/alice/pub/tree/%2e%2e", 404, rev),
        ("/api/models/alice/pub/../priv/tree/main", 404, None),
        ("/api/models/alice/..%2Fpriv/tree/main", 404, repo),
        ("/api/models/alice%2Fpriv/x/tree/main", 404, repo),
        // revision info and commits.
        ("/api/models/alice/pub/revision/..%2F..%2Fmain", 404, rev),
        ("/api/models/alice/pub/revision/../main", 404, rev),
        ("/api/models/alice/pub/commits/..%2Fmain", 404, rev),
        ("/api/models/alice/pub/commits/%2e%2e", 404, rev),
    ];
    for (target, status, code) in cases {
        let resp = refused(&f, target, get(target), status, code);
        assert!(!resp.text().contains("SQLite"), "{target}");
    }
    // A leading `/` on a read means the repo root, so it stays inside the same repo.
    let plain = ok(
        "tree dir",
        send(&f.hub, get("/api/models/alice/pub/tree/main/dir")),
    )
    .json();
    let slashed = ok(
        "tree /dir",
        send(&f.hub, get("/api/models/alice/pub/tree/main/%2Fdir")),
    )
    .json();
    assert_eq!(plain, slashed);

    // paths-info answers only for paths inside the repo.
    for paths in [
        "paths=..%2Fpriv%2Fsecret.txt",
        "paths=%252e%252e%2Fa.txt",
        "paths=dir%2F..%2Fa.txt",
        "paths=..%5Ca.txt",
        "paths=.git%2Fconfig",
        "paths=..&paths=.",
        "paths=%2F..%2F..%2Fhub.sqlite3",
    ] {
        let before = snapshot(&f.hub);
        let r = ok(
            paths,
            send(
                &f.hub,
                raw::req("POST", "/api/models/alice/pub/paths-info/main")
                    .token(ALICE)
                    .body("application/x-www-form-urlencoded", paths),
            ),
        );
        assert_eq!(r.json(), json!([]), "{paths}");
        assert_unchanged(paths, &before, &snapshot(&f.hub));
    }
    let r = ok(
        "paths-info of a JSON body",
        send(
            &f.hub,
            raw::req("POST", "/api/models/alice/pub/paths-info/main")
                .token(ALICE)
                .json(&json!({"paths": ["../priv/secret.txt", "/../a.txt", ".git/HEAD"]})),
        ),
    );
    assert_eq!(r.json(), json!([]));
}

#[test]
fn path_traversal_in_names_is_refused() {
    let f = fixture();
    let post = |t: &str, body: Value| raw::req("POST", t).token(ALICE).json(&body);
    // Branch names, raw and encoded.
    for name in [
        "..%2Fx",
        "%2e%2e",
        "../x",
        "%2Fx",
        "a%5Cb",
        ".git",
        "x%2F.git%2Fhooks",
        "x%2F..%2Fy",
        "refs%2Fheads%2Fx",
        "a%2F%2Fb",
    ] {
        let t = format!("/api/models/alice/pub/branch/{name}");
        refused(&f, &t, post(&t, json!({})), 400, None);
    }
    // Tag names come in the body; the revision they point at in the URL.
    for tag in [
        "../x",
        "..",
        "/x",
        "a\\b",
        ".git",
        "x/.git/y",
        "x/../y",
        "refs/tags/x",
    ] {
        refused(
            &f,
            &format!("tag {tag}"),
            post("/api/models/alice/pub/tag/main", json!({"tag": tag})),
            400,
            None,
        );
    }
    refused(
        &f,
        "tag at ../main",
        post("/api/models/alice/pub/tag/..%2Fmain", json!({"tag": "ok"})),
        404,
        Some("RevisionNotFound"),
    );
    // Branch starting points, and deletions.
    refused(
        &f,
        "branch from ../main",
        post(
            "/api/models/alice/pub/branch/ok",
            json!({"startingPoint": "../main"}),
        ),
        404,
        Some("RevisionNotFound"),
    );
    for t in [
        "/api/models/alice/pub/branch/..%2Fdev",
        "/api/models/alice/pub/branch/%2e%2e",
        "/api/models/alice/pub/tag/..%2Fv1",
        "/api/models/alice/pub/tag/v1%2F..",
    ] {
        refused(
            &f,
            t,
            raw::req("DELETE", t).token(ALICE),
            404,
            Some("RevisionNotFound"),
        );
    }
    // Commits to a revision that is not a branch name.
    refused(
        &f,
        "commit to ../main",
        raw::req("POST", "/api/models/alice/pub/commit/..%2Fmain")
            .token(ALICE)
            .body(NDJSON, ndjson("c", &[file_op("x", b"x")])),
        404,
        Some("RevisionNotFound"),
    );
    // Repo names and namespaces.
    for body in [
        json!({"name": "../x"}),
        json!({"name": ".."}),
        json!({"name": "a/b"}),
        json!({"name": ".git"}),
        json!({"name": "x", "organization": ".."}),
        json!({"name": "x", "organization": "../alice"}),
        json!({"name": "x\\y"}),
    ] {
        refused(
            &f,
            &format!("create {body}"),
            post("/api/repos/create", body),
            400,
            None,
        );
    }
    // Space variable and secret keys.
    for key in ["../x", "a/b", ".env", ""] {
        for kind in ["variables", "secrets"] {
            refused(
                &f,
                &format!("{kind} key {key:?}"),
                post(
                    &format!("/api/spaces/alice/sp/{kind}"),
                    json!({"key": key, "value": "v"}),
                ),
                400,
                None,
            );
        }
    }
}

#[test]
fn path_traversal_in_commit_operations_is_refused() {
    let f = fixture();
    let bad_paths = [
        "../x",
        "a/../../x",
        "..",
        ".",
        "/abs",
        "/",
        "",
        "a\\b",
        "..\\ddd",
        ".git/config",
        "a/.git/hooks/post-commit",
        ".git",
        "a//b",
        "./x",
        "a/./b",
        "a\0b",
    ];
    let lfs_size = 170;
    for path in bad_paths {
        for (kind, op) in [
            ("file", file_op(path, b"x")),
            ("lfsFile", lfs_op(path, &f.pub_lfs, lfs_size)),
            (
                "deletedFile",
                json!({"key": "deletedFile", "value": {"path": path}}),
            ),
            (
                "deletedFolder",
                json!({"key": "deletedFolder", "value": {"path": path}}),
            ),
        ] {
            // A good operation first: the whole commit must be refused, not just the bad line.
            let body = ndjson("evil", &[file_op("good.txt", b"good"), op]);
            let what = format!("{kind} {path:?}");
            let resp = refused(
                &f,
                &what,
                raw::req("POST", "/api/models/alice/pub/commit/main")
                    .token(ALICE)
                    .body(NDJSON, body),
                422,
                None,
            );
            assert!(
                resp.text().contains("invalid path"),
                "{what}: {}",
                resp.text()
            );
        }
    }
    // Deleting "the folder" `/` used to empty the whole repo.
    for path in ["/", ""] {
        refused(
            &f,
            &format!("deletedFolder {path:?} alone"),
            raw::req("POST", "/api/models/alice/pub/commit/main")
                .token(ALICE)
                .body(
                    NDJSON,
                    ndjson(
                        "wipe",
                        &[json!({"key": "deletedFolder", "value": {"path": path}})],
                    ),
                ),
            422,
            None,
        );
    }
}

// ---- LFS upload URLs --------------------------------------------------------------------------

#[test]
fn lfs_upload_urls_authorise_one_object_of_one_repo() {
    let f = fixture();
    let content = b"a new object for alice/pub".repeat(3);
    let oid = sha256(&content);
    let (url, _) = upload_action(&f, "alice/pub", ALICE, &oid, content.len());
    let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
    let ["lfs-upload", repo_id, url_oid, size, sig] = parts.as_slice() else {
        panic!("unexpected upload URL shape: {url}");
    };
    assert_eq!(*url_oid, oid);
    let other = sha256(b"other");
    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[0] = if c[0] == '0' { '1' } else { '0' };
        c.into_iter().collect::<String>()
    };
    let put = |t: &str, body: &[u8]| raw::req("PUT", t).body("application/octet-stream", body);
    let tampered = [
        (
            "another oid",
            format!("/lfs-upload/{repo_id}/{other}/{size}/{sig}"),
        ),
        (
            "another size",
            format!("/lfs-upload/{repo_id}/{oid}/{}/{sig}", content.len() + 1),
        ),
        (
            "another signature",
            format!("/lfs-upload/{repo_id}/{oid}/{size}/{}", flip(sig)),
        ),
        (
            "a truncated signature",
            format!("/lfs-upload/{repo_id}/{oid}/{size}/{}", &sig[..20]),
        ),
        (
            "another repo",
            format!(
                "/lfs-upload/{}/{oid}/{size}/{sig}",
                repo_id.parse::<i64>().unwrap() + 1
            ),
        ),
        (
            "a negative repo",
            format!("/lfs-upload/-{repo_id}/{oid}/{size}/{sig}"),
        ),
        (
            "an uppercase oid",
            format!("/lfs-upload/{repo_id}/{}/{size}/{sig}", oid.to_uppercase()),
        ),
        (
            "a traversal oid",
            format!("/lfs-upload/{repo_id}/..%2F..%2Fhub.sqlite3/{size}/{sig}"),
        ),
    ];
    for (what, t) in &tampered {
        let body: &[u8] = if *what == "another oid" {
            b"other"
        } else {
            &content
        };
        refused(&f, &format!("upload to {what}"), put(t, body), 403, None);
        refused(
            &f,
            &format!("multipart completion to {what}"),
            raw::req("POST", t).body(LFS_JSON, json!({"oid": oid, "parts": []}).to_string()),
            403,
            None,
        );
    }
    // The right URL with the wrong bytes (same length, and shorter) stores nothing.
    let mut wrong = content.clone();
    wrong[0] ^= 1;
    refused(&f, "wrong bytes", put(&url, &wrong), 400, None);
    refused(&f, "short bytes", put(&url, &content[..10]), 400, None);
    let mut long = content.clone();
    long.push(b'!');
    refused(&f, "long bytes", put(&url, &long), 400, None);
    refused(
        &f,
        "verify before upload",
        raw::req("POST", "/alice/pub.git/info/lfs/objects/verify")
            .token(ALICE)
            .body(
                LFS_JSON,
                json!({"oid": oid, "size": content.len()}).to_string(),
            ),
        404,
        None,
    );

    // A URL of another repo cannot put the object in this one: upload with bob's URL for the
    // same object, then alice still cannot commit it.
    let (bob_url, _) = upload_action(&f, "bob/bobs", Some(BOB), &oid, content.len());
    ok("bob uploads", send(&f.hub, put(&bob_url, &content)));
    refused(
        &f,
        "alice commits an object only bob's repo holds",
        raw::req("POST", "/api/models/alice/pub/commit/main")
            .token(ALICE)
            .body(NDJSON, ndjson("c", &[lfs_op("n.bin", &oid, content.len())])),
        422,
        None,
    );

    // Delete and recreate the repo: the old URL is dead (the new repo is a new repo).
    ok(
        "delete",
        send(
            &f.hub,
            raw::req("DELETE", "/api/repos/delete")
                .token(ALICE)
                .json(&json!({"name": "pub"})),
        ),
    );
    create_repo(&f.hub, ALICE, json!({"name": "pub"}));
    refused(
        &f,
        "upload to a deleted repo's URL",
        put(&url, &content),
        403,
        None,
    );
    // The recreated repo does not inherit the old one's objects either.
    refused(
        &f,
        "commit an object of the deleted repo",
        raw::req("POST", "/api/models/alice/pub/commit/main")
            .token(ALICE)
            .body(NDJSON, ndjson("c", &[lfs_op("w.bin", &f.pub_lfs, 170)])),
        422,
        None,
    );
}

#[test]
fn multipart_uploads_refuse_forged_parts() {
    // A hub of its own, whose 100-byte parts make a 250-byte object a three-part upload.
    let hub = TestHub::builder().admin().multipart_chunk_size(100).start();
    create_repo(&hub, ALICE, json!({"name": "pub"}));
    let f = &Fixture::bare(hub);
    let content: Vec<u8> = (0..250u32).map(|i| (i % 251) as u8).collect();
    let oid = sha256(&content);
    let (url, upload) = upload_action(f, "alice/pub", ALICE, &oid, 250);
    assert_eq!(upload["header"]["chunk_size"], "100");
    let put = |t: String, body: &[u8]| raw::req("PUT", &t).body("application/octet-stream", body);
    for (what, part, body) in [
        ("part 0", "0".to_string(), &content[..100]),
        ("part 4 of 3", "4".into(), &content[..100]),
        ("a part too long", "1".into(), &content[..101]),
        ("a short middle part", "2".into(), &content[..99]),
        ("a traversal part", "..".into(), &content[..100]),
        (
            "a huge part number",
            "99999999999999999999".into(),
            &content[..100],
        ),
    ] {
        refused(f, what, put(format!("{url}/{part}"), body), 400, None);
    }
    // Forged etags never name a file outside the upload's own parts.
    let mut etags = Vec::new();
    for (n, chunk) in content.chunks(100).enumerate() {
        let r = ok("part", send(&f.hub, put(format!("{url}/{}", n + 1), chunk)));
        etags.push(r.header("etag").unwrap().to_string());
    }
    for (what, etag) in [
        (
            "a traversal etag",
            "\"../../../../../../../hub.sqlite3\"".to_string(),
        ),
        (
            "a 32-char traversal etag",
            format!("\"{}\"", "../".repeat(10) + "ab"),
        ),
        ("an unknown etag", format!("\"{}\"", "0".repeat(32))),
    ] {
        let parts = json!([{"partNumber": 1, "etag": etag}, {"partNumber": 2, "etag": etags[1]},
            {"partNumber": 3, "etag": etags[2]}]);
        refused(
            f,
            what,
            raw::req("POST", &url).body(LFS_JSON, json!({"oid": oid, "parts": parts}).to_string()),
            400,
            None,
        );
    }
    // Missing parts, and a completion for another oid.
    for (what, body) in [
        ("missing parts", json!({"oid": oid, "parts": []})),
        (
            "another oid",
            json!({"oid": sha256(b"x"), "parts": [{"partNumber": 1, "etag": etags[0]}]}),
        ),
    ] {
        refused(
            f,
            what,
            raw::req("POST", &url).body(LFS_JSON, body.to_string()),
            400,
            None,
        );
    }
    // The genuine completion still works after all that.
    let parts: Vec<Value> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"partNumber": i + 1, "etag": e}))
        .collect();
    ok(
        "complete",
        send(
            &f.hub,
            raw::req("POST", &url).body(LFS_JSON, json!({"oid": oid, "parts": parts}).to_string()),
        ),
    );
}

#[test]
fn an_upload_cut_off_half_way_leaves_nothing_behind() {
    use std::io::Write;
    let f = fixture();
    let content = vec![7u8; 300 * 1024];
    let oid = sha256(&content);
    let (url, _) = upload_action(&f, "alice/pub", ALICE, &oid, content.len());
    let before = snapshot(&f.hub);
    // Announce the whole object, send half of it, and hang up.
    let mut s = raw::connect(f.hub.url()).unwrap();
    let head = format!(
        "PUT {url} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        content.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&content[..content.len() / 2]).unwrap();
    s.flush().unwrap();
    // Give the server time to take in what was sent before the connection drops.
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(s);
    // The server notices the broken body and cleans up; poll briefly for that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let after = snapshot(&f.hub);
        if after == before || std::time::Instant::now() > deadline {
            assert_unchanged("a cut-off upload", &before, &after);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // And the object can still be uploaded whole afterwards.
    ok(
        "whole upload",
        send(
            &f.hub,
            raw::req("PUT", &url).body("application/octet-stream", content),
        ),
    );
}

// ---- oversized and malformed input ------------------------------------------------------------

#[test]
fn oversized_bodies_are_refused_with_413() {
    let f = fixture();
    // Declared sizes over the limits are refused before the body is read.
    for (what, target, ct, len) in [
        (
            "commit",
            "/api/models/alice/pub/commit/main",
            NDJSON,
            600_000_000u64,
        ),
        (
            "create repo",
            "/api/repos/create",
            "application/json",
            17 << 20,
        ),
        (
            "preupload",
            "/api/models/alice/pub/preupload/main",
            "application/json",
            17 << 20,
        ),
        (
            "lfs batch",
            "/alice/pub.git/info/lfs/objects/batch",
            LFS_JSON,
            17 << 20,
        ),
        (
            "paths-info",
            "/api/models/alice/pub/paths-info/main",
            "application/x-www-form-urlencoded",
            17 << 20,
        ),
        (
            "secrets",
            "/api/spaces/alice/sp/secrets",
            "application/json",
            1 << 62,
        ),
    ] {
        refused(
            &f,
            &format!("{what} of {len} bytes"),
            raw::req("POST", target)
                .token(ALICE)
                .header("content-type", ct)
                .header("content-length", &len.to_string()),
            413,
            None,
        );
    }
    // A body streamed without a length is cut off at the limit. The server may close the
    // connection before the client is done sending; either way nothing is stored.
    let before = snapshot(&f.hub);
    let mut chunked = Vec::new();
    let piece = vec![b' '; 1 << 20];
    chunked.extend_from_slice(b"1\r\n[\r\n");
    for _ in 0..17 {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(&piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"1\r\n]\r\n0\r\n\r\n");
    let r = raw::req("POST", "/api/models/alice/pub/preupload/main")
        .token(ALICE)
        .header("transfer-encoding", "chunked")
        .body("application/json", chunked);
    match r.send(f.hub.url()) {
        Ok(resp) => hub_error("chunked JSON", &resp, 413, None),
        Err(e) => eprintln!("chunked JSON: connection closed early ({e}), as allowed"),
    }
    assert_unchanged("oversized or mixed", &before, &snapshot(&f.hub));
}

#[test]
fn header_floods_are_refused_and_the_hub_keeps_serving() {
    let f = fixture();
    let mut many = raw::req("GET", "/api/models/alice/pub").token(ALICE);
    for i in 0..200 {
        many = many.header(&format!("x-flood-{i}"), "1");
    }
    let huge = raw::req("GET", "/api/models/alice/pub")
        .token(ALICE)
        .header("x-huge", &"a".repeat(1 << 20));
    let long_line = raw::req(
        "GET",
        &format!("/api/models/alice/pub?{}", "q".repeat(2 << 20)),
    );
    for (what, r) in [
        ("200 headers", many),
        ("a 1 MiB header", huge),
        ("a 2 MiB URL", long_line),
    ] {
        let before = snapshot(&f.hub);
        match r.send(f.hub.url()) {
            Ok(resp) => assert!(
                (400..500).contains(&resp.status),
                "{what}: {}",
                resp.everything()
            ),
            Err(e) => eprintln!("{what}: connection closed ({e}), as allowed"),
        }
        assert_unchanged(what, &before, &snapshot(&f.hub));
        ok(
            &format!("a normal request after {what}"),
            send(&f.hub, raw::req("GET", "/api/whoami-v2").token(ALICE)),
        );
    }
}

#[test]
fn malformed_commit_bodies_are_hub_shaped_errors() {
    let f = fixture();
    let header = json!({"key": "header", "value": {"summary": "s"}}).to_string();
    let good = file_op("ok.txt", b"ok").to_string();
    let lines = |ls: &[&str]| {
        let mut s = ls.join("\n");
        s.push('\n');
        s.into_bytes()
    };
    let big = vec![b'x'; (10 << 20) + 1];
    let big_line = file_op("big.txt", &big).to_string();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let unknown_oid = sha256(b"never uploaded anywhere");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("empty body", vec![], 400),
        ("blank lines only", b"\n\n  \n".to_vec(), 400),
        ("not JSON", lines(&[&header, "not json"]), 400),
        (
            "truncated JSON",
            lines(&[&header, r#"{"key":"file","value":{"path":"a""#]),
            400,
        ),
        ("a JSON array", lines(&[&header, "[1,2]"]), 400),
        ("a JSON string", lines(&[&header, "\"file\""]), 400),
        ("deeply nested JSON", lines(&[&header, &deep]), 400),
        (
            "invalid UTF-8",
            [header.as_bytes(), b"\n{\"key\":\"\xff\xfe\"}\n"].concat(),
            400,
        ),
        (
            "a NUL line",
            [header.as_bytes(), b"\n\0\0\0\n"].concat(),
            400,
        ),
        ("no header", lines(&[&good]), 400),
        ("header on line 2", lines(&[&good, &header]), 400),
        ("two headers", lines(&[&header, &good, &header]), 400),
        (
            "empty summary",
            lines(&[r#"{"key":"header","value":{"summary":""}}"#, &good]),
            400,
        ),
        (
            "header without summary",
            lines(&[r#"{"key":"header","value":{}}"#, &good]),
            400,
        ),
        (
            "unknown header field",
            lines(&[
                r#"{"key":"header","value":{"summary":"s","force":true}}"#,
                &good,
            ]),
            400,
        ),
        (
            "bad parentCommit",
            lines(&[
                r#"{"key":"header","value":{"summary":"s","parentCommit":"zz../"}}"#,
                &good,
            ]),
            400,
        ),
        (
            "unknown line key",
            lines(&[&header, r#"{"key":"copy","value":{"path":"a","from":"b"}}"#]),
            400,
        ),
        (
            "line without key",
            lines(&[&header, r#"{"value":{"path":"a"}}"#]),
            400,
        ),
        (
            "line without value",
            lines(&[&header, r#"{"key":"deletedFile"}"#]),
            400,
        ),
        (
            "unknown field on a line",
            lines(&[
                &header,
                r#"{"key":"deletedFile","value":{"path":"a.txt"},"force":1}"#,
            ]),
            400,
        ),
        (
            "unknown field in a value",
            lines(&[
                &header,
                r#"{"key":"file","value":{"path":"a","content":"","mode":"755"}}"#,
            ]),
            400,
        ),
        (
            "invalid base64",
            lines(&[
                &header,
                r#"{"key":"file","value":{"path":"a","content":"!!!","encoding":"base64"}}"#,
            ]),
            400,
        ),
        (
            "unknown encoding",
            lines(&[
                &header,
                r#"{"key":"file","value":{"path":"a","content":"x","encoding":"rot13"}}"#,
            ]),
            400,
        ),
        (
            "a regular file over 10 MiB",
            lines(&[&header, &big_line]),
            400,
        ),
        (
            "an lfsFile oid that is not sha256",
            lines(&[
                &header,
                r#"{"key":"lfsFile","value":{"path":"a","oid":"../../x","size":1}}"#,
            ]),
            400,
        ),
        (
            "an lfsFile with a wrong size",
            lines(&[&header, &lfs_op("a.bin", &f.pub_lfs, 3).to_string()]),
            400,
        ),
        (
            "an lfsFile with an unknown algo",
            lines(&[
                &header,
                r#"{"key":"lfsFile","value":{"path":"a","algo":"md5","oid":"00","size":1}}"#,
            ]),
            400,
        ),
        (
            "an unknown LFS oid",
            lines(&[
                &header,
                &good,
                &lfs_op("a.bin", &unknown_oid, 3).to_string(),
            ]),
            422,
        ),
        (
            "deleting a missing file",
            lines(&[
                &header,
                &good,
                r#"{"key":"deletedFile","value":{"path":"missing.txt"}}"#,
            ]),
            404,
        ),
    ];
    for (what, body, status) in cases {
        let code = if status == 404 {
            Some("EntryNotFound")
        } else {
            None
        };
        refused(
            &f,
            what,
            raw::req("POST", "/api/models/alice/pub/commit/main")
                .token(ALICE)
                .body(NDJSON, body),
            status,
            code,
        );
    }
    // A stale parent is a 412, and changes nothing either.
    refused(
        &f,
        "stale parent",
        raw::req("POST", "/api/models/alice/pub/commit/main")
            .token(ALICE)
            .body(
                NDJSON,
                lines(&[
                    r#"{"key":"header","value":{"summary":"s","parentCommit":"0000000"}}"#,
                    &good,
                ]),
            ),
        412,
        None,
    );
}

#[test]
fn malformed_lfs_batches_are_refused_and_sizes_are_bounded() {
    let f = fixture();
    let batch = |body: &str| {
        raw::req("POST", "/alice/pub.git/info/lfs/objects/batch")
            .token(ALICE)
            .body(LFS_JSON, body.to_string())
    };
    for (what, body) in [
        ("not JSON", "nope"),
        ("empty", ""),
        ("an array", "[]"),
        ("no objects", r#"{"operation":"upload"}"#),
        ("download", r#"{"operation":"download","objects":[]}"#),
        (
            "md5",
            r#"{"operation":"upload","objects":[],"hash_algo":"md5"}"#,
        ),
        (
            "negative size",
            r#"{"operation":"upload","objects":[{"oid":"a","size":-1}]}"#,
        ),
        (
            "fractional size",
            r#"{"operation":"upload","objects":[{"oid":"a","size":1.5}]}"#,
        ),
        (
            "size over u64",
            r#"{"operation":"upload","objects":[{"oid":"a","size":18446744073709551616}]}"#,
        ),
        (
            "string size",
            r#"{"operation":"upload","objects":[{"oid":"a","size":"1"}]}"#,
        ),
        (
            "objects not a list",
            r#"{"operation":"upload","objects":{"oid":"a"}}"#,
        ),
    ] {
        refused(&f, what, batch(body), 400, None);
    }
    // Bad objects get per-object errors; the batch itself succeeds and signs nothing for them.
    let good = sha256(b"fine");
    let body = json!({"operation": "upload", "objects": [
        {"oid": "../../hub.sqlite3", "size": 1},
        {"oid": good.to_uppercase(), "size": 4},
        {"oid": good, "size": u64::MAX},
        {"oid": good, "size": 600_000_000_000u64},
        {"oid": good, "size": 4},
    ]})
    .to_string();
    let before = snapshot(&f.hub);
    let started = std::time::Instant::now();
    let r = ok("mixed batch", send(&f.hub, batch(&body)));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_unchanged("oversized or mixed", &before, &snapshot(&f.hub));
    let objects = r.json()["objects"].as_array().unwrap().clone();
    assert_eq!(objects.len(), 5);
    for o in &objects[..4] {
        assert_eq!(o["error"]["code"], 422, "{o}");
        assert!(o.get("actions").is_none(), "{o}");
    }
    assert!(objects[4]["actions"]["upload"]["href"].is_string());
}
