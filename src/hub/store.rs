//! The local Hub's storage core: repos, commits, refs, trees, blobs, LFS objects and Space
//! settings under one data folder. It knows nothing of HTTP; `routes` maps its errors to Hub
//! responses.
//!
//! Layout of `--data DIR`:
//! - `hub.sqlite3`: every piece of metadata and the content of regular files, in SQLite (WAL).
//!   Each mutation is one transaction, so a kill -9 leaves either the old or the new state.
//! - `lfs/ab/cd/<sha256>`: LFS objects, content-addressed, written to `tmp/` first, fsynced and
//!   renamed into place before the database row that makes them visible is committed.
//! - `tmp/`: uploads in flight; emptied at start.
//!
//! The object model is git's: a file's oid is its git blob SHA-1 (of the LFS pointer for LFS
//! files), directories are git tree objects, and commit ids are git commit SHA-1s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::api::{self, GitTreeEntry, RepoType};

pub use crate::api::DEFAULT_GITATTRIBUTES;

/// Errors of the storage core. `routes` maps each to a Hub status and `X-Error-Code`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("repository not found")]
    RepoNotFound,
    #[error("invalid rev id: {0}")]
    RevisionNotFound(String),
    #[error("entry not found: {0}")]
    EntryNotFound(String),
    #[error("you already created this {0} repo")]
    RepoExists(RepoType),
    #[error("reference {0} already exists")]
    RefExists(String),
    #[error("The branch was updated since you opened this page. Please refresh and try again.")]
    ParentMismatch,
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "Your push was rejected because an LFS pointer pointed to a file that does not exist: {0}"
    )]
    LfsObjectMissing(String),
    #[error("database error")]
    Db(#[from] rusqlite::Error),
    #[error("storage I/O error")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A file in a tree: its git oid, real size and, for LFS files, the sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub oid: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<String>,
}

/// A whole tree flattened: every file and every directory (with its tree oid) by path.
#[derive(Clone, Debug, Default)]
pub struct FlatTree {
    pub files: BTreeMap<String, FileEntry>,
    pub dirs: BTreeMap<String, String>,
}

/// One stored tree object: its direct children.
#[derive(Serialize, Deserialize)]
struct TreeItem {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<FileEntry>,
}

/// A repo row.
#[derive(Clone, Debug)]
pub struct Repo {
    pub db_id: i64,
    pub repo_type: RepoType,
    pub namespace: String,
    pub name: String,
    pub private: bool,
    /// `None`, `auto` or `manual`.
    pub gated: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub sdk: Option<String>,
    pub hardware: Option<String>,
    pub sleep_time: Option<i64>,
    pub stage: Option<String>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A commit row.
#[derive(Clone, Debug)]
pub struct Commit {
    pub oid: String,
    pub parent: Option<String>,
    pub tree: String,
    pub title: String,
    pub message: String,
    pub author: String,
    pub ms: i64,
}

/// Ref kinds as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
    Pr,
}

impl RefKind {
    fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
            RefKind::Pr => "pr",
        }
    }

    pub fn full(self, name: &str) -> String {
        match self {
            RefKind::Branch => format!("refs/heads/{name}"),
            RefKind::Tag => format!("refs/tags/{name}"),
            RefKind::Pr => format!("refs/pr/{name}"),
        }
    }
}

/// A resolved revision: the commit and, when the revision names one, the branch-like ref that a
/// commit would advance.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub commit: Commit,
    pub writable_ref: Option<(RefKind, String)>,
}

/// One operation of a commit, already decoded.
#[derive(Debug)]
pub enum Op {
    Put {
        path: String,
        content: Vec<u8>,
    },
    PutLfs {
        path: String,
        sha256: String,
        size: Option<u64>,
    },
    DeleteFile {
        path: String,
    },
    DeleteFolder {
        path: String,
    },
}

impl Op {
    /// The path the operation names.
    pub fn path(&self) -> &str {
        match self {
            Op::Put { path, .. }
            | Op::PutLfs { path, .. }
            | Op::DeleteFile { path }
            | Op::DeleteFolder { path } => path,
        }
    }
}

/// What a commit request asks for.
#[derive(Debug)]
pub struct CommitRequest {
    pub revision: String,
    pub create_pr: bool,
    pub parent: Option<String>,
    pub summary: String,
    pub description: String,
    pub author: String,
    pub ops: Vec<Op>,
}

/// The outcome of a commit.
#[derive(Debug)]
pub struct CommitOutcome {
    pub oid: String,
    pub pr_number: Option<u64>,
}

/// A Space variable or secret row (secrets have no value: the store never keeps one).
#[derive(Clone, Debug)]
pub struct SpaceKey {
    pub key: String,
    pub value: Option<String>,
    pub description: Option<String>,
    pub updated_ms: i64,
}

/// Counters a test can read through the admin endpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub commits_created: u64,
    pub lfs_objects_uploaded: u64,
    pub lfs_bytes_received: u64,
}

/// The storage core. Cheap to clone; all methods are blocking (call them off the async runtime).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    root: PathBuf,
    /// Immutable tree objects are cached flattened, so paginated listings stay cheap.
    tree_cache: Mutex<HashMap<String, Arc<FlatTree>>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
  id INTEGER PRIMARY KEY AUTOINCREMENT, rtype TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  private INTEGER NOT NULL, gated TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  sdk TEXT, hardware TEXT, sleep_time INTEGER, stage TEXT, next_pr INTEGER NOT NULL DEFAULT 1,
  UNIQUE (rtype, namespace, name));
