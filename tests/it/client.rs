//! The `client` module against the real local hub: pagination, error mapping, uploads, refs and
//! Spaces, and retries against the hub's injected faults (`hub serve --faults`, scripted with
//! `xN` rules so each test knows exactly which requests fail).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hubsync::api::{
    self, CommitDelete, CommitFile, CommitHeader, CommitLfsFile, CommitLine, EntryType, ErrorCode,
    LfsObjectSpec, PreuploadFile, PreuploadRequest, RepoId, RepoSettingsRequest, RepoType,
    UploadMode, Visibility,
};
use hubsync::client::{
    ByteRange, CreateRepoOptions, ErrorKind, HubClient, HubError, LfsTransfer, RetryPolicy,
    UploadSource,
};
use hubsync::util::secret::Secret;
use sha2::Digest;

use crate::common::{TestHub, fast_retries};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn repo(id: &str) -> RepoId {
    RepoId::parse(id).unwrap()
}

fn file_line(path: &str, content: &[u8]) -> CommitLine {
    CommitLine::File(CommitFile {
        path: path.to_string(),
        content: base64::engine::general_purpose::STANDARD.encode(content),
        encoding: "base64".into(),
        old_path: None,
    })
}

fn header(summary: &str, parent: Option<&str>) -> CommitHeader {
    CommitHeader {
        summary: summary.to_string(),
        description: String::new(),
        parent_commit: parent.map(str::to_string),
    }
}

async fn create_model(client: &HubClient, id: &RepoId) {
    client
        .create_repo(RepoType::Model, id, &CreateRepoOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn expect_err<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, HubError>,
    kind: ErrorKind,
) -> HubError {
    match r {
        Ok(v) => panic!("{what}: expected {kind:?}, got {v:?}"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{what}: {e}");
            e
        }
    }
}

#[test]
fn whoami_names_the_user_and_orgs() {
    let hub = TestHub::start();
    rt().block_on(async {
        let me = hub.write_client().whoami().await.unwrap();
        assert_eq!(me.name, TestHub::USER);
        assert!(me.orgs.iter().any(|o| o.name == TestHub::ORG), "{me:?}");
        let role = me.auth.access_token.map(|t| t.role);
        assert_eq!(role.as_deref(), Some("write"));
        let me = hub.read_client().whoami().await.unwrap();
        assert_eq!(
            me.auth.access_token.map(|t| t.role).as_deref(),
            Some("read")
        );
    });
}

#[test]
fn tree_listing_follows_every_page() {
    let hub = TestHub::start(); // page size 3
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("alice/paged");
        create_model(&c, &id).await;
        let mut ops = Vec::new();
        let mut expected_files = BTreeSet::from([".gitattributes".to_string()]);
        for dir in ["a", "b/c"] {
            for n in 0..5 {
                let path = format!("{dir}/f{n}.txt");
                ops.push(file_line(&path, path.as_bytes()));
                expected_files.insert(path);
            }
        }
        ops.push(file_line("top.txt", b"top"));
        expected_files.insert("top.txt".into());
        c.commit(
            RepoType::Model,
            &id,
            "main",
            &header("add files", None),
            &ops,
            false,
        )
        .await
        .unwrap();

        let tree = c
            .list_tree(RepoType::Model, &id, "main", None, true)
            .await
            .unwrap();
        let files: BTreeSet<String> = tree
            .iter()
            .filter(|e| e.kind == EntryType::File)
            .map(|e| e.path.clone())
            .collect();
        assert_eq!(files, expected_files);
        let dirs: BTreeSet<&str> = tree
            .iter()
            .filter(|e| e.kind == EntryType::Directory)
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(dirs, BTreeSet::from(["a", "b", "b/c"]));
        // 15 entries over pages of 3, and no entry twice.
        assert_eq!(tree.len(), 15);
        let regular = tree.iter().find(|e| e.path == "top.txt").unwrap();
        assert_eq!(regular.oid, api::git_blob_oid(b"top"));
        assert_eq!(regular.size, 3);

        // A sub-folder, its slashes encoded in one segment, also across pages.
        let sub = c
            .list_tree(RepoType::Model, &id, "main", Some("b/c"), false)
            .await
            .unwrap();
        assert_eq!(sub.len(), 5, "{sub:?}");
        assert!(sub.iter().all(|e| e.path.starts_with("b/c/")));

        let root = c
            .list_tree(RepoType::Model, &id, "main", None, false)
            .await
            .unwrap();
        let names: BTreeSet<&str> = root.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from([".gitattributes", "a", "b", "top.txt"])
        );

        let info = c
            .paths_info(
                RepoType::Model,
                &id,
                "main",
                &["a/f1.txt".into(), "missing.txt".into(), "b".into()],
            )
            .await
            .unwrap();
        let got: BTreeSet<&str> = info.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got, BTreeSet::from(["a/f1.txt", "b"]));
    });
}

