//! In-order hashing of multipart LFS uploads while their parts arrive. The parts of one object are
//! written into one file, in any order and in parallel; SHA-256 is sequential, so a background
//! task hashes the file part by part as soon as the next part in order is on disk. Completing the
//! upload then only waits for the last few parts to be hashed, instead of reading the whole object
//! again. Knows nothing of HTTP; when in doubt (a part sent twice, a read error, a restart) it
//! says so and the caller hashes the whole file.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The hashing state of one upload.
#[derive(Default)]
struct State {
    hasher: Sha256,
    /// The next part number to hash (parts are numbered from 1).
    next: u64,
    received: BTreeSet<u64>,
    /// A background task is hashing.
    running: bool,
    /// The running hash cannot be trusted (a part was written twice, or a read failed).
    invalid: bool,
}

/// The uploads in flight, by the path of their data file.
#[derive(Default)]
pub struct Registry {
    uploads: Mutex<HashMap<PathBuf, Arc<Mutex<State>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    fn state(&self, data: &Path) -> Arc<Mutex<State>> {
        lock(&self.uploads)
            .entry(data.to_path_buf())
            .or_insert_with(|| {
                Arc::new(Mutex::new(State {
                    next: 1,
                    ..State::default()
                }))
            })
            .clone()
    }

    /// Part `n` (of `chunk` bytes, the last one shorter) is on disk in `data`: hash what is now
    /// contiguous, in the background. Call only after the part is fully written.
    pub fn part_received(&self, data: &Path, n: u64, chunk: u64) {
        let state = self.state(data);
        let start = {
            let mut s = lock(&state);
            if !s.received.insert(n) {
                // Written again: the hash may have read either version.
                s.invalid = true;
            }
            let start = !s.running && !s.invalid && s.received.contains(&s.next);
            if start {
                s.running = true;
            }
            start
        };
        if start {
            let data = data.to_path_buf();
            tokio::task::spawn_blocking(move || hash_ready(&state, &data, chunk));
        }
    }

    /// The SHA-256 of the whole object once all `parts` are received, or `None` when the running
    /// hash cannot be used (the caller then hashes the file). Forgets the upload. Blocking.
    pub fn finish(&self, data: &Path, chunk: u64, parts: u64) -> Option<String> {
        let state = lock(&self.uploads).remove(data)?;
        // Let a running task end (it stops at the last part), then hash what is left here.
        loop {
            let running = lock(&state).running;
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        {
            let mut s = lock(&state);
            if s.invalid || (1..=parts).any(|n| !s.received.contains(&n)) {
                return None;
            }
            s.running = true;
        }
        hash_ready(&state, data, chunk);
        let s = lock(&state);
        (!s.invalid && s.next == parts + 1).then(|| hex::encode(s.hasher.clone().finalize()))
    }
}

/// Hashes parts `next, next + 1, …` while they are received, then clears `running`.
fn hash_ready(state: &Mutex<State>, data: &Path, chunk: u64) {
    let file = std::fs::File::open(data);
    loop {
        let (n, mut hasher) = {
            let mut s = lock(state);
            if s.invalid || !s.received.contains(&s.next) {
                s.running = false;
                return;
            }
            (s.next, std::mem::take(&mut s.hasher))
        };
        let ok = match &file {
            Ok(f) => hash_range(f, (n - 1) * chunk, chunk, &mut hasher).is_ok(),
            Err(_) => false,
        };
        let mut s = lock(state);
        s.hasher = hasher;
        if ok {
            s.next = n + 1;
        } else {
            s.invalid = true;
        }
    }
}

/// Feeds up to `len` bytes of `f` from `offset` to `hasher` (less at the end of the file).
fn hash_range(
    f: &std::fs::File,
    offset: u64,
    len: u64,
    hasher: &mut Sha256,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = f.read_at(&mut buf[..want], offset + done)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// The SHA-256 and length of a whole file.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_part(data: &Path, n: u64, chunk: u64, bytes: &[u8]) {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(data)
            .unwrap();
        f.write_all_at(bytes, (n - 1) * chunk).unwrap();
    }

    #[tokio::test]
    async fn parts_in_any_order_hash_to_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let chunk = 1000u64;
        let object: Vec<u8> = (0..4500u32).map(|i| (i * 7 % 251) as u8).collect();
        let reg = Registry::default();
        for n in [3u64, 1, 5, 2, 4] {
            let start = ((n - 1) * chunk) as usize;
            let end = (start + chunk as usize).min(object.len());
            write_part(&data, n, chunk, &object[start..end]);
            reg.part_received(&data, n, chunk);
        }
        let want = hex::encode(Sha256::digest(&object));
        let got = tokio::task::spawn_blocking({
            let data = data.clone();
            move || reg.finish(&data, chunk, 5)
        })
        .await
        .unwrap();
        assert_eq!(got, Some(want.clone()));
        assert_eq!(hash_file(&data).unwrap(), (want, 4500));
    }

    #[tokio::test]
    async fn a_part_sent_twice_or_missing_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let reg = Registry::default();
        write_part(&data, 1, 10, b"0123456789");
        reg.part_received(&data, 1, 10);
        reg.part_received(&data, 1, 10);
        write_part(&data, 2, 10, b"abc");
        reg.part_received(&data, 2, 10);
        let d = data.clone();
        let reg = Arc::new(reg);
        let r = reg.clone();
        assert_eq!(
            tokio::task::spawn_blocking(move || r.finish(&d, 10, 2))
                .await
                .unwrap(),
            None
        );
        // Unknown upload (e.g. after a restart): the caller hashes the file.
        let r = reg.clone();
        assert_eq!(
            tokio::task::spawn_blocking(move || r.finish(&data, 10, 2))
                .await
                .unwrap(),
            None
        );
    }
}
