//! Scans of real temporary folders: selection, the skip policy, hashes, and the cache.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::*;
use crate::api::{LFS_THRESHOLD, git_blob_oid};

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

fn spec(root: &Path, include: &[&str], exclude: &[&str]) -> ScanSpec {
    ScanSpec {
        root: root.to_path_buf(),
        include: include.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    }
}

/// A cache that trusts files written moments ago, so tests need not wait out the racy window.
fn eager_cache() -> HashCache {
    let mut cache = HashCache::in_memory();
    cache.set_racy_window(Duration::ZERO);
    cache
}

async fn scan_one(spec: ScanSpec, cache: &mut HashCache) -> ScanResult {
    scan(&[spec], cache, &ScanOptions::default(), |_| {})
        .await
        .expect("scan")
}

fn paths(tree: &LocalTree) -> Vec<&str> {
    tree.files.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn selects_nested_files_with_globs_and_default_ignores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for rel in [
        "config.json",
        "model.safetensors",
        "notes.tmp",
        "sub/deep/extra.json",
        "sub/deep/weights.bin",
        "logs/run.json",
        ".git/config",
        "nested/.git",
        ".hubsync/hash-cache.json",
        ".cache/huggingface/download/x.metadata",
        ".cache/other.json",
        ".gitattributes",
    ] {
        write(root, rel, rel.as_bytes());
    }
    fs::create_dir_all(root.join("empty/dir")).expect("mkdir");

    let mut cache = eager_cache();
    let all = scan_one(ScanSpec::all(root), &mut cache).await;
    assert_eq!(
        paths(&all.trees[0]),
        [
            ".cache/other.json",
            ".gitattributes",
            "config.json",
            "logs/run.json",
            "model.safetensors",
            "notes.tmp",
            "sub/deep/extra.json",
            "sub/deep/weights.bin",
        ]
    );
    assert!(all.warnings.is_empty(), "{:?}", all.warnings);

    let some = scan_one(
        spec(root, &["*.json", "*.safetensors"], &["logs/"]),
        &mut cache,
    )
    .await;
    assert_eq!(
        paths(&some.trees[0]),
        [
            ".cache/other.json",
            "config.json",
            "model.safetensors",
            "sub/deep/extra.json"
        ]
    );
    let anchored = scan_one(spec(root, &["sub/**"], &["*.bin"]), &mut cache).await;
    assert_eq!(paths(&anchored.trees[0]), ["sub/deep/extra.json"]);

    let file = &all.trees[0].files["sub/deep/extra.json"];
    assert_eq!(file.abs, root.join("sub/deep/extra.json"));
    assert_eq!(file.size, "sub/deep/extra.json".len() as u64);
    assert_eq!(
        file.git_oid.as_deref(),
        Some(git_blob_oid(b"sub/deep/extra.json").as_str())
    );
    assert_eq!(
        file.sha256,
        hex::encode(Sha256::digest(b"sub/deep/extra.json"))
    );
    assert_eq!(file.stat(), FileStat::of_path(&file.abs).expect("stat"));
    assert_eq!(all.stats.files, 8);
    assert_eq!(all.stats.files_hashed, 8);
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_are_skipped_with_a_warning_even_in_a_loop() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "a.txt", b"a");
    write(root, "sub/b.txt", b"b");
    symlink(root.join("a.txt"), root.join("link.txt")).expect("symlink");
    // A loop: following it would walk root/sub/loop/sub/loop/… forever.
    symlink(root, root.join("sub/loop")).expect("symlink");
    symlink("..", root.join("sub/up")).expect("symlink");
    symlink(root.join("missing"), root.join("dangling")).expect("symlink");
    symlink(root.join("a.txt"), root.join("ignored.tmp")).expect("symlink");

    let result = scan_one(spec(root, &[], &["*.tmp"]), &mut eager_cache()).await;
    assert_eq!(paths(&result.trees[0]), ["a.txt", "sub/b.txt"]);
    let mut skipped: Vec<_> = result
        .warnings
        .iter()
        .map(|w| match w {
            ScanWarning::SymlinkSkipped { path } => path.strip_prefix(root).expect("under root"),
            other => panic!("{other}"),
        })
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            Path::new("dangling"),
            Path::new("link.txt"),
            Path::new("sub/loop"),
            Path::new("sub/up")
        ],
        "an excluded symlink is not worth a warning"
    );
    assert!(result.failures.is_empty());

    // The mapping root itself may be a symlink to a folder.
    let via_link = dir.path().join("sub/loop");
    let result = scan_one(ScanSpec::all(&via_link), &mut eager_cache()).await;
    assert_eq!(result.trees[0].files.len(), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn non_utf8_names_and_special_files_are_skipped_with_a_warning() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "ok.txt", b"ok");
    let bad_file = root.join(OsStr::from_bytes(b"bad\xff.txt"));
    fs::write(&bad_file, b"x").expect("write");
    let bad_dir = root.join(OsStr::from_bytes(b"dir\xfe"));
    fs::create_dir(&bad_dir).expect("mkdir");
    fs::write(bad_dir.join("inside.txt"), b"x").expect("write");
    // A socket stands in for FIFOs and devices; reading one must not be attempted.
    let socket = root.join("daemon.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");

    let result = scan_one(ScanSpec::all(root), &mut eager_cache()).await;
    assert_eq!(paths(&result.trees[0]), ["ok.txt"]);
    let mut warnings = result.warnings.clone();
    warnings.sort_by_key(|w| w.to_string());
    assert_eq!(
        warnings,
        [
            ScanWarning::NonUtf8Skipped { path: bad_file },
            ScanWarning::SpecialSkipped { path: socket },
            ScanWarning::NonUtf8Skipped { path: bad_dir },
        ]
    );
    assert!(warnings[0].to_string().contains("UTF-8"));
}