#[test]
fn commit_listing_follows_every_page_newest_first() {
    let hub = TestHub::start();
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("acme/history");
        create_model(&c, &id).await;
        let mut heads = Vec::new();
        for n in 0..7 {
            let r = c
                .commit(
                    RepoType::Model,
                    &id,
                    "main",
                    &header(&format!("commit {n}"), None),
                    &[file_line("counter.txt", n.to_string().as_bytes())],
                    false,
                )
                .await
                .unwrap();
            assert!(r.commit_url.ends_with(&r.commit_oid), "{r:?}");
            heads.push(r.commit_oid);
        }
        let commits = c.list_commits(RepoType::Model, &id, "main").await.unwrap();
        assert_eq!(commits.len(), 8, "initial commit + 7");
        let titles: Vec<&str> = commits.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles[0], "commit 6");
        assert_eq!(titles[6], "commit 0");
        assert_eq!(titles[7], "initial commit");
        let ids: Vec<&str> = commits.iter().take(7).map(|c| c.id.as_str()).collect();
        let expected: Vec<&str> = heads.iter().rev().map(String::as_str).collect();
        assert_eq!(ids, expected);

        let info = c.repo_info(RepoType::Model, &id, None).await.unwrap();
        assert_eq!(info.sha.as_deref(), Some(heads[6].as_str()));
        let at_tag_like = c
            .repo_info(RepoType::Model, &id, Some(&heads[2][..7]))
            .await
            .unwrap();
        assert_eq!(at_tag_like.sha.as_deref(), Some(heads[2].as_str()));
    });
}

