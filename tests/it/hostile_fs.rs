//! Hostile and broken filesystems: files that change, vanish or turn into something else between
//! `plan` and `apply`, a file rewritten while it uploads, symlink loops and links out of the
//! folder, names that are not UTF-8 and names the Hub refuses. Each case checks the exact message
//! and, where the run must stop, that nothing changed on the Hub.
//!
//! Tests run as root here, so `chmod 000` cannot make a file unreadable; "unreadable" is
//! emulated by what a reader really meets: the file replaced by a directory, a FIFO or a symlink.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Output;

use hubsync::api::{EntryType, RepoId, RepoType};

use crate::common::{
    TestHub, admin_stats, hubsync, lfs_store, output_text, record_figures, requests_by_route,
    sha256_hex,
};

/// A manifest folder syncing `src/` to the root of `alice/{name}`.
fn workspace(name: &str, files: &[(&str, &[u8])]) -> tempfile::TempDir {
    workspace_with(name, files, "")
}

/// Like [`workspace`], with extra YAML lines for the mapping (e.g. an `exclude`).
fn workspace_with(name: &str, files: &[(&str, &[u8])], mapping_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    for (path, content) in files {
        std::fs::write(dir.path().join("src").join(path), content).unwrap();
    }
    std::fs::write(
        dir.path().join("hubsync.yaml"),
        format!(
            "version: 1\nrepos:\n  - id: {}/{name}\n    files:\n      - local: ./src\n{mapping_extra}",
            TestHub::USER
        ),
    )
    .unwrap();
    dir
}

fn run(hub: &TestHub, dir: &Path, args: &[&str]) -> Output {
    hubsync(hub.url(), dir, args).output().expect("run hubsync")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn repo_id(name: &str) -> RepoId {
    RepoId::parse(&format!("{}/{name}", TestHub::USER)).unwrap()
}

/// The head of `main`, or `None` when the repo does not exist.
fn head(hub: &TestHub, name: &str) -> Option<String> {
    let id = repo_id(name);
    rt().block_on(async {
        match hub
            .write_client()
            .list_refs(RepoType::Model, &id, false)
            .await
        {
            Ok(refs) => refs
                .branches
                .into_iter()
                .find(|b| b.name == "main")
                .map(|b| b.target_commit),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("{e}"),
        }
    })
}

/// The files on `main`: path → (git oid, LFS sha256).
fn files(hub: &TestHub, name: &str) -> BTreeMap<String, (String, Option<String>)> {
    let id = repo_id(name);
    rt().block_on(async {
        hub.write_client()
            .list_tree(RepoType::Model, &id, "main", None, true)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EntryType::File)
            .map(|e| (e.path, (e.oid, e.lfs.map(|l| l.oid))))
            .collect()
    })
}

fn names(hub: &TestHub, name: &str) -> Vec<String> {
    files(hub, name).into_keys().collect()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", output_text(o));
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success());
}

