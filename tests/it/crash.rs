//! Crash safety (DESIGN.md, "Apply semantics"): `kill -9` apply at seeded points during the
//! uploads and during the commit series, then apply again until it succeeds. After each
//! scenario the branch must hold exactly the desired files, no commit may repeat a change (every
//! commit changes exactly the paths its description lists, and each path changes once), and no
//! LFS object may have been installed twice (the hub counts only completed uploads, so the count
//! must equal the number of distinct objects). The same holds against a hub that fails, resets
//! connections and loses commit answers at random.
//!
//! Apply is also killed while it hashes a large workspace (before it has planned anything), and
//! while it creates branches and tags and changes Space settings (the hub holds those requests a
//! while); re-runs converge to the same files, refs and settings.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hubsync::api::RepoType;
use sha2::Digest;

use crate::common::workspace::pseudo_random;
use crate::common::{TestHub, Workspace, record_figures};

/// A small deterministic generator for the kill points (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The local folder of one scenario: LFS shards (two with the same content), and small files.
struct Desired {
    files: BTreeMap<String, Vec<u8>>,
}

impl Desired {
    fn new(seed: u64, shards: usize, small: usize) -> Desired {
        let mut files = BTreeMap::new();
        for i in 0..shards {
            let len = 120_000 + (i % 4) * 40_000;
            files.insert(
                format!("weights/shard-{i:02}.bin"),
                pseudo_random(len, seed * 1000 + i as u64),
            );
        }
        // The same content twice: one LFS object.
        files.insert(
            "weights/copy-of-shard-00.bin".to_string(),
            files["weights/shard-00.bin"].clone(),
        );
        for i in 0..small {
            files.insert(
                format!("configs/sub-{}/file-{i:03}.json", i % 3),
                format!("{{\"seed\": {seed}, \"i\": {i}}}\n").into_bytes(),
            );
        }
        Desired { files }
    }

    /// A workspace that takes a moment to scan and hash: many small files and a few large
    /// LFS files.
    fn hashing(seed: u64) -> Desired {
        let mut files = BTreeMap::new();
        for i in 0..6u64 {
            files.insert(
                format!("weights/big-{i}.bin"),
                pseudo_random(6_000_000 + i as usize * 1000, seed * 1000 + i),
            );
        }
        for i in 0..600 {
            files.insert(
                format!("data/part-{}/row-{i:04}.txt", i % 20),
                format!("seed {seed} row {i}\n").repeat(20).into_bytes(),
            );
        }
        Desired { files }
    }

    fn write(&self, ws: &Workspace) {
        for (path, data) in &self.files {
            ws.write(&format!("out/{path}"), data);
        }
    }

    fn lfs_objects(&self) -> usize {
        self.files
            .iter()
            .filter(|(p, _)| p.ends_with(".bin"))
            .map(|(_, d)| sha256(d))
            .collect::<BTreeSet<_>>()
            .len()
    }
}

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn git_blob_oid(data: &[u8]) -> String {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

/// When to kill a run.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// After the Nth `upload_started` event, plus a delay.
    Upload(usize, Duration),
    /// After the Nth `commit_created` event, plus a delay.
    Commit(usize, Duration),
    /// This long after the start, before any event: while the workspace is scanned and hashed.
    Hashing(Duration),
    /// After the Nth `ref_created` event, plus a delay: inside the next (slow) ref update.
    Ref(usize, Duration),
    /// After the Nth `setting_changed` event, plus a delay: inside the next Space setting.
    Setting(usize, Duration),
}

/// What a kill interrupted.
struct Killed {
    /// The process was still running when killed.
    landed: bool,
    /// No `plan` event had been printed yet: the kill landed while apply scanned and hashed.
    before_plan: bool,
}

