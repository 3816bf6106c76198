//! Helpers the benchmarks share (included with `#[path]`; not an example of its own): the
//! machine figures they compare with, peak RSS, and generated data.

#![allow(dead_code)] // each benchmark uses a subset

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// SHA-256 of `buf` in 1 MiB updates, on this thread, in bytes per second.
pub fn sha2_bytes_per_s(buf: &[u8]) -> f64 {
    let started = Instant::now();
    let mut h = Sha256::new();
    for chunk in buf.chunks(1 << 20) {
        h.update(chunk);
    }
    std::hint::black_box(h.finalize());
    buf.len() as f64 / started.elapsed().as_secs_f64()
}

/// Peak resident set size (`VmHWM`) of process `pid` (`"self"` for this one), in KiB.
pub fn vm_hwm_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set size of this process so far, in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    vm_hwm_kib("self")
}

/// `count` files of 1–8 KiB in 100 folders of `root` (`d{NN}/f{NNNNN}.txt`): lowercase letters
/// with `text`, else every byte value.
pub fn make_small_files(root: &Path, count: usize, text: bool) -> std::io::Result<()> {
    for i in 0..count {
        let dir = root.join(format!("d{:02}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&dir)?;
        }
        let len = 1024 + (i * 7919) % (7 * 1024);
        let content: Vec<u8> = if text {
            (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect()
        } else {
            (0..len).map(|j| (i + j) as u8).collect()
        };
        std::fs::write(dir.join(format!("f{i:05}.txt")), content)?;
    }
    Ok(())
}

/// `count` files `large-{i}.bin` of `bytes` each (whole MiB) in `root`, every 1 MiB block
/// distinct so that nothing could be deduplicated along the way. Returns the bytes written.
pub fn make_large_files(root: &Path, count: usize, bytes: usize) -> std::io::Result<u64> {
    std::fs::create_dir_all(root)?;
    let mut block: Vec<u8> = (0..1 << 20).map(|j: usize| (j * 31) as u8).collect();
    for i in 0..count {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(root.join(format!("large-{i}.bin")))?);
        for chunk in 0..bytes >> 20 {
            block[..8].copy_from_slice(&((i << 32) + chunk).to_le_bytes());
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    Ok((count * (bytes >> 20 << 20)) as u64)
}

pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