#[tokio::test]
async fn empty_and_large_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "empty", b"");
    write(
        root,
        "at-threshold.bin",
        &vec![b'x'; LFS_THRESHOLD as usize],
    );
    write(root, "lfs.bin", &vec![b'x'; LFS_THRESHOLD as usize + 1]);

    let result = scan_one(ScanSpec::all(root), &mut eager_cache()).await;
    let files = &result.trees[0].files;
    assert_eq!(
        files["empty"].git_oid.as_deref(),
        Some("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
    );
    assert_eq!(
        files["empty"].sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(files["at-threshold.bin"].git_oid.is_some());
    assert_eq!(files["lfs.bin"].git_oid, None);
    // `head -c 10485761 /dev/zero | tr '\0' x | sha256sum`.
    assert_eq!(
        files["lfs.bin"].sha256,
        "e2be3b83c289189dd311afb0db7a79ec8cfbb993ca5267315b437e41edccec98"
    );
    assert_eq!(result.stats.bytes_hashed, 2 * LFS_THRESHOLD + 1);
}

#[tokio::test]
async fn many_files_in_parallel_match_a_serial_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for i in 0..300 {
        let content = format!("file {i} ").repeat(i);
        write(root, &format!("d{}/f{i}.txt", i % 7), content.as_bytes());
    }
    let options = ScanOptions {
        concurrency: 4,
        ..ScanOptions::default()
    };
    let result = scan(&[ScanSpec::all(root)], &mut eager_cache(), &options, |_| {})
        .await
        .expect("scan");
    assert_eq!(result.trees[0].files.len(), 300);
    for (rel, file) in &result.trees[0].files {
        let content = fs::read(root.join(rel)).expect("read");
        assert_eq!(file.sha256, hex::encode(Sha256::digest(&content)), "{rel}");
        assert_eq!(file.git_oid, Some(git_blob_oid(&content)), "{rel}");
    }
}

#[tokio::test]
async fn trees_follow_the_specs_order() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    write(a.path(), "same.txt", b"from a");
    write(b.path(), "same.txt", b"from b");
    let specs = [ScanSpec::all(b.path()), ScanSpec::all(a.path())];
    let result = scan(&specs, &mut eager_cache(), &ScanOptions::default(), |_| {})
        .await
        .expect("scan");
    assert_eq!(result.trees[0].root, b.path());
    assert_eq!(result.trees[1].root, a.path());
    assert_eq!(
        result.trees[0].files["same.txt"].git_oid,
        Some(git_blob_oid(b"from b"))
    );
    assert_eq!(
        result.trees[1].files["same.txt"].git_oid,
        Some(git_blob_oid(b"from a"))
    );
}