/// Runs `apply -y --format json` and SIGKILLs it at `at`. Returns whether the kill happened
/// (the run may finish first), and whether it came before the plan was printed.
fn apply_and_kill(ws: &Workspace, at: KillAt) -> Killed {
    let started = Instant::now();
    let mut child = ws
        .cmd(&["apply", "-y", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (want, n, delay) = match at {
        KillAt::Upload(n, d) => ("upload_started", n, d),
        KillAt::Commit(n, d) => ("commit_created", n, d),
        KillAt::Hashing(d) => ("", 0, d),
        KillAt::Ref(n, d) => ("ref_created", n, d),
        KillAt::Setting(n, d) => ("setting_changed", n, d),
    };
    let mut seen = 0;
    let mut planned = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let wait = if n == 0 {
            match delay.checked_sub(started.elapsed()) {
                Some(left) => left.min(Duration::from_millis(50)),
                None => break,
            }
        } else {
            Duration::from_millis(50)
        };
        match rx.recv_timeout(wait) {
            Ok(line) => {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v["type"] == "plan" {
                    planned = true;
                }
                if n > 0 && v["type"] == want {
                    seen += 1;
                    if seen == n {
                        std::thread::sleep(delay);
                        break;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(Instant::now() < deadline, "apply hung");
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let landed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    // A plan line printed just before the kill may still be in the pipe.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(20)) {
        if serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v["type"] == "plan") {
            planned = true;
        }
    }
    Killed {
        landed,
        before_plan: landed && !planned,
    }
}

/// Applies until a run succeeds; returns the number of runs.
fn converge(ws: &Workspace, max_runs: usize) -> usize {
    for run in 1..=max_runs {
        let r = ws.run(&["apply", "-y"]);
        if r.code() == 0 {
            return run;
        }
        assert!(
            run < max_runs,
            "apply did not converge in {max_runs} runs; last:\n{}\n{}",
            r.stdout(),
            r.stderr()
        );
    }
    unreachable!()
}

/// The three properties, for repo `id` holding `desired` under `prefix`.
fn assert_converged(hub: &TestHub, ws: &Workspace, id: &str, desired: &Desired, what: &str) {
    let t = RepoType::Model;
    // 1. Exactly the desired tree.
    let files = hub.files(t, id, "main");
    let got: BTreeSet<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|p| *p != ".gitattributes")
        .collect();
    let want: BTreeSet<&str> = desired.files.keys().map(String::as_str).collect();
    assert_eq!(got, want, "{what}: the files on the hub");
    for (path, data) in &desired.files {
        let e = &files[path];
        assert_eq!(e.size, data.len() as u64, "{what}: size of `{path}`");
        match &e.lfs {
            Some(lfs) => assert_eq!(lfs.oid, sha256(data), "{what}: content of `{path}`"),
            None => assert_eq!(e.oid, git_blob_oid(data), "{what}: content of `{path}`"),
        }
    }
    ws.run(&["plan", "--detailed-exitcode"]).assert_code(0);

    // 2. No commit repeats a change: each commit changes exactly the paths it lists, and every
    // path changes once over the whole history.
    let history = hub.commits(t, id, "main");
    let mut changed_once: BTreeMap<String, String> = BTreeMap::new();
    for pair in history.windows(2) {
        let (c, parent) = (&pair[0], &pair[1]);
        assert_eq!(c.parents, vec![parent.id.clone()], "{what}: a linear chain");
        let after = hub.files(t, id, &c.id);
        let before = hub.files(t, id, &parent.id);
        let diff: BTreeSet<String> = after
            .iter()
            .filter(|(p, e)| before.get(*p).map(|b| &b.oid) != Some(&e.oid))
            .map(|(p, _)| p.clone())
            .chain(before.keys().filter(|p| !after.contains_key(*p)).cloned())
            .collect();
        let listed: BTreeSet<String> = c
            .message
            .lines()
            .filter_map(|l| l.strip_prefix("+ ").or_else(|| l.strip_prefix("~ ")))
            .map(str::to_string)
            .collect();
        assert!(
            !diff.is_empty(),
            "{what}: commit {} `{}` changes nothing",
            c.id,
            c.title
        );
        assert_eq!(
            diff, listed,
            "{what}: commit {} changes what it lists",
            c.id
        );
        for p in diff {
            if let Some(other) = changed_once.insert(p.clone(), c.id.clone()) {
                panic!("{what}: `{p}` changed by both {other} and {}", c.id);
            }
        }
    }

    // 3. No LFS object uploaded twice.
    assert_eq!(
        hub.stat("lfs_objects_uploaded"),
        desired.lfs_objects() as u64,
        "{what}: LFS objects installed, against distinct objects"
    );
}

fn manifest(id: &str) -> String {
    format!(
        "version: 1\n\
         defaults:\n  commit: {{ message: \"crash test\", max_files: 4 }}\n\
         repos:\n  - id: {id}\n    files: [{{ local: ./out, prune: true }}]\n"
    )
}

/// What a scenario's workspace holds, and so where its kills can land.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// LFS shards and small files, 4 files a commit: uploads and a commit series.
    Uploads,
    /// Hundreds of files and 36 MB of LFS files, 200 files a commit: a scan that takes a moment.
    Hashing,
    /// A few files, two branches and two tags on the model, and a Space with settings.
    Refs,
}

impl Setup {
    fn desired(self, seed: u64) -> Desired {
        match self {
            Setup::Uploads => Desired::new(seed, 10, 14),
            Setup::Hashing => Desired::hashing(seed),
            Setup::Refs => Desired::new(seed, 2, 5),
        }
    }

    fn manifest(self, id: &str) -> String {
        match self {
            Setup::Uploads => manifest(id),
            Setup::Hashing => manifest(id).replace("max_files: 4", "max_files: 200"),
            Setup::Refs => format!(
                "{}    branches: [{{ name: dev, from: main }}, {{ name: staging, from: main }}]\n\
                 \x20   tags: [{{ name: v1, revision: main }}, {{ name: v2, revision: main }}]\n\
                 \x20 - id: {id}-space\n    type: space\n    files: [{{ local: ./space }}]\n\
                 \x20   space: {{ sdk: gradio, hardware: cpu-upgrade, \
                 variables: {{ MODE: demo, LEVEL: \"3\" }} }}\n",
                manifest(id)
            ),
        }
    }

    /// The hub's faults: slow enough that a kill lands inside a phase.
    fn faults(self) -> &'static str {
        match self {
            Setup::Uploads | Setup::Hashing => {
                "lfs_upload:delay=150ms,lfs_verify:delay=30ms,commit:delay=120ms"
            }
            Setup::Refs => "branch:delay=300ms,tag:delay=300ms,space:delay=300ms",
        }
    }
}

/// A hub slow enough that a kill lands inside a phase.
fn slow_hub(setup: Setup) -> TestHub {
    TestHub::builder()
        .page_size(None)
        .admin()
        .arg("--faults")
        .arg(setup.faults())
        .start()
}

/// The refs of the model repo of a [`Setup::Refs`] scenario: both branches and both tags on
/// the head of `main`.
fn assert_refs(hub: &TestHub, id: &str, what: &str) {
    let head = hub.commits(RepoType::Model, id, "main")[0].id.clone();
    let repo = hubsync::api::RepoId::parse(id).unwrap();
    let refs = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(hub.write_client().list_refs(RepoType::Model, &repo, false))
        .unwrap();
    let at = |list: &[hubsync::api::GitRefInfo]| -> BTreeMap<String, String> {
        list.iter()
            .map(|r| (r.name.clone(), r.target_commit.clone()))
            .collect()
    };
    let want = |names: &[&str]| -> BTreeMap<String, String> {
        names
            .iter()
            .map(|n| (n.to_string(), head.clone()))
            .collect()
    };
    assert_eq!(
        at(&refs.branches),
        want(&["dev", "main", "staging"]),
        "{what}: branches"
    );
    assert_eq!(at(&refs.tags), want(&["v1", "v2"]), "{what}: tags");
}

/// What a set of scenarios did, for the figures.
#[derive(Default)]
struct Tally {
    kills: usize,
    before_plan: usize,
    reruns: usize,
}

/// One scenario per kill schedule, each on its own slow hub and all at once (they mostly wait):
/// a fresh repo, killed at each point in turn, then applied to convergence and checked.
fn run_scenarios(seed: u64, setup: Setup, schedules: &[Vec<KillAt>]) -> Tally {
    let tally = std::sync::Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for (i, kills) in schedules.iter().enumerate() {
            let tally = &tally;
            scope.spawn(move || {
                let hub = slow_hub(setup);
                let ws = Workspace::new(&hub);
                let id = format!("alice/crash-{seed}-{i}");
                let desired = setup.desired(seed * 100 + i as u64);
                desired.write(&ws);
                if let Setup::Refs = setup {
                    ws.write("space/app.py", b"print('hi')\n");
                }
                ws.manifest(&setup.manifest(&id));
                let (mut killed, mut before_plan) = (0, 0);
                for at in kills {
                    let k = apply_and_kill(&ws, *at);
                    killed += usize::from(k.landed);
                    before_plan += usize::from(k.before_plan);
                    // Let the hub finish what the dead process left in flight (longer than any
                    // delay), as a re-run after a crash would.
                    std::thread::sleep(Duration::from_millis(400));
                }
                assert!(killed > 0, "scenario {i} ({kills:?}): no kill landed");
                // A kill while hashing lands before the repo exists.
                let landed = if hub.exists(RepoType::Model, &id) {
                    hub.commits(RepoType::Model, &id, "main")
                        .len()
                        .saturating_sub(1)
                } else {
                    0
                };
                let runs = converge(&ws, 3);
                eprintln!(
                    "scenario {i} {kills:?}: {killed} kill(s) landed ({before_plan} before the plan), \
                     {landed} commit(s) before the re-run, converged in {runs} run(s)"
                );
                let what = format!("scenario {i} {kills:?}");
                assert_converged(&hub, &ws, &id, &desired, &what);
                if let Setup::Refs = setup {
                    assert_refs(&hub, &id, &what);
                }
                let mut t = tally.lock().unwrap();
                t.kills += killed;
                t.before_plan += before_plan;
                t.reruns += runs;
            });
        }
    });
    tally.into_inner().unwrap()
}