CREATE TABLE IF NOT EXISTS commits (
  repo INTEGER NOT NULL, oid TEXT NOT NULL, parent TEXT, tree TEXT NOT NULL, title TEXT NOT NULL,
  message TEXT NOT NULL, author TEXT NOT NULL, ms INTEGER NOT NULL, PRIMARY KEY (repo, oid));
CREATE TABLE IF NOT EXISTS refs (
  repo INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, target TEXT NOT NULL, message TEXT,
  PRIMARY KEY (repo, kind, name));
CREATE TABLE IF NOT EXISTS trees (oid TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (oid TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lfs_objects (repo INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  PRIMARY KEY (repo, sha256));
CREATE TABLE IF NOT EXISTS space_keys (repo INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
  value TEXT, description TEXT, updated_ms INTEGER NOT NULL, PRIMARY KEY (repo, kind, key));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Store {
    /// Opens (or creates) the store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        std::fs::create_dir_all(root.join("lfs"))?;
        let tmp = root.join("tmp");
        // Uploads that were in flight when the process died are garbage now.
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let conn = Connection::open(root.join("hub.sqlite3"))?;
        // Large pages for a new database: commits write megabytes of small blobs, and 64 KiB
        // pages cut the write calls sixteen-fold (an existing database keeps its page size).
        conn.pragma_update(None, "page_size", 65536)?;
        // WAL + NORMAL is durable against a process crash (kill -9), which is what we promise.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                root: root.to_path_buf(),
                tree_cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is safe to keep using.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A per-data-folder random secret (for signing upload URLs), created on first use.
    pub fn server_secret(&self) -> Result<String> {
        let conn = self.conn();
        if let Some(v) = conn
            .query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
        {
            return Ok(v);
        }
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf)
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
        let v = hex::encode(buf);
        conn.execute("INSERT INTO meta (key, value) VALUES ('secret', ?1)", [&v])?;
        Ok(v)
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    // ---- repos -------------------------------------------------------------------------------

    pub fn find_repo(&self, t: RepoType, ns: &str, name: &str) -> Result<Option<Repo>> {
        let conn = self.conn();
        find_repo(&conn, t, ns, name)
    }

    pub fn get_repo(&self, t: RepoType, ns: &str, name: &str) -> Result<Repo> {
        self.find_repo(t, ns, name)?.ok_or(StoreError::RepoNotFound)
    }

    pub fn list_repos(&self) -> Result<Vec<Repo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {REPO_COLS} FROM repos ORDER BY id"))?;
        let rows = stmt.query_map([], repo_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Creates a repo with its initial commit holding `.gitattributes`.
    pub fn create_repo(
        &self,
        t: RepoType,
        ns: &str,
        name: &str,
        private: bool,
        sdk: Option<&str>,
    ) -> Result<Repo> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if find_repo(&tx, t, ns, name)?.is_some() {
            return Err(StoreError::RepoExists(t));
        }
        let now = now_ms();
        let (hardware, sleep, stage) = if t == RepoType::Space {
            (Some("cpu-basic"), Some(172_800i64), Some("NO_APP_FILE"))
        } else {
            (None, None, None)
        };
        tx.execute(
            "INSERT INTO repos (rtype, namespace, name, private, gated, created_ms, updated_ms, sdk, hardware, sleep_time, stage)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5, ?6, ?7, ?8, ?9)",
            params![t.as_str(), ns, name, private, now, sdk, hardware, sleep, stage],
        )?;
        let db_id = tx.last_insert_rowid();
        let mut files = BTreeMap::new();
        let content = DEFAULT_GITATTRIBUTES.as_bytes();
        let oid = api::git_blob_oid(content);
        tx.execute(
            "INSERT OR IGNORE INTO blobs (oid, data) VALUES (?1, ?2)",
            params![oid, content],
        )?;
        files.insert(
            ".gitattributes".to_string(),
            FileEntry {
                oid,
                size: content.len() as u64,
                lfs: None,
            },
        );
        let tree = write_tree(&tx, &files)?;
        let commit = make_commit(&tx, db_id, &tree, None, "initial commit", "", "system", now)?;
        tx.execute(
            "INSERT INTO refs (repo, kind, name, target) VALUES (?1, 'branch', 'main', ?2)",
            params![db_id, commit],
        )?;
        tx.commit()?;
        find_repo(&conn, t, ns, name)?.ok_or(StoreError::RepoNotFound)
    }

    pub fn delete_repo(&self, repo: &Repo) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for table in ["commits", "refs", "lfs_objects", "space_keys"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE repo = ?1"),
                [repo.db_id],
            )?;
        }
        tx.execute("DELETE FROM repos WHERE id = ?1", [repo.db_id])?;
        tx.commit()?;
        Ok(())
    }

    pub fn update_repo_settings(
        &self,
        repo: &Repo,
        private: Option<bool>,
        gated: Option<Option<String>>,
    ) -> Result<Repo> {
        let conn = self.conn();
        if let Some(p) = private {
            conn.execute(
                "UPDATE repos SET private = ?1 WHERE id = ?2",
                params![p, repo.db_id],
            )?;
        }
        if let Some(g) = gated {
            conn.execute(
                "UPDATE repos SET gated = ?1 WHERE id = ?2",
                params![g, repo.db_id],
            )?;
        }
        find_repo(&conn, repo.repo_type, &repo.namespace, &repo.name)?
            .ok_or(StoreError::RepoNotFound)
    }

    pub fn update_space(
        &self,
        repo: &Repo,
        hardware: Option<&str>,
        sleep_time: Option<i64>,
        stage: Option<&str>,
    ) -> Result<Repo> {
        let conn = self.conn();
        if let Some(h) = hardware {
            conn.execute(
                "UPDATE repos SET hardware = ?1 WHERE id = ?2",
                params![h, repo.db_id],
            )?;
        }
        if let Some(s) = sleep_time {
            conn.execute(
                "UPDATE repos SET sleep_time = ?1 WHERE id = ?2",
                params![s, repo.db_id],
            )?;
        }
        if let Some(s) = stage {
            conn.execute(
                "UPDATE repos SET stage = ?1 WHERE id = ?2",
                params![s, repo.db_id],
            )?;
        }
        find_repo(&conn, repo.repo_type, &repo.namespace, &repo.name)?
            .ok_or(StoreError::RepoNotFound)
    }

    // ---- revisions, trees and commits --------------------------------------------------------

    /// Resolves a branch, tag, `refs/...` name, full commit id or 7+ character prefix.
    pub fn resolve(&self, repo: &Repo, rev: &str) -> Result<Resolved> {
        let conn = self.conn();
        resolve(&conn, repo.db_id, rev)
    }

    pub fn commit_by_oid(&self, repo: &Repo, oid: &str) -> Result<Option<Commit>> {
        let conn = self.conn();
        get_commit(&conn, repo.db_id, oid)
    }

    /// The flattened tree of a tree oid (cached: trees are immutable).
    pub fn flat_tree(&self, tree_oid: &str) -> Result<Arc<FlatTree>> {
        if let Some(t) = self.cache().get(tree_oid) {
            return Ok(t.clone());
        }
        let flat = {
            let conn = self.conn();
            let mut flat = FlatTree::default();
            load_tree(&conn, tree_oid, "", &mut flat)?;
            Arc::new(flat)
        };
        self.cache_tree(tree_oid, flat.clone());
        Ok(flat)
    }

    fn cache_tree(&self, tree_oid: &str, flat: Arc<FlatTree>) {
        let mut cache = self.cache();
        if cache.len() >= 32 {
            cache.clear();
        }
        cache.insert(tree_oid.to_string(), flat);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FlatTree>>> {
        self.inner
            .tree_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The history of a commit, newest first: `(page, total)`.
    pub fn history(
        &self,
        repo: &Repo,
        head: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Commit>, usize)> {
        let conn = self.conn();
        let mut out = Vec::new();
        let mut cur = Some(head.to_string());
        let mut total = 0usize;
        while let Some(oid) = cur {
            let c = get_commit(&conn, repo.db_id, &oid)?
                .ok_or_else(|| StoreError::RevisionNotFound(oid.clone()))?;
            if total >= offset && out.len() < limit {
                out.push(c.clone());
            }
            total += 1;
            cur = c.parent;
        }
        Ok((out, total))
    }

    /// Content of a regular file by git oid.
    pub fn read_blob(&self, oid: &str) -> Result<Vec<u8>> {
        let conn = self.conn();
        conn.query_row("SELECT data FROM blobs WHERE oid = ?1", [oid], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::EntryNotFound(oid.to_string()))
    }

    /// Path of a stored LFS object.
    pub fn lfs_path(&self, sha256: &str) -> PathBuf {
        self.inner
            .root
            .join("lfs")
            .join(&sha256[0..2])
            .join(&sha256[2..4])
            .join(sha256)
    }

    /// Applies a commit atomically: parent check, operations in order, new tree, ref update.
    pub fn commit(&self, repo: &Repo, req: CommitRequest) -> Result<CommitOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let base = resolve(&tx, repo.db_id, &req.revision)?;
        let Some((kind, ref_name)) = base.writable_ref.clone() else {
            return Err(StoreError::RevisionNotFound(format!(
                "{} is not a branch; commits go to branches",
                req.revision
            )));
        };
        if kind == RefKind::Tag || (req.create_pr && kind != RefKind::Branch) {
            return Err(StoreError::RevisionNotFound(format!(
                "{} is not a branch; commits go to branches",
                req.revision
            )));
        }
        let mut start = base.commit.clone();
        if let Some(parent) = &req.parent {
            if parent.len() < 5 || !is_hex(parent) {
                return Err(StoreError::BadRequest(format!(
                    "invalid parentCommit `{parent}`"
                )));
            }
            if req.create_pr {
                start = match_commit_prefix(&tx, repo.db_id, parent)?
                    .ok_or_else(|| StoreError::RevisionNotFound(parent.clone()))?;
            } else if !base.commit.oid.starts_with(parent.as_str()) {
                return Err(StoreError::ParentMismatch);
            }
        }
        // The parent's tree, from the cache when a recent commit or read left it there: a
        // commit then costs what it changes, not what the repo holds.
        let cached = self.cache().get(&start.tree).cloned();
        let base = match cached {
            Some(flat) => flat,
            None => {
                let mut flat = FlatTree::default();
                load_tree(&tx, &start.tree, "", &mut flat)?;
                Arc::new(flat)
            }
        };
        let mut files = base.files.clone();
        let mut dirty = BTreeSet::new();
        for op in req.ops {
            mark_dirty(&mut dirty, op.path());
            apply_op(&tx, repo.db_id, &mut files, op)?;
        }
        let (tree, dirs) = write_tree_incremental(&tx, &files, &base.dirs, &dirty)?;
        let now = now_ms();
        let oid = make_commit(
            &tx,
            repo.db_id,
            &tree,
            Some(&start.oid),
            &req.summary,
            &req.description,
            &req.author,
            now,
        )?;
        let mut pr_number = None;
        if req.create_pr {
            let n: i64 = tx.query_row(
                "SELECT next_pr FROM repos WHERE id = ?1",
                [repo.db_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE repos SET next_pr = next_pr + 1 WHERE id = ?1",
                [repo.db_id],
            )?;
            tx.execute(
                "INSERT INTO refs (repo, kind, name, target) VALUES (?1, 'pr', ?2, ?3)",
                params![repo.db_id, n.to_string(), oid],
            )?;
            pr_number = Some(n as u64);
        } else {
            tx.execute(
                "UPDATE refs SET target = ?1 WHERE repo = ?2 AND kind = ?3 AND name = ?4",
                params![oid, repo.db_id, kind.as_str(), ref_name],
            )?;
        }
        let stage = if repo.repo_type == RepoType::Space {
            let has_app = files
                .keys()
                .any(|p| p != ".gitattributes" && p != "README.md");
            Some(if has_app { "RUNNING" } else { "NO_APP_FILE" })
        } else {
            None
        };
        tx.execute(
            "UPDATE repos SET updated_ms = ?1, stage = CASE WHEN stage = 'PAUSED' THEN stage ELSE COALESCE(?2, stage) END WHERE id = ?3",
            params![now, stage, repo.db_id],
        )?;
        bump(&tx, "commits_created", 1)?;
        tx.commit()?;
        self.cache_tree(&tree, Arc::new(FlatTree { files, dirs }));
        Ok(CommitOutcome { oid, pr_number })
    }

    // ---- refs --------------------------------------------------------------------------------

    pub fn list_refs(
        &self,
        repo: &Repo,
        kind: RefKind,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, target, message FROM refs WHERE repo = ?1 AND kind = ?2 ORDER BY name",
        )?;
        let rows = stmt.query_map(params![repo.db_id, kind.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        let mut v = rows.collect::<rusqlite::Result<Vec<(String, String, Option<String>)>>>()?;
        if kind == RefKind::Pr {
            v.sort_by_key(|(n, _, _)| n.parse::<u64>().unwrap_or(0));
        }
        Ok(v)
    }

    /// Creates a branch or tag at `target` (a revision). Fails if it exists.
    pub fn create_ref(
        &self,
        repo: &Repo,
        kind: RefKind,
        name: &str,
        target_rev: &str,
        message: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let target = resolve(&tx, repo.db_id, target_rev)?.commit.oid;
        let exists: Option<String> = tx
            .query_row(
                "SELECT target FROM refs WHERE repo = ?1 AND kind = ?2 AND name = ?3",
                params![repo.db_id, kind.as_str(), name],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::RefExists(kind.full(name)));
        }
        tx.execute(
            "INSERT INTO refs (repo, kind, name, target, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![repo.db_id, kind.as_str(), name, target, message],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete_ref(&self, repo: &Repo, kind: RefKind, name: &str) -> Result<()> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM refs WHERE repo = ?1 AND kind = ?2 AND name = ?3",
            params![repo.db_id, kind.as_str(), name],
        )?;
        if n == 0 {
            return Err(StoreError::RevisionNotFound(name.to_string()));
        }
        Ok(())
    }

    // ---- LFS ---------------------------------------------------------------------------------

    /// The size of an LFS object this repo holds, if any.
    pub fn repo_lfs_object(&self, repo: &Repo, sha256: &str) -> Result<Option<u64>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT size FROM lfs_objects WHERE repo = ?1 AND sha256 = ?2",
                params![repo.db_id, sha256],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64))
    }

    /// A fresh temp file path for an upload in flight.
    pub fn temp_path(&self, label: &str) -> PathBuf {
        let mut buf = [0u8; 8];
        let _ = getrandom::fill(&mut buf);
        self.inner
            .root
            .join("tmp")
            .join(format!("{label}-{}", hex::encode(buf)))
    }

    /// Folder holding the parts of a multipart upload.
    pub fn parts_dir(&self, repo_db_id: i64, sha256: &str) -> PathBuf {
        self.inner
            .root
            .join("tmp")
            .join(format!("parts-{repo_db_id}-{sha256}"))
    }

    /// Moves a fully received, hash-checked temp file into the object store and links the object
    /// to the repo. The file is fsynced before the rename, and the rename happens before the row
    /// that makes the object visible is committed.
    pub fn install_lfs_object(
        &self,
        repo_db_id: i64,
        sha256: &str,
        size: u64,
        temp: &Path,
    ) -> Result<()> {
        let dest = self.lfs_path(sha256);
        if dest.exists() {
            let _ = std::fs::remove_file(temp);
        } else {
            let f = std::fs::File::open(temp)?;
            f.sync_all()?;
            // On disk now; its pages are better used by the next upload.
            super::writeback::forget(&f, 0, 0);
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(temp, &dest)?;
            if let Some(dir) = dest.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO lfs_objects (repo, sha256, size) VALUES (?1, ?2, ?3)",
            params![repo_db_id, sha256, size as i64],
        )?;
        bump(&conn, "lfs_objects_uploaded", 1)?;
        bump(&conn, "lfs_bytes_received", size as i64)?;
        Ok(())
    }

    // ---- Space variables and secrets ---------------------------------------------------------

    pub fn space_keys(&self, repo: &Repo, secrets: bool) -> Result<Vec<SpaceKey>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, value, description, updated_ms FROM space_keys WHERE repo = ?1 AND kind = ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![repo.db_id, kind_of(secrets)], |r| {
            Ok(SpaceKey {
                key: r.get(0)?,
                value: r.get(1)?,
                description: r.get(2)?,
                updated_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Sets a variable, or a secret (whose value is accepted and deliberately not stored: no
    /// Space ever runs here, and a secret must never reach the disk in the clear).
    pub fn set_space_key(
        &self,
        repo: &Repo,
        secret: bool,
        key: &str,
        value: &str,
        description: Option<&str>,
    ) -> Result<()> {
        let conn = self.conn();
        let stored_value = if secret { None } else { Some(value) };
        let existing: Option<Option<String>> = conn
            .query_row(
                "SELECT description FROM space_keys WHERE repo = ?1 AND kind = ?2 AND key = ?3",
                params![repo.db_id, kind_of(secret), key],
                |r| r.get(0),
            )
            .optional()?;
        // Like the Hub, an update without a description keeps the old one.
        let description = description.map(str::to_string).or(existing.flatten());
        conn.execute(
            "INSERT OR REPLACE INTO space_keys (repo, kind, key, value, description, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![repo.db_id, kind_of(secret), key, stored_value, description, now_ms()],
        )?;
        Ok(())
    }

    pub fn delete_space_key(&self, repo: &Repo, secret: bool, key: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM space_keys WHERE repo = ?1 AND kind = ?2 AND key = ?3",
            params![repo.db_id, kind_of(secret), key],
        )?;
        Ok(())
    }

    pub fn stats(&self) -> Result<Stats> {
        let conn = self.conn();
        let get = |name: &str| -> Result<u64> {
            Ok(conn
                .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .unwrap_or(0) as u64)
        };
        Ok(Stats {
            commits_created: get("commits_created")?,
            lfs_objects_uploaded: get("lfs_objects_uploaded")?,
            lfs_bytes_received: get("lfs_bytes_received")?,
        })
    }
}

fn kind_of(secret: bool) -> &'static str {
    if secret { "secret" } else { "variable" }
}

fn bump(conn: &Connection, name: &str, by: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + ?2",
        params![name, by],
    )?;
    Ok(())
}