#[test]
fn hub_errors_map_to_kinds_with_diagnostics() {
    let hub = TestHub::start();
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("alice/errors");
        create_model(&c, &id).await;
        let head = c
            .commit(
                RepoType::Model,
                &id,
                "main",
                &header("one", None),
                &[file_line("a.txt", b"a")],
                false,
            )
            .await
            .unwrap()
            .commit_oid;

        // Missing repo: RepoNotFound from X-Error-Code, with the message and a redacted URL.
        let missing = repo("alice/does-not-exist");
        let e = expect_err(
            "missing repo",
            c.repo_info(RepoType::Model, &missing, None).await,
            ErrorKind::RepoNotFound,
        )
        .await;
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.error_code(), Some(ErrorCode::RepoNotFound));
        assert!(e.error_message().is_some(), "{e:?}");
        assert_eq!(e.attempts(), 1, "a 404 is not retried");
        let shown = e.to_string();
        assert!(
            shown.starts_with("failed to read model `alice/does-not-exist`"),
            "{shown}"
        );
        assert!(
            shown.contains("/api/models/alice/does-not-exist"),
            "{shown}"
        );
        assert!(!e.hints().is_empty());
        assert!(
            c.try_repo_info(RepoType::Model, &missing, None)
                .await
                .unwrap()
                .is_none()
        );
        // The same id as a dataset does not exist either.
        expect_err(
            "wrong type",
            c.repo_info(RepoType::Dataset, &id, None).await,
            ErrorKind::RepoNotFound,
        )
        .await;

        // Missing revision, missing file, missing folder.
        let e = expect_err(
            "missing revision",
            c.repo_info(RepoType::Model, &id, Some("no-such-branch"))
                .await,
            ErrorKind::RevisionNotFound,
        )
        .await;
        assert_eq!(e.error_code(), Some(ErrorCode::RevisionNotFound));
        expect_err(
            "missing revision in tree",
            c.list_tree(RepoType::Model, &id, "nope", None, true).await,
            ErrorKind::RevisionNotFound,
        )
        .await;
        let e = expect_err(
            "missing file on resolve HEAD",
            c.file_metadata(RepoType::Model, &id, "main", "nope.txt")
                .await,
            ErrorKind::EntryNotFound,
        )
        .await;
        assert_eq!(e.error_code(), Some(ErrorCode::EntryNotFound));
        assert_eq!(
            e.response().and_then(|r| r.repo_commit.as_deref()),
            Some(head.as_str()),
            "a resolve 404 names the commit"
        );
        expect_err(
            "missing file on resolve GET",
            c.download(RepoType::Model, &id, "main", "nope.txt", None)
                .await,
            ErrorKind::EntryNotFound,
        )
        .await;
        expect_err(
            "missing folder",
            c.list_tree(RepoType::Model, &id, "main", Some("nope"), false)
                .await,
            ErrorKind::EntryNotFound,
        )
        .await;

        // 401: a bad token; its value never shows.
        let bad = hub.client(Some("hf_wrong_token_SECRET"));
        let e = expect_err("bad token", bad.whoami().await, ErrorKind::Unauthorized).await;
        assert_eq!(e.status(), Some(401));
        assert!(e.hints()[0].contains("HF_TOKEN"), "{:?}", e.hints());
        assert!(!format!("{e} {e:?}").contains("SECRET"));

        // 403: the read token may not write.
        let e = expect_err(
            "read token writes",
            hub.read_client()
                .create_repo(RepoType::Model, &repo("alice/ro"), &Default::default())
                .await,
            ErrorKind::Forbidden,
        )
        .await;
        assert_eq!(e.status(), Some(403));
        expect_err(
            "read token commits",
            hub.read_client()
                .commit(
                    RepoType::Model,
                    &id,
                    "main",
                    &header("x", None),
                    &[file_line("x", b"x")],
                    false,
                )
                .await,
            ErrorKind::Forbidden,
        )
        .await;

        // 409: the repo exists.
        let e = expect_err(
            "duplicate repo",
            c.create_repo(RepoType::Model, &id, &Default::default())
                .await,
            ErrorKind::Conflict,
        )
        .await;
        assert_eq!(e.status(), Some(409));

        // 412: a stale parentCommit, and nothing changes.
        let stale = c
            .list_commits(RepoType::Model, &id, "main")
            .await
            .unwrap()
            .last()
            .unwrap()
            .id
            .clone();
        let e = expect_err(
            "stale parent",
            c.commit(
                RepoType::Model,
                &id,
                "main",
                &header("racy", Some(&stale)),
                &[file_line("b.txt", b"b")],
                false,
            )
            .await,
            ErrorKind::PreconditionFailed,
        )
        .await;
        assert_eq!(e.status(), Some(412));
        assert_eq!(e.attempts(), 1);
        assert!(e.hints()[0].contains("hubsync plan"), "{:?}", e.hints());
        let info = c.repo_info(RepoType::Model, &id, None).await.unwrap();
        assert_eq!(info.sha.as_deref(), Some(head.as_str()));
        // With the right parent it goes through.
        c.commit(
            RepoType::Model,
            &id,
            "main",
            &header("not racy", Some(&head)),
            &[file_line("b.txt", b"b")],
            false,
        )
        .await
        .unwrap();

        // Deleting a missing file.
        expect_err(
            "delete a missing file",
            c.commit(
                RepoType::Model,
                &id,
                "main",
                &header("rm", None),
                &[CommitLine::DeletedFile(CommitDelete {
                    path: "ghost.txt".into(),
                })],
                false,
            )
            .await,
            ErrorKind::EntryNotFound,
        )
        .await;

        // A private repo is invisible without a token.
        let private = repo("alice/secret-model");
        c.create_repo(
            RepoType::Model,
            &private,
            &CreateRepoOptions {
                visibility: Some(Visibility::Private),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        expect_err(
            "anonymous on a private repo",
            hub.anonymous_client()
                .repo_info(RepoType::Model, &private, None)
                .await,
            ErrorKind::RepoNotFound,
        )
        .await;
        c.update_settings(
            RepoType::Model,
            &private,
            &RepoSettingsRequest {
                visibility: Some(Visibility::Public),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let info = hub
            .anonymous_client()
            .repo_info(RepoType::Model, &private, None)
            .await
            .unwrap();
        assert!(!info.private);

        // Deleting a repo, then deleting it again.
        c.delete_repo(RepoType::Model, &private).await.unwrap();
        expect_err(
            "delete twice",
            c.delete_repo(RepoType::Model, &private).await,
            ErrorKind::RepoNotFound,
        )
        .await;
    });
}

#[test]
fn refs_branches_and_tags() {
    let hub = TestHub::start();
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("alice/refs");
        create_model(&c, &id).await;
        c.create_branch(RepoType::Model, &id, "dev", None)
            .await
            .unwrap();
        expect_err(
            "duplicate branch",
            c.create_branch(RepoType::Model, &id, "dev", None).await,
            ErrorKind::Conflict,
        )
        .await;
        let r = c
            .commit(
                RepoType::Model,
                &id,
                "dev",
                &header("on dev", None),
                &[file_line("dev.txt", b"dev")],
                false,
            )
            .await
            .unwrap();
        c.create_tag(RepoType::Model, &id, "v1.0", "dev", Some("first"))
            .await
            .unwrap();
        expect_err(
            "duplicate tag",
            c.create_tag(RepoType::Model, &id, "v1.0", "main", None)
                .await,
            ErrorKind::Conflict,
        )
        .await;
        expect_err(
            "tag at a missing revision",
            c.create_tag(RepoType::Model, &id, "v2", "nowhere", None)
                .await,
            ErrorKind::RevisionNotFound,
        )
        .await;
        let refs = c.list_refs(RepoType::Model, &id, false).await.unwrap();
        let dev = refs.branches.iter().find(|b| b.name == "dev").unwrap();
        assert_eq!(dev.target_commit, r.commit_oid);
        let tag = refs.tags.iter().find(|t| t.name == "v1.0").unwrap();
        assert_eq!(tag.target_commit, r.commit_oid);
        assert_eq!(tag.git_ref, "refs/tags/v1.0");

        c.delete_tag(RepoType::Model, &id, "v1.0").await.unwrap();
        expect_err(
            "delete a missing tag",
            c.delete_tag(RepoType::Model, &id, "v1.0").await,
            ErrorKind::RevisionNotFound,
        )
        .await;
        c.delete_branch(RepoType::Model, &id, "dev").await.unwrap();
        let refs = c.list_refs(RepoType::Model, &id, true).await.unwrap();
        assert_eq!(
            refs.branches
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            ["main"]
        );
        assert!(refs.tags.is_empty());
        assert!(refs.pull_requests.is_some());

        // A pull request commit lands on refs/pr/N, and that revision is addressable.
        let pr = c
            .commit(
                RepoType::Model,
                &id,
                "main",
                &header("proposal", None),
                &[file_line("pr.txt", b"pr")],
                true,
            )
            .await
            .unwrap();
        let url = pr.pull_request_url.expect("a pull request URL");
        let n = url.rsplit('/').next().unwrap();
        let files = c
            .list_tree(RepoType::Model, &id, &format!("refs/pr/{n}"), None, true)
            .await
            .unwrap();
        assert!(files.iter().any(|e| e.path == "pr.txt"));
    });
}

