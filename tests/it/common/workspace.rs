//! A temporary workspace for running the real `hubsync` binary against a [`TestHub`]: a folder
//! for the manifest and the local files, and commands with an isolated environment (`HOME`,
//! `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`; nothing inherited but `PATH`; no colour).
//!
//! ```ignore
//! let hub = TestHub::builder().admin().start();
//! let ws = Workspace::new(&hub);
//! ws.write("model/config.json", b"{}");
//! ws.manifest("version: 1\nrepos:\n  - id: alice/m\n    files: [{local: ./model}]\n");
//! let out = ws.run(&["apply", "-y"]);
//! out.assert_code(0);
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::TestHub;

/// A temp folder with a manifest and local files, bound to one hub.
pub struct Workspace {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Workspace {
    pub fn new(hub: &TestHub) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("hubsync-ws-")
            .tempdir()
            .expect("create a workspace");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Workspace {
            dir,
            endpoint: hub.url().to_string(),
        }
    }

    /// Points later commands at another hub URL (after a restart, for example).
    pub fn set_endpoint(&mut self, url: &str) {
        self.endpoint = url.to_string();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the workspace.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file, creating its folders.
    pub fn write(&self, rel: &str, data: &[u8]) {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("write `{}`: {e}", path.display()));
    }

    /// Writes `hubsync.yaml`.
    pub fn manifest(&self, yaml: &str) {
        self.write("hubsync.yaml", yaml.as_bytes());
    }

    /// `hubsync ARGS` in the workspace, with the isolated environment; stdin is empty (not a
    /// terminal).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubsync"));
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.join("home"))
            .env("HF_HOME", self.join("home/hf"))
            .env("HF_ENDPOINT", &self.endpoint)
            .env("HF_TOKEN", TestHub::WRITE_TOKEN)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `hubsync ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self
            .cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("run hubsync {args:?}: {e}"));
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }
}

/// A finished `hubsync` run.
pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Panics with the whole transcript unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "hubsync {:?} exited {}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// The stdout lines parsed as JSON (for `--format json`).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
            })
            .collect()
    }
}

impl TestHub {
    /// `GET /admin/stats` (the hub must run with [`super::TestHubBuilder::admin`]), retried so
    /// that it works against a hub injecting faults (unlike [`TestHub::stats`]).
    pub fn stats_retried(&self) -> serde_json::Value {
        let addr = self.url().trim_start_matches("http://").to_string();
        let mut last = String::new();
        for _ in 0..50 {
            let answer = std::net::TcpStream::connect(&addr).and_then(|mut s| {
                write!(
                    s,
                    "GET /admin/stats HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                )?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                Ok(text)
            });
            match answer {
                Ok(text) => match text.split_once("\r\n\r\n") {
                    Some((head, body)) if head.contains(" 200 ") => {
                        return serde_json::from_str(body).expect("stats are JSON");
                    }
                    _ => last = text,
                },
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("GET /admin/stats kept failing; last answer: {last}")
    }

    /// One counter of the stats (`commits_created`, `lfs_objects_uploaded`, …).
    pub fn stat(&self, key: &str) -> u64 {
        self.stats_retried()[key].as_u64().unwrap_or(0)
    }

    /// Requests the hub received on one route (see `hub::faults` for the labels).
    pub fn route_requests(&self, route: &str) -> u64 {
        self.stats_retried()["requests"][route]
            .as_u64()
            .unwrap_or(0)
    }
}

/// Reading a repo back through the client, for assertions.
impl TestHub {
    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Commits of `rev`, newest first.
    pub fn commits(
        &self,
        t: hubsync::api::RepoType,
        id: &str,
        rev: &str,
    ) -> Vec<hubsync::api::CommitInfo> {
        let client = self.write_client();
        let id = hubsync::api::RepoId::parse(id).unwrap();
        self.block_on(client.list_commits(t, &id, rev))
            .unwrap_or_else(|e| panic!("list the commits of `{id}`: {e}"))
    }

    /// Files of `rev` (recursive), by path.
    pub fn files(
        &self,
        t: hubsync::api::RepoType,
        id: &str,
        rev: &str,
    ) -> std::collections::BTreeMap<String, hubsync::api::TreeEntry> {
        let client = self.write_client();
        let id = hubsync::api::RepoId::parse(id).unwrap();
        self.block_on(client.list_tree(t, &id, rev, None, true))
            .unwrap_or_else(|e| panic!("list the files of `{id}` at `{rev}`: {e}"))
            .into_iter()
            .filter(|e| e.kind == hubsync::api::EntryType::File)
            .map(|e| (e.path.clone(), e))
            .collect()
    }

    /// The content of `path` at `rev`.
    pub fn download(&self, t: hubsync::api::RepoType, id: &str, rev: &str, path: &str) -> Vec<u8> {
        let client = self.write_client();
        let id = hubsync::api::RepoId::parse(id).unwrap();
        self.block_on(async {
            client
                .download(t, &id, rev, path, None)
                .await?
                .bytes()
                .await
        })
        .unwrap_or_else(|e| panic!("download `{path}` of `{id}`: {e}"))
        .to_vec()
    }

    /// Whether the repo exists.
    pub fn exists(&self, t: hubsync::api::RepoType, id: &str) -> bool {
        let client = self.write_client();
        let id = hubsync::api::RepoId::parse(id).unwrap();
        self.block_on(client.try_repo_info(t, &id, None))
            .unwrap()
            .is_some()
    }
}

/// Reproducible, incompressible bytes (xorshift64*), seeded.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}