#[tokio::test]
async fn overlapping_mappings_hash_a_shared_file_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config.json", b"{}");
    write(dir.path(), "model.bin", b"weights");
    let specs = [
        spec(dir.path(), &["*.json"], &[]),
        ScanSpec::all(dir.path()),
    ];
    let result = scan(&specs, &mut eager_cache(), &ScanOptions::default(), |_| {})
        .await
        .expect("scan");
    assert_eq!(paths(&result.trees[0]), ["config.json"]);
    assert_eq!(paths(&result.trees[1]), ["config.json", "model.bin"]);
    assert_eq!(
        result.trees[0].files["config.json"],
        result.trees[1].files["config.json"]
    );
    assert_eq!(result.stats.files_hashed, 2);
    assert_eq!(result.stats.files, 3, "counted once per tree");
}

#[tokio::test]
async fn bad_roots_and_globs_fail_the_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "file", b"");
    let mut cache = eager_cache();
    let options = ScanOptions::default();

    let missing = dir.path().join("missing");
    match scan(&[ScanSpec::all(&missing)], &mut cache, &options, |_| {}).await {
        Err(LocalError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let file = dir.path().join("file");
    match scan(&[ScanSpec::all(&file)], &mut cache, &options, |_| {}).await {
        Err(LocalError::NotADirectory { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
    let bad = spec(dir.path(), &["[oops"], &[]);
    match scan(&[bad], &mut cache, &options, |_| {}).await {
        Err(LocalError::InvalidGlob { pattern, .. }) => assert_eq!(pattern, "[oops"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn progress_reports_listing_and_hashing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a", b"12345");
    write(dir.path(), "b/c", b"678");
    let events = Mutex::new(Vec::new());
    let mut cache = eager_cache();
    let options = ScanOptions::default();
    let record = |e| events.lock().expect("lock").push(e);
    scan(&[ScanSpec::all(dir.path())], &mut cache, &options, record)
        .await
        .expect("scan");
    let events = events.into_inner().expect("lock");
    assert_eq!(
        events.first(),
        Some(&ProgressEvent::Listed {
            files: 2,
            files_to_hash: 2,
            bytes_to_hash: 8
        })
    );
    assert_eq!(
        events.last(),
        Some(&ProgressEvent::Hashing {
            files_done: 2,
            files_total: 2,
            bytes_done: 8,
            bytes_total: 8
        })
    );
}

#[tokio::test]
async fn a_warm_scan_reads_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    for i in 0..50 {
        write(&root, &format!("f{i}"), format!("{i}").as_bytes());
    }
    let cache_path = dir.path().join(".hubsync/hash-cache.json");
    let mut cache = HashCache::load(&cache_path);
    cache.set_racy_window(Duration::ZERO);
    let cold = scan_one(ScanSpec::all(&root), &mut cache).await;
    assert_eq!(cold.stats.files_hashed, 50);
    assert_eq!(cold.stats.cache_hits, 0);

    // Same process, same cache.
    let warm = scan_one(ScanSpec::all(&root), &mut cache).await;
    assert_eq!(warm.stats.files_hashed, 0);
    assert_eq!(warm.stats.cache_hits, 50);
    assert_eq!(warm.trees, cold.trees);

    // A later run, through the file.
    assert!(cache.save().expect("save"));
    let mut reloaded = HashCache::load(&cache_path);
    assert_eq!(reloaded.len(), 50);
    let warm = scan_one(ScanSpec::all(&root), &mut reloaded).await;
    assert_eq!(warm.stats.files_hashed, 0);
    assert_eq!(warm.trees, cold.trees);
    assert!(warm.warnings.is_empty());
    assert!(
        !reloaded.save().expect("save"),
        "a no-op scan writes nothing"
    );
}

#[tokio::test]
async fn touched_and_modified_files_are_hashed_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "same.txt", b"unchanged content");
    write(root, "touched.txt", b"touched content");
    write(root, "modified.txt", b"old");
    let mut cache = eager_cache();
    let cold = scan_one(ScanSpec::all(root), &mut cache).await;
    assert_eq!(cold.stats.files_hashed, 3);

    let file = fs::File::options()
        .write(true)
        .open(root.join("touched.txt"))
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .expect("set mtime");
    drop(file);
    // A different size, so the change is visible even within one tick of the file clock.
    write(root, "modified.txt", b"new content");

    let warm = scan_one(ScanSpec::all(root), &mut cache).await;
    assert_eq!(warm.stats.files_hashed, 2);
    assert_eq!(warm.stats.cache_hits, 1);
    let (cold, warm) = (&cold.trees[0].files, &warm.trees[0].files);
    assert_eq!(warm["touched.txt"].sha256, cold["touched.txt"].sha256);
    assert_ne!(warm["touched.txt"].mtime_ns, cold["touched.txt"].mtime_ns);
    assert_eq!(
        warm["modified.txt"].git_oid,
        Some(git_blob_oid(b"new content"))
    );
    assert_eq!(
        warm["modified.txt"].sha256,
        hex::encode(Sha256::digest(b"new content"))
    );
    assert_eq!(warm["same.txt"], cold["same.txt"]);
}

#[tokio::test]
async fn files_changed_just_before_hashing_are_not_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "fresh.txt", b"just written");
    // A window far wider than the test can take, so "just before" holds however slow the machine.
    let mut cache = HashCache::in_memory();
    cache.set_racy_window(Duration::from_secs(3600));
    let first = scan_one(ScanSpec::all(dir.path()), &mut cache).await;
    assert_eq!(first.stats.files_hashed, 1);
    assert_eq!(first.stats.not_cached, 1);
    assert!(cache.is_empty());
    let second = scan_one(ScanSpec::all(dir.path()), &mut cache).await;
    assert_eq!(second.stats.files_hashed, 1, "still too fresh to trust");
    assert_eq!(second.trees, first.trees);
}

#[tokio::test]
async fn a_corrupt_cache_costs_a_rehash_and_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write(&root, "a.txt", b"a");
    let cache_path = dir.path().join("hash-cache.json");
    fs::write(&cache_path, b"{\"version\":1,\"entries\":{\"/a\":[1,2").expect("write");

    let mut cache = HashCache::load(&cache_path);
    cache.set_racy_window(Duration::ZERO);
    let result = scan_one(ScanSpec::all(&root), &mut cache).await;
    assert_eq!(result.stats.files_hashed, 1);
    assert!(
        matches!(&result.warnings[..], [ScanWarning::CacheDiscarded { path, .. }] if *path == cache_path),
        "{:?}",
        result.warnings
    );
    assert!(cache.save().expect("save"));
    let mut repaired = HashCache::load(&cache_path);
    let again = scan_one(ScanSpec::all(&root), &mut repaired).await;
    assert_eq!(again.stats.files_hashed, 0);
    assert!(again.warnings.is_empty());
}