#[test]
fn lfs_uploads_basic_and_multipart_then_download() {
    let hub = TestHub::builder().multipart_chunk_size(1000).start();
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("alice/weights");
        create_model(&c, &id).await;
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.bin");
        let big = dir.path().join("big.bin");
        std::fs::write(&small, vec![0u8; 700]).unwrap();
        let big_bytes: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &big_bytes).unwrap();

        let pre = c
            .preupload(
                RepoType::Model,
                &id,
                "main",
                &PreuploadRequest {
                    files: vec![
                        PreuploadFile {
                            path: "w/small.bin".into(),
                            sample: base64::engine::general_purpose::STANDARD.encode([0u8; 512]),
                            size: 700,
                        },
                        PreuploadFile {
                            path: "notes.txt".into(),
                            sample: base64::engine::general_purpose::STANDARD.encode(b"hello"),
                            size: 5,
                        },
                    ],
                    git_ignore: None,
                    git_attributes: None,
                },
            )
            .await
            .unwrap();
        let mode = |p: &str| pre.files.iter().find(|f| f.path == p).unwrap().upload_mode;
        assert_eq!(mode("w/small.bin"), UploadMode::Lfs, "*.bin is LFS-tracked");
        assert_eq!(mode("notes.txt"), UploadMode::Regular);

        let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
        let specs = vec![
            LfsObjectSpec {
                oid: sha(&[0u8; 700]),
                size: 700,
            },
            LfsObjectSpec {
                oid: sha(&big_bytes),
                size: 2500,
            },
        ];
        let batch = c
            .lfs_batch(RepoType::Model, &id, Some("main"), &specs)
            .await
            .unwrap();
        assert_eq!(batch.objects.len(), 2);
        let t1 = c
            .upload_lfs_object(&batch.objects[0], &small)
            .await
            .unwrap();
        assert_eq!(t1, LfsTransfer::Basic);
        let t2 = c.upload_lfs_object(&batch.objects[1], &big).await.unwrap();
        assert_eq!(t2, LfsTransfer::Multipart { parts: 3 });

        // The Hub now has both: a second batch asks for nothing.
        let again = c
            .lfs_batch(RepoType::Model, &id, Some("main"), &specs)
            .await
            .unwrap();
        for o in &again.objects {
            assert_eq!(
                c.upload_lfs_object(o, &big).await.unwrap(),
                LfsTransfer::AlreadyPresent
            );
        }

        let commit = c
            .commit(
                RepoType::Model,
                &id,
                "main",
                &header("weights", None),
                &[
                    CommitLine::LfsFile(CommitLfsFile {
                        path: "w/small.bin".into(),
                        algo: Some("sha256".into()),
                        oid: specs[0].oid.clone(),
                        size: Some(700),
                        old_path: None,
                    }),
                    CommitLine::LfsFile(CommitLfsFile {
                        path: "w/big.bin".into(),
                        algo: Some("sha256".into()),
                        oid: specs[1].oid.clone(),
                        size: Some(2500),
                        old_path: None,
                    }),
                    file_line("notes.txt", b"hello"),
                ],
                false,
            )
            .await
            .unwrap();

        let meta = c
            .file_metadata(RepoType::Model, &id, "main", "w/big.bin")
            .await
            .unwrap();
        assert_eq!(meta.commit, commit.commit_oid);
        assert_eq!(meta.etag, specs[1].oid, "LFS ETag is the sha256");
        assert_eq!(meta.size, 2500);
        let meta = c
            .file_metadata(RepoType::Model, &id, "main", "notes.txt")
            .await
            .unwrap();
        assert_eq!(meta.etag, api::git_blob_oid(b"hello"));

        let d = c
            .download(RepoType::Model, &id, "main", "w/big.bin", None)
            .await
            .unwrap();
        assert_eq!(d.commit.as_deref(), Some(commit.commit_oid.as_str()));
        assert_eq!(d.bytes().await.unwrap().as_ref(), &big_bytes[..]);
        let d = c
            .download(
                RepoType::Model,
                &id,
                &commit.commit_oid,
                "w/big.bin",
                Some(ByteRange {
                    start: 10,
                    end: Some(19),
                }),
            )
            .await
            .unwrap();
        assert_eq!(d.status, 206);
        assert_eq!(d.bytes().await.unwrap().as_ref(), &big_bytes[10..20]);

        let tree = c
            .list_tree(RepoType::Model, &id, "main", Some("w"), false)
            .await
            .unwrap();
        let big_entry = tree.iter().find(|e| e.path == "w/big.bin").unwrap();
        assert_eq!(big_entry.lfs.as_ref().unwrap().oid, specs[1].oid);
        assert_eq!(big_entry.oid, api::lfs_git_oid(&specs[1].oid, 2500));
    });
}

