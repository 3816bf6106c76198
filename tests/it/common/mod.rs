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
//! on the same data.

#![allow(dead_code)]

pub mod raw;

use std::io::{BufRead, BufReader, Read};
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