#[test]
fn files_gone_truncated_or_replaced_after_planning_make_the_plan_stale() {
    let hub = TestHub::builder().admin().start();
    let w = workspace("stale", &[("seed.txt", b"seed\n")]);
    let src = w.path().join("src");
    ok(&run(&hub, w.path(), &["apply", "-y"]));
    let before = head(&hub, "stale").expect("the repo exists");

    let planned: &[(&str, &[u8])] = &[
        ("a-deleted.txt", b"alpha alpha alpha\n"),
        ("b-truncated.txt", b"bravo bravo bravo\n"),
        ("c-now-a-dir.txt", b"charlie\n"),
        ("d-now-a-fifo.txt", b"delta\n"),
        ("e-now-a-symlink.txt", b"echo\n"),
        ("f-untouched.txt", b"foxtrot\n"),
    ];
    for (p, c) in planned {
        std::fs::write(src.join(p), c).unwrap();
    }
    std::fs::write(w.path().join("outside.txt"), b"echo\n").unwrap();
    ok(&run(&hub, w.path(), &["plan", "-o", "plan.json"]));

    std::fs::remove_file(src.join("a-deleted.txt")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(src.join("b-truncated.txt"))
        .unwrap()
        .set_len(3)
        .unwrap();
    std::fs::remove_file(src.join("c-now-a-dir.txt")).unwrap();
    std::fs::create_dir(src.join("c-now-a-dir.txt")).unwrap();
    std::fs::remove_file(src.join("d-now-a-fifo.txt")).unwrap();
    mkfifo(&src.join("d-now-a-fifo.txt"));
    // Same content, but through a link out of the folder: the scan would not follow it, so
    // neither does apply.
    std::fs::remove_file(src.join("e-now-a-symlink.txt")).unwrap();
    std::os::unix::fs::symlink(
        w.path().join("outside.txt"),
        src.join("e-now-a-symlink.txt"),
    )
    .unwrap();

    let requests_before = requests_by_route(&admin_stats(hub.url()));
    let o = run(&hub, w.path(), &["apply", "-y", "plan.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    let s = src.display();
    let expected = format!(
        "error: the saved plan is stale; 5 thing(s) moved since it was made:\n\
         \x20 - cannot read `{s}/a-deleted.txt`: No such file or directory (os error 2)\n\
         \x20 - `{s}/b-truncated.txt` changed since planning: 3 bytes, planned 18\n\
         \x20 - cannot read `{s}/c-now-a-dir.txt`: it is no longer a regular file (now a directory)\n\
         \x20 - cannot read `{s}/d-now-a-fifo.txt`: it is no longer a regular file (now a FIFO)\n\
         \x20 - cannot read `{s}/e-now-a-symlink.txt`: it is no longer a regular file (now a symlink)\n\
         \n\
         hint: run `hubsync plan` again and apply the new plan\n"
    );
    assert_eq!(stderr(&o), expected);
    // Nothing changed, and nothing but reads was sent.
    assert_eq!(head(&hub, "stale").as_deref(), Some(before.as_str()));
    let requests_after = requests_by_route(&admin_stats(hub.url()));
    for route in [
        "preupload",
        "commit",
        "lfs_batch",
        "lfs_upload",
        "repo_create",
    ] {
        assert_eq!(
            requests_after.get(route),
            requests_before.get(route),
            "{route}: {requests_after:?}"
        );
    }

    // A fresh plan sees the folder as it is now: the FIFO (never opened, so the scan cannot
    // block on it), the empty directory and the symlink are skipped, the rest is applied.
    let o = run(&hub, w.path(), &["apply", "-y"]);
    ok(&o);
    for warning in [
        format!("warning: skipped `{s}/d-now-a-fifo.txt`: not a regular file"),
        format!(
            "warning: skipped the symlink `{s}/e-now-a-symlink.txt` (symlinks are not followed)"
        ),
    ] {
        assert!(stderr(&o).contains(&warning), "{}", output_text(&o));
    }
    assert_eq!(
        names(&hub, "stale"),
        [
            ".gitattributes",
            "b-truncated.txt",
            "f-untouched.txt",
            "seed.txt"
        ]
    );
    record_figures(
        "hostile_fs::files_gone_truncated_or_replaced_after_planning_make_the_plan_stale",
        serde_json::json!({ "bad_inputs": 5 }),
    );
}

#[test]
fn a_file_rewritten_with_its_old_size_and_mtime_is_caught_by_its_hash() {
    let hub = TestHub::start();
    let w = workspace(
        "samesize",
        &[("x.txt", b"version one\n"), ("y.txt", b"why\n")],
    );
    let x = w.path().join("src/x.txt");
    ok(&run(&hub, w.path(), &["plan", "-o", "plan.json"]));

    // Same size, and the mtime put back (`touch -r`): only the content says it changed.
    let mtime = std::fs::metadata(&x).unwrap().modified().unwrap();
    std::fs::write(&x, b"version two\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&x)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let o = run(&hub, w.path(), &["apply", "-y", "plan.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "error: `x.txt` of `alice/samesize` was not uploaded: `{}` changed since planning (its sha256 differs)",
            x.display()
        )),
        "{err}"
    );
    assert!(
        err.ends_with(
            "error: 1 file(s) of `alice/samesize` were not uploaded (see above)\n\n\
             hint: fix or stop changing those files, then run `hubsync apply` again\n"
        ),
        "{err}"
    );
    // The other file was committed; the changed one was not, in either version.
    assert_eq!(names(&hub, "samesize"), [".gitattributes", "y.txt"]);

    // A re-run picks the new content up.
    ok(&run(&hub, w.path(), &["apply", "-y"]));
    let f = files(&hub, "samesize");
    assert_eq!(f["x.txt"].0, hubsync::api::git_blob_oid(b"version two\n"));
    record_figures(
        "hostile_fs::a_file_rewritten_with_its_old_size_and_mtime_is_caught_by_its_hash",
        serde_json::json!({ "bad_inputs": 1 }),
    );
}

/// Deterministic bytes that do not repeat in short cycles.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

#[test]
fn an_lfs_file_overwritten_while_it_uploads_fails_alone_and_a_rerun_sends_it() {
    // The hub holds each LFS upload for two seconds before reading its body; the client can only
    // push a few MiB into the socket meanwhile, so the tail of a 24 MiB file is read after it
    // was overwritten. (Growth past the planned size would not matter: exactly `size` bytes
    // are sent and checked.)
    const BIG: usize = 24 * 1024 * 1024;
    let hub = TestHub::builder()
        .admin()
        .arg("--faults")
        .arg("lfs_upload:delay=2s")
        .start();
    let big_v1 = noise(BIG, 7);
    let other = noise(1000, 11);
    let w = workspace(
        "rewritten",
        &[
            ("big.bin", &big_v1),
            ("other.bin", &other),
            ("small.txt", b"small\n"),
        ],
    );
    let big = w.path().join("src/big.bin");
    ok(&run(&hub, w.path(), &["plan", "-o", "plan.json"]));

    let mut child = hubsync(
        hub.url(),
        w.path(),
        &["apply", "-y", "--format", "json", "plan.json"],
    )
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut overwritten = false;
    let mut big_v2 = big_v1.clone();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if !overwritten && event["type"] == "upload_started" && event["path"] == "big.bin" {
            // Overwrite the last 4 KiB in place: same size, the first bytes intact.
            let mut f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
            f.seek(SeekFrom::End(-4096)).unwrap();
            f.write_all(&[b'X'; 4096]).unwrap();
            f.sync_all().unwrap();
            big_v2[BIG - 4096..].fill(b'X');
            overwritten = true;
        }
        lines.push(event);
    }
    let o = child.wait_with_output().unwrap();
    assert!(overwritten, "no upload_started for big.bin: {lines:?}");
    assert_eq!(o.status.code(), Some(1), "{lines:?}\n{}", stderr(&o));

    let failed: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|e| e["type"] == "upload_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{lines:?}");
    assert_eq!(failed[0]["path"], "big.bin");
    let why = failed[0]["error"].as_str().unwrap();
    assert!(
        why.contains(&format!(
            "`{}` changed since it was planned: expected sha256 {} ({BIG} bytes), read ",
            big.display(),
            sha256_hex(&big_v1)
        )),
        "{why}"
    );
    let commits: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|e| e["type"] == "commit_created")
        .collect();
    assert_eq!(commits.len(), 1, "{lines:?}");
    assert_eq!(commits[0]["files"], 2);
    assert!(
        stderr(&o).contains("error: 1 file(s) of `alice/rewritten` were not uploaded (see above)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        names(&hub, "rewritten"),
        [".gitattributes", "other.bin", "small.txt"]
    );
    // The cut-off upload left nothing behind: the store holds `other.bin` only.
    assert_eq!(
        lfs_store(&hub.data_dir()),
        [(sha256_hex(&other), sha256_hex(&other))]
    );

    // A re-run plans the new content and sends it, and only it.
    ok(&run(&hub, w.path(), &["apply", "-y"]));
    let f = files(&hub, "rewritten");
    assert_eq!(
        f["big.bin"].1.as_deref(),
        Some(sha256_hex(&big_v2).as_str())
    );
    let mut expected = vec![
        (sha256_hex(&other), sha256_hex(&other)),
        (sha256_hex(&big_v2), sha256_hex(&big_v2)),
    ];
    expected.sort();
    assert_eq!(lfs_store(&hub.data_dir()), expected);
    assert_eq!(admin_stats(hub.url())["lfs_objects_uploaded"], 2);
    record_figures(
        "hostile_fs::an_lfs_file_overwritten_while_it_uploads_fails_alone_and_a_rerun_sends_it",
        serde_json::json!({ "bad_inputs": 1, "lfs_objects_uploaded": 2 }),
    );
}