#[test]
fn space_settings_round_trip() {
    let hub = TestHub::start();
    rt().block_on(async {
        let c = hub.write_client();
        let id = repo("alice/demo-space");
        c.create_repo(
            RepoType::Space,
            &id,
            &CreateRepoOptions {
                sdk: Some("gradio".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        c.add_space_secret(&id, "API_KEY", &Secret::new("s3cr3t".into()), None)
            .await
            .unwrap();
        let secrets = c.get_space_secrets(&id).await.unwrap();
        assert!(secrets.contains_key("API_KEY"));
        c.delete_space_secret(&id, "API_KEY").await.unwrap();
        c.delete_space_secret(&id, "API_KEY").await.unwrap();
        assert!(c.get_space_secrets(&id).await.unwrap().is_empty());

        let vars = c
            .add_space_variable(&id, "MODEL_ID", "alice/tiny", Some("which model"))
            .await
            .unwrap();
        assert_eq!(vars["MODEL_ID"].value, "alice/tiny");
        assert_eq!(c.get_space_variables(&id).await.unwrap(), vars);
        assert!(
            c.delete_space_variable(&id, "MODEL_ID")
                .await
                .unwrap()
                .is_empty()
        );

        let rt = c
            .request_space_hardware(&id, "t4-small", None)
            .await
            .unwrap();
        assert_eq!(rt.hardware.requested.as_deref(), Some("t4-small"));
        let rt = c.set_space_sleep_time(&id, 3600).await.unwrap();
        assert_eq!(rt.gc_timeout, Some(3600));
        let rt = c.get_space_runtime(&id).await.unwrap();
        assert_eq!(rt.gc_timeout, Some(3600));
        assert_eq!(rt.hardware.requested.as_deref(), Some("t4-small"));
    });
}

// ---- retries, against the hub's injected faults ----------------------------------------------

/// A hub with `--admin --faults SPEC`, holding the model `alice/r`.
fn faulty_hub(spec: &str) -> TestHub {
    let hub = TestHub::builder().admin().arg("--faults").arg(spec).start();
    rt().block_on(create_model(&hub.write_client(), &repo("alice/r")));
    hub
}

/// Requests the hub received on `route` (faulted ones included).
fn hits(hub: &TestHub, route: &str) -> u64 {
    hub.stats()["requests"][route].as_u64().unwrap_or(0)
}

#[test]
fn idempotent_reads_retry_503_then_succeed() {
    let hub = faulty_hub("tree:http503=x2");
    rt().block_on(async {
        let tree = hub
            .write_client()
            .list_tree(RepoType::Model, &repo("alice/r"), "main", None, true)
            .await
            .unwrap();
        assert_eq!(tree.len(), 1, "{tree:?}");
    });
    assert_eq!(hits(&hub, "tree"), 3);
    assert_eq!(hub.stats()["faults"]["tree:http503"], 2);
}

#[test]
fn rate_limited_reads_wait_as_told_then_succeed() {
    let hub = faulty_hub("commits:http429=x1");
    rt().block_on(async {
        let started = Instant::now();
        hub.write_client()
            .list_commits(RepoType::Model, &repo("alice/r"), "main")
            .await
            .unwrap();
        // The policy's own backoff is 10 ms; the second attempt waited for the hub's 1 s.
        assert!(started.elapsed() >= Duration::from_secs(1));
    });
    assert_eq!(hits(&hub, "commits"), 2);

    // `RateLimit` with `r=0` asks for `t + 1` s; a wait over the policy cap fails at once.
    let hub = faulty_hub("commits:http429=1,retry_after=600");
    rt().block_on(async {
        let started = Instant::now();
        let e = hub
            .write_client()
            .list_commits(RepoType::Model, &repo("alice/r"), "main")
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            e.kind(),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(601))
            }
        );
        assert!(e.hints()[0].contains("601s"), "{:?}", e.hints());
    });
    assert_eq!(hits(&hub, "commits"), 1);
}

