//! Page-cache hints for the large files the hub writes (LFS uploads): start writing received
//! bytes to disk early, and drop bytes from the page cache once they are on disk and hashed.
//!
//! Dropping behind matters more than it looks. An upload of N bytes otherwise takes N bytes of
//! fresh page cache; on a virtual machine whose free memory is handed back to its host (free
//! page reporting, as on the 2-core CI machine), touching fresh pages costs more than the disk
//! write itself: 2 GB written and fsynced took 4.4–5.1 s, and 0.8–1.0 s when each 32 MiB window
//! was dropped once written, so that the next windows reuse its pages. The object stays readable
//! (from disk). All of this is advice: durability still comes from `sync_data`/`sync_all`, and
//! on other systems these are no-ops.

use std::fs::File;

/// Asks the kernel to start writing `len` bytes of `f` from `from` to disk, without waiting.
/// Nothing when `len` is 0.
pub fn start(f: &File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    if len > 0 {
        sync_range(f, from, len, libc::SYNC_FILE_RANGE_WRITE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, from, len);
}

/// Waits until `len` bytes of `f` from `from` are on disk, then drops them from the page cache.
/// Only for bytes nobody reads soon (already hashed). Nothing when `len` is 0.
pub fn drop_behind(f: &File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    if len > 0 {
        sync_range(
            f,
            from,
            len,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        );
        forget(f, from, len);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, from, len);
}

/// Drops `len` bytes of `f` from `from` (0: to the end) from the page cache, as far as they are
/// on disk already (dirty pages stay).
pub fn forget(f: &File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `f` is an open file for the duration of the call; the call only reads its
        // arguments.
        let _ = unsafe {
            libc::posix_fadvise(
                f.as_raw_fd(),
                from as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, from, len);
}

#[cfg(target_os = "linux")]
fn sync_range(f: &File, from: u64, len: u64, flags: libc::c_uint) {
    use std::os::fd::AsRawFd;
    // SAFETY: as in `forget`.
    let _ = unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            flags,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn hints_never_change_the_bytes() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 249) as u8).collect();
        f.write_all(&data[..1 << 20]).unwrap();
        start(&f, 0, 1 << 20);
        f.write_all(&data[1 << 20..]).unwrap();
        drop_behind(&f, 0, 1 << 20);
        start(&f, 1 << 20, 0);
        drop_behind(&f, 1 << 20, 0);
        f.sync_data().unwrap();
        forget(&f, 0, 0);
        let mut back = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut back).unwrap();
        assert!(back == data, "the file changed under the page-cache hints");
    }
}
