//! Shared helpers of the integration tests.
//!
//! [`TestHub`] runs the real `hubsync hub serve` binary on `127.0.0.1:0` over a temporary data
//! folder, with one user and known tokens, and kills it when dropped:
//!
//! ```ignore
//! let hub = TestHub::start();                 // alice (write + read token), org acme, page size 3
//! let client = hub.write_client();            // a HubClient with alice's write token
//! let url = hub.url();                        // http://127.0.0.1:PORT
//! ```
//!
//! Use [`TestHub::builder`] for other settings (page size, multipart chunk size, `--admin`,
//! extra arguments) and [`TestHub::restart`] to kill the server with SIGKILL and start it again
//! on the same data. With `--admin`, [`TestHub::requests`] reads the per-route request counters.
//!
//! [`TestContext`] runs the real `hubsync` binary in a temp workspace against a hub, with the
//! inherited environment cleared:
//!
//! ```ignore
//! let ctx = TestContext::new().with_hub(&hub);
//! ctx.write("hubsync.yaml", "version: 1\nrepos: []\n");
//! let out = ctx.hubsync(&["plan", "--format", "json"]);
//! ```

#![allow(dead_code)]

mod figures;
pub mod raw;
pub mod workspace;

pub use figures::record_figures;
pub use workspace::{Run, Workspace};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hubsync::client::{HubClient, RetryPolicy};
use hubsync::util::secret::Secret;

/// How long the server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of a [`TestHub`]; build with [`TestHub::builder`].
#[derive(Clone, Debug)]
pub struct TestHubBuilder {
    page_size: Option<usize>,
    multipart_chunk_size: Option<u64>,
    admin: bool,
    extra_args: Vec<String>,
}

impl TestHubBuilder {
    /// Entries per page of tree and commit listings (`--page-size`); `None` keeps the server
    /// default of 1000. Defaults to 3 so that tests cross page boundaries.
    pub fn page_size(mut self, page_size: Option<usize>) -> Self {
        self.page_size = page_size;
        self
    }

    /// `--multipart-chunk-size`: LFS objects larger than this go up in parts.
    pub fn multipart_chunk_size(mut self, bytes: u64) -> Self {
        self.multipart_chunk_size = Some(bytes);
        self
    }

    /// `--admin`: serve `GET /admin/stats`.
    pub fn admin(mut self) -> Self {
        self.admin = true;
        self
    }

    /// Any other argument of `hub serve`, appended as given.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    pub fn start(self) -> TestHub {
        let dir = tempfile::Builder::new()
            .prefix("hubsync-testhub-")
            .tempdir()
            .expect("create a temp dir for the test hub");
        let mut hub = TestHub {
            options: self,
            dir,
            child: None,
            url: String::new(),
        };
        hub.spawn();
        hub
    }
}

/// A running `hubsync hub serve` with a private data folder. Dropping it kills the server.
pub struct TestHub {
    options: TestHubBuilder,
    /// Holds `data/` (the hub's state) and `hub.log` (its stderr).
    dir: tempfile::TempDir,
    child: Option<Child>,
    url: String,
}

impl TestHub {
    /// The user the tokens belong to.
    pub const USER: &'static str = "alice";
    /// The organisation `alice` belongs to.
    pub const ORG: &'static str = "acme";
    /// `alice`'s write token.
    pub const WRITE_TOKEN: &'static str = "hf_test_write_alice_0123456789";
    /// `alice`'s read-only token.
    pub const READ_TOKEN: &'static str = "hf_test_read_alice_0123456789";

    /// A hub with the default options (page size 3).
    pub fn start() -> TestHub {
        TestHub::builder().start()
    }

    pub fn builder() -> TestHubBuilder {
        TestHubBuilder {
            page_size: Some(3),
            multipart_chunk_size: None,
            admin: false,
            extra_args: Vec::new(),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `--data` folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's stderr so far (useful in assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("hub.log")
    }

    /// `GET /admin/stats` (the hub must have been started with [`TestHubBuilder::admin`]).
    pub fn stats(&self) -> serde_json::Value {
        let r = raw::req("GET", "/admin/stats")
            .send(self.url())
            .unwrap_or_else(|e| panic!("GET /admin/stats: {e}; log:\n{}", self.log()));
        assert_eq!(r.status, 200, "GET /admin/stats: {}", r.everything());
        r.json()
    }

    /// A client with alice's write token and a fast retry policy.
    pub fn write_client(&self) -> HubClient {
        self.client(Some(TestHub::WRITE_TOKEN))
    }

    /// A client with alice's read-only token.
    pub fn read_client(&self) -> HubClient {
        self.client(Some(TestHub::READ_TOKEN))
    }

    /// A client without a token.
    pub fn anonymous_client(&self) -> HubClient {
        self.client(None)
    }

    /// A client with `token`, retrying quickly (10 ms steps) so failing tests stay fast.
    pub fn client(&self, token: Option<&str>) -> HubClient {
        HubClient::builder(self.url())
            .token(token.map(|t| Secret::new(t.to_string())))
            .retry_policy(fast_retries())
            .build()
            .expect("build a client for the test hub")
    }

    /// `GET /admin/stats` (needs `--admin`): requests served so far per route label (see
    /// `hubsync::hub::faults::route_of`). The stats request itself counts as one `other`.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        let stats = self.admin_stats();
        serde_json::from_value(stats["requests"].clone()).expect("`requests` is a map of counts")
    }