#[test]
fn kill_9_during_uploads_then_reapply_converges() {
    let mut rng = Rng(0xC0FFEE);
    // 10 shards and a copy: 10 distinct objects; kill after the 1st..10th upload started.
    let schedules: Vec<Vec<KillAt>> = (0..6)
        .map(|_| {
            vec![KillAt::Upload(
                rng.range(1, 10) as usize,
                Duration::from_millis(rng.range(0, 200)),
            )]
        })
        .collect();
    let t = run_scenarios(1, Setup::Uploads, &schedules);
    record_figures(
        "crash::kill_9_during_uploads_then_reapply_converges",
        serde_json::json!({ "crash_points": t.kills, "reruns": t.reruns }),
    );
}

#[test]
fn kill_9_during_the_commit_series_then_reapply_converges() {
    let mut rng = Rng(0xBADC0DE);
    // 25 files, 4 a commit: 7 commits; kill after the 1st..6th.
    let mut schedules: Vec<Vec<KillAt>> = (0..6)
        .map(|_| {
            vec![KillAt::Commit(
                rng.range(1, 6) as usize,
                Duration::from_millis(rng.range(0, 150)),
            )]
        })
        .collect();
    // Twice in a row: during the uploads, then during the commits of the next run.
    schedules.push(vec![
        KillAt::Upload(
            rng.range(2, 6) as usize,
            Duration::from_millis(rng.range(0, 100)),
        ),
        KillAt::Commit(
            rng.range(1, 3) as usize,
            Duration::from_millis(rng.range(0, 100)),
        ),
    ]);
    let t = run_scenarios(2, Setup::Uploads, &schedules);
    record_figures(
        "crash::kill_9_during_the_commit_series_then_reapply_converges",
        serde_json::json!({ "crash_points": t.kills, "reruns": t.reruns }),
    );
}