#[tokio::test]
async fn deleted_files_leave_the_cache_on_save() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write(&root, "keep", b"1");
    write(&root, "drop", b"2");
    let cache_path = dir.path().join("c.json");
    let mut cache = HashCache::load(&cache_path);
    cache.set_racy_window(Duration::ZERO);
    scan_one(ScanSpec::all(&root), &mut cache).await;
    cache.save().expect("save");

    fs::remove_file(root.join("drop")).expect("remove");
    let mut cache = HashCache::load(&cache_path);
    let result = scan_one(ScanSpec::all(&root), &mut cache).await;
    assert_eq!(paths(&result.trees[0]), ["keep"]);
    assert!(cache.save().expect("save"));
    assert_eq!(HashCache::load(&cache_path).len(), 1);
}

#[test]
fn an_incomplete_result_can_be_refused() {
    let result = |failures| ScanResult {
        trees: Vec::new(),
        warnings: Vec::new(),
        failures,
        stats: ScanStats::default(),
    };
    assert!(result(Vec::new()).into_complete().is_ok());
    let failures = vec![
        LocalError::Changing {
            path: "/x/a".into(),
            attempts: 3,
        },
        LocalError::NotAFile {
            path: "/x/b".into(),
        },
    ];
    let err = result(failures).into_complete().expect_err("incomplete");
    assert_eq!(err.to_string(), "failed to scan 2 file(s)");
    let first = std::error::Error::source(&err).expect("the first failure");
    assert_eq!(
        first.to_string(),
        "failed to hash `/x/a`: it kept changing while being read (3 attempts)"
    );
}
