//! `hubsync plan` end to end: the real binary against `hub serve`, with the repo seeded through
//! the Rust client. The JSON output is read back into `hubsync::plan::Plan` (whose types deny
//! unknown fields), so the tests also check the public format.

use std::collections::BTreeMap;

use base64::Engine;
use hubsync::api::{
    self, CommitFile, CommitHeader, CommitLfsFile, CommitLine, LfsObjectSpec, RepoId, RepoType,
};
use hubsync::client::{CreateRepoOptions, HubClient};
use hubsync::plan::{Action, FileChange, Plan};
use sha2::Digest;

use crate::common::{TestContext, TestHub, assert_exit};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// One file written by a commit made out of band.
enum Change<'a> {
    /// A regular file, sent inline.
    Put(&'a str, &'a [u8]),
    /// An LFS file: the object is uploaded first, then referenced.
    PutLfs(&'a str, &'a [u8]),
}

/// Commits `changes` to `main` through the client, the way another tool would; returns the new
/// head.
async fn commit(client: &HubClient, id: &RepoId, changes: &[Change<'_>]) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for change in changes {
        lines.push(match *change {
            Change::Put(path, content) => CommitLine::File(CommitFile {
                path: path.to_string(),
                content: base64::engine::general_purpose::STANDARD.encode(content),
                encoding: "base64".into(),
                old_path: None,
            }),
            Change::PutLfs(path, content) => {
                let spec = LfsObjectSpec {
                    oid: sha256(content),
                    size: content.len() as u64,
                };
                let batch = client
                    .lfs_batch(
                        RepoType::Model,
                        id,
                        Some("main"),
                        std::slice::from_ref(&spec),
                    )
                    .await
                    .unwrap();
                let file = scratch.path().join(&spec.oid);
                std::fs::write(&file, content).unwrap();
                client
                    .upload_lfs_object(&batch.objects[0], &file)
                    .await
                    .unwrap();
                CommitLine::LfsFile(CommitLfsFile {
                    path: path.to_string(),
                    algo: Some("sha256".into()),
                    oid: spec.oid,
                    size: Some(spec.size),
                    old_path: None,
                })
            }
        });
    }
    let header = CommitHeader {
        summary: "out of band".into(),
        description: String::new(),
        parent_commit: None,
    };
    client
        .commit(RepoType::Model, id, "main", &header, &lines, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .commit_oid
}

async fn create_model(client: &HubClient, id: &RepoId) {
    client
        .create_repo(RepoType::Model, id, &CreateRepoOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `plan --format json` (plus `extra`), checks the exit code and reads the plan back.
fn plan_json(ctx: &TestContext, extra: &[&str], code: i32) -> Plan {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let out = ctx.hubsync(&args);
    assert_exit(&out, code);
    let plan: Plan = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a plan ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(plan.schema_version, 1);
    assert_eq!(plan.schema_version, hubsync::plan::SCHEMA_VERSION);
    plan
}

/// `(kind, path)` of each action, for exact comparisons.
fn action_list(plan: &Plan) -> Vec<(String, String)> {
    plan.repos
        .iter()
        .flat_map(|r| &r.actions)
        .map(|a| {
            let kind = serde_json::to_value(a).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string();
            (kind, a.file_path().unwrap_or("").to_string())
        })
        .collect()
}

fn file_change(action: &Action) -> &FileChange {
    match action {
        Action::FileAdd(f) | Action::FileUpdate(f) => f,
        other => panic!("not a file upload: {other:?}"),
    }
}

const MANIFEST: &str = "\
version: 1
repos:
  - id: alice/e2e
    files:
      - local: ./model
        exclude: [\"*.log\"]
        prune: true
";
const CONFIG: &[u8] = b"{\"hidden_size\": 128}\n";
const README: &[u8] = b"# e2e\n\nSeeded through the client.\n";
const README_NEW: &[u8] = b"# e2e\n\nEdited locally.\n";
const WEIGHTS: &[u8] = b"\x00\x01weights\x00\x02";
const NEW_BIN: &[u8] = b"\x00new binary file\x00";

#[test]
fn plan_json_lists_exactly_the_changes() {
    let hub = TestHub::start();
    let id = RepoId::parse("alice/e2e").unwrap();
    let client = hub.write_client();
    let head = rt().block_on(async {
        create_model(&client, &id).await;
        commit(
            &client,
            &id,
            &[
                Change::Put("config.json", CONFIG),
                Change::Put("README.md", README),
                Change::PutLfs("weights/model.safetensors", WEIGHTS),
                Change::Put("old.txt", b"no longer produced\n"),
                Change::Put("train.log", b"excluded: never deleted\n"),
            ],
        )
        .await
    });

    let ctx = TestContext::new().with_hub(&hub);
    ctx.write("hubsync.yaml", MANIFEST);
    ctx.write("model/config.json", CONFIG);
    ctx.write("model/README.md", README_NEW);
    ctx.write("model/weights/model.safetensors", WEIGHTS);
    ctx.write("model/new.bin", NEW_BIN);
    ctx.write("model/train.log", b"excluded locally too\n");

    let plan = plan_json(&ctx, &["--detailed-exitcode", "-o", "saved.json"], 2);
    assert_eq!(
        action_list(&plan),
        [
            ("file_update", "README.md"),
            ("file_add", "new.bin"),
            ("file_delete", "old.txt"),
        ]
        .map(|(k, p)| (k.to_string(), p.to_string()))
    );
    let repo = &plan.repos[0];
    assert_eq!(
        (repo.id.as_str(), repo.repo_type, repo.revision.as_str()),
        ("alice/e2e", RepoType::Model, "main")
    );
    assert_eq!(repo.base_commit.as_deref(), Some(head.as_str()));

    let readme = file_change(&repo.actions[0]);
    assert_eq!(readme.size, README_NEW.len() as u64);
    assert_eq!(readme.sha256, sha256(README_NEW));
    assert_eq!(readme.git_oid, api::git_blob_oid(README_NEW));
    assert_eq!(readme.old_git_oid, Some(api::git_blob_oid(README)));
    assert!(!readme.lfs);
    assert_eq!(readme.local_path, ctx.work().join("model/README.md"));

    let new_bin = file_change(&repo.actions[1]);
    assert!(new_bin.lfs, "a NUL byte in the sample makes it LFS");
    assert!(!new_bin.uploaded);
    assert_eq!(new_bin.sha256, sha256(NEW_BIN));
    assert_eq!(
        new_bin.git_oid,
        api::lfs_git_oid(&sha256(NEW_BIN), NEW_BIN.len() as u64)
    );
    assert_eq!(
        repo.actions[2],
        Action::FileDelete {
            path: "old.txt".into(),
            size: 19,
            old_git_oid: api::git_blob_oid(b"no longer produced\n"),
        }
    );
    assert_eq!((repo.commits, repo.upload_bytes), (1, NEW_BIN.len() as u64));
    let s = &plan.summary;
    assert_eq!(
        (s.add, s.change, s.delete, s.commits, s.upload_bytes),
        (1, 1, 1, 1, NEW_BIN.len() as u64)
    );

    // The saved plan is the same document, and reads back as apply reads it.
    let saved = hubsync::ops::read_plan(&ctx.work().join("saved.json")).unwrap();
    assert_eq!(saved, plan);
}

#[test]
fn out_of_band_change_shows_as_exactly_that_drift() {
    let hub = TestHub::start();
    let id = RepoId::parse("alice/e2e").unwrap();
    let client = hub.write_client();
    rt().block_on(async {
        create_model(&client, &id).await;
        commit(
            &client,
            &id,
            &[
                Change::Put("config.json", CONFIG),
                Change::Put("README.md", README),
                Change::PutLfs("weights/model.safetensors", WEIGHTS),
                Change::Put("train.log", b"outside the scope\n"),
            ],
        )
        .await;
    });
    let ctx = TestContext::new().with_hub(&hub);
    ctx.write("hubsync.yaml", MANIFEST);
    ctx.write("model/config.json", CONFIG);
    ctx.write("model/README.md", README);
    ctx.write("model/weights/model.safetensors", WEIGHTS);

    // In sync: "No changes", exit 0 with --detailed-exitcode, cold cache and warm.
    for _ in 0..2 {
        let out = ctx.hubsync(&["plan", "--detailed-exitcode"]);
        assert_exit(&out, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "No changes. The Hub matches the manifest.\n"
        );
        let plan = plan_json(&ctx, &["--detailed-exitcode"], 0);
        assert!(!plan.has_changes(), "{plan:#?}");
    }

    // Someone edits config.json on the Hub.
    let edited: &[u8] = b"{\"hidden_size\": 256}\n";
    let head = rt().block_on(commit(&client, &id, &[Change::Put("config.json", edited)]));
    let plan = plan_json(&ctx, &["--detailed-exitcode"], 2);
    assert_eq!(plan.repos[0].base_commit.as_deref(), Some(head.as_str()));
    assert_eq!(
        plan.repos[0].actions,
        [Action::FileUpdate(FileChange {
            path: "config.json".into(),
            size: CONFIG.len() as u64,
            sha256: sha256(CONFIG),
            git_oid: api::git_blob_oid(CONFIG),
            lfs: false,
            old_git_oid: Some(api::git_blob_oid(edited)),
            uploaded: false,
            local_path: ctx.work().join("model/config.json"),
            mtime_ns: file_change(&plan.repos[0].actions[0]).mtime_ns,
        })]
    );

    let out = ctx.hubsync(&["plan", "--detailed-exitcode"]);
    assert_exit(&out, 2);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "model alice/e2e (main, at {})\n  ~ config.json (21 B)\n      @@ -1 +1 @@\n      \
             -{{\"hidden_size\": 256}}\n      +{{\"hidden_size\": 128}}\n  (1 commit, 0 B to upload)\n\n\
             Plan: 0 to add, 1 to change, 0 to delete; 1 commit, 0 B to upload.\n",
            &head[..7]
        )
    );
    // Without --detailed-exitcode a plan with changes is still a success.
    assert_exit(&ctx.hubsync(&["plan"]), 0);
}

#[test]
fn bad_manifests_fail_with_a_location_before_any_request() {
    let hub = TestHub::builder().admin().start();
    let ctx = TestContext::new().with_hub(&hub);
    std::fs::create_dir_all(ctx.work().join("model")).unwrap();
    let cases = [
        (
            "version: 1\nrepos:\n  - id: alice/e2e\n    files:\n      - local: ./model\n        prun: true\n",
            "hubsync.yaml:6:9",
        ),
        (
            "version: 1\nrepos:\n  - id: not a repo id\n",
            "hubsync.yaml:3:9",
        ),
        (
            "version: 1\nrepos:\n  - id: alice/space\n    type: space\n    space:\n      sdk: gradio\n      secrets: { KEY: \"${UNSET_SECRET}\" }\n",
            "hubsync.yaml:7:23",
        ),
    ];
    for (yaml, location) in cases {
        ctx.write("hubsync.yaml", yaml);
        let before = hub.requests();
        let out = ctx.hubsync(&["plan", "--detailed-exitcode"]);
        assert_exit(&out, 1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {location}")),
            "expected `error: {location}…`, got:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{out:?}");
        assert_eq!(hub.requests_since(&before), BTreeMap::new(), "{yaml}");
    }
}

#[test]
fn no_op_plan_costs_one_request_per_tree_page() {
    const FILES: usize = 1000;
    const PAGE: usize = 100;
    let hub = TestHub::builder().page_size(Some(PAGE)).admin().start();
    let id = RepoId::parse("alice/many").unwrap();
    let client = hub.write_client();
    let contents: Vec<(String, Vec<u8>)> = (0..FILES)
        .map(|i| (format!("f{i:04}.txt"), format!("file {i}\n").into_bytes()))
        .collect();
    rt().block_on(async {
        create_model(&client, &id).await;
        let changes: Vec<Change> = contents.iter().map(|(p, c)| Change::Put(p, c)).collect();
        commit(&client, &id, &changes).await;
    });
    let ctx = TestContext::new().with_hub(&hub);
    ctx.write(
        "hubsync.yaml",
        "version: 1\nrepos:\n  - id: alice/many\n    files:\n      - local: ./data\n        prune: true\n",
    );
    for (path, content) in &contents {
        ctx.write(&format!("data/{path}"), content);
    }

    // The tree holds the files plus `.gitattributes`, at the root (no folder entries).
    let pages = (FILES + 1).div_ceil(PAGE) as u64;
    let expected = BTreeMap::from([
        ("repo_info".to_string(), 1),
        ("refs".to_string(), 1),
        ("tree".to_string(), pages),
    ]);
    for run in ["cold", "warm"] {
        let before = hub.requests();
        let out = ctx.hubsync(&["plan", "--detailed-exitcode"]);
        assert_exit(&out, 0);
        assert_eq!(hub.requests_since(&before), expected, "{run} plan");
    }
}