#[test]
fn kill_9_while_hashing_then_reapply_converges() {
    let mut rng = Rng(0x4A5E);
    // Killed this long after the start: while the 600 files and 36 MB are scanned and hashed.
    let schedules: Vec<Vec<KillAt>> = (0..4)
        .map(|_| vec![KillAt::Hashing(Duration::from_millis(rng.range(20, 120)))])
        .collect();
    let t = run_scenarios(3, Setup::Hashing, &schedules);
    assert!(
        t.before_plan > 0,
        "no kill landed before the plan was printed; the test tests nothing"
    );
    record_figures(
        "crash::kill_9_while_hashing_then_reapply_converges",
        serde_json::json!({
            "crash_points": t.kills,
            "before_plan": t.before_plan,
            "reruns": t.reruns,
        }),
    );
}

#[test]
fn kill_9_during_ref_updates_and_space_settings_then_reapply_converges() {
    let mut rng = Rng(0x5EF5);
    // Each branch, tag and Space request is held 300 ms: killed inside the 2nd..4th ref update
    // or the 2nd Space setting.
    let mut schedules: Vec<Vec<KillAt>> = (0..4)
        .map(|_| {
            vec![KillAt::Ref(
                rng.range(1, 3) as usize,
                Duration::from_millis(rng.range(20, 250)),
            )]
        })
        .collect();
    schedules.push(vec![KillAt::Setting(
        1,
        Duration::from_millis(rng.range(20, 250)),
    )]);
    let t = run_scenarios(4, Setup::Refs, &schedules);
    record_figures(
        "crash::kill_9_during_ref_updates_and_space_settings_then_reapply_converges",
        serde_json::json!({ "crash_points": t.kills, "reruns": t.reruns }),
    );
}

