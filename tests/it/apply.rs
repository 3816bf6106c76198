//! `hubsync apply` end to end: the real binary against the real `hub serve` (issue 4,
//! "Acceptance"). Batching and the commit chain, multipart uploads, saved plans and staleness,
//! commits by another writer while applying, the JSON Lines events, and the refusal to apply
//! without confirmation.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hubsync::api::RepoType;
use hubsync::apply::ApplyEvent;

use crate::common::workspace::pseudo_random;
use crate::common::{Run, TestHub, Workspace};

/// Routes that change something on the hub (see `hub::faults` for the labels).
const WRITE_ROUTES: &[&str] = &[
    "repo_create",
    "repo_delete",
    "commit",
    "branch",
    "tag",
    "settings",
    "lfs_upload",
    "lfs_part",
    "lfs_complete",
    "lfs_verify",
];

fn events(run: &Run) -> Vec<serde_json::Value> {
    let lines = run.json_lines();
    for l in &lines {
        assert!(l["type"].is_string(), "every line has a `type`: {l}");
    }
    lines
}

fn of_type<'a>(lines: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

/// Write requests so far, by route.
fn writes(hub: &TestHub) -> Vec<(String, u64)> {
    let stats = hub.stats_retried();
    WRITE_ROUTES
        .iter()
        .filter_map(|r| {
            stats["requests"][r]
                .as_u64()
                .filter(|n| *n > 0)
                .map(|n| (r.to_string(), n))
        })
        .collect()
}

