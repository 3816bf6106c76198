//! Pure parsers of the local Hub's untrusted request bodies: the NDJSON commit body and the LFS
//! batch request. They turn bytes into typed requests or a message for a 400, and never panic,
//! whatever the input (`tests/it/fuzz.rs` checks that with proptest).
//!
//! They know nothing of HTTP, auth or storage: semantic checks that need the repo (paths, sizes,
//! whether an LFS object exists) stay in [`store`](super::store). Key functions:
//! [`parse_commit_body`] and [`parse_lfs_batch`].

use base64::Engine;

use super::store::Op;
use crate::api::{CommitHeader, CommitLine, LfsBatchRequest};

/// Parses an NDJSON commit body (hub-api.md §6): the header on the first non-blank line, then
/// one operation per line. Blank lines are skipped. `file` content is decoded here (base64, or
/// `utf-8` as JS types allow).
///
/// Errors name the 1-based line they come from.
pub fn parse_commit_body(body: &[u8]) -> Result<(CommitHeader, Vec<Op>), String> {
    let mut header: Option<CommitHeader> = None;
    let mut ops = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: CommitLine = serde_json::from_slice(line)
            .map_err(|e| format!("line {n}: invalid commit operation: {e}"))?;
        let op = match parsed {
            CommitLine::Header(h) if header.is_none() => {
                header = Some(h);
                continue;
            }
            CommitLine::Header(_) => {
                return Err(format!("line {n}: the header must be the first line, once"));
            }
            _ if header.is_none() => {
                return Err(format!(
                    "line {n}: the first line must be the commit header"
                ));
            }
            CommitLine::File(f) => {
                let content = match f.encoding.as_str() {
                    "base64" => base64::engine::general_purpose::STANDARD
                        .decode(f.content.as_bytes())
                        .map_err(|e| format!("line {n}: `{}`: invalid base64: {e}", f.path))?,
                    "utf-8" | "utf8" => f.content.into_bytes(),
                    other => return Err(format!("line {n}: unknown encoding `{other}`")),
                };
                Op::Put {
                    path: f.path,
                    content,
                }
            }
            CommitLine::LfsFile(f) => {
                if let Some(algo) = f.algo.as_deref()
                    && algo != "sha256"
                    && algo != "sha_256"
                {
                    return Err(format!("line {n}: unsupported algo `{algo}`"));
                }
                Op::PutLfs {
                    path: f.path,
                    sha256: f.oid,
                    size: f.size,
                }
            }
            CommitLine::DeletedFile(d) => Op::DeleteFile { path: d.path },
            CommitLine::DeletedFolder(d) => Op::DeleteFolder { path: d.path },
        };
        ops.push(op);
    }
    let header = header.ok_or("empty commit body: the first line must be the commit header")?;
    if header.summary.trim().is_empty() {
        return Err("the commit summary must not be empty".into());
    }
    Ok((header, ops))
}

/// Parses an LFS batch request (hub-api.md §5.2). Only `upload` is supported, with `sha256`
/// (Python) or `sha_256` (JS) as the hash algorithm. Objects are returned as sent; each is
/// checked on its own, so one bad oid gets a per-object error rather than failing the batch.
pub fn parse_lfs_batch(body: &[u8]) -> Result<LfsBatchRequest, String> {
    let req: LfsBatchRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    if req.operation != "upload" {
        return Err(format!(
            "operation `{}` is not supported; only upload",
            req.operation
        ));
    }
    if let Some(algo) = req.hash_algo.as_deref()
        && algo != "sha256"
        && algo != "sha_256"
    {
        return Err(format!("unsupported hash_algo `{algo}`"));
    }
    Ok(req)
}

