//! In-order hashing of multipart LFS uploads while their parts arrive. The parts of one object are
//! written into one file, in any order and in parallel; SHA-256 is sequential, so a background
//! task hashes the file in order, following the bytes written so far: within the next part as
//! it is written, then on into the parts already complete. Completing the upload then only waits
//! for the last few bytes to be hashed, instead of reading the whole object again. Knows nothing
//! of HTTP; when in doubt (a part sent twice, a read error, a restart) it says so and the caller
//! hashes the whole file.

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
    /// The next part number to hash (parts are numbered from 1) ...
    next: u64,
    /// ... and how many of its bytes are hashed already.
    next_hashed: u64,
    /// Parts whose writing began, and parts fully written.
    started: BTreeSet<u64>,
    received: BTreeSet<u64>,
    /// Bytes written so far (contiguous from its start) of each part being written.
    written: HashMap<u64, u64>,
    /// A background task is hashing.
    running: bool,
    /// Held by the upload's parts while writing into its file.
    writer: Arc<Mutex<()>>,
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

    /// The lock its parts hold while writing into `data`.
    pub fn writer(&self, data: &Path) -> Arc<Mutex<()>> {
        lock(&self.state(data)).writer.clone()
    }

    /// Part `n` of `data` is about to be written. Written a second time, the hash may have read
    /// either version, so it is given up (the completion hashes the file).
    pub fn part_started(&self, data: &Path, n: u64) {
        let state = self.state(data);
        let mut s = lock(&state);
        if !s.started.insert(n) {
            s.invalid = true;
        }
    }

    /// The first `bytes` of part `n` (of `chunk` bytes, the last one shorter) are written in
    /// `data`: hash what is now contiguous, in the background.
    pub fn part_written(&self, data: &Path, n: u64, bytes: u64, chunk: u64) {
        let state = self.state(data);
        let start = {
            let mut s = lock(&state);
            s.written.insert(n, bytes);
            s.next == n && s.start()
        };
        if start {
            spawn_hash(state, data, chunk);
        }
    }

    /// Part `n` is fully on disk in `data`. Call only after the part is fully written.
    pub fn part_received(&self, data: &Path, n: u64, chunk: u64) {
        let state = self.state(data);
        let start = {
            let mut s = lock(&state);
            s.written.remove(&n);
            if !s.received.insert(n) {
                // Written again: the hash may have read either version.
                s.invalid = true;
            }
            s.received.contains(&s.next) && s.start()
        };
        if start {
            spawn_hash(state, data, chunk);
        }
    }

    /// Part `n` of `data` failed (refused or cut off). When no other part of the upload began
    /// or arrived, the upload is forgotten and its file and folder removed, so that a failed
    /// first part leaves nothing behind; the locks held meanwhile keep another part from
    /// starting in between (it would write into a file about to be unlinked). Blocking.
    pub fn abandon(&self, data: &Path, n: u64) {
        let mut uploads = lock(&self.uploads);
        let Some(state) = uploads.get(data).cloned() else {
            return;
        };
        let s = lock(&state);
        if !s.received.is_empty() || s.started.iter().any(|&m| m != n) {
            return;
        }
        uploads.remove(data);
        let _ = std::fs::remove_file(data);
        if let Some(dir) = data.parent() {
            // Only when empty: nothing else of the upload is there.
            let _ = std::fs::remove_dir(dir);
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

impl State {
    /// Claims the hashing task when none runs and the hash is still trusted.
    fn start(&mut self) -> bool {
        let start = !self.running && !self.invalid;
        if start {
            self.running = true;
        }
        start
    }
}

/// Runs [`hash_ready`] on the blocking pool (the caller claimed the task with [`State::start`]).
fn spawn_hash(state: Arc<Mutex<State>>, data: &Path, chunk: u64) {
    let data = data.to_path_buf();
    tokio::task::spawn_blocking(move || hash_ready(&state, &data, chunk));
}

/// Hashes `data` in order as far as it is written, then clears `running`.
fn hash_ready(state: &Mutex<State>, data: &Path, chunk: u64) {
    let file = std::fs::File::open(data);
    loop {
        let (n, from, until, complete, mut hasher) = {
            let mut s = lock(state);
            let n = s.next;
            let complete = s.received.contains(&n);
            let until = if complete {
                chunk
            } else {
                s.written.get(&n).copied().unwrap_or(0)
            };
            if s.invalid || (!complete && until <= s.next_hashed) {
                s.running = false;
                return;
            }
            (
                n,
                s.next_hashed,
                until,
                complete,
                std::mem::take(&mut s.hasher),
            )
        };
        let read = match &file {
            Ok(f) => hash_range(f, (n - 1) * chunk + from, until - from, &mut hasher),
            Err(_) => Err(std::io::Error::other("cannot open the upload")),
        };
        if let (Ok(f), Ok(_), true) = (&file, &read, complete) {
            // A received part is on disk (synced before it was acknowledged) and now hashed:
            // nothing reads it again, so its pages can serve the parts still arriving.
            super::writeback::forget(f, (n - 1) * chunk + from, until - from);
        }
        let mut s = lock(state);
        s.hasher = hasher;
        match read {
            // A complete part may end early: it is the last, shorter one.
            Ok(_) if complete => {
                s.next = n + 1;
                s.next_hashed = 0;
            }
            Ok(got) if got == until - from => s.next_hashed = until,
            _ => s.invalid = true,
        }
    }
}

/// Feeds up to `len` bytes of `f` from `offset` to `hasher` (less at the end of the file), and
/// says how many it fed.
fn hash_range(
    f: &std::fs::File,
    offset: u64,
    len: u64,
    hasher: &mut Sha256,
) -> std::io::Result<u64> {
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
    Ok(done)
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

    /// [`Registry::finish`], on the blocking pool as the hub calls it.
    async fn finish(reg: &Arc<Registry>, data: &Path, chunk: u64, parts: u64) -> Option<String> {
        let (reg, data) = (reg.clone(), data.to_path_buf());
        tokio::task::spawn_blocking(move || reg.finish(&data, chunk, parts))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn parts_in_any_order_hash_to_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let chunk = 1000u64;
        let object: Vec<u8> = (0..4500u32).map(|i| (i * 7 % 251) as u8).collect();
        let reg = Arc::new(Registry::default());
        for n in [3u64, 1, 5, 2, 4] {
            let start = ((n - 1) * chunk) as usize;
            let end = (start + chunk as usize).min(object.len());
            reg.part_started(&data, n);
            // Part 1 arrives in pieces, hashed as they are written.
            if n == 1 {
                write_part(&data, 1, chunk, &object[..300]);
                reg.part_written(&data, 1, 300, chunk);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                write_part(&data, 1, chunk, &object[..700]);
                reg.part_written(&data, 1, 700, chunk);
            }
            write_part(&data, n, chunk, &object[start..end]);
            reg.part_received(&data, n, chunk);
        }
        let want = hex::encode(Sha256::digest(&object));
        assert_eq!(finish(&reg, &data, chunk, 5).await, Some(want.clone()));
        assert_eq!(hash_file(&data).unwrap(), (want, 4500));
    }

    #[test]
    fn a_failed_part_removes_the_upload_only_when_it_was_alone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("upload").join("data");
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        let reg = Registry::default();
        // The only part, cut off: nothing is left.
        reg.part_started(&data, 1);
        write_part(&data, 1, 10, b"01234");
        reg.abandon(&data, 1);
        assert!(!data.parent().unwrap().exists());
        // Another part is being written: its bytes stay.
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        reg.part_started(&data, 1);
        reg.part_started(&data, 2);
        write_part(&data, 2, 10, b"abc");
        write_part(&data, 1, 10, b"01");
        reg.abandon(&data, 1);
        assert_eq!(std::fs::read(&data).unwrap()[10..], *b"abc");
        // A part already received: its bytes stay too.
        let other = dir.path().join("other").join("data");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        write_part(&other, 2, 10, b"xyz");
        reg.part_received(&other, 2, 10);
        reg.part_started(&other, 1);
        reg.abandon(&other, 1);
        assert!(other.exists());
    }

    #[tokio::test]
    async fn a_part_sent_twice_or_missing_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let reg = Arc::new(Registry::default());
        write_part(&data, 1, 10, b"0123456789");
        reg.part_received(&data, 1, 10);
        reg.part_received(&data, 1, 10);
        write_part(&data, 2, 10, b"abc");
        reg.part_received(&data, 2, 10);
        assert_eq!(finish(&reg, &data, 10, 2).await, None);
        // A part started again after some of it was hashed: its bytes may differ now.
        let data2 = dir.path().join("data2");
        write_part(&data2, 1, 10, b"01234");
        reg.part_started(&data2, 1);
        reg.part_written(&data2, 1, 5, 10);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        reg.part_started(&data2, 1);
        write_part(&data2, 1, 10, b"0123456789");
        reg.part_received(&data2, 1, 10);
        assert_eq!(finish(&reg, &data2, 10, 1).await, None);
        // Unknown upload (e.g. after a restart): the caller hashes the file.
        assert_eq!(finish(&reg, &data, 10, 2).await, None);
    }
}
