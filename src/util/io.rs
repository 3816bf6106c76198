//! Streaming a file's bytes to the network (upload bodies in the client, downloads in the local
//! hub) without the extra copy a `tokio::fs::File` makes.

use bytes::Bytes;
use futures::Stream;

/// At most `len` bytes of `file` from where it stands, in chunks of up to `chunk` bytes read on
/// the blocking pool straight into the buffers that are sent (reading through a
/// `tokio::fs::File` copies every byte once more, from its own buffer: 11% of the client's CPU
/// on a 2 GB upload). Ends early at the end of the file.
pub fn file_chunks(
    file: std::fs::File,
    len: u64,
    chunk: usize,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::try_unfold((file, len), move |(file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = left.min(chunk as u64);
        let (file, buf) = tokio::task::spawn_blocking(move || {
            use std::io::Read;
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