const REPO_COLS: &str = "id, rtype, namespace, name, private, gated, created_ms, updated_ms, sdk, hardware, sleep_time, stage";

fn repo_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Repo> {
    let t: String = r.get(1)?;
    Ok(Repo {
        db_id: r.get(0)?,
        repo_type: t.parse().unwrap_or(RepoType::Model),
        namespace: r.get(2)?,
        name: r.get(3)?,
        private: r.get(4)?,
        gated: r.get(5)?,
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
        sdk: r.get(8)?,
        hardware: r.get(9)?,
        sleep_time: r.get(10)?,
        stage: r.get(11)?,
    })
}

fn find_repo(conn: &Connection, t: RepoType, ns: &str, name: &str) -> Result<Option<Repo>> {
    // The Hub treats repo ids case-insensitively.
    Ok(conn
        .query_row(
            &format!(
                "SELECT {REPO_COLS} FROM repos WHERE rtype = ?1 AND lower(namespace) = lower(?2) AND lower(name) = lower(?3)"
            ),
            params![t.as_str(), ns, name],
            repo_from_row,
        )
        .optional()?)
}

fn get_commit(conn: &Connection, repo: i64, oid: &str) -> Result<Option<Commit>> {
    Ok(conn
        .query_row(
            "SELECT oid, parent, tree, title, message, author, ms FROM commits WHERE repo = ?1 AND oid = ?2",
            params![repo, oid],
            |r| {
                Ok(Commit {
                    oid: r.get(0)?,
                    parent: r.get(1)?,
                    tree: r.get(2)?,
                    title: r.get(3)?,
                    message: r.get(4)?,
                    author: r.get(5)?,
                    ms: r.get(6)?,
                })
            },
        )
        .optional()?)
}

