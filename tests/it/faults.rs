//! The local hub's fault injection (`hub serve --faults SPEC --admin`), seen from outside: the
//! shape of injected answers, a commit whose response is lost, an upload cut off by a reset,
//! the `/admin/stats` counters, and determinism for a seed. The client's reaction to these
//! faults (retries, ambiguity) is tested in `client.rs`.

use std::time::Duration;

use base64::Engine;
use hubsync::api::{CommitFile, CommitHeader, CommitLine, LfsObjectSpec, RepoId, RepoType};
use hubsync::client::ErrorKind;
use serde_json::json;
use sha2::Digest;

use crate::common::raw;
use crate::common::{TestHub, fast_retries};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn faulty(spec: &str) -> TestHub {
    TestHub::builder().admin().arg("--faults").arg(spec).start()
}

fn repo(id: &str) -> RepoId {
    RepoId::parse(id).unwrap()
}

fn whoami() -> raw::Request {
    raw::req("GET", "/api/whoami-v2").token(Some(TestHub::WRITE_TOKEN))
}

#[test]
fn injected_429s_carry_retry_after_and_rate_limit_headers() {
    for (spec, wait) in [
        ("whoami:http429=1", "1"),
        ("http429=x1,retry_after=42", "42"),
    ] {
        let hub = faulty(spec);
        let r = whoami().send(hub.url()).unwrap();
        assert_eq!(r.status, 429, "{spec}: {}", r.everything());
        assert_eq!(r.header("retry-after"), Some(wait), "{spec}");
        assert_eq!(
            r.header("ratelimit"),
            Some(format!("\"api\";r=0;t={wait}").as_str()),
            "{spec}"
        );
        assert_eq!(
            r.header("ratelimit-policy"),
            Some("\"fixed window\";\"api\";q=1000;w=300")
        );
        // Shaped like every other Hub error.
        assert!(r.header("x-error-message").is_some());
        assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
        assert!(r.json()["error"].as_str().unwrap().contains("rate limit"));
    }
}

#[test]
fn other_injected_statuses_are_hub_shaped() {
    let hub = faulty("whoami:http500=x1,whoami:http502=x1,whoami:http503=x1,whoami:http504=x1");
    for status in [500, 502, 503, 504, 200] {
        let r = whoami().send(hub.url()).unwrap();
        assert_eq!(r.status, status, "{}", r.everything());
        if status != 200 {
            assert!(r.header("x-error-message").is_some());
            assert!(r.header("x-request-id").is_some());
            assert!(r.json()["error"].is_string());
            assert!(r.header("retry-after").is_none());
        }
    }
}

#[test]
fn a_lost_commit_response_still_applies_the_commit() {
    let hub = faulty("commit:lost_commit_response=1");
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("alice/lost");
        c.create_repo(RepoType::Model, &id, &Default::default())
            .await
            .unwrap();
        let before = hub.stats();
        let e = c
            .commit(
                RepoType::Model,
                &id,
                "main",
                &CommitHeader {
                    summary: "lost in transit".into(),
                    ..Default::default()
                },
                &[CommitLine::File(CommitFile {
                    path: "a.txt".into(),
                    content: base64::engine::general_purpose::STANDARD.encode(b"a"),
                    encoding: "base64".into(),
                    old_path: None,
                })],
                false,
            )
            .await
            .unwrap_err();
        // The client saw the connection drop after sending: it cannot know the outcome.
        assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");
        assert!(e.may_have_been_applied());
        // But the hub applied it, exactly once.
        let commits = c.list_commits(RepoType::Model, &id, "main").await.unwrap();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].title, "lost in transit");
        let after = hub.stats();
        assert_eq!(
            after["commits_created"].as_u64().unwrap(),
            before["commits_created"].as_u64().unwrap() + 1
        );
        assert_eq!(after["faults"]["commit:lost_commit_response"], 1);
        assert_eq!(after["requests"]["commit"], 1);
    });
}

