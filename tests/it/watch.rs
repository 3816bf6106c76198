//! `hubsync watch` against the real `hub serve`: the acceptance tests of issue 5.
//!
//! Each test runs the binary with `--format json` in its own temp folder and reads its events
//! back into [`WatchEvent`] (which denies unknown fields), then checks the Hub's history.
//! Debounce windows are short (200–500 ms) and files a few MB, so the module stays fast.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hubsync::api::{EntryType, RepoId, RepoType, TreeEntry};
use hubsync::client::HubClient;
use hubsync::watch::{StopReason, WaitReason, WatchEvent};
use sha2::{Digest, Sha256};

use crate::common::TestHub;

/// How long any single wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(40);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A temp folder with `hubsync.yaml` and the watched `run/`.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(manifest: &str) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("hubsync-watch-")
            .tempdir()
            .expect("a temp dir");
        std::fs::write(dir.path().join("hubsync.yaml"), manifest).expect("write the manifest");
        std::fs::create_dir_all(dir.path().join("run")).expect("create run/");
        Workspace { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let path = self.run().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }
}

/// Writes `data` in `chunks` pieces with `pause` between them, like a trainer saving weights.
fn write_slowly(path: &Path, data: &[u8], chunks: usize, pause: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    let size = data.len().div_ceil(chunks);
    for (i, chunk) in data.chunks(size).enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
    }
}

/// `len` pseudo-random bytes from `seed` (binary, so they go up as LFS).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out[0] = 0; // A NUL byte: the Hub stores the file with LFS.
    out
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Each stdout line as it arrived: an event, or the line that did not parse.
type EventLog = Arc<Mutex<Vec<(Instant, Result<WatchEvent, String>)>>>;

/// A running `hubsync watch --format json`, its events, and its stderr.
struct Watch {
    child: Child,
    events: EventLog,
    stderr: PathBuf,
}

/// Why watch stopped, when its last event says it did.
fn stop_reason(evs: &[(Instant, WatchEvent)]) -> Option<StopReason> {
    match evs.last() {
        Some((_, WatchEvent::Stopped { reason, .. })) => Some(*reason),
        _ => None,
    }
}

impl Watch {
    fn start(hub: &TestHub, ws: &Workspace, args: &[&str]) -> Watch {
        Watch::start_with_token(hub, ws, args, TestHub::WRITE_TOKEN)
    }