fn match_commit_prefix(conn: &Connection, repo: i64, prefix: &str) -> Result<Option<Commit>> {
    if prefix.len() == 40 {
        return get_commit(conn, repo, prefix);
    }
    let mut stmt =
        conn.prepare("SELECT oid FROM commits WHERE repo = ?1 AND oid >= ?2 AND oid < ?3 LIMIT 2")?;
    let upper = format!("{prefix}g");
    let oids = stmt
        .query_map(params![repo, prefix, upper], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    match oids.as_slice() {
        [one] => get_commit(conn, repo, one),
        _ => Ok(None),
    }
}

fn ref_target(conn: &Connection, repo: i64, kind: RefKind, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT target FROM refs WHERE repo = ?1 AND kind = ?2 AND name = ?3",
            params![repo, kind.as_str(), name],
            |r| r.get(0),
        )
        .optional()?)
}

fn resolve(conn: &Connection, repo: i64, rev: &str) -> Result<Resolved> {
    let not_found = || StoreError::RevisionNotFound(rev.to_string());
    let candidates: Vec<(RefKind, &str)> = if let Some(b) = rev.strip_prefix("refs/heads/") {
        vec![(RefKind::Branch, b)]
    } else if let Some(t) = rev.strip_prefix("refs/tags/") {
        vec![(RefKind::Tag, t)]
    } else if let Some(p) = rev.strip_prefix("refs/pr/") {
        vec![(RefKind::Pr, p)]
    } else {
        vec![(RefKind::Branch, rev), (RefKind::Tag, rev)]
    };
    for (kind, name) in candidates {
        if let Some(target) = ref_target(conn, repo, kind, name)? {
            let commit = get_commit(conn, repo, &target)?.ok_or_else(not_found)?;
            return Ok(Resolved {
                commit,
                writable_ref: Some((kind, name.to_string())),
            });
        }
    }
    if rev.len() >= 7
        && rev.len() <= 40
        && is_hex(rev)
        && let Some(commit) = match_commit_prefix(conn, repo, rev)?
    {
        return Ok(Resolved {
            commit,
            writable_ref: None,
        });
    }
    Err(not_found())
}

