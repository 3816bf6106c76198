//! Benchmark of `hubsync plan` against an embedded local hub: a cold plan (empty hash cache, every
//! file hashed) and a warm no-op plan (cache warm, nothing to do), set against the `sha2` crate's
//! single-core throughput measured in the same run.
//!
//! ```text
//! cargo run --release --example bench_plan
//! ```
//!
//! It starts `hubsync::hub::spawn` on 127.0.0.1:0 over a temp folder, writes 10,000 small files
//! (1–8 KiB in 100 folders) and one large file per core (128 MiB each), applies them once with
//! `hubsync::apply::apply`, then plans the unchanged folder: cold once (after deleting the hash
//! cache), then warm several times. For each plan it prints wall time, files/s, MB/s hashed, the
//! requests the hub served per route, and the peak RSS of that phase (`VmHWM`, reset before each
//! phase through `/proc/self/clear_refs`; the embedded hub shares the process, so this is an
//! upper bound). Target (issue 3): a warm no-op plan of 10,000 files under 0.5 s.

#[path = "common/mod.rs"]
mod common;

use common::{make_large_files, make_small_files, mb, peak_rss_kib, sha2_bytes_per_s};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hubsync::apply::{self, ApplyOptions};
use hubsync::hub::{self, HubConfig, Role, User};
use hubsync::local::{DEFAULT_RACY_WINDOW, HashCache, ScanOptions};
use hubsync::ops::{self, PlanOptions};
use hubsync::util::secret::Secret;

const SMALL_FILES: usize = 10_000;
const LARGE_FILE_BYTES: usize = 128 << 20;
const TOKEN: &str = "hf_bench_write_0123456789";
const WARM_RUNS: usize = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scratch = tempfile::tempdir()?;
    let work = scratch.path().join("work");
    let data = work.join("data");

    let started = Instant::now();
    make_small_files(&data.join("small"), SMALL_FILES, true)?;
    let large_count = cores.max(2);
    make_large_files(&data.join("large"), large_count, LARGE_FILE_BYTES)?;
    let total_bytes = dir_bytes(&data)?;
    let total_files = SMALL_FILES + large_count;
    println!(
        "cores: {cores}; generated {SMALL_FILES} small + {large_count} large files ({}) in {:.2} s",
        mb(total_bytes),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(
        work.join("hubsync.yaml"),
        "version: 1\nrepos:\n  - id: alice/bench\n    files:\n      - local: ./data\n        prune: true\n",
    )?;

    let mut config = HubConfig::new(scratch.path().join("hub"));
    config.users = vec![User {
        name: "alice".into(),
        orgs: Vec::new(),
        tokens: vec![(Secret::new(TOKEN.to_string()), Role::Write)],
    }];
    let hub = hub::spawn(config, "127.0.0.1:0").await?;
    let opts = PlanOptions {
        manifest: work.join("hubsync.yaml"),
        repos: Vec::new(),
        endpoint: Some(hub.url()),
        token: Some(TOKEN.to_string()),
        diffs: false,
    };

    // Seed: plan and apply everything once.
    let started = Instant::now();
    let planned = ops::plan(&opts, |_| {}).await?;
    let plan_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = apply::apply(
        &planned.client,
        &planned.plan,
        &planned.secrets,
        &ApplyOptions::default(),
        &|_| {},
    )
    .await;
    if !report.ok() {
        return Err(format!("the seeding apply failed: {report:?}").into());
    }
    println!(
        "seed: planned {} actions in {plan_s:.2} s, applied {} commits ({} uploaded) in {:.2} s",
        planned.plan.repos[0].actions.len(),
        report.commits(),
        mb(report.bytes_uploaded()),
        started.elapsed().as_secs_f64()
    );
    // Files changed within the racy window of their hashing are not cached; wait it out so the
    // cold plan fills the cache the warm plans use.
    tokio::time::sleep(DEFAULT_RACY_WINDOW + Duration::from_millis(100)).await;

    // Cold: no hash cache.
    let cache = ops::cache_path(&planned.manifest);
    std::fs::remove_file(&cache)?;
    let cold = measure("cold", &hub, &opts, total_files).await?;

    // Warm: the cache is full; the best of a few runs (the machine may be shared).
    let mut warm = Vec::new();
    for run in 0..WARM_RUNS {
        warm.push(measure(&format!("warm #{}", run + 1), &hub, &opts, total_files).await?);
    }
    let best = warm.iter().map(|m| m.wall).min().unwrap_or_default();
    let median = {
        let mut w: Vec<Duration> = warm.iter().map(|m| m.wall).collect();
        w.sort();
        w[w.len() / 2]
    };

    std::fs::remove_file(&cache)?;
    breakdown("cold", &opts, &planned.client).await?;
    breakdown("warm", &opts, &planned.client).await?;

    // Reference: sha2 on one core, best of three over a 256 MiB buffer.
    let reference: Vec<u8> = (0..256usize << 20).map(|j| (j * 131) as u8).collect();
    let single = (0..3)
        .map(|_| sha2_bytes_per_s(&reference))
        .fold(0f64, f64::max);

    println!();
    println!("summary ({total_files} files, {}):", mb(total_bytes));
    println!(
        "  cold plan: {:.2} s, {:.0} files/s, {:.0} MB/s hashed; sha2 single core {:.0} MB/s x {cores} = {:.0} MB/s ({:.0}%)",
        cold.wall.as_secs_f64(),
        total_files as f64 / cold.wall.as_secs_f64(),
        cold.bytes_hashed as f64 / 1e6 / cold.wall.as_secs_f64(),
        single / 1e6,
        single * cores as f64 / 1e6,
        100.0 * (cold.bytes_hashed as f64 / cold.wall.as_secs_f64()) / (single * cores as f64),
    );
    println!(
        "  warm no-op plan: best {:.3} s, median {:.3} s ({:.0} files/s) (target < 0.5 s)",
        best.as_secs_f64(),
        median.as_secs_f64(),
        total_files as f64 / best.as_secs_f64()
    );
    println!("  requests per plan: {}", routes(&warm[0].requests));
    hub.stop().await?;
    Ok(())
}