#[test]
fn a_flaky_hub_that_loses_commit_answers_converges_with_no_duplicate() {
    // Each seed on its own hub, all at once: the runs mostly wait out retry back-offs.
    let runs: usize = std::thread::scope(|scope| {
        let all: Vec<_> = [1u64, 2, 3]
            .into_iter()
            .map(|seed| scope.spawn(move || flaky_scenario(seed)))
            .collect();
        all.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // Every apply run here ran under injected faults.
    record_figures(
        "crash::a_flaky_hub_that_loses_commit_answers_converges_with_no_duplicate",
        serde_json::json!({ "fault_runs": runs, "seeds": 3 }),
    );
}

/// Returns the number of apply runs it took.
fn flaky_scenario(seed: u64) -> usize {
    let hub = TestHub::builder()
        .page_size(None)
        .admin()
        .arg("--faults")
        .arg(format!(
            "seed={seed},http503=0.1,commit:lost_commit_response=0.3,reset=0.05"
        ))
        .start();
    let ws = Workspace::new(&hub);
    let id = format!("alice/flaky-{seed}");
    let desired = Desired::new(900 + seed, 8, 20);
    desired.write(&ws);
    ws.manifest(&manifest(&id));
    let runs = converge(&ws, 6);
    eprintln!(
        "seed {seed}: converged in {runs} run(s); faults {}",
        hub.stats_retried()["faults"]
    );
    assert_converged(
        &hub,
        &ws,
        &id,
        &desired,
        &format!("seed {seed} ({runs} runs)"),
    );
    let faults = &hub.stats_retried()["faults"];
    assert!(
        faults.get("commit:lost_commit_response").is_some(),
        "seed {seed}: no commit answer was lost; the test tests nothing: {faults}"
    );
    runs
}