fn load_tree(conn: &Connection, oid: &str, prefix: &str, out: &mut FlatTree) -> Result<()> {
    let body: String = conn
        .query_row("SELECT body FROM trees WHERE oid = ?1", [oid], |r| r.get(0))
        .optional()?
        .ok_or_else(|| {
            StoreError::Io(std::io::Error::other(format!("missing tree object {oid}")))
        })?;
    let items: Vec<TreeItem> = serde_json::from_str(&body).map_err(|e| {
        StoreError::Io(std::io::Error::other(format!(
            "corrupt tree object {oid}: {e}"
        )))
    })?;
    for item in items {
        let path = if prefix.is_empty() {
            item.name.clone()
        } else {
            format!("{prefix}/{}", item.name)
        };
        if let Some(sub) = item.dir {
            load_tree(conn, &sub, &path, out)?;
            out.dirs.insert(path, sub);
        } else if let Some(f) = item.file {
            out.files.insert(path, f);
        }
    }
    Ok(())
}

#[derive(Default)]
struct DirNode<'a> {
    files: BTreeMap<&'a str, &'a FileEntry>,
    dirs: BTreeMap<&'a str, DirNode<'a>>,
}

impl<'a> DirNode<'a> {
    /// The folder hierarchy of a flat file map.
    fn of(files: &'a BTreeMap<String, FileEntry>) -> DirNode<'a> {
        let mut root = DirNode::default();
        for (path, entry) in files {
            let mut node = &mut root;
            let mut parts = path.split('/').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    node.files.insert(part, entry);
                } else {
                    node = node.dirs.entry(part).or_default();
                }
            }
        }
        root
    }
}