#[test]
fn batching_1050_files_make_11_commits_each_parented_on_the_previous() {
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    for i in 0..1050 {
        ws.write(
            &format!("data/part-{}/file-{i:04}.txt", i % 7),
            format!("file {i}\n").as_bytes(),
        );
    }
    ws.manifest(
        "version: 1\n\
         defaults:\n  commit: { message: \"Add 1050 files\", max_files: 100 }\n\
         repos:\n  - id: alice/many\n    files: [{ local: ./data }]\n",
    );
    let run = ws.run(&["apply", "-y", "--format", "json"]);
    run.assert_code(0);
    let lines = events(&run);
    assert_eq!(lines[0]["type"], "plan");
    assert_eq!(
        lines[0]["plan"]["repos"][0]["commits"], 11,
        "the plan says 11"
    );

    let made: Vec<&serde_json::Value> = of_type(&lines, "commit_created");
    assert_eq!(made.len(), 11, "{}", run.stdout());
    let history = hub.commits(RepoType::Model, "alice/many", "main");
    // The repo's initial commit, then the 11 commits of apply.
    assert_eq!(history.len(), 12, "{history:#?}");
    let oldest_first: Vec<_> = history.iter().rev().collect();
    for (i, ev) in made.iter().enumerate() {
        let c = oldest_first[i + 1];
        assert_eq!(ev["commit"], c.id.as_str(), "commit {i} in hub order");
        assert_eq!(
            c.parents,
            vec![oldest_first[i].id.clone()],
            "commit {i} is parented on the previous one"
        );
        assert_eq!(ev["parent"], oldest_first[i].id.as_str());
        assert_eq!(ev["files"], if i < 10 { 100 } else { 50 });
        assert!(
            c.title.contains(&format!("(part {}/11)", i + 1)),
            "title: {}",
            c.title
        );
    }
    let files = hub.files(RepoType::Model, "alice/many", "main");
    assert_eq!(files.len(), 1051, "1050 files and .gitattributes");
    assert_eq!(
        hub.download(
            RepoType::Model,
            "alice/many",
            "main",
            "part-4/file-1047.txt"
        ),
        b"file 1047\n"
    );
    ws.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

#[test]
fn commits_start_while_later_files_are_still_uploading() {
    // Each LFS upload takes 1.5 s: the regular files' commits must not wait for it, and the
    // commit that names the object must.
    let hub = TestHub::builder()
        .page_size(None)
        .admin()
        .arg("--faults")
        .arg("lfs_upload:delay=1500ms")
        .start();
    let ws = Workspace::new(&hub);
    for i in 0..250 {
        ws.write(
            &format!("data/a/file-{i:03}.txt"),
            format!("{i}\n").as_bytes(),
        );
    }
    let weights = pseudo_random(100_000, 3);
    ws.write("data/z/weights.bin", &weights);
    ws.manifest(
        "version: 1\n\
         defaults:\n  commit: { message: \"Add\", max_files: 100 }\n\
         repos:\n  - id: alice/pipelined\n    files: [{ local: ./data }]\n",
    );
    let run = ws.run(&["apply", "-y", "--format", "json"]);
    run.assert_code(0);
    let lines = events(&run);
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        lines
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no such event in {}", run.stdout()))
    };
    let uploaded = at(&|l| l["type"] == "upload_done" && l["path"] == "z/weights.bin");
    let first_commit = at(&|l| l["type"] == "commit_created");
    assert!(
        first_commit < uploaded,
        "the first commit waits for nothing it does not need: {}",
        run.stdout()
    );
    let made = of_type(&lines, "commit_created");
    assert_eq!(
        made.iter()
            .map(|c| c["files"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![100, 100, 51]
    );
    let last_commit = lines
        .iter()
        .rposition(|l| l["type"] == "commit_created")
        .unwrap();
    assert!(uploaded < last_commit, "the object is up before its commit");
    assert_eq!(
        hub.download(RepoType::Model, "alice/pipelined", "main", "z/weights.bin"),
        weights
    );
    let history = hub.commits(RepoType::Model, "alice/pipelined", "main");
    assert_eq!(history.len(), 4, "the initial commit and 3: {history:#?}");
    ws.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

#[test]
fn a_file_over_the_chunk_size_goes_up_in_parts_and_reads_back_exactly() {
    let hub = TestHub::builder()
        .page_size(None)
        .multipart_chunk_size(1024 * 1024)
        .admin()
        .start();
    let ws = Workspace::new(&hub);
    let big = pseudo_random(3_500_000, 7);
    ws.write("model/weights/big.safetensors", &big);
    ws.write("model/config.json", b"{\"layers\": 2}\n");
    ws.manifest("version: 1\nrepos:\n  - id: alice/parts\n    files: [{ local: ./model }]\n");
    let run = ws.run(&["apply", "-y", "--format", "json"]);
    run.assert_code(0);

    assert_eq!(
        hub.route_requests("lfs_part"),
        4,
        "ceil(3.5 MB / 1 MiB) parts"
    );
    assert_eq!(hub.route_requests("lfs_complete"), 1);
    assert_eq!(hub.route_requests("lfs_upload"), 0, "no basic upload");
    assert_eq!(hub.stat("lfs_objects_uploaded"), 1);
    assert_eq!(hub.stat("lfs_bytes_received"), 3_500_000);
    let done = events(&run);
    let done = of_type(&done, "upload_done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["path"], "weights/big.safetensors");
    assert_eq!(done[0]["skipped"], false);

    let files = hub.files(RepoType::Model, "alice/parts", "main");
    let entry = &files["weights/big.safetensors"];
    assert_eq!(entry.size, 3_500_000);
    assert!(entry.lfs.is_some(), "stored as LFS: {entry:?}");
    let back = hub.download(
        RepoType::Model,
        "alice/parts",
        "main",
        "weights/big.safetensors",
    );
    assert!(
        back == big,
        "the downloaded bytes differ from the local file"
    );
    ws.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

#[test]
fn a_saved_plan_is_refused_when_a_local_file_changed_and_applied_when_current() {
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    ws.write("out/a.txt", b"first\n");
    ws.write("out/keep.bin", &pseudo_random(2048, 1));
    ws.manifest("version: 1\nrepos:\n  - id: alice/saved\n    files: [{ local: ./out }]\n");
    ws.run(&["apply", "-y"]).assert_code(0);
    let commits_before = hub.stat("commits_created");
    let writes_before = writes(&hub);

    // A different size.
    ws.write("out/a.txt", b"second version\n");
    ws.write("out/new.bin", &pseudo_random(4096, 2));
    ws.run(&["plan", "-o", "plan.json"]).assert_code(0);
    ws.write("out/a.txt", b"third, longer version\n");
    let run = ws.run(&["apply", "-y", "plan.json"]);
    run.assert_code(1);
    let err = run.stderr();
    assert!(err.contains("stale"), "{err}");
    assert!(
        err.contains(&format!("`{}`", ws.join("out/a.txt").display())),
        "{err}"
    );
    assert!(err.contains("hint: run `hubsync plan` again"), "{err}");
    assert_eq!(
        hub.stat("commits_created"),
        commits_before,
        "nothing committed"
    );
    assert_eq!(writes(&hub), writes_before, "no write request at all");

    // The same size, new content: the modification time gives it away.
    ws.run(&["plan", "-o", "plan.json"]).assert_code(0);
    std::thread::sleep(Duration::from_millis(20));
    ws.write("out/a.txt", b"third, LONGER version\n");
    let run = ws.run(&["apply", "-y", "plan.json"]);
    run.assert_code(1);
    assert!(run.stderr().contains("a.txt"), "{}", run.stderr());
    assert_eq!(writes(&hub), writes_before, "no write request at all");

    // A current plan applies, exactly.
    ws.run(&["plan", "-o", "plan.json"]).assert_code(0);
    let run = ws.run(&["apply", "-y", "plan.json"]);
    run.assert_code(0);
    assert!(run.stdout().contains("Apply complete."), "{}", run.stdout());
    assert_eq!(hub.stat("commits_created"), commits_before + 1);
    assert_eq!(
        hub.download(RepoType::Model, "alice/saved", "main", "a.txt"),
        b"third, LONGER version\n"
    );
    ws.run(&["plan", "--detailed-exitcode"]).assert_code(0);
    // Applying the same plan again: its base commit is gone.
    let run = ws.run(&["apply", "-y", "plan.json"]);
    run.assert_code(1);
    assert!(run.stderr().contains("moved from"), "{}", run.stderr());
}

#[test]
fn a_saved_plan_is_refused_when_the_branch_moved_even_for_an_unrelated_path() {
    // DESIGN.md: `apply PLANFILE` applies exactly that plan against the commit it was made on.
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    ws.write("out/a.txt", b"a\n");
    ws.manifest("version: 1\nrepos:\n  - id: alice/moved\n    files: [{ local: ./out }]\n");
    ws.run(&["apply", "-y"]).assert_code(0);
    ws.write("out/a.txt", b"a2\n");
    ws.run(&["plan", "-o", "plan.json"]).assert_code(0);
    let before = hub.commits(RepoType::Model, "alice/moved", "main")[0]
        .id
        .clone();
    let after = commit_file(&hub, "alice/moved", "elsewhere.txt", b"by someone else\n");
    let run = ws.run(&["apply", "-y", "plan.json"]);
    run.assert_code(1);
    let err = run.stderr();
    assert!(
        err.contains(&before) && err.contains(&after),
        "names both commits: {err}"
    );
    // Planning again absorbs the other writer's commit.
    ws.run(&["apply", "-y"]).assert_code(0);
    let files = hub.files(RepoType::Model, "alice/moved", "main");
    assert!(files.contains_key("elsewhere.txt"));
    assert_eq!(
        hub.download(RepoType::Model, "alice/moved", "main", "a.txt"),
        b"a2\n"
    );
}

/// Commits one regular file with the client on top of `main`'s head; returns the new commit.
fn commit_file(hub: &TestHub, repo: &str, path: &str, content: &[u8]) -> String {
    use base64::Engine;
    let client = hub.write_client();
    let id = hubsync::api::RepoId::parse(repo).unwrap();
    let line = hubsync::api::CommitLine::File(hubsync::api::CommitFile {
        path: path.to_string(),
        content: base64::engine::general_purpose::STANDARD.encode(content),
        encoding: "base64".into(),
        old_path: None,
    });
    let header = hubsync::api::CommitHeader {
        summary: format!("another writer changes {path}"),
        description: String::new(),
        parent_commit: None,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.commit(RepoType::Model, &id, "main", &header, &[line], false))
        .unwrap_or_else(|e| panic!("commit `{path}`: {e}"))
        .commit_oid
}

/// Starts `apply -y` against a hub that holds every preupload for a while, waits until apply
/// is inside that window (it has planned and is about to upload and commit), runs `meanwhile`,
/// and returns apply's outcome.
fn apply_with_a_window(hub: &TestHub, ws: &Workspace, meanwhile: impl FnOnce()) -> Run {
    let before = hub.route_requests("preupload");
    let child = ws
        .cmd(&["apply", "-y"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while hub.route_requests("preupload") == before {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "apply never reached its uploads"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    meanwhile();
    Run {
        args: vec!["apply".into(), "-y".into()],
        output: child.wait_with_output().unwrap(),
    }
}

fn window_hub() -> TestHub {
    TestHub::builder()
        .page_size(None)
        .admin()
        .arg("--faults")
        .arg("preupload:delay=1500ms")
        .start()
}

#[test]
fn a_commit_by_another_writer_to_an_unrelated_path_is_absorbed() {
    let hub = window_hub();
    let ws = Workspace::new(&hub);
    ws.write("out/x.txt", b"x1\n");
    ws.write("out/w.bin", &pseudo_random(5000, 3));
    ws.manifest(
        "version: 1\nrepos:\n  - id: alice/absorb\n    files: [{ local: ./out, prune: true }]\n",
    );
    ws.run(&["apply", "-y"]).assert_code(0);

    ws.write("out/x.txt", b"x2\n");
    ws.write("out/w.bin", &pseudo_random(6000, 4));
    let mut theirs = String::new();
    let run = apply_with_a_window(&hub, &ws, || {
        theirs = commit_file(&hub, "alice/absorb", "notes/unrelated.txt", b"theirs\n");
    });
    run.assert_code(0);
    assert!(
        run.stderr()
            .contains("while applying; continuing on top of it"),
        "{}",
        run.stderr()
    );
    let history = hub.commits(RepoType::Model, "alice/absorb", "main");
    assert_eq!(
        history[1].id, theirs,
        "apply's commit sits on top of theirs"
    );
    assert_eq!(history[0].parents, vec![theirs.clone()]);
    let t = RepoType::Model;
    assert_eq!(hub.download(t, "alice/absorb", "main", "x.txt"), b"x2\n");
    assert_eq!(
        hub.download(t, "alice/absorb", "main", "w.bin"),
        pseudo_random(6000, 4)
    );
    assert_eq!(
        hub.download(t, "alice/absorb", "main", "notes/unrelated.txt"),
        b"theirs\n"
    );
    // Outside every `prune` scope of the manifest? No: the mapping prunes the root, so the next
    // plan proposes to delete it, and says so.
    let plan = ws.run(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    assert!(
        plan.stdout().contains("- notes/unrelated.txt"),
        "{}",
        plan.stdout()
    );
}

#[test]
fn a_commit_by_another_writer_to_a_planned_path_stops_apply_with_a_conflict() {
    let hub = window_hub();
    let ws = Workspace::new(&hub);
    ws.write("out/x.txt", b"x1\n");
    ws.write("out/y.txt", b"y1\n");
    ws.manifest("version: 1\nrepos:\n  - id: alice/conflict\n    files: [{ local: ./out }]\n");
    ws.run(&["apply", "-y"]).assert_code(0);
    let commits_before = hub.stat("commits_created");

    ws.write("out/x.txt", b"ours\n");
    ws.write("out/y.txt", b"y2\n");
    let run = apply_with_a_window(&hub, &ws, || {
        commit_file(&hub, "alice/conflict", "x.txt", b"theirs\n");
    });
    run.assert_code(1);
    let err = run.stderr();
    assert!(err.contains("someone else changed"), "{err}");
    assert!(err.contains("`x.txt`"), "names the path: {err}");
    assert!(!err.contains("`y.txt`"), "only the conflicting path: {err}");
    assert!(err.contains("hint: run `hubsync plan` again"), "{err}");
    // Only their commit landed; apply wrote nothing over it.
    assert_eq!(hub.stat("commits_created"), commits_before + 1);
    let t = RepoType::Model;
    assert_eq!(
        hub.download(t, "alice/conflict", "main", "x.txt"),
        b"theirs\n"
    );
    assert_eq!(hub.download(t, "alice/conflict", "main", "y.txt"), b"y1\n");
}

#[test]
fn json_events_tell_the_story_of_an_apply() {
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    ws.write("model/config.json", b"{}\n");
    ws.write("model/weights.bin", &pseudo_random(100_000, 5));
    ws.write("space/app.py", b"print('hi')\n");
    ws.manifest(
        "version: 1\nrepos:\n\
         \x20 - id: alice/evm\n    files: [{ local: ./model }]\n\
         \x20   branches: [{ name: dev, from: main }]\n\
         \x20   tags: [{ name: v1, revision: main }]\n\
         \x20 - id: alice/evs\n    type: space\n    files: [{ local: ./space }]\n\
         \x20   space: { sdk: gradio, hardware: cpu-upgrade, variables: { MODE: demo } }\n",
    );
    let run = ws.run(&["apply", "-y", "--format", "json"]);
    run.assert_code(0);
    assert!(
        !run.stderr().contains("committed"),
        "no human lines with --format json: {}",
        run.stderr()
    );
    let lines = events(&run);
    assert_eq!(lines[0]["type"], "plan");
    assert_eq!(lines[0]["plan"]["schema_version"], 1);
    assert_eq!(lines.last().unwrap()["type"], "done");
    // Every event line is an `ApplyEvent`, the documented public type.
    for l in &lines[1..] {
        let _: ApplyEvent = serde_json::from_value(l.clone())
            .unwrap_or_else(|e| panic!("not an ApplyEvent ({e}): {l}"));
    }
    let types: BTreeSet<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    for t in [
        "repo_created",
        "upload_started",
        "upload_done",
        "commit_created",
        "ref_created",
        "setting_changed",
        "done",
    ] {
        assert!(types.contains(t), "no `{t}` event in {types:?}");
    }

    let upload = of_type(&lines, "upload_done");
    assert_eq!(upload.len(), 1);
    assert_eq!(upload[0]["repo"], "alice/evm");
    assert_eq!(upload[0]["path"], "weights.bin");
    assert_eq!(upload[0]["size"], 100_000);
    let head = hub.commits(RepoType::Model, "alice/evm", "main")[0]
        .id
        .clone();
    let model_commit = of_type(&lines, "commit_created")
        .into_iter()
        .find(|e| e["repo"] == "alice/evm")
        .expect("a commit to the model");
    assert_eq!(model_commit["commit"], head.as_str(), "the hub's head");
    assert!(
        model_commit["url"].as_str().unwrap().ends_with(&head),
        "{model_commit}"
    );
    let refs: Vec<(String, String)> = of_type(&lines, "ref_created")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        refs,
        vec![("branch".into(), "dev".into()), ("tag".into(), "v1".into())]
    );
    // The upload comes before the commit that needs it, and the tag after the commit.
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| lines.iter().position(pred).unwrap();
    let up = pos(&|e| e["type"] == "upload_done");
    let commit = pos(&|e| e["type"] == "commit_created" && e["repo"] == "alice/evm");
    let tag = pos(&|e| e["type"] == "ref_created" && e["kind"] == "tag");
    assert!(up < commit && commit < tag, "{lines:#?}");
    let settings: BTreeSet<String> = of_type(&lines, "setting_changed")
        .iter()
        .map(|e| e["setting"].as_str().unwrap().to_string())
        .collect();
    assert!(settings.contains("hardware"), "{settings:?}");
    assert!(settings.contains("variable MODE"), "{settings:?}");
    let done = lines.last().unwrap();
    assert_eq!(done["repos"], 2);
    assert_eq!(done["commits"], 2);
    assert_eq!(done["bytes_uploaded"], 100_000);
    assert_eq!(done["failed_files"], 0);
}

#[test]
fn without_a_terminal_or_auto_approve_apply_refuses_and_writes_nothing() {
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    ws.write("out/a.txt", b"a\n");
    ws.manifest("version: 1\nrepos:\n  - id: alice/refused\n    files: [{ local: ./out }]\n");
    let run = ws.run(&["apply"]);
    run.assert_code(1);
    let err = run.stderr();
    assert!(
        err.contains("refusing to apply without confirmation"),
        "{err}"
    );
    assert!(err.contains("--auto-approve"), "{err}");
    assert!(
        run.stdout().contains("+ a.txt"),
        "the plan is shown: {}",
        run.stdout()
    );
    assert_eq!(writes(&hub), vec![], "no write request");
    assert_eq!(hub.stat("commits_created"), 0);
    assert!(!hub.exists(RepoType::Model, "alice/refused"));

    // A saved plan is refused the same way.
    ws.run(&["plan", "-o", "plan.json"]).assert_code(0);
    let run = ws.run(&["apply", "plan.json"]);
    run.assert_code(1);
    assert!(
        run.stderr()
            .contains("refusing to apply without confirmation")
    );
    assert_eq!(writes(&hub), vec![], "no write request");
}

#[test]
fn nothing_to_do_is_no_changes_and_no_write() {
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    ws.write("out/a.txt", b"a\n");
    ws.manifest("version: 1\nrepos:\n  - id: alice/noop\n    files: [{ local: ./out }]\n");
    ws.run(&["apply", "-y"]).assert_code(0);
    let before = writes(&hub);
    let run = ws.run(&["apply"]);
    run.assert_code(0);
    assert!(run.stdout().contains("No changes."), "{}", run.stdout());
    assert_eq!(writes(&hub), before);
}

#[test]
fn apply_makes_the_commits_the_plan_predicts_climbing_the_ladder() {
    // 1,300 files under the default `max_files: 1000`: 250, 400, 600, then the last 50.
    let hub = TestHub::builder().page_size(None).admin().start();
    let ws = Workspace::new(&hub);
    for i in 0..1300 {
        ws.write(&format!("out/f{i:04}.txt"), format!("{i}\n").as_bytes());
    }
    ws.manifest("version: 1\nrepos:\n  - id: alice/ladder\n    files: [{ local: ./out }]\n");
    let run = ws.run(&["apply", "-y", "--format", "json"]);
    run.assert_code(0);
    let lines = events(&run);
    assert_eq!(lines[0]["plan"]["repos"][0]["commits"], 4);
    let sizes: Vec<u64> = of_type(&lines, "commit_created")
        .iter()
        .map(|e| e["files"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![250, 400, 600, 50]);
}

#[test]
fn multipart_parts_cut_off_mid_body_are_sent_again_and_read_back_exactly() {
    // The hub hashes parts in order as they arrive; parts that fail half-way must neither
    // corrupt that hash nor the object. (A part written twice is covered by `hub::parts`.)
    let hub = TestHub::builder()
        .page_size(None)
        .multipart_chunk_size(1024 * 1024)
        .admin()
        .arg("--faults")
        .arg("seed=5,lfs_part:reset=0.3")
        .start();
    let ws = Workspace::new(&hub);
    let big = pseudo_random(5_500_000, 11);
    ws.write("model/big.safetensors", &big);
    ws.manifest("version: 1\nrepos:\n  - id: alice/cut\n    files: [{ local: ./model }]\n");
    let mut runs = 0;
    loop {
        runs += 1;
        let run = ws.run(&["apply", "-y"]);
        if run.code() == 0 {
            break;
        }
        assert!(runs < 5, "no convergence: {}", run.stderr());
    }
    assert!(
        hub.route_requests("lfs_part") > 6,
        "some parts were sent again"
    );
    assert_eq!(hub.stat("lfs_objects_uploaded"), 1);
    let back = hub.download(RepoType::Model, "alice/cut", "main", "big.safetensors");
    assert!(
        back == big,
        "the downloaded bytes differ from the local file"
    );
}
