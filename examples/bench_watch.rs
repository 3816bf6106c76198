//! Benchmark of `hubsync watch` (issue 5): the latency from a checkpoint's marker to its commit
//! on the Hub, for a 100 MB checkpoint, and the CPU used while idle-watching 10,000 files.
//!
//! ```text
//! cargo run --release --example bench_watch                  # debounce 1 s
//! cargo run --release --example bench_watch -- 5000          # debounce in ms
//! ```
//!
//! Everything runs in this process: a local Hub (`hub::spawn`) on 127.0.0.1 over a temp folder,
//! and `watch::run_until` over a temp run folder holding 10,000 small files. After the first
//! reconcile has pushed them, the process's CPU time is sampled over an idle window (target:
//! near zero — watch arms no timer and scans nothing while nothing changes). Then a fake
//! trainer writes `checkpoint-1/` (100 MB of weights, a config, and the marker last), and the
//! time from the marker to the `round` event that committed it is reported, with the debounce
//! window it includes.
//!
//! Measured on the project's 2-core machine (release build, local Hub in the same process):
//! idle CPU 0.00–0.10 % of one core over 10 s with no events; a 100 MB checkpoint reached the Hub
//! 0.8–0.9 s after its marker beyond the debounce window (1.87 s with `1000`, 5.79 s with
//! `5000`).

use std::path::Path;
use std::time::{Duration, Instant};

use hubsync::hub::{self, HubConfig, Role, User};
use hubsync::util::secret::Secret;
use hubsync::watch::{self, WatchEvent, WatchOptions};
use tokio::sync::mpsc;

const TOKEN: &str = "hf_bench_write_0123456789";
const SMALL_FILES: usize = 10_000;
const CHECKPOINT_BYTES: usize = 100 * 1000 * 1000;
const IDLE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `HUBSYNC_LOG=hubsync=debug` shows what watch does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUBSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let debounce = Duration::from_millis(
        std::env::args()
            .nth(1)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(1000),
    );
    let scratch = tempfile::tempdir()?;
    let mut config = HubConfig::new(scratch.path().join("hub"));
    config.users = vec![User {
        name: "alice".into(),
        orgs: Vec::new(),
        tokens: vec![(Secret::new(TOKEN.to_string()), Role::Write)],
    }];
    let hub = hub::spawn(config, "127.0.0.1:0").await?;

    let ws = scratch.path().join("ws");
    let run = ws.join("run");
    let started = Instant::now();
    for i in 0..SMALL_FILES {
        let dir = run.join(format!("logs/{:03}", i / 100));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{i}.txt")), format!("line {i}\n"))?;
    }
    std::fs::write(
        ws.join("hubsync.yaml"),
        "version: 1\nrepos:\n  - id: alice/bench\n    files:\n      - local: ./run\n        ready_marker: trainer_state.json\n        keep_last: { pattern: \"checkpoint-*\", count: 2 }\n",
    )?;
    println!(
        "generated {SMALL_FILES} files in {:.2} s; debounce {} ms",
        started.elapsed().as_secs_f64(),
        debounce.as_millis()
    );

    let opts = WatchOptions {
        endpoint: Some(hub.url()),
        token: Some(TOKEN.to_string()),
        debounce,
        ..WatchOptions::new(ws.join("hubsync.yaml"))
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, WatchEvent)>();
    let emit = move |e: &WatchEvent| {
        let _ = tx.send((Instant::now(), e.clone()));
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = watch::run_until(&opts, &emit, async {
        let _ = stop_rx.await;
    });

    let driver = async move {
        // 1. The first reconcile: wait for a round after which nothing is pending (a follow-up
        // round that finds nothing to do is silent, hence the timeout).
        let t0 = Instant::now();
        let mut commits = 0;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5) + debounce, rx.recv()).await;
            let Ok(next) = next else {
                if commits > 0 {
                    break;
                }
                continue;
            };
            match next {
                Some((
                    _,
                    WatchEvent::Round {
                        repos,
                        next_push_ms,
                        ..
                    },
                )) => {
                    commits += repos.iter().map(|r| r.commits.len()).sum::<usize>();
                    if next_push_ms.is_none() {
                        break;
                    }
                }
                Some((_, WatchEvent::Error { message, .. })) => eprintln!("error: {message}"),
                Some(_) => {}
                None => return Err("watch ended early".to_string()),
            }
        }
        // Let the hash cache's racy window pass, so idle means idle.
        tokio::time::sleep(Duration::from_secs(3)).await;
        while let Ok(e) = rx.try_recv() {
            println!("  (late event: {e:?})");
        }
        println!(
            "first reconcile of {SMALL_FILES} files: {commits} commit(s), settled after {:.2} s",
            t0.elapsed().as_secs_f64()
        );

        // 2. Idle CPU.
        let cpu0 = cpu_time();
        let idle_start = Instant::now();
        let mut idle_events = 0;
        while idle_start.elapsed() < IDLE {
            if let Ok(Some((_, e))) =
                tokio::time::timeout(IDLE - idle_start.elapsed(), rx.recv()).await
            {
                println!("  (event while idle: {e:?})");
                idle_events += 1;
            }
        }
        let wall = idle_start.elapsed();
        match (cpu0, cpu_time()) {
            (Some(a), Some(b)) => println!(
                "idle watching {SMALL_FILES} files: {:.3} s CPU in {:.1} s ({:.2}% of one core), {idle_events} event(s)",
                (b - a).as_secs_f64(),
                wall.as_secs_f64(),
                100.0 * (b - a).as_secs_f64() / wall.as_secs_f64()
            ),
            _ => println!("idle CPU: not measurable here (no /proc/self/stat)"),
        }

        // 3. A 100 MB checkpoint: marker → commit.
        let ckpt = run.join("checkpoint-1");
        let write_started = Instant::now();
        let dir = ckpt.clone();
        tokio::task::spawn_blocking(move || write_checkpoint(&dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let written = write_started.elapsed();
        let marker_at = Instant::now();
        std::fs::write(ckpt.join("trainer_state.json"), "{\"global_step\": 1}\n")
            .map_err(|e| e.to_string())?;
        loop {
            match rx.recv().await {
                Some((at, WatchEvent::Round { bytes, repos, .. })) if bytes > 0 => {
                    let latency = at - marker_at;
                    println!(
                        "checkpoint of {} MB (written in {:.2} s): marker → commit {} in {:.2} s ({:.2} s beyond the {:.1} s debounce)",
                        bytes / 1_000_000,
                        written.as_secs_f64(),
                        repos
                            .first()
                            .and_then(|r| r.commits.first())
                            .map_or("?", |c| &c[..7]),
                        latency.as_secs_f64(),
                        latency.saturating_sub(debounce).as_secs_f64(),
                        debounce.as_secs_f64()
                    );
                    break;
                }
                Some(_) => {}
                None => return Err("watch ended early".to_string()),
            }
        }
        let _ = stop_tx.send(());
        Ok(())
    };
    let (exit, driven) = tokio::join!(watcher, driver);
    driven?;
    println!("watch exited: {:?}", exit?);
    hub.stop().await?;
    Ok(())
}

/// A checkpoint folder without its marker: 100 MB of weights and a config.
fn write_checkpoint(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), "{\"hidden\": 768}\n")?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("weights.bin"))?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = CHECKPOINT_BYTES;
    while left > 0 {
        for word in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n])?;
        left -= n;
    }
    f.flush()
}

/// User + system CPU time of this process, from `/proc/self/stat` (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Some(Duration::from_millis(ticks * 1000 / hz))
}
