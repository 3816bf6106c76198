//! Git object hashing both sides agree on: blob SHA-1s, LFS pointers, tree and commit ids.

use sha1::{Digest, Sha1};

/// The `.gitattributes` of a new repo: the Hub's default LFS-tracked patterns.
pub const DEFAULT_GITATTRIBUTES: &str = "*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
";

/// The git blob SHA-1 of `content`: `sha1("blob <len>\0" + content)`.
pub fn git_blob_oid(content: &[u8]) -> String {
    let mut h = git_blob_hasher(content.len() as u64);
    h.update(content);
    hex::encode(h.finalize())
}

/// A SHA-1 hasher primed with the blob header, for streaming a file of known `len`.
pub fn git_blob_hasher(len: u64) -> Sha1 {
    let mut h = Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    h
}

/// The text of the LFS pointer for an object.
pub fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// The git oid of an LFS file: the blob SHA-1 of its pointer.
pub fn lfs_git_oid(sha256: &str, size: u64) -> String {
    git_blob_oid(lfs_pointer(sha256, size).as_bytes())
}

/// LFS patterns of a `.gitattributes` text, as a glob set.
pub fn lfs_matcher(text: &str) -> globset::GlobSet {
    let mut b = globset::GlobSetBuilder::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some(pat) = parts.next() else { continue };
        if pat.starts_with('#') || !parts.any(|a| a == "filter=lfs") {
            continue;
        }
        add_git_pattern(&mut b, pat, false);
    }
    b.build().unwrap_or_else(|_| globset::GlobSet::empty())
}

/// Adds a gitattributes/gitignore-style pattern to `b`: one without `/` matches a name at any
/// depth, one with `/` is anchored at the repo root; `folders` also matches everything below.
pub fn add_git_pattern(b: &mut globset::GlobSetBuilder, pat: &str, folders: bool) {
    let pat = if pat.contains('/') {
        pat.trim_start_matches('/').to_string()
    } else {
        format!("**/{pat}")
    };
    let base = pat.strip_prefix("**/").map(str::to_string);
    let mut pats = vec![pat.clone()];
    if folders {
        pats.push(format!("{pat}/**"));
    }
    pats.extend(base);
    for p in pats {
        if let Ok(g) = globset::GlobBuilder::new(&p)
            .literal_separator(true)
            .build()
        {
            b.add(g);
        }
    }
}

/// The Hub's LFS decision (hub-api.md §5.1): over 10 MiB, tracked by `.gitattributes`, or
/// binary (a NUL byte in the first 512 bytes). Empty files are always regular.
pub fn wants_lfs(path: &str, size: u64, binary_sample: bool, lfs: &globset::GlobSet) -> bool {
    size > super::LFS_THRESHOLD || (size > 0 && (binary_sample || lfs.is_match(path)))
}

/// One entry of a git tree object.
#[derive(Debug, Clone)]
pub struct GitTreeEntry<'a> {
    pub name: &'a str,
    pub is_dir: bool,
    /// 40-hex oid of the blob or subtree.
    pub oid: &'a str,
}

/// The SHA-1 of a git tree object built from `entries` (any order; git's order is applied here).
pub fn git_tree_oid(entries: &mut [GitTreeEntry<'_>]) -> String {
    // Git sorts tree entries by name, comparing directories as if their name ended with `/`.
    entries.sort_by(|a, b| {
        let ka = a
            .name
            .as_bytes()
            .iter()
            .chain(if a.is_dir { &b"/"[..] } else { &b""[..] });
        let kb = b
            .name
            .as_bytes()
            .iter()
            .chain(if b.is_dir { &b"/"[..] } else { &b""[..] });
        ka.cmp(kb)
    });
    let mut body = Vec::with_capacity(entries.len() * 48);
    for e in entries.iter() {
        body.extend_from_slice(if e.is_dir { b"40000 " } else { b"100644 " });
        body.extend_from_slice(e.name.as_bytes());
        body.push(0);
        body.extend_from_slice(&hex::decode(e.oid).expect("oid is 40 hex"));
    }
    let mut h = Sha1::new();
    h.update(format!("tree {}\0", body.len()).as_bytes());
    h.update(&body);
    hex::encode(h.finalize())
}

/// The SHA-1 of a git commit object.
pub fn git_commit_oid(
    tree: &str,
    parent: Option<&str>,
    author: &str,
    unix_time: i64,
    message: &str,
) -> String {
    let mut text = format!("tree {tree}\n");
    if let Some(p) = parent {
        text.push_str(&format!("parent {p}\n"));
    }
    let ident = format!("{author} <{author}@users.noreply.huggingface.co> {unix_time} +0000");
    text.push_str(&format!("author {ident}\ncommitter {ident}\n\n{message}"));
    let mut h = Sha1::new();
    h.update(format!("commit {}\0", text.len()).as_bytes());
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_oid_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_oid(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            git_blob_oid(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    #[test]
    fn lfs_pointer_size() {
        let p = lfs_pointer(&"0".repeat(64), 440473133);
        assert_eq!(p.len(), 134);
    }

    #[test]
    fn tree_oid_matches_git() {
        // An empty tree is git's well-known 4b825dc….
        assert_eq!(
            git_tree_oid(&mut []),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
        // `git mktree` of one file `a` holding "hello\n".
        let mut e = [GitTreeEntry {
            name: "a",
            is_dir: false,
            oid: "ce013625030ba8dba906f756967f9e9ca394464a",
        }];
        assert_eq!(
            git_tree_oid(&mut e),
            "0976950c1fdbcb52435a433913017bf044b3a58f"
        );
    }
}