/// Whether `oid` is a sha256 as the Hub writes it: 64 lowercase hex characters.
pub fn valid_oid(oid: &str) -> bool {
    oid.len() == 64
        && oid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The largest LFS object the Hub accepts (its hard per-file limit, hub-api.md §10).
pub const MAX_LFS_OBJECT: u64 = 500 * 1000 * 1000 * 1000;

/// Why the hub would refuse to store an object of `size` bytes in parts of `chunk` bytes, if it
/// would. Capping both keeps a batch answer bounded (one part URL per chunk).
pub fn lfs_size_problem(size: u64, chunk: u64) -> Option<String> {
    /// S3's limit on parts per multipart upload, which the Hub inherits.
    const MAX_PARTS: u64 = 10_000;
    if size > MAX_LFS_OBJECT {
        return Some(format!(
            "object is {size} bytes; the largest accepted is {MAX_LFS_OBJECT} bytes"
        ));
    }
    let parts = size.div_ceil(chunk.max(1));
    if parts > MAX_PARTS {
        return Some(format!(
            "object of {size} bytes would need {parts} parts of {chunk} bytes; at most {MAX_PARTS} are allowed"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(lines: &[&str]) -> Vec<u8> {
        let mut b = lines.join("\n").into_bytes();
        b.push(b'\n');
        b
    }

    const HEADER: &str = r#"{"key":"header","value":{"summary":"s"}}"#;

    #[test]
    fn commit_bodies() {
        let (h, ops) = parse_commit_body(&body(&[
            HEADER,
            "",
            r#"{"key":"file","value":{"path":"a","content":"aGk=","encoding":"base64"}}"#,
            r#"{"key":"deletedFolder","value":{"path":"d/"}}"#,
        ]))
        .unwrap();
        assert_eq!(h.summary, "s");
        assert!(matches!(&ops[0], Op::Put { content, .. } if content == b"hi"));
        assert_eq!(ops.len(), 2);

        let err = |lines: &[&str]| parse_commit_body(&body(lines)).unwrap_err();
        assert!(err(&[]).contains("empty commit body"));
        assert!(err(&[r#"{"key":"deletedFile","value":{"path":"a"}}"#, HEADER]).contains("line 1"));
        assert!(err(&[HEADER, HEADER]).contains("line 2"));
        assert!(err(&[HEADER, "{"]).contains("line 2: invalid"));
        assert!(
            err(&[HEADER, r#"{"key":"copy","value":{"path":"a"}}"#]).contains("unknown variant")
        );
        assert!(
            err(&[
                HEADER,
                r#"{"key":"file","value":{"path":"a","content":"!!"}}"#
            ])
            .contains("invalid base64")
        );
        assert!(
            err(&[
                HEADER,
                r#"{"key":"deletedFile","value":{"path":"a","x":1}}"#
            ])
            .contains("unknown field")
        );
        assert!(err(&[r#"{"key":"header","value":{"summary":" "}}"#]).contains("summary must not"));
        assert!(
            err(&[
                HEADER,
                r#"{"key":"deletedFile","value":{"path":"a"},"extra":1}"#
            ])
            .contains(r#""extra""#)
        );
    }

    #[test]
    fn lfs_batches() {
        let ok = br#"{"operation":"upload","transfers":["basic"],"objects":[{"oid":"x","size":1}],"hash_algo":"sha_256"}"#;
        assert_eq!(parse_lfs_batch(ok).unwrap().objects.len(), 1);
        assert!(parse_lfs_batch(br#"{"operation":"download","objects":[]}"#).is_err());
        assert!(
            parse_lfs_batch(br#"{"operation":"upload","objects":[],"hash_algo":"md5"}"#).is_err()
        );
        assert!(
            parse_lfs_batch(br#"{"operation":"upload","objects":[{"oid":"x","size":-1}]}"#)
                .is_err()
        );
    }

    #[test]
    fn lfs_sizes() {
        assert!(lfs_size_problem(10, 3).is_none());
        assert!(lfs_size_problem(u64::MAX, 64 << 20).is_some());
        assert!(lfs_size_problem(1 << 30, 1).is_some());
        assert!(lfs_size_problem(0, 0).is_none());
    }
}