/// Writes the tree objects of a flat file map and returns the root tree oid.
fn write_tree(conn: &Connection, files: &BTreeMap<String, FileEntry>) -> Result<String> {
    write_node(conn, &DirNode::of(files))
}

/// Marks the folders whose tree objects an operation on `path` may change: every ancestor, and
/// `path` itself (a deleted folder).
fn mark_dirty(dirty: &mut BTreeSet<String>, path: &str) {
    let path = path.trim_end_matches('/');
    dirty.insert(String::new());
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i;
        dirty.insert(path[..end].to_string());
        end += 1;
    }
    dirty.insert(path.to_string());
}

/// [`write_tree`] that rewrites only the `dirty` folders: any other folder is unchanged since
/// the parent tree, whose folder oids are `old_dirs`. Returns the root tree oid and the oid of
/// every folder of the new tree.
fn write_tree_incremental(
    conn: &Connection,
    files: &BTreeMap<String, FileEntry>,
    old_dirs: &BTreeMap<String, String>,
    dirty: &BTreeSet<String>,
) -> Result<(String, BTreeMap<String, String>)> {
    let root = DirNode::of(files);
    let mut dirs = BTreeMap::new();
    let oid = write_node_incremental(conn, &root, "", old_dirs, dirty, &mut dirs)?;
    Ok((oid, dirs))
}

fn write_node_incremental(
    conn: &Connection,
    node: &DirNode<'_>,
    path: &str,
    old_dirs: &BTreeMap<String, String>,
    dirty: &BTreeSet<String>,
    dirs: &mut BTreeMap<String, String>,
) -> Result<String> {
    if !path.is_empty()
        && !dirty.contains(path)
        && let Some(oid) = old_dirs.get(path)
    {
        // Untouched: the same tree object, and the same sub-folders.
        let prefix = format!("{path}/");
        for (p, o) in old_dirs
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
        {
            dirs.insert(p.clone(), o.clone());
        }
        return Ok(oid.clone());
    }
    let mut git_oids = Vec::new();
    for (name, sub) in &node.dirs {
        let sub_path = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        };
        let oid = write_node_incremental(conn, sub, &sub_path, old_dirs, dirty, dirs)?;
        dirs.insert(sub_path, oid.clone());
        git_oids.push((*name, oid));
    }
    store_tree_object(conn, &git_oids, &node.files)
}

fn write_node(conn: &Connection, node: &DirNode<'_>) -> Result<String> {
    let mut sub_oids = Vec::new();
    for (name, sub) in &node.dirs {
        sub_oids.push((*name, write_node(conn, sub)?));
    }
    store_tree_object(conn, &sub_oids, &node.files)
}

/// Stores one tree object (its sub-folders' oids and its files) and returns its git oid.
fn store_tree_object(
    conn: &Connection,
    sub_dirs: &[(&str, String)],
    files: &BTreeMap<&str, &FileEntry>,
) -> Result<String> {
    let mut items = Vec::with_capacity(sub_dirs.len() + files.len());
    let mut git_entries: Vec<GitTreeEntry<'_>> = Vec::with_capacity(items.capacity());
    for (name, oid) in sub_dirs {
        git_entries.push(GitTreeEntry {
            name,
            is_dir: true,
            oid,
        });
        items.push(TreeItem {
            name: name.to_string(),
            dir: Some(oid.clone()),
            file: None,
        });
    }
    for (name, f) in files {
        git_entries.push(GitTreeEntry {
            name,
            is_dir: false,
            oid: &f.oid,
        });
        items.push(TreeItem {
            name: name.to_string(),
            dir: None,
            file: Some((*f).clone()),
        });
    }
    let oid = api::git_tree_oid(&mut git_entries);
    let body =
        serde_json::to_string(&items).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    conn.prepare_cached("INSERT OR IGNORE INTO trees (oid, body) VALUES (?1, ?2)")?
        .execute(params![oid, body])?;
    Ok(oid)
}