/// Where a plan's time goes: the stages of `ops::plan`, run one by one.
async fn breakdown(
    label: &str,
    opts: &PlanOptions,
    client: &hubsync::client::HubClient,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let hub = ops::HubSettings::resolve(
        opts.endpoint.as_deref(),
        opts.token.as_deref(),
        None,
        &|_| None,
    );
    let _client = hub.client()?;
    let client_build = t.elapsed();
    let t = Instant::now();
    let m = ops::load_manifest(&opts.manifest, &[])?;
    let manifest = t.elapsed();
    let t = Instant::now();
    let mut cache = HashCache::load(ops::cache_path(&m));
    let load = t.elapsed();
    let t = Instant::now();
    let scan = hubsync::local::scan(
        &ops::scan_specs(&m),
        &mut cache,
        &ScanOptions::default(),
        |_| {},
    )
    .await?
    .into_complete()?;
    let scanned = t.elapsed();
    let hashed = format!(
        "{} files, {} hashed at {:.0} MB/s",
        scan.stats.files_hashed,
        mb(scan.stats.bytes_hashed),
        scan.stats.bytes_hashed as f64 / 1e6 / scanned.as_secs_f64()
    );
    let t = Instant::now();
    let wrote = cache.save()?;
    let save = t.elapsed();
    let t = Instant::now();
    let desired = ops::desired(&m, &scan)?;
    let desire = t.elapsed();
    let t = Instant::now();
    let remote = hubsync::remote::snapshot_all(client, &ops::targets(&m)).await?;
    let remote_s = t.elapsed();
    let t = Instant::now();
    let plan = hubsync::plan::compute(&desired, &remote)?;
    let compute = t.elapsed();
    assert!(!plan.has_changes());
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "{label} stages: client {}, manifest {}, cache load {}, scan {} ({} hits; {hashed}), cache save {} (wrote: {wrote}), \
         desired {}, remote snapshot {}, compute {}",
        ms(client_build),
        ms(manifest),
        ms(load),
        ms(scanned),
        scan.stats.cache_hits,
        ms(save),
        ms(desire),
        ms(remote_s),
        ms(compute),
    );
    Ok(())
}

/// One plan's figures.
struct Measured {
    wall: Duration,
    bytes_hashed: u64,
    requests: BTreeMap<String, u64>,
}

async fn measure(
    label: &str,
    hub: &hub::RunningHub,
    opts: &PlanOptions,
    total_files: usize,
) -> Result<Measured, Box<dyn std::error::Error>> {
    reset_peak_rss();
    let before = hub.traffic().requests;
    let started = Instant::now();
    let planned = ops::plan(opts, |_| {}).await?;
    let wall = started.elapsed();
    let requests = delta(&hub.traffic().requests, &before);
    if planned.plan.has_changes() {
        return Err(format!("{label}: expected a no-op plan, got {:#?}", planned.plan).into());
    }
    let s = &planned.scan;
    println!(
        "{label} plan: {:.3} s; {} files ({} cache hits), {:.0} files/s; hashed {} files, {} at \
         {:.0} MB/s; requests: {}; peak RSS {}",
        wall.as_secs_f64(),
        s.files,
        s.cache_hits,
        total_files as f64 / wall.as_secs_f64(),
        s.files_hashed,
        mb(s.bytes_hashed),
        s.bytes_hashed as f64 / 1e6 / wall.as_secs_f64(),
        routes(&requests),
        peak_rss_kib()
            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "unavailable".into()),
    );
    Ok(Measured {
        wall,
        bytes_hashed: s.bytes_hashed,
        requests,
    })
}

fn delta(now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn routes(requests: &BTreeMap<String, u64>) -> String {
    let total: u64 = requests.values().sum();
    let each: Vec<String> = requests.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("{total} ({})", each.join(", "))
}

fn dir_bytes(root: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Resets `VmHWM` to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`); best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