    /// Requests since an earlier [`requests`](Self::requests) reading, per route, leaving out
    /// this stats request and routes that saw nothing new.
    pub fn requests_since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let mut delta: BTreeMap<String, u64> = self
            .requests()
            .into_iter()
            .map(|(route, n)| {
                let seen = before.get(&route).copied().unwrap_or(0);
                (route, n - seen)
            })
            .collect();
        // The hub never counts its own `/admin/stats` requests.
        delta.retain(|_, n| *n > 0);
        delta
    }

    /// The whole `GET /admin/stats` document. Plain HTTP/1.1 over a socket, so reading the
    /// counters does not depend on the client under test.
    pub fn admin_stats(&self) -> serde_json::Value {
        let addr = self.url.strip_prefix("http://").expect("an http:// hub");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the test hub");
        write!(
            stream,
            "GET /admin/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "GET /admin/stats (is the hub started with `.admin()`?): {head}"
        );
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats are not JSON ({e}): {body}"))
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same data folder (on a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let data = self.data_dir();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the test hub log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubsync"));
        cmd.args(["hub", "serve", "--data"])
            .arg(&data)
            .args(["--bind", "127.0.0.1:0"])
            .args(["--user", TestHub::USER])
            .args(["--token", TestHub::WRITE_TOKEN])
            .args(["--read-token", TestHub::READ_TOKEN])
            .args(["--org", TestHub::ORG]);
        if let Some(n) = self.options.page_size {
            cmd.args(["--page-size", &n.to_string()]);
        }
        if let Some(n) = self.options.multipart_chunk_size {
            cmd.args(["--multipart-chunk-size", &n.to_string()]);
        }
        if self.options.admin {
            cmd.arg("--admin");
        }
        cmd.args(&self.options.extra_args)
            .env_remove("HF_TOKEN")
            .env_remove("HF_ENDPOINT")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn `hubsync hub serve`");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Read the first line, then keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "`hub serve` printed nothing within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
        };
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`hub serve` did not print `listening on URL` first (got {line:?}); log:\n{}",
                self.log()
            );
        };
        self.url = url.trim_end_matches('/').to_string();
        self.child = Some(child);
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A retry policy for tests: the default's shape with millisecond waits.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(80),
        max_server_delay: Duration::from_secs(5),
    }
}

/// Reads a whole file, for byte-exact comparisons.
pub fn read(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut out))
        .unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()));
    out
}

/// A `hubsync` command run in `dir` against `hub`, with a clean environment: alice's write token
/// in `HF_TOKEN`, `HOME` in `dir`, no colours. Stdout and stderr are piped.
pub fn hubsync(hub_url: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubsync"));
    c.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("HF_ENDPOINT", hub_url)
        .env("HF_TOKEN", TestHub::WRITE_TOKEN)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Stdout then stderr of a finished command, as text (for assertion messages).
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `GET /admin/stats` of a hub started with `.admin()`: commit and upload counters and the
/// requests per route.
pub fn admin_stats(hub_url: &str) -> serde_json::Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{hub_url}/admin/stats"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /admin/stats (was the hub started with `.admin()`?)")
            .json()
            .await
            .expect("admin stats are JSON")
    })
}

/// The requests a hub counted, per route, leaving out the admin endpoint itself.
pub fn requests_by_route(stats: &serde_json::Value) -> std::collections::BTreeMap<String, u64> {
    stats["requests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "other")
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The sha256 of some bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every file under the hub's `lfs/` folder: `(name, sha256 of its content)`.
pub fn lfs_store(data_dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(data_dir.join("lfs"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, sha256_hex(&read(entry.path()))));
    }
    out.sort();
    out
}

/// A temp workspace to run the real `hubsync` binary in, with the inherited environment cleared:
/// only `HOME` and `HF_HOME` (inside the temp dir), `NO_COLOR=1`, and, with a hub, `HF_ENDPOINT`
/// and alice's `HF_TOKEN`.
pub struct TestContext {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl TestContext {
    pub fn new() -> TestContext {
        let dir = tempfile::Builder::new()
            .prefix("hubsync-test-")
            .tempdir()
            .expect("create a temp workspace");
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut env = BTreeMap::new();
        env.insert("HOME".to_string(), home.display().to_string());
        env.insert("HF_HOME".to_string(), home.join("hf").display().to_string());
        env.insert("NO_COLOR".to_string(), "1".to_string());
        TestContext { dir, env }
    }

    /// Points `HF_ENDPOINT` at `hub` and sets alice's write token as `HF_TOKEN`.
    pub fn with_hub(self, hub: &TestHub) -> TestContext {
        self.env("HF_ENDPOINT", hub.url())
            .env("HF_TOKEN", TestHub::WRITE_TOKEN)
    }

    /// Sets one more environment variable for the commands run.
    pub fn env(mut self, key: &str, value: &str) -> TestContext {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// The folder commands run in (where `hubsync.yaml` goes).
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Writes a file under [`work`](Self::work), creating folders.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Runs `hubsync ARGS` in [`work`](Self::work) and waits for it.
    pub fn hubsync(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_hubsync"))
            .args(args)
            .current_dir(self.work())
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .output()
            .expect("run hubsync")
    }
}

/// Asserts an exit code, showing the output when it differs.
#[track_caller]
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
