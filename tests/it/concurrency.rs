//! Concurrent writers: two hubsync applies on one repo end in a correct state or a clean
//! conflict, and a lock stops two applies of the same manifest at once.

use std::path::Path;
use std::process::{Child, Command, Output};

use crate::common::TestHub;

fn cmd(hub: &TestHub, dir: &Path, args: &[&str]) -> Command {
    crate::common::hubsync(hub.url(), dir, args)
}

fn spawn(hub: &TestHub, dir: &Path, args: &[&str]) -> Child {
    cmd(hub, dir, args).spawn().expect("spawn hubsync")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A manifest folder syncing `files` (name → content) to `alice/shared`'s root, without prune.
fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join("src").join(name), content).unwrap();
    }
    std::fs::write(
        dir.path().join("hubsync.yaml"),
        format!(
            "version: 1\nrepos:\n  - id: {}/shared\n    files:\n      - local: ./src\n",
            TestHub::USER
        ),
    )
    .unwrap();
    dir
}

fn tree(hub: &TestHub) -> Vec<(String, String)> {
    let client = hub.write_client();
    let id = hubsync::api::RepoId::parse(&format!("{}/shared", TestHub::USER)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut entries: Vec<(String, String)> = rt
        .block_on(client.list_tree(hubsync::api::RepoType::Model, &id, "main", None, true))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == hubsync::api::EntryType::File)
        .map(|e| (e.path, e.oid))
        .collect();
    entries.sort();
    entries
}

/// A hub whose commits are slow, which widens the window in which two applies race, holding
/// the repo already (`seed.txt`), so that they race on commits, not on creation.
fn racing_hub() -> TestHub {
    let hub = TestHub::builder()
        .arg("--faults")
        .arg("commit:delay=300ms")
        .start();
    let first = workspace(&[("seed.txt", "seed\n")]);
    assert!(
        cmd(&hub, first.path(), &["apply", "-y"])
            .output()
            .unwrap()
            .status
            .success()
    );
    hub
}

#[test]
fn two_applies_on_one_repo_both_land_or_conflict_cleanly() {
    let hub = racing_hub();
    let a = workspace(&[("a.txt", "from a\n"), ("same.txt", "a's version\n")]);
    let b = workspace(&[("b.txt", "from b\n"), ("same.txt", "b's version\n")]);

    let pa = spawn(&hub, a.path(), &["apply", "-y"]);
    let pb = spawn(&hub, b.path(), &["apply", "-y"]);
    let (oa, ob) = (
        pa.wait_with_output().unwrap(),
        pb.wait_with_output().unwrap(),
    );
    let files = tree(&hub);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    // Both wrote `same.txt` with different content: exactly one wins, the other stops with a
    // conflict naming the path, and nothing is half-applied.
    let ok = [oa.status.success(), ob.status.success()];
    assert_eq!(
        ok.iter().filter(|s| **s).count(),
        1,
        "a:\n{}\nb:\n{}",
        text(&oa),
        text(&ob)
    );
    let loser = if ok[0] { &ob } else { &oa };
    assert_eq!(loser.status.code(), Some(1));
    assert!(text(loser).contains("same.txt"), "{}", text(loser));
    assert!(text(loser).contains("changed remotely"), "{}", text(loser));
    let winner_file = if ok[0] { "a.txt" } else { "b.txt" };
    assert!(names.contains(&winner_file), "{names:?}");
    assert!(names.contains(&"seed.txt"));

    // Re-running the loser now converges: its plan sees the other content and overwrites it.
    let loser_dir = if ok[0] { b.path() } else { a.path() };
    let again = cmd(&hub, loser_dir, &["apply", "-y"]).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let names: Vec<String> = tree(&hub).into_iter().map(|(p, _)| p).collect();
    for f in [".gitattributes", "a.txt", "b.txt", "same.txt", "seed.txt"] {
        assert!(names.contains(&f.to_string()), "{names:?}");
    }
}

#[test]
fn unrelated_concurrent_applies_both_land() {
    let hub = racing_hub();
    let a = workspace(&[("a.txt", "a\n"), ("seed.txt", "seed\n")]);
    let b = workspace(&[("b.txt", "b\n"), ("seed.txt", "seed\n")]);
    let pa = spawn(&hub, a.path(), &["apply", "-y"]);
    let pb = spawn(&hub, b.path(), &["apply", "-y"]);
    let (oa, ob) = (
        pa.wait_with_output().unwrap(),
        pb.wait_with_output().unwrap(),
    );
    assert!(oa.status.success(), "{}", text(&oa));
    assert!(ob.status.success(), "{}", text(&ob));
    let names: Vec<String> = tree(&hub).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, [".gitattributes", "a.txt", "b.txt", "seed.txt"]);
}

#[test]
fn a_lock_stops_two_applies_of_one_manifest() {
    let hub = TestHub::builder()
        .arg("--faults")
        .arg("commit:delay=1500ms")
        .start();
    let w = workspace(&[("x.txt", "x\n")]);
    let first = spawn(&hub, w.path(), &["apply", "-y"]);
    // Wait until the first apply holds the lock.
    let lock = w.path().join(".hubsync/apply.lock");
    for _ in 0..100 {
        if lock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(lock.exists());
    let second = cmd(&hub, w.path(), &["apply", "-y"]).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second).contains("another hubsync"),
        "{}",
        text(&second)
    );
    assert!(first.wait_with_output().unwrap().status.success());
    assert!(!lock.exists(), "the lock is released at exit");

    // A lock left by a dead process (kill -9) is recovered.
    std::fs::write(&lock, "999999999\n").unwrap();
    std::fs::write(w.path().join("src/y.txt"), "y\n").unwrap();
    let third = cmd(&hub, w.path(), &["apply", "-y"]).output().unwrap();
    assert!(third.status.success(), "{}", text(&third));
}
