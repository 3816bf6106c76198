//! Reading the user's files safely and fast: opening without ever blocking on a FIFO that took
//! a file's place, and streaming a file's bytes to the network (upload bodies in the client,
//! downloads in the local hub) without the extra copy a `tokio::fs::File` makes.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use futures::Stream;

/// Opens `path` for reading without blocking: a FIFO that took a file's place would otherwise
/// block the open until a writer came, forever in practice. Reads of regular files ignore the
/// flag. Blocking (it is an `open`).
pub fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// Opens the regular file at `path` for reading (see [`open_nonblocking`]); anything else, such
/// as a directory or a FIFO that took the file's place, is an `InvalidInput` error. Blocking.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let file = open_nonblocking(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is no longer a regular file",
        ));
    }
    Ok(file)
}

/// The whole regular file at `path` (see [`open_regular`]). Blocking.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// At most `len` bytes of `file` from where it stands, in chunks of up to `chunk` bytes read on
/// the blocking pool straight into the buffers that are sent (reading through a
/// `tokio::fs::File` copies every byte once more, from its own buffer: 11% of the client's CPU
/// on a 2 GB upload). Ends early at the end of the file.
pub fn file_chunks(
    file: File,
    len: u64,
    chunk: usize,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold((file, len), move |(file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = left.min(chunk as u64);
        let (file, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(want as usize);
            (&file).take(want).read_to_end(&mut buf)?;
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        if buf.is_empty() {
            return Ok(None);
        }
        let left = left - buf.len() as u64;
        Ok(Some((Bytes::from(buf), (file, left))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::{Seek, SeekFrom, Write};

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_a_files_place_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send((
                read_regular(&fifo).map_err(|e| e.kind()),
                read_regular(dir.path()).map_err(|e| e.kind()),
            ));
        });
        let (fifo, folder) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening a FIFO must not block");
        assert_eq!(fifo, Err(std::io::ErrorKind::InvalidInput));
        assert_eq!(folder, Err(std::io::ErrorKind::InvalidInput));
    }

    #[tokio::test]
    async fn reads_the_range_in_chunks_and_stops_at_the_end_of_the_file() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        f.write_all(&data).unwrap();
        f.seek(SeekFrom::Start(1000)).unwrap();
        let chunks: Vec<Bytes> = file_chunks(f.try_clone().unwrap(), 5000, 4096)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [4096, 904]
        );
        assert_eq!(chunks.concat(), data[1000..6000]);
        // Asked for more than the file holds: what there is.
        f.seek(SeekFrom::Start(9000)).unwrap();
        let rest: Vec<Bytes> = file_chunks(f, 5000, 4096).try_collect().await.unwrap();
        assert_eq!(rest.concat(), data[9000..]);
    }
}