#[test]
fn a_reset_upload_stores_nothing() {
    // Every attempt of the test client's retry policy at the first part fails; later ones pass.
    let attempts = fast_retries().max_retries + 1;
    let parts = format!("lfs_part:reset=x{attempts}");
    for (spec, chunk) in [
        ("lfs_upload:reset=1", None),
        (parts.as_str(), Some(100_000)),
    ] {
        let mut b = TestHub::builder().admin().arg("--faults").arg(spec);
        if let Some(n) = chunk {
            b = b.multipart_chunk_size(n);
        }
        let hub = b.start();
        rt().block_on(async {
            let c = hub.write_client();
            let id = repo("alice/weights");
            c.create_repo(RepoType::Model, &id, &Default::default())
                .await
                .unwrap();
            let content: Vec<u8> = (0..250_000u32).map(|i| (i % 253) as u8).collect();
            let spec_ = LfsObjectSpec {
                oid: hex::encode(sha2::Sha256::digest(&content)),
                size: content.len() as u64,
            };
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("w.bin");
            std::fs::write(&file, &content).unwrap();
            let batch = c
                .lfs_batch(
                    RepoType::Model,
                    &id,
                    Some("main"),
                    std::slice::from_ref(&spec_),
                )
                .await
                .unwrap();
            let e = c
                .upload_lfs_object(&batch.objects[0], &file)
                .await
                .unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::Transport { .. }),
                "{spec}: {e}"
            );
            let stats = hub.stats();
            assert_eq!(stats["lfs_objects_uploaded"], 0, "{spec}");
            assert_eq!(stats["lfs_bytes_received"], 0, "{spec}");
            assert!(stats["faults"].as_object().unwrap().len() == 1, "{stats}");
            let stored = walkdir::WalkDir::new(hub.data_dir().join("lfs"))
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .count();
            assert_eq!(stored, 0, "{spec}: an object was stored");
            // The hub still asks for the object, and a clean retry of the transfer stores it.
            let again = c
                .lfs_batch(
                    RepoType::Model,
                    &id,
                    Some("main"),
                    std::slice::from_ref(&spec_),
                )
                .await
                .unwrap();
            assert!(again.objects[0].actions.is_some(), "{spec}");
            if chunk.is_some() {
                c.upload_lfs_object(&again.objects[0], &file).await.unwrap();
                assert_eq!(hub.stats()["lfs_objects_uploaded"], 1);
            }
        });
    }
}

#[test]
fn admin_stats_count_requests_per_route_and_faults() {
    let hub = faulty("refs:http503=x2,resolve:http500=x1");
    let w = Some(TestHub::WRITE_TOKEN);
    let send = |r: raw::Request| r.send(hub.url()).unwrap().status;
    assert_eq!(send(whoami()), 200);
    assert_eq!(
        send(
            raw::req("POST", "/api/repos/create")
                .token(w)
                .json(&json!({"name": "r"}))
        ),
        200
    );
    let refs = || raw::req("GET", "/api/models/alice/r/refs").token(w);
    assert_eq!([send(refs()), send(refs()), send(refs())], [503, 503, 200]);
    for _ in 0..2 {
        assert_eq!(
            send(raw::req("GET", "/api/models/alice/r/tree/main").token(w)),
            200
        );
    }
    let resolve = || raw::req("GET", "/alice/r/resolve/main/.gitattributes");
    assert_eq!([send(resolve()), send(resolve())], [500, 200]);
    // Reading the counters is neither counted nor faulted.
    let _ = hub.stats();
    let stats = hub.stats();
    assert_eq!(
        stats["requests"],
        json!({"whoami": 1, "repo_create": 1, "refs": 3, "tree": 2, "resolve": 2})
    );
    assert_eq!(
        stats["faults"],
        json!({"refs:http503": 2, "resolve:http500": 1})
    );
    assert_eq!(stats["commits_created"], 0);
}

/// The statuses of `n` whoami calls against a fresh hub with `spec`, and its fault counters.
fn sequence(spec: &str, n: usize) -> (Vec<u16>, serde_json::Value) {
    let hub = faulty(spec);
    let statuses = (0..n)
        .map(|_| whoami().send(hub.url()).unwrap().status)
        .collect();
    (statuses, hub.stats()["faults"].clone())
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let spec = "seed=7,whoami:http503=0.3,whoami:http500=0.2,delay=1ms@0.5";
    let (a, fa) = sequence(spec, 40);
    let (b, fb) = sequence(spec, 40);
    assert_eq!(a, b);
    assert_eq!(fa, fb);
    // Not a degenerate sequence: every outcome shows up.
    for status in [200, 500, 503] {
        assert!(a.contains(&status), "{status} never happened: {a:?}");
    }
    // Another seed, another sequence (fixed seeds, so this is deterministic too).
    let (c, _) = sequence(&spec.replace("seed=7", "seed=8"), 40);
    assert_ne!(a, c);
}

#[test]
fn delays_slow_requests_down() {
    let hub = faulty("whoami:delay=300ms@x1");
    let started = std::time::Instant::now();
    assert_eq!(whoami().send(hub.url()).unwrap().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(whoami().send(hub.url()).unwrap().status, 200);
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(hub.stats()["faults"]["whoami:delay"], 1);
}
