//! The local hub's own crash safety: `hub serve` is killed with SIGKILL at seeded random points
//! while several clients write (commits of regular files, LFS objects sent basic and multipart,
//! deletions, branches), then restarted on the same data folder. After every restart and at the
//! end:
//! - every commit a client saw acknowledged is there, with exactly the tree it was given, and
//!   every file of it reads back byte for byte;
//! - a commit whose answer was lost with the process either landed whole (the branch points at
//!   it, with the whole tree) or not at all;
//! - every branch points at a commit whose whole tree is readable, and every acknowledged
//!   branch is where it was put;
//! - every LFS object a tree references is stored, and every file in the `lfs/` folder hashes to
//!   its name (no half-written object), and `tmp/` holds nothing after a start.
//!
//! The seed is fixed (`HUBSYNC_CRASH_SEED` overrides it; `HUBSYNC_CRASH_ROUNDS` sets how many
//! kill points), so a failure replays the same kill delays and the same writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use hubsync::api::{
    self, CommitDelete, CommitFile, CommitHeader, CommitLfsFile, CommitLine, EntryType,
    LfsObjectSpec, RepoId, RepoType,
};
use hubsync::client::{HubClient, RetryPolicy};
use hubsync::util::secret::Secret;

use crate::common::{TestHub, lfs_store, record_figures, sha256_hex};

/// Writers at once, one repo each.
const WRITERS: usize = 3;
/// Kill points by default.
const DEFAULT_ROUNDS: usize = 12;
/// LFS objects above this go up in parts.
const CHUNK: u64 = 64 * 1024;

/// splitmix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// A file's content as a writer committed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Content {
    bytes: Arc<Vec<u8>>,
    lfs: bool,
    /// Hashed once: trees share contents, and are compared many times.
    sha256: Arc<str>,
}

impl Content {
    fn new(bytes: Vec<u8>, lfs: bool) -> Content {
        Content {
            sha256: sha256_hex(&bytes).into(),
            bytes: Arc::new(bytes),
            lfs,
        }
    }
}

type Tree = BTreeMap<String, Content>;

/// A file of a commit of a repo.
type Where = (RepoId, String, String);

/// What one writer knows its repo must hold.
struct Model {
    id: RepoId,
    rng: Rng,
    head: String,
    tree: Tree,
    /// Every acknowledged commit and its tree.
    acked: Vec<(String, Tree)>,
    /// Acknowledged branches: name → commit.
    branches: BTreeMap<String, String>,
    /// The commit in flight when the hub died: its parent and the tree it would make.
    pending: Option<(String, Tree)>,
    /// A branch creation in flight: its name and commit.
    pending_branch: Option<(String, String)>,
    /// Counters.
    lfs_sent: u64,
    multipart_sent: u64,
    /// What each writer was doing when the hub died under it, counted.
    died_in: BTreeMap<&'static str, u64>,
}