#[test]
fn an_lfs_file_growing_while_it_uploads_is_committed_as_planned() {
    // Appending (a log, a checkpoint still being written) keeps the planned bytes intact: apply
    // sends exactly the planned `size` bytes, checks their sha256, and commits the planned
    // version; the next plan sees the growth as an update.
    const SIZE: usize = 1024 * 1024;
    let hub = TestHub::builder()
        .admin()
        .arg("--faults")
        .arg("lfs_upload:delay=1s")
        .start();
    let v1 = noise(SIZE, 3);
    let w = workspace("growing", &[("run.bin", &v1)]);
    let file = w.path().join("src/run.bin");
    ok(&run(&hub, w.path(), &["plan", "-o", "plan.json"]));

    let child = hubsync(hub.url(), w.path(), &["apply", "-y", "plan.json"])
        .spawn()
        .unwrap();
    // Once the hub holds the upload, the client has opened the file and sized it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while requests_by_route(&admin_stats(hub.url()))
        .get("lfs_upload")
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no upload reached the hub"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&noise(4096, 5))
        .unwrap();
    let o = child.wait_with_output().unwrap();
    ok(&o);
    let f = files(&hub, "growing");
    assert_eq!(f["run.bin"].1.as_deref(), Some(sha256_hex(&v1).as_str()));
    assert_eq!(
        lfs_store(&hub.data_dir()),
        [(sha256_hex(&v1), sha256_hex(&v1))]
    );

    // The growth is the next plan's update.
    let o = run(
        &hub,
        w.path(),
        &["plan", "--format", "json", "--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let action = &plan["repos"][0]["actions"][0];
    assert_eq!(action["kind"], "file_update");
    assert_eq!(action["size"], SIZE + 4096);
    record_figures(
        "hostile_fs::an_lfs_file_growing_while_it_uploads_is_committed_as_planned",
        serde_json::json!({ "bad_inputs": 1 }),
    );
}

#[test]
fn symlink_loops_and_links_out_of_the_folder_are_skipped_with_warnings() {
    let hub = TestHub::start();
    let w = workspace("links", &[("real.txt", b"real\n")]);
    let src = w.path().join("src");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("private.key"), b"not for the hub\n").unwrap();
    std::fs::create_dir(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/inner.txt"), b"inner\n").unwrap();
    let key = outside.path().join("private.key");
    let links = [
        // A two-link loop and a link to itself.
        ("loop-a", "loop-b"),
        ("loop-b", "loop-a"),
        ("self", "self"),
        // A folder that contains the link (a cycle through the tree).
        ("sub/up", ".."),
        // Out of the folder: a file and a whole folder.
        ("key.txt", key.to_str().unwrap()),
        ("elsewhere", outside.path().to_str().unwrap()),
        // Dangling.
        ("gone.txt", "/nonexistent/hubsync/gone.txt"),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, src.join(link)).unwrap();
    }

    let o = run(&hub, w.path(), &["plan", "--format", "json"]);
    ok(&o);
    let mut warnings: Vec<&str> = Vec::new();
    let err = stderr(&o);
    for line in err.lines() {
        warnings.push(line);
    }
    let s = src.display();
    let mut expected: Vec<String> = links
        .iter()
        .map(|(l, _)| format!("warning: skipped the symlink `{s}/{l}` (symlinks are not followed)"))
        .collect();
    expected.sort();
    warnings.sort();
    assert_eq!(warnings, expected, "{err}");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let paths: Vec<&str> = plan["repos"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["path"].as_str())
        .collect();
    assert_eq!(paths, ["real.txt", "sub/inner.txt"]);

    ok(&run(&hub, w.path(), &["apply", "-y"]));
    assert_eq!(
        names(&hub, "links"),
        [".gitattributes", "real.txt", "sub/inner.txt"]
    );
    record_figures(
        "hostile_fs::symlink_loops_and_links_out_of_the_folder_are_skipped_with_warnings",
        serde_json::json!({ "bad_inputs": links.len() }),
    );
}

#[test]
fn non_utf8_names_are_skipped_with_warnings() {
    use std::os::unix::ffi::OsStrExt;
    let hub = TestHub::start();
    let w = workspace("bytes", &[("good.txt", b"good\n")]);
    let src = w.path().join("src");
    let bad_file = src.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    let bad_dir = src.join(std::ffi::OsStr::from_bytes(b"dir\xff"));
    std::fs::write(&bad_file, b"latin-1 name\n").unwrap();
    std::fs::create_dir(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("inside.txt"), b"inside\n").unwrap();

    let o = run(&hub, w.path(), &["plan"]);
    ok(&o);
    let s = src.display();
    let mut expected = vec![
        format!(
            "warning: skipped `{s}/caf\u{fffd}.txt`: its name is not valid UTF-8, which Hub paths require"
        ),
        format!(
            "warning: skipped `{s}/dir\u{fffd}`: its name is not valid UTF-8, which Hub paths require"
        ),
    ];
    expected.sort();
    let mut got: Vec<String> = stderr(&o).lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, expected);

    ok(&run(&hub, w.path(), &["apply", "-y"]));
    assert_eq!(names(&hub, "bytes"), [".gitattributes", "good.txt"]);
    record_figures(
        "hostile_fs::non_utf8_names_are_skipped_with_warnings",
        serde_json::json!({ "bad_inputs": 2 }),
    );
}