#[test]
fn retries_stop_after_the_policy_limit() {
    let hub = faulty_hub("repo_info:http502=1");
    rt().block_on(async {
        let client = HubClient::builder(hub.url())
            .retry_policy(RetryPolicy {
                max_retries: 2,
                ..fast_retries()
            })
            .build()
            .unwrap();
        let e = client
            .repo_info(RepoType::Model, &repo("alice/r"), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.attempts(), 3);
        assert!(
            e.request_id().is_some_and(|id| id.starts_with("fault-")),
            "{e}"
        );
        assert!(e.to_string().contains("after 3 attempts"), "{e}");
    });
    assert_eq!(hits(&hub, "repo_info"), 3);
}

#[test]
fn a_failed_commit_is_never_retried() {
    // Each rule hits the first request it sees, in order: 503, then 429, then 504, then through.
    let hub = faulty_hub("commit:http503=x1,commit:http429=x1,commit:http504=x1,branch:http503=x1");
    let id = repo("alice/r");
    let ops = [file_line("a.txt", b"a")];
    let head = header("c", None);
    rt().block_on(async {
        let c = hub.write_client();
        let commit = || c.commit(RepoType::Model, &id, "main", &head, &ops, false);

        // 503: sent once, reported as a server error.
        let e = commit().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.attempts(), 1);
        assert_eq!(hits(&hub, "commit"), 1);

        // 429: not retried either, even though the hub says when to come back.
        let e = commit().await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::RateLimited { .. }), "{e}");
        assert_eq!(hits(&hub, "commit"), 2);

        // 504: the commit may have landed; the caller must re-read the head.
        let e = commit().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Ambiguous);
        assert!(e.may_have_been_applied());
        assert_eq!(hits(&hub, "commit"), 3);

        // None of them reached the repo; the next commit goes through, once.
        assert_eq!(hub.stats()["commits_created"], 0);
        commit().await.unwrap();
        assert_eq!(hits(&hub, "commit"), 4);
        let commits = c.list_commits(RepoType::Model, &id, "main").await.unwrap();
        assert_eq!(commits.len(), 2);

        // Repo and ref creation are not retried either.
        assert!(
            c.create_branch(RepoType::Model, &id, "dev", None)
                .await
                .is_err()
        );
        assert_eq!(hits(&hub, "branch"), 1);
    });
    let hub = TestHub::builder()
        .admin()
        .arg("--faults")
        .arg("repo_create:http503=x1")
        .start();
    rt().block_on(async {
        let c = hub.write_client();
        let e = c
            .create_repo(RepoType::Model, &id, &Default::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{e}");
        assert_eq!(hits(&hub, "repo_create"), 1);
    });
}