#[allow(clippy::too_many_arguments)]
fn make_commit(
    conn: &Connection,
    repo: i64,
    tree: &str,
    parent: Option<&str>,
    title: &str,
    description: &str,
    author: &str,
    ms: i64,
) -> Result<String> {
    let message = if description.is_empty() {
        format!("{title}\n")
    } else {
        format!("{title}\n\n{description}\n")
    };
    let oid = api::git_commit_oid(tree, parent, author, ms / 1000, &message);
    conn.execute(
        "INSERT OR IGNORE INTO commits (repo, oid, parent, tree, title, message, author, ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![repo, oid, parent, tree, title, description, author, ms],
    )?;
    Ok(oid)
}

fn apply_op(
    conn: &Connection,
    repo: i64,
    files: &mut BTreeMap<String, FileEntry>,
    op: Op,
) -> Result<()> {
    match op {
        Op::Put { path, content } => {
            check_path(&path)?;
            if content.len() as u64 > api::LFS_THRESHOLD {
                return Err(StoreError::BadRequest(format!(
                    "`{path}` is {} bytes; files larger than 10 MiB must be uploaded with LFS",
                    content.len()
                )));
            }
            check_no_dir_conflict(files, &path)?;
            let oid = api::git_blob_oid(&content);
            // Cached: a commit of many files runs this statement once per file.
            conn.prepare_cached("INSERT OR IGNORE INTO blobs (oid, data) VALUES (?1, ?2)")?
                .execute(params![oid, content])?;
            files.insert(
                path,
                FileEntry {
                    oid,
                    size: content.len() as u64,
                    lfs: None,
                },
            );
        }
        Op::PutLfs { path, sha256, size } => {
            check_path(&path)?;
            if sha256.len() != 64 || !is_hex(&sha256) {
                return Err(StoreError::BadRequest(format!(
                    "`{sha256}` is not a sha256 oid"
                )));
            }
            let stored: Option<i64> = conn
                .query_row(
                    "SELECT size FROM lfs_objects WHERE repo = ?1 AND sha256 = ?2",
                    params![repo, sha256],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(stored) = stored.map(|s| s as u64) else {
                return Err(StoreError::LfsObjectMissing(sha256));
            };
            if let Some(size) = size
                && size != stored
            {
                return Err(StoreError::BadRequest(format!(
                    "LFS object {sha256} has size {stored}, not {size}"
                )));
            }
            check_no_dir_conflict(files, &path)?;
            let oid = api::lfs_git_oid(&sha256, stored);
            files.insert(
                path,
                FileEntry {
                    oid,
                    size: stored,
                    lfs: Some(sha256),
                },
            );
        }
        Op::DeleteFile { path } => {
            let path = delete_path(&path)?;
            if files.remove(&path).is_none() && !remove_folder(files, &path) {
                return Err(StoreError::EntryNotFound(format!(
                    "A file with this name doesn't exist: {path}"
                )));
            }
        }
        Op::DeleteFolder { path } => {
            let path = delete_path(&path)?;
            if !remove_folder(files, &path) {
                return Err(StoreError::EntryNotFound(format!(
                    "A folder with this name doesn't exist: {path}"
                )));
            }
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<()> {
    api::validate_repo_path(path).map_err(|e| StoreError::InvalidPath(format!("invalid path: {e}")))
}

/// The path of a delete operation, whose trailing `/` is optional, checked like any other: a
/// delete must not reach outside the repo, into `.git`, or name the whole repo (`""`, `/`).
fn delete_path(path: &str) -> Result<String> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    check_path(trimmed)?;
    Ok(trimmed.to_string())
}

/// A file cannot take the place of a folder or sit below a file.
fn check_no_dir_conflict(files: &BTreeMap<String, FileEntry>, path: &str) -> Result<()> {
    let as_dir = format!("{path}/");
    if files
        .range(as_dir.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&as_dir))
    {
        return Err(StoreError::BadRequest(format!(
            "`{path}` is a folder in this repo"
        )));
    }
    let mut prefix = path;
    while let Some((parent, _)) = prefix.rsplit_once('/') {
        if files.contains_key(parent) {
            return Err(StoreError::BadRequest(format!(
                "`{parent}` is a file in this repo, not a folder"
            )));
        }
        prefix = parent;
    }
    Ok(())
}

fn remove_folder(files: &mut BTreeMap<String, FileEntry>, path: &str) -> bool {
    let prefix = format!("{path}/");
    let doomed: Vec<String> = files
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &doomed {
        files.remove(k);
    }
    !doomed.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn commit(
        s: &Store,
        repo: &Repo,
        parent: Option<String>,
        ops: Vec<Op>,
    ) -> Result<CommitOutcome> {
        s.commit(
            repo,
            CommitRequest {
                revision: "main".into(),
                create_pr: false,
                parent,
                summary: "s".into(),
                description: String::new(),
                author: "alice".into(),
                ops,
            },
        )
    }

    #[test]
    fn create_commit_resolve_and_history() {
        let (_d, s) = store();
        let repo = s
            .create_repo(RepoType::Model, "alice", "r", false, None)
            .unwrap();
        let head = s.resolve(&repo, "main").unwrap().commit;
        assert_eq!(head.title, "initial commit");
        let out = commit(
            &s,
            &repo,
            Some(head.oid.clone()),
            vec![Op::Put {
                path: "a/b.txt".into(),
                content: b"hello\n".to_vec(),
            }],
        )
        .unwrap();
        let resolved = s.resolve(&repo, &out.oid[..7]).unwrap().commit;
        assert_eq!(resolved.oid, out.oid);
        let tree = s.flat_tree(&resolved.tree).unwrap();
        assert_eq!(
            tree.files["a/b.txt"].oid,
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert!(tree.dirs.contains_key("a"));
        let (page, total) = s.history(&repo, &out.oid, 0, 10).unwrap();
        assert_eq!(total, 2);
        assert_eq!(page[0].oid, out.oid);
        // A stale parent is refused and changes nothing.
        let err = commit(
            &s,
            &repo,
            Some(head.oid.clone()),
            vec![Op::DeleteFile {
                path: "a/b.txt".into(),
            }],
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::ParentMismatch));
        assert_eq!(s.resolve(&repo, "main").unwrap().commit.oid, out.oid);
    }

    #[test]
    fn incremental_trees_match_full_trees() {
        // A commit rewrites only the folders it touches; the result must be the tree a full
        // rewrite gives, whether the parent came from the cache or from the database.
        let dir = tempfile::tempdir().unwrap();
        let put = |path: &str, content: &str| Op::Put {
            path: path.into(),
            content: content.as_bytes().to_vec(),
        };
        let steps: Vec<Vec<Op>> = vec![
            vec![
                put("a/b/c.txt", "1"),
                put("a/d.txt", "2"),
                put("e/f.txt", "3"),
                put("g.txt", "4"),
            ],
            vec![put("a/b/c.txt", "1b"), put("x/y/z.txt", "5")],
            vec![
                Op::DeleteFile {
                    path: "a/d.txt".into(),
                },
                put("e/f2.txt", "6"),
            ],
            vec![Op::DeleteFolder { path: "a/b".into() }],
            vec![
                Op::DeleteFolder { path: "x".into() },
                put("a/b/c.txt", "again"),
            ],
            vec![],
        ];
        for reopen_each_time in [false, true] {
            let sub = dir.path().join(format!("reopen-{reopen_each_time}"));
            let mut s = Store::open(&sub).unwrap();
            let repo = s
                .create_repo(RepoType::Model, "alice", "t", false, None)
                .unwrap();
            for ops in steps.iter() {
                if reopen_each_time {
                    s = Store::open(&sub).unwrap();
                }
                let ops = ops
                    .iter()
                    .map(|op| match op {
                        Op::Put { path, content } => Op::Put {
                            path: path.clone(),
                            content: content.clone(),
                        },
                        Op::DeleteFile { path } => Op::DeleteFile { path: path.clone() },
                        Op::DeleteFolder { path } => Op::DeleteFolder { path: path.clone() },
                        Op::PutLfs { .. } => unreachable!(),
                    })
                    .collect();
                commit(&s, &repo, None, ops).unwrap();
                let head = s.resolve(&repo, "main").unwrap().commit;
                let conn = s.conn();
                let mut fresh = FlatTree::default();
                load_tree(&conn, &head.tree, "", &mut fresh).unwrap();
                let full = write_tree(&conn, &fresh.files).unwrap();
                assert_eq!(
                    head.tree,
                    full,
                    "step {ops_len}",
                    ops_len = fresh.files.len()
                );
                drop(conn);
                let cached = s.flat_tree(&head.tree).unwrap();
                assert_eq!(cached.files.len(), fresh.files.len());
                assert_eq!(cached.dirs, fresh.dirs);
            }
        }
    }

    #[test]
    fn failed_commit_changes_nothing() {
        let (_d, s) = store();
        let repo = s
            .create_repo(RepoType::Dataset, "alice", "d", true, None)
            .unwrap();
        let before = s.resolve(&repo, "main").unwrap().commit.oid;
        let err = commit(
            &s,
            &repo,
            None,
            vec![
                Op::Put {
                    path: "ok.txt".into(),
                    content: b"x".to_vec(),
                },
                Op::PutLfs {
                    path: "w.bin".into(),
                    sha256: "a".repeat(64),
                    size: Some(3),
                },
            ],
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::LfsObjectMissing(_)));
        assert_eq!(s.resolve(&repo, "main").unwrap().commit.oid, before);
        let err = commit(
            &s,
            &repo,
            None,
            vec![Op::Put {
                path: "../x".into(),
                content: vec![],
            }],
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::InvalidPath(_)));
    }

    #[test]
    fn delete_paths_stay_inside_the_repo() {
        let (_d, s) = store();
        let repo = s
            .create_repo(RepoType::Model, "alice", "r", false, None)
            .unwrap();
        let before = s.resolve(&repo, "main").unwrap().commit.oid;
        for bad in [
            "", "/", "..", "a/../b", "/etc", ".git/", "a\\b", "a//", "./",
        ] {
            for op in [
                Op::DeleteFile { path: bad.into() },
                Op::DeleteFolder { path: bad.into() },
            ] {
                let err = commit(&s, &repo, None, vec![op]).unwrap_err();
                assert!(matches!(err, StoreError::InvalidPath(_)), "{bad}: {err}");
            }
        }
        assert_eq!(s.resolve(&repo, "main").unwrap().commit.oid, before);
        // A trailing `/` is still optional.
        commit(
            &s,
            &repo,
            None,
            vec![Op::Put {
                path: "d/x".into(),
                content: b"1".to_vec(),
            }],
        )
        .unwrap();
        commit(
            &s,
            &repo,
            None,
            vec![Op::DeleteFolder { path: "d/".into() }],
        )
        .unwrap();
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let oid = {
            let s = Store::open(dir.path()).unwrap();
            let repo = s
                .create_repo(RepoType::Model, "alice", "p", false, None)
                .unwrap();
            commit(
                &s,
                &repo,
                None,
                vec![Op::Put {
                    path: "x".into(),
                    content: b"1".to_vec(),
                }],
            )
            .unwrap()
            .oid
        };
        let s = Store::open(dir.path()).unwrap();
        let repo = s.get_repo(RepoType::Model, "alice", "p").unwrap();
        assert_eq!(s.resolve(&repo, "main").unwrap().commit.oid, oid);
    }
}