    fn start_with_token(hub: &TestHub, ws: &Workspace, args: &[&str], token: &str) -> Watch {
        let stderr = ws.path().join(format!(
            "watch-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_hubsync"))
            .args(["watch", "-f", "hubsync.yaml", "--format", "json"])
            .args(args)
            .current_dir(ws.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", ws.path())
            .env("HF_HOME", ws.path().join("hf-home"))
            .env("HF_ENDPOINT", hub.url())
            .env("HF_TOKEN", token)
            .env("NO_COLOR", "1")
            .env("HUBSYNC_LOG", "hubsync=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn `hubsync watch`");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parsed =
                    serde_json::from_str::<WatchEvent>(&line).map_err(|e| format!("{e}: {line}"));
                sink.lock().unwrap().push((Instant::now(), parsed));
            }
        });
        let w = Watch {
            child,
            events,
            stderr,
        };
        w.wait_for("the `started` event", |evs| {
            evs.iter()
                .any(|(_, e)| matches!(e, WatchEvent::Started { .. }))
        });
        w
    }

    /// The events so far (fails on a line that is not a [`WatchEvent`]).
    fn events(&self) -> Vec<(Instant, WatchEvent)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(t, e)| match e {
                Ok(e) => (*t, e.clone()),
                Err(bad) => panic!("not a watch event: {bad}\n{}", self.log()),
            })
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until `pred` holds for the events, failing after [`TIMEOUT`].
    fn wait_for(&self, what: &str, pred: impl Fn(&[(Instant, WatchEvent)]) -> bool) {
        let start = Instant::now();
        loop {
            let evs = self.events();
            if pred(&evs) {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "timed out waiting for {what}; events: {:#?}\nstderr:\n{}",
                evs.iter().map(|(_, e)| e).collect::<Vec<_>>(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Commits made so far, over all round events.
    fn commits(&self) -> usize {
        rounds(&self.events())
            .iter()
            .map(|(_, r)| r.iter().map(|c| c.len()).sum::<usize>())
            .sum()
    }

    fn wait_commits(&self, n: usize) {
        self.wait_for(&format!("{n} commit(s)"), |evs| {
            rounds(evs)
                .iter()
                .map(|(_, r)| r.iter().map(|c| c.len()).sum::<usize>())
                .sum::<usize>()
                >= n
        });
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("run `kill`");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "watch did not exit; stderr:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(arrival, commit ids per repo)` of every round event that committed.
fn rounds(evs: &[(Instant, WatchEvent)]) -> Vec<(Instant, Vec<Vec<String>>)> {
    evs.iter()
        .filter_map(|(t, e)| match e {
            WatchEvent::Round { repos, .. } => {
                let commits: Vec<Vec<String>> = repos.iter().map(|r| r.commits.clone()).collect();
                commits
                    .iter()
                    .any(|c| !c.is_empty())
                    .then_some((*t, commits))
            }
            _ => None,
        })
        .collect()
}

fn repo_id(name: &str) -> RepoId {
    RepoId::parse(&format!("{}/{name}", TestHub::USER)).unwrap()
}

/// Every commit of `main`, oldest first, with its full tree.
async fn history(client: &HubClient, name: &str) -> Vec<(String, Vec<TreeEntry>)> {
    let id = repo_id(name);
    let mut commits = client
        .list_commits(RepoType::Model, &id, "main")
        .await
        .expect("list commits");
    commits.reverse();
    let mut out = Vec::new();
    for c in commits {
        let tree = client
            .list_tree(RepoType::Model, &id, &c.id, None, true)
            .await
            .expect("list a commit's tree");
        let files = tree
            .into_iter()
            .filter(|e| e.kind == EntryType::File)
            .collect();
        out.push((c.id, files));
    }
    out
}

/// The files of `main` now (empty when the repo does not exist yet).
async fn files_now(client: &HubClient, name: &str) -> Vec<TreeEntry> {
    match client
        .list_tree(RepoType::Model, &repo_id(name), "main", None, true)
        .await
    {
        Ok(tree) => tree
            .into_iter()
            .filter(|e| e.kind == EntryType::File)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Polls the Hub until `pred` holds for the files of `main`.
fn wait_hub(hub: &TestHub, name: &str, what: &str, pred: impl Fn(&[TreeEntry]) -> bool) {
    let client = hub.write_client();
    let start = Instant::now();
    loop {
        let files = rt().block_on(files_now(&client, name));
        if pred(&files) {
            return;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out waiting for the Hub to hold {what}; it holds {:?}",
            files.iter().map(|f| &f.path).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /admin/stats` of a hub started with `--admin`.
fn stats(hub: &TestHub) -> serde_json::Value {
    // Building a HubClient installs the TLS provider reqwest needs, even for plain HTTP.
    let _ = hub.write_client();
    rt().block_on(async {
        reqwest::get(format!("{}/admin/stats", hub.url()))
            .await
            .expect("GET /admin/stats")
            .json()
            .await
            .expect("stats JSON")
    })
}

fn checkpoint_manifest(name: &str, extra: &str) -> String {
    format!(
        "version: 1\nrepos:\n  - id: {}/{name}\n    files:\n      - local: ./run\n        remote: ckpt\n        ready_marker: trainer_state.json\n{extra}",
        TestHub::USER
    )
}

fn plain_manifest(name: &str) -> String {
    format!(
        "version: 1\nrepos:\n  - id: {}/{name}\n    files:\n      - local: ./run\n",
        TestHub::USER
    )
}

/// The fake trainer: checkpoint folders with a slowly written weights file, a config, and the
/// marker written last.
fn save_checkpoint(ws: &Workspace, step: u64, weights: &[u8], chunks: usize, pause: Duration) {
    let dir = ws.run().join(format!("checkpoint-{step}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), format!("{{\"step\": {step}}}\n")).unwrap();
    write_slowly(&dir.join("weights.bin"), weights, chunks, pause);
    std::fs::write(
        dir.join("trainer_state.json"),
        format!("{{\"global_step\": {step}}}\n"),
    )
    .unwrap();
}

#[test]
fn checkpoints_arrive_whole_one_commit_each() {
    let hub = TestHub::start();
    let ws = Workspace::new(&checkpoint_manifest("trainer", ""));
    ws.write("README.md", b"# a run\n");
    std::thread::sleep(Duration::from_millis(400));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "300ms"]);

    // Pauses between chunks outlast the debounce window: only the marker keeps a half-written
    // weights file off the Hub.
    let steps = [100u64, 200, 300, 400, 500];
    let mut finals = std::collections::BTreeMap::new();
    for step in steps {
        let weights = noise(step, 2 * 1024 * 1024);
        save_checkpoint(&ws, step, &weights, 4, Duration::from_millis(450));
        finals.insert(
            format!("ckpt/checkpoint-{step}/weights.bin"),
            (weights.len() as u64, sha256(&weights)),
        );
    }
    wait_hub(&hub, "trainer", "all five checkpoints", |files| {
        finals.keys().all(|p| files.iter().any(|f| &f.path == p))
            && files
                .iter()
                .filter(|f| f.path.ends_with("trainer_state.json"))
                .count()
                == 5
    });
    watch.signal("TERM");
    assert!(watch.wait_exit().success(), "{}", watch.log());

    let history = rt().block_on(history(&hub.write_client(), "trainer"));
    let mut first_seen: std::collections::BTreeMap<u64, usize> = Default::default();
    for (i, (commit, files)) in history.iter().enumerate() {
        for f in files {
            // No commit ever holds a truncated or half-written weights file.
            if let Some((size, sha)) = finals.get(&f.path) {
                let lfs = f.lfs.as_ref().expect("weights go up as LFS");
                assert_eq!((f.size, &lfs.oid), (*size, sha), "{} in {commit}", f.path);
            }
        }
        for step in steps {
            let prefix = format!("ckpt/checkpoint-{step}/");
            let present: Vec<&str> = files
                .iter()
                .filter(|f| f.path.starts_with(&prefix))
                .map(|f| f.path.as_str())
                .collect();
            if present.is_empty() {
                continue;
            }
            // Whenever a checkpoint is there, all of it is.
            assert_eq!(
                present.len(),
                3,
                "incomplete checkpoint in {commit}: {present:?}"
            );
            first_seen.entry(step).or_insert(i);
        }
    }
    // Each checkpoint landed in a commit of its own.
    let commits: std::collections::BTreeSet<usize> = first_seen.values().copied().collect();
    assert_eq!(first_seen.len(), 5);
    assert_eq!(commits.len(), 5, "{first_seen:?}");
    let evs = watch.events();
    assert_eq!(stop_reason(&evs), Some(StopReason::Signal));
}

#[test]
fn rapid_writes_become_one_commit() {
    let hub = TestHub::start();
    let ws = Workspace::new(&plain_manifest("burst"));
    ws.write("seed.txt", b"seed\n");
    std::thread::sleep(Duration::from_millis(600));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "500ms"]);
    watch.wait_commits(1);

    // 100 writes in about a second, over ten files.
    let start = Instant::now();
    for i in 0..100 {
        ws.write(
            &format!("notes/{}.txt", i % 10),
            format!("write {i}\n").as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(start.elapsed() < Duration::from_secs(3));
    watch.wait_commits(2);
    // Nothing else follows.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(watch.commits(), 2, "{:#?}", watch.events());
    let files = rt().block_on(files_now(&hub.write_client(), "burst"));
    assert_eq!(
        files
            .iter()
            .filter(|f| f.path.starts_with("notes/"))
            .count(),
        10
    );
    let got = rt().block_on(async {
        hub.write_client()
            .download(
                RepoType::Model,
                &repo_id("burst"),
                "main",
                "notes/9.txt",
                None,
            )
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    assert_eq!(&got[..], b"write 99\n");
    watch.signal("INT");
    assert!(watch.wait_exit().success());
}

#[test]
fn every_spaces_pushes() {
    let hub = TestHub::start();
    let ws = Workspace::new(&plain_manifest("every"));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "200ms", "--every", "2s"]);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_millis(6500) {
        ws.write(&format!("log/{i}.txt"), format!("line {i}\n").as_bytes());
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Wait for the last writes to land.
    let last = format!("log/{}.txt", i - 1);
    wait_hub(&hub, "every", &last, |files| {
        files.iter().any(|f| f.path == last)
    });
    let rounds = rounds(&watch.events());
    assert!(rounds.len() >= 3, "{rounds:?}");
    for pair in rounds.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(1900),
            "two pushes {gap:?} apart: {rounds:?}"
        );
    }
    // Every round made one commit.
    assert!(rounds.iter().all(|(_, c)| c.concat().len() == 1));
    watch.signal("TERM");
    assert!(watch.wait_exit().success());
}

#[test]
fn the_commit_budget_caps_commits() {
    let hub = TestHub::start();
    let ws = Workspace::new(&plain_manifest("budget"));
    let mut watch = Watch::start(
        &hub,
        &ws,
        &["--debounce", "200ms", "--max-commits-per-hour", "3"],
    );
    for i in 0..6 {
        ws.write(&format!("b{i}.txt"), format!("burst {i}\n").as_bytes());
        std::thread::sleep(Duration::from_millis(700));
    }
    watch.wait_for("a commit-budget wait", |evs| {
        evs.iter().any(|(_, e)| {
            matches!(
                e,
                WatchEvent::Waiting {
                    reason: WaitReason::CommitBudget,
                    ..
                }
            )
        })
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(watch.commits(), 3);
    let history = rt().block_on(history(&hub.write_client(), "budget"));
    let ours = history
        .iter()
        .filter(|(_, files)| files.iter().any(|f| f.path.starts_with('b')))
        .count();
    assert_eq!(ours, 3, "the Hub holds more commits than the budget allows");
    // Stopping while out of budget still exits cleanly, leaving the rest for later.
    watch.signal("TERM");
    assert!(watch.wait_exit().success(), "{}", watch.log());
    let evs = watch.events();
    assert_eq!(stop_reason(&evs), Some(StopReason::Signal));
    assert_eq!(watch.commits(), 3);
}

#[test]
fn keep_last_leaves_the_two_newest() {
    let hub = TestHub::start();
    let ws = Workspace::new(&checkpoint_manifest(
        "retention",
        "        keep_last: { pattern: \"checkpoint-*\", count: 2 }\n",
    ));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "200ms"]);
    // Natural order: 900 and 1000 are the newest (plain string order would pick 500 and 900).
    let steps = [50u64, 100, 500, 900, 1000];
    for step in steps {
        save_checkpoint(&ws, step, &noise(step, 256 * 1024), 1, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(700));
    }
    let expected: Vec<String> = [900, 1000]
        .iter()
        .flat_map(|s| {
            ["config.json", "trainer_state.json", "weights.bin"]
                .map(|f| format!("ckpt/checkpoint-{s}/{f}"))
        })
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    wait_hub(
        &hub,
        "retention",
        "exactly checkpoints 900 and 1000",
        |files| {
            let mut got: Vec<String> = files
                .iter()
                .filter(|f| f.path.starts_with("ckpt/"))
                .map(|f| f.path.clone())
                .collect();
            got.sort();
            got == expected_sorted
        },
    );
    watch.signal("TERM");
    assert!(watch.wait_exit().success(), "{}", watch.log());
    // Still exactly those after the flush; the old ones are still on disk.
    let files = rt().block_on(files_now(&hub.write_client(), "retention"));
    let mut got: Vec<String> = files
        .iter()
        .filter(|f| f.path.starts_with("ckpt/"))
        .map(|f| f.path.clone())
        .collect();
    got.sort();
    assert_eq!(got, expected_sorted);
    assert!(ws.run().join("checkpoint-50/weights.bin").exists());
    // Each checkpoint was uploaded at most once, the old ones too: nothing ping-pongs.
    let history = rt().block_on(history(&hub.write_client(), "retention"));
    for step in steps {
        let path = format!("ckpt/checkpoint-{step}/weights.bin");
        let appearances = history
            .windows(2)
            .filter(|w| {
                !w[0].1.iter().any(|f| f.path == path) && w[1].1.iter().any(|f| f.path == path)
            })
            .count();
        assert!(appearances <= 1, "{path} was added {appearances} times");
    }
}

#[test]
fn kill_9_mid_upload_then_restart_resumes() {
    let hub = TestHub::builder()
        .admin()
        .arg("--faults")
        .arg("lfs_upload:delay=2s")
        .start();
    let ws = Workspace::new(&checkpoint_manifest("resume", ""));
    let first = noise(1, 1024 * 1024);
    save_checkpoint(&ws, 1, &first, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(300));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "200ms"]);
    watch.wait_commits(1);
    let before = stats(&hub);
    assert_eq!(before["lfs_objects_uploaded"], 1);

    // The second checkpoint: its upload is held 2 s by the Hub; kill -9 meanwhile.
    let second = noise(2, 1024 * 1024);
    save_checkpoint(&ws, 2, &second, 1, Duration::ZERO);
    let uploads_before = before["requests"]["lfs_upload"].as_u64().unwrap();
    let start = Instant::now();
    loop {
        let s = stats(&hub);
        if s["requests"]["lfs_upload"].as_u64().unwrap() > uploads_before {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    watch.kill9();
    let cut = stats(&hub);
    assert_eq!(
        cut["lfs_objects_uploaded"], 1,
        "the cut upload did not complete"
    );
    assert_eq!(cut["commits_created"], before["commits_created"]);

    // Restart: the upload finishes, once, in one commit.
    let mut again = Watch::start(&hub, &ws, &["--debounce", "200ms"]);
    again.wait_commits(1);
    // The hash cache spared re-reading checkpoint 1: only checkpoint 2's files were hashed.
    let hashed: u64 = again
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            WatchEvent::Round { hashed_bytes, .. } => Some(*hashed_bytes),
            _ => None,
        })
        .sum();
    assert!(
        hashed < (first.len() + second.len()) as u64,
        "{hashed} bytes hashed after the restart"
    );
    again.signal("TERM");
    assert!(again.wait_exit().success(), "{}", again.log());
    let after = stats(&hub);
    assert_eq!(after["lfs_objects_uploaded"], 2, "an object went up twice");
    assert_eq!(
        after["commits_created"].as_u64().unwrap(),
        before["commits_created"].as_u64().unwrap() + 1,
        "a duplicate commit"
    );
    let history = rt().block_on(history(&hub.write_client(), "resume"));
    for w in history.windows(2) {
        let paths = |t: &[TreeEntry]| -> Vec<(String, String)> {
            t.iter().map(|f| (f.path.clone(), f.oid.clone())).collect()
        };
        assert_ne!(
            paths(&w[0].1),
            paths(&w[1].1),
            "an empty (duplicate) commit"
        );
    }
    let last = &history.last().unwrap().1;
    let w2 = last
        .iter()
        .find(|f| f.path == "ckpt/checkpoint-2/weights.bin")
        .expect("checkpoint 2 landed");
    assert_eq!(w2.lfs.as_ref().unwrap().oid, sha256(&second));
    assert_eq!(
        history
            .iter()
            .filter(|(_, t)| t.iter().any(|f| f.path == "ckpt/checkpoint-2/weights.bin"))
            .count(),
        1
    );
}

#[test]
fn sigterm_pushes_pending_ready_files_and_exits_0() {
    let hub = TestHub::start();
    let ws = Workspace::new(&plain_manifest("flush"));
    ws.write("a.txt", b"a\n");
    std::thread::sleep(Duration::from_millis(400));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "200ms", "--every", "1h"]);
    watch.wait_commits(1);

    // Ready (quiet) but held back by `--every 1h`.
    ws.write("b.txt", b"b\n");
    ws.write("c.bin", &noise(3, 300 * 1024));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(watch.commits(), 1);
    watch.signal("TERM");
    let status = watch.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", watch.log());
    assert_eq!(watch.commits(), 2);
    let files = rt().block_on(files_now(&hub.write_client(), "flush"));
    for p in ["a.txt", "b.txt", "c.bin"] {
        assert!(files.iter().any(|f| f.path == p), "{p} missing");
    }
    let evs = watch.events();
    assert!(
        evs.iter()
            .any(|(_, e)| matches!(e, WatchEvent::Stopping { .. }))
    );
    assert!(matches!(
        evs.last().map(|(_, e)| e),
        Some(WatchEvent::Stopped {
            reason: StopReason::Signal,
            unpushed: 0,
            ..
        })
    ));
}

#[test]
fn a_bad_token_stops_watch_with_exit_1() {
    let hub = TestHub::start();
    let ws = Workspace::new(&plain_manifest("denied"));
    ws.write("a.txt", b"a\n");
    let mut watch = Watch::start_with_token(&hub, &ws, &["--debounce", "200ms"], "hf_wrong");
    let status = watch.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", watch.log());
    let evs = watch.events();
    assert!(
        evs.iter()
            .any(|(_, e)| matches!(e, WatchEvent::Error { fatal: true, .. })),
        "{evs:#?}"
    );
    assert_eq!(stop_reason(&evs), Some(StopReason::Error));
}

#[test]
fn a_429_backs_off_instead_of_failing() {
    // Every commit is refused with 429 (`Retry-After: 1`): apply waits and retries, then watch
    // backs off and keeps the changes for later instead of stopping.
    let hub = TestHub::builder()
        .arg("--faults")
        .arg("commit:http429=1")
        .start();
    let ws = Workspace::new(&plain_manifest("limited"));
    ws.write("a.txt", b"a\n");
    std::thread::sleep(Duration::from_millis(300));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "200ms"]);
    watch.wait_for("a rate-limit wait and a retried error", |evs| {
        let waited = evs.iter().any(|(_, e)| {
            matches!(
                e,
                WatchEvent::Waiting {
                    reason: WaitReason::RateLimited,
                    ..
                }
            )
        });
        let retried = evs
            .iter()
            .any(|(_, e)| matches!(e, WatchEvent::Error { fatal: false, .. }));
        waited && retried
    });
    assert!(
        watch.child.try_wait().unwrap().is_none(),
        "watch must keep running"
    );
    assert_eq!(watch.commits(), 0);
    watch.signal("TERM");
    watch.wait_exit();
    let evs = watch.events();
    assert_eq!(stop_reason(&evs), Some(StopReason::Signal));
}

#[test]
fn a_second_signal_aborts_at_once_without_committing() {
    let hub = TestHub::builder()
        .admin()
        .arg("--faults")
        .arg("lfs_upload:delay=5s")
        .start();
    let ws = Workspace::new(&plain_manifest("abort"));
    let mut watch = Watch::start(&hub, &ws, &["--debounce", "200ms"]);
    ws.write("big.bin", &noise(9, 512 * 1024));
    let start = Instant::now();
    while stats(&hub)["requests"]["lfs_upload"].as_u64().unwrap_or(0) == 0 {
        assert!(start.elapsed() < TIMEOUT, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let commits = stats(&hub)["commits_created"].clone();
    watch.signal("TERM");
    watch.wait_for("the `stopping` event", |evs| {
        evs.iter()
            .any(|(_, e)| matches!(e, WatchEvent::Stopping { .. }))
    });
    let aborted_at = Instant::now();
    watch.signal("TERM");
    let status = watch.wait_exit();
    assert!(
        aborted_at.elapsed() < Duration::from_secs(3),
        "the abort waited for the upload"
    );
    assert_eq!(status.code(), Some(130), "{}", watch.log());
    assert_eq!(stop_reason(&watch.events()), Some(StopReason::Aborted));
    // Give a (wrongly) surviving upload time to finish: still no commit.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stats(&hub)["commits_created"], commits);
    assert!(!ws.path().join(".hubsync/apply.lock").exists());
}