#[test]
fn a_commit_whose_connection_breaks_is_ambiguous() {
    // The hub closes the connection without answering.
    let hub = faulty_hub("commit:reset=1,repo_info:reset=1,other:reset=1");
    rt().block_on(async {
        let c = hub.write_client();
        let e = c
            .commit(
                RepoType::Model,
                &repo("alice/r"),
                "main",
                &header("c", None),
                &[file_line("a.txt", b"a")],
                false,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Ambiguous, "{e}");
        assert_eq!(hits(&hub, "commit"), 1);
        assert!(e.hints()[0].contains("hubsync plan"));

        // The same failure on a read is retried, then reported as a transport error.
        let e = c
            .repo_info(RepoType::Model, &repo("alice/r"), None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: true }, "{e}");
        assert_eq!(e.attempts(), 6);
        assert_eq!(hits(&hub, "repo_info"), 6);

        // A signed upload URL never shows in the error, its message, or its causes.
        let e = c
            .lfs_upload(
                &format!("{}/lfs/up?token=SIGNED_SECRET&part=1", hub.url()),
                UploadSource::bytes(&b"abc"[..]),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: true }, "{e}");
        let mut shown = format!("{e} {e:?}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            shown.push_str(&format!(" {c} {c:?}"));
            cause = c.source();
        }
        assert!(!shown.contains("SIGNED_SECRET"), "{shown}");
        assert!(shown.contains("token=****"), "{shown}");
    });
}