fn client(url: &str) -> HubClient {
    // No retries: a write that fails because the hub died stops the writer at once.
    HubClient::builder(url)
        .token(Some(Secret::new(TestHub::WRITE_TOKEN.to_string())))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Model {
    fn died(&mut self, during: &'static str) {
        *self.died_in.entry(during).or_default() += 1;
    }
}

/// Adds `content` at `path` to the commit and to the tree it makes.
fn put(next: &mut Tree, ops: &mut Vec<CommitLine>, path: String, content: Content) {
    if content.lfs {
        ops.push(CommitLine::LfsFile(CommitLfsFile {
            path: path.clone(),
            algo: Some("sha256".into()),
            oid: content.sha256.to_string(),
            size: Some(content.bytes.len() as u64),
            old_path: None,
        }));
    } else {
        ops.push(CommitLine::File(CommitFile {
            path: path.clone(),
            content: base64::engine::general_purpose::STANDARD.encode(&*content.bytes),
            encoding: "base64".into(),
            old_path: None,
        }));
    }
    next.insert(path, content);
}

/// One writer's work until the hub dies under it: commit after commit on its own repo.
async fn write_until_killed(
    c: &HubClient,
    m: &mut Model,
    round: usize,
    scratch: &std::path::Path,
    acks: &AtomicUsize,
) {
    for step in 0.. {
        let mut next = m.tree.clone();
        let mut ops = Vec::new();
        let text = |rng: &mut Rng, len: usize| hex::encode(rng.bytes(len)).into_bytes();
        let n = m.rng.below(3) as usize + 1;
        for i in 0..n {
            let body = text(&mut m.rng, 16 + i * 40);
            put(
                &mut next,
                &mut ops,
                format!("r{round}/s{step}-{i}.txt"),
                Content::new(body, false),
            );
        }
        put(
            &mut next,
            &mut ops,
            "counter.txt".into(),
            Content::new(format!("{round}.{step}\n").into_bytes(), false),
        );
        if m.rng.below(5) == 0 {
            let victims: Vec<String> = next
                .keys()
                .filter(|p| p.ends_with(".txt") && p.as_str() != "counter.txt")
                .filter(|p| m.tree.contains_key(*p))
                .cloned()
                .collect();
            if !victims.is_empty() {
                let v = victims[m.rng.below(victims.len() as u64) as usize].clone();
                ops.push(CommitLine::DeletedFile(CommitDelete { path: v.clone() }));
                next.remove(&v);
            }
        }
        if m.rng.below(3) == 0 {
            // An LFS object, basic or multipart, uploaded before the commit that uses it.
            let len = 1 + m.rng.below(3 * CHUNK) as usize;
            let bytes = m.rng.bytes(len);
            let file = scratch.join(format!("obj-{round}-{step}"));
            std::fs::write(&file, &bytes).unwrap();
            let spec = LfsObjectSpec {
                oid: sha256_hex(&bytes),
                size: len as u64,
            };
            let Ok(batch) = c
                .lfs_batch(RepoType::Model, &m.id, Some("main"), &[spec])
                .await
            else {
                return m.died("lfs_batch");
            };
            let Some(obj) = batch.objects.first() else {
                return m.died("lfs_batch");
            };
            let multipart = len as u64 > CHUNK;
            match c.upload_lfs_object(obj, &file).await {
                Ok(_) if multipart => m.multipart_sent += 1,
                Ok(_) => {}
                Err(_) if multipart => return m.died("lfs_multipart_upload"),
                Err(_) => return m.died("lfs_upload"),
            }
            m.lfs_sent += 1;
            put(
                &mut next,
                &mut ops,
                format!("w/{round}-{step}.bin"),
                Content::new(bytes, true),
            );
        }

        let header = CommitHeader {
            summary: format!("round {round} step {step}"),
            description: String::new(),
            parent_commit: Some(m.head.clone()),
        };
        m.pending = Some((m.head.clone(), next.clone()));
        let Ok(resp) = c
            .commit(RepoType::Model, &m.id, "main", &header, &ops, false)
            .await
        else {
            return m.died("commit");
        };
        m.pending = None;
        m.head = resp.commit_oid.clone();
        m.tree = next.clone();
        m.acked.push((resp.commit_oid, next));
        acks.fetch_add(1, Ordering::SeqCst);

        if step % 4 == 3 {
            let name = format!("b{round}-{step}");
            m.pending_branch = Some((name.clone(), m.head.clone()));
            if c.create_branch(RepoType::Model, &m.id, &name, Some(&m.head))
                .await
                .is_err()
            {
                return m.died("branch");
            }
            m.pending_branch = None;
            m.branches.insert(name, m.head.clone());
        }
    }
}

/// The tree a commit has on the hub: path → (git oid, size, LFS sha256).
async fn hub_tree(
    c: &HubClient,
    id: &RepoId,
    rev: &str,
) -> BTreeMap<String, (String, u64, Option<String>)> {
    c.list_tree(RepoType::Model, id, rev, None, true)
        .await
        .unwrap_or_else(|e| panic!("the tree of `{rev}` in `{id}` is unreadable: {e}"))
        .into_iter()
        .filter(|e| e.kind == EntryType::File)
        .map(|e| (e.path, (e.oid, e.size, e.lfs.map(|l| l.oid))))
        .collect()
}

/// What [`hub_tree`] must return for `tree`.
fn expected_tree(tree: &Tree) -> BTreeMap<String, (String, u64, Option<String>)> {
    tree.iter()
        .map(|(p, c)| {
            let size = c.bytes.len() as u64;
            let v = if c.lfs {
                let sha = c.sha256.to_string();
                (api::lfs_git_oid(&sha, size), size, Some(sha))
            } else {
                (api::git_blob_oid(&c.bytes), size, None)
            };
            (p.clone(), v)
        })
        .collect()
}

async fn head_of(c: &HubClient, id: &RepoId) -> (String, BTreeMap<String, String>) {
    let refs = c
        .list_refs(RepoType::Model, id, false)
        .await
        .unwrap_or_else(|e| panic!("the refs of `{id}` are unreadable after a restart: {e}"));
    let branches: BTreeMap<String, String> = refs
        .branches
        .into_iter()
        .map(|b| (b.name, b.target_commit))
        .collect();
    (branches["main"].clone(), branches)
}

/// After a restart: settles what was in flight (landed whole or not at all) and checks the head.
/// Returns how many lost answers turned out to have landed.
async fn settle(c: &HubClient, m: &mut Model) -> u64 {
    let mut landed = 0;
    let (head, branches) = head_of(c, &m.id).await;
    if head != m.head {
        let Some((parent, tree)) = m.pending.take() else {
            panic!(
                "`{}` moved from {} to {head} with no commit in flight",
                m.id, m.head
            );
        };
        let history = c.list_commits(RepoType::Model, &m.id, &head).await.unwrap();
        assert_eq!(history[0].id, head);
        assert_eq!(
            history[0].parents,
            std::slice::from_ref(&parent),
            "the lost commit's parent"
        );
        assert_eq!(
            hub_tree(c, &m.id, &head).await,
            expected_tree(&tree),
            "a commit whose answer was lost landed, but not whole"
        );
        m.head = head.clone();
        m.tree = tree.clone();
        m.acked.push((head, tree));
        landed += 1;
    }
    m.pending = None;
    if let Some((name, target)) = m.pending_branch.take()
        && let Some(at) = branches.get(&name)
    {
        assert_eq!(
            *at, target,
            "a branch whose answer was lost points elsewhere"
        );
        m.branches.insert(name, target);
        landed += 1;
    }
    for (name, target) in &m.branches {
        assert_eq!(
            branches.get(name),
            Some(target),
            "acknowledged branch `{name}`"
        );
    }
    assert_eq!(hub_tree(c, &m.id, &m.head).await, expected_tree(&m.tree));
    landed
}

#[test]
fn the_hub_killed_at_random_points_keeps_every_acknowledged_commit() {
    let seed: u64 = std::env::var("HUBSYNC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let rounds: usize = std::env::var("HUBSYNC_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let started = Instant::now();
    let mut hub = TestHub::builder()
        .page_size(None)
        .multipart_chunk_size(CHUNK)
        .start();
    let mut rng = Rng(seed);
    let scratch = tempfile::tempdir().unwrap();

    // One repo per writer.
    let mut models: Vec<Model> = (0..WRITERS)
        .map(|w| {
            let id = RepoId::parse(&format!("{}/crash-{w}", TestHub::USER)).unwrap();
            let c = client(hub.url());
            let head = rt().block_on(async {
                c.create_repo(RepoType::Model, &id, &Default::default())
                    .await
                    .unwrap();
                head_of(&c, &id).await.0
            });
            let tree = Tree::from([(
                ".gitattributes".to_string(),
                Content::new(api::DEFAULT_GITATTRIBUTES.as_bytes().to_vec(), false),
            )]);
            Model {
                id,
                rng: Rng(seed ^ (w as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1)),
                head: head.clone(),
                tree: tree.clone(),
                acked: vec![(head, tree)],
                branches: BTreeMap::new(),
                pending: None,
                pending_branch: None,
                lfs_sent: 0,
                multipart_sent: 0,
                died_in: BTreeMap::new(),
            }
        })
        .collect();

    let mut kill_delays_ms = Vec::new();
    let mut landed_without_answer = 0;
    for round in 0..rounds {
        let url = hub.url().to_string();
        let acks = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = models
            .drain(..)
            .enumerate()
            .map(|(w, mut m)| {
                let url = url.clone();
                let dir = scratch.path().join(format!("w{w}"));
                std::fs::create_dir_all(&dir).unwrap();
                let acks = acks.clone();
                std::thread::spawn(move || {
                    let c = client(&url);
                    rt().block_on(write_until_killed(&c, &mut m, round, &dir, &acks));
                    m
                })
            })
            .collect();
        // The clock starts once the writers are under way (a loaded machine can take a while
        // to get there), so every round kills them mid-stream.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acks.load(Ordering::SeqCst) < WRITERS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = 30 + rng.below(250);
        kill_delays_ms.push(delay);
        std::thread::sleep(Duration::from_millis(delay));
        hub.kill();
        models = handles.into_iter().map(|h| h.join().unwrap()).collect();

        hub.restart();
        let tmp: Vec<_> = std::fs::read_dir(hub.data_dir().join("tmp"))
            .unwrap()
            .collect();
        assert!(
            tmp.is_empty(),
            "uploads in flight survive a restart: {tmp:?}"
        );
        let c = client(hub.url());
        rt().block_on(async {
            for m in &mut models {
                landed_without_answer += settle(&c, m).await;
            }
        });
    }

    // The whole history, once more, after the last restart.
    let c = client(hub.url());
    let store: BTreeMap<String, String> = lfs_store(&hub.data_dir()).into_iter().collect();
    for (name, sha) in &store {
        assert_eq!(name, sha, "a half-written or corrupt LFS object");
    }
    let (mut commits, mut blobs, mut lfs_refs) = (0, 0, BTreeSet::new());
    let phase = Instant::now();
    rt().block_on(async {
        // sha256 → where to read it: (repo, commit, path), and the bytes expected.
        let mut to_read: BTreeMap<String, (Where, Arc<Vec<u8>>)> = BTreeMap::new();
        // Every acknowledged commit has exactly its tree (a few at a time: the hub is another
        // process, and this is most of the test's time).
        let checks: Vec<_> = futures::stream::iter(
            models
                .iter()
                .flat_map(|m| m.acked.iter().map(move |(oid, tree)| (&m.id, oid, tree))),
        )
        .map(|(id, oid, tree)| {
            let c = &c;
            async move {
                assert_eq!(
                    hub_tree(c, id, oid).await,
                    expected_tree(tree),
                    "commit {oid} of `{id}`"
                );
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
        commits = checks.len();
        for m in &models {
            for (oid, tree) in &m.acked {
                for (path, content) in tree {
                    let sha = content.sha256.to_string();
                    if content.lfs {
                        assert!(
                            store.contains_key(&sha),
                            "LFS object {sha} of `{path}` is missing"
                        );
                        lfs_refs.insert(sha.clone());
                    }
                    to_read.entry(sha).or_insert_with(|| {
                        (
                            (m.id.clone(), oid.clone(), path.clone()),
                            content.bytes.clone(),
                        )
                    });
                }
            }
            // Every branch, acknowledged or not, points at a commit whose tree is readable and
            // whose LFS objects are all stored.
            let (_, branches) = head_of(&c, &m.id).await;
            for (name, target) in &branches {
                for (path, (_, _, lfs)) in hub_tree(&c, &m.id, target).await {
                    if let Some(sha) = lfs {
                        assert!(
                            store.contains_key(&sha),
                            "`{path}` on `{name}`: {sha} missing"
                        );
                    }
                }
            }
        }
        // Every distinct content, read back through `resolve` at a commit that has it.
        let reads: Vec<_> = futures::stream::iter(to_read)
            .map(|(sha, ((id, oid, path), bytes))| {
                let c = &c;
                async move {
                    let got = c
                        .download(RepoType::Model, &id, &oid, &path, None)
                        .await
                        .unwrap_or_else(|e| panic!("`{path}` at {oid}: {e}"))
                        .bytes()
                        .await
                        .unwrap();
                    assert_eq!(
                        sha256_hex(&got),
                        sha,
                        "`{path}` at {oid} reads back different"
                    );
                    assert_eq!(got.len(), bytes.len());
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        blobs = reads.len();
    });

    let final_check = phase.elapsed();
    let acked: usize = models.iter().map(|m| m.acked.len() - 1).sum();
    assert!(
        acked >= rounds * WRITERS,
        "too few commits to mean anything: {acked}"
    );
    record_figures(
        "hub_crash::the_hub_killed_at_random_points_keeps_every_acknowledged_commit",
        serde_json::json!({
            "seed": seed,
            "crash_points": rounds,
            "writers": WRITERS,
            "kill_delays_ms": kill_delays_ms,
            "commits_acknowledged": acked,
            "landed_without_answer": landed_without_answer,
            "commits_verified": commits,
            "branches_acknowledged": models.iter().map(|m| m.branches.len()).sum::<usize>(),
            "contents_read_back": blobs,
            "lfs_objects_uploaded": models.iter().map(|m| m.lfs_sent).sum::<u64>(),
            "multipart_uploads": models.iter().map(|m| m.multipart_sent).sum::<u64>(),
            "lfs_objects_referenced": lfs_refs.len(),
            "lfs_files_hashed": store.len(),
            "writers_killed_during": models.iter().fold(BTreeMap::<&str, u64>::new(), |mut acc, m| {
                for (k, v) in &m.died_in {
                    *acc.entry(k).or_default() += v;
                }
                acc
            }),
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "final_check_seconds": (final_check.as_secs_f64() * 10.0).round() / 10.0,
        }),
    );
}