#[test]
fn names_the_hub_refuses_stop_the_plan_before_any_request() {
    let hub = TestHub::builder().admin().start();
    let bad: &[&str] = &[
        "a\\b.txt",
        "bell\u{7}.txt",
        "esc\u{1b}[31m.txt",
        "new\nline.txt",
        "tab\there.txt",
    ];
    let mut files: Vec<(&str, &[u8])> = bad.iter().map(|n| (*n, &b"x\n"[..])).collect();
    files.push(("ok.txt", b"ok\n"));
    let w = workspace("names", &files);
    let src = w.path().join("src");
    let s = src.display();

    let before = requests_by_route(&admin_stats(hub.url()));
    let expected = format!(
        "error: 5 local file(s) have names the Hub refuses; nothing was sent:\n\
         \x20 - `{s}/a\\b.txt` (would be `a\\b.txt` in model `alice/names`): `a\\b.txt` must not contain `\\` or NUL\n\
         \x20 - `{s}/bell\\u{{7}}.txt` (would be `bell\\u{{7}}.txt` in model `alice/names`): `bell\\u{{7}}.txt` must not contain control characters\n\
         \x20 - `{s}/esc\\u{{1b}}[31m.txt` (would be `esc\\u{{1b}}[31m.txt` in model `alice/names`): `esc\\u{{1b}}[31m.txt` must not contain control characters\n\
         \x20 - `{s}/new\\nline.txt` (would be `new\\nline.txt` in model `alice/names`): `new\\nline.txt` must not contain control characters\n\
         \x20 - `{s}/tab\\there.txt` (would be `tab\\there.txt` in model `alice/names`): `tab\\there.txt` must not contain control characters\n\
         \n\
         hint: rename those files, or leave them out with an `exclude` glob in their mapping\n"
    );
    for args in [&["plan"][..], &["apply", "-y"]] {
        let o = run(&hub, w.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", output_text(&o));
        assert_eq!(stderr(&o), expected, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", output_text(&o));
    }
    // Not one request reached the Hub, not even a read.
    assert_eq!(requests_by_route(&admin_stats(hub.url())), before);
    assert_eq!(head(&hub, "names"), None);

    // The hint works: excluded, the rest goes up.
    let w = workspace_with(
        "names",
        &files,
        "        exclude: [\"a?b.txt\", \"bell*\", \"esc*\", \"new*\", \"tab*\"]\n",
    );
    let o = run(&hub, w.path(), &["apply", "-y"]);
    ok(&o);
    assert_eq!(names(&hub, "names"), [".gitattributes", "ok.txt"]);
    record_figures(
        "hostile_fs::names_the_hub_refuses_stop_the_plan_before_any_request",
        serde_json::json!({ "bad_inputs": bad.len() }),
    );
}