#[test]
fn an_unreachable_endpoint_is_a_transport_error() {
    rt().block_on(async {
        // Bind then drop, so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = HubClient::builder(&format!("http://127.0.0.1:{port}"))
            .retry_policy(RetryPolicy {
                max_retries: 1,
                ..fast_retries()
            })
            .build()
            .unwrap();
        let e = c.whoami().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: false }, "{e}");
        assert_eq!(e.attempts(), 2);
        assert!(!e.may_have_been_applied());
        // Creating a repo that provably never left is not ambiguous.
        let e = c
            .create_repo(RepoType::Model, &repo("alice/r"), &Default::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transport { maybe_sent: false }, "{e}");
        assert_eq!(e.attempts(), 1);
    });
}

/// A client with a fake token, for the recording server below.
fn fast_client(url: &str) -> HubClient {
    HubClient::builder(url)
        .token(Some(Secret::new("hf_fake".into())))
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

#[test]
fn the_token_goes_to_the_hub_only() {
    // This one keeps an in-test server: it asserts on the headers each request *arrived* with,
    // across two origins, which the hub does not expose (and must not: it would be a token
    // echo). It fakes nothing the hub implements.
    rt().block_on(async {
        // Records (path, authorization, user-agent) of every request.
        type Seen = Arc<std::sync::Mutex<Vec<(String, Option<String>, String)>>>;
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .fallback(
                |axum::extract::State(seen): axum::extract::State<Seen>,
                 req: axum::extract::Request| async move {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .map(|v| v.to_str().unwrap().to_string())
                    };
                    seen.lock().unwrap().push((
                        req.uri().path().to_string(),
                        h("authorization"),
                        h("user-agent").unwrap_or_default(),
                    ));
                    "{}"
                },
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let c = fast_client(&url);
        c.get_space_variables(&repo("alice/s")).await.unwrap();
        c.lfs_upload(
            &format!("{url}/lfs-upload/1/x"),
            UploadSource::bytes(&b"x"[..]),
        )
        .await
        .unwrap();
        c.lfs_verify(
            &format!("{url}/alice/s.git/info/lfs/objects/verify"),
            &api::LfsVerifyRequest {
                oid: "x".into(),
                size: 1,
            },
        )
        .await
        .unwrap();
        fast_client(&url.replace("127.0.0.1", "localhost"))
            .lfs_verify(
                &format!("{url}/elsewhere"),
                &api::LfsVerifyRequest {
                    oid: "x".into(),
                    size: 1,
                },
            )
            .await
            .unwrap();
        // `{}` is not a whoami answer: a decode error naming the request.
        let e = hub_anonymous(&url).whoami().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
        assert!(e.to_string().contains("/api/whoami-v2"), "{e}");

        let seen = seen.lock().unwrap().clone();
        let auth: Vec<(&str, Option<&str>)> = seen
            .iter()
            .map(|(p, a, _)| (p.as_str(), a.as_deref()))
            .collect();
        assert_eq!(
            auth,
            [
                ("/api/spaces/alice/s/variables", Some("Bearer hf_fake")),
                ("/lfs-upload/1/x", None),
                (
                    "/alice/s.git/info/lfs/objects/verify",
                    Some("Bearer hf_fake")
                ),
                // Another origin than the client's endpoint gets no token.
                ("/elsewhere", None),
                ("/api/whoami-v2", None),
            ]
        );
        assert!(
            seen.iter()
                .all(|(_, _, ua)| ua == concat!("hubsync/", env!("CARGO_PKG_VERSION")))
        );
    });
}

fn hub_anonymous(url: &str) -> HubClient {
    HubClient::builder(url)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}
