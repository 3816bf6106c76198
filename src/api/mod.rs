//! Hub wire protocol shared by the [`client`](crate::client) and the local [`hub`](crate::hub):
//! repo types and ids, route builders, JSON bodies, NDJSON commit lines, error headers, and the
//! git object hashes both sides must agree on. `../shared/hub-api.md` is the reference.
//!
//! This module must not import reqwest, axum or tokio.

pub mod git;
pub mod types;

pub use git::*;
pub use types::*;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Files above this size always go through LFS (the Hub's "files larger than 10MB" rule).
pub const LFS_THRESHOLD: u64 = 10 * 1024 * 1024;

/// Response header carrying the machine error code (`RepoNotFound`, …).
pub const X_ERROR_CODE: &str = "x-error-code";
/// Response header carrying the human error message.
pub const X_ERROR_MESSAGE: &str = "x-error-message";
/// Response header naming the full commit a resolve request was served from.
pub const X_REPO_COMMIT: &str = "x-repo-commit";
/// ETag of the target of a resolve (sha256 for LFS files).
pub const X_LINKED_ETAG: &str = "x-linked-etag";
/// Size of the target of a resolve.
pub const X_LINKED_SIZE: &str = "x-linked-size";
/// Request id echoed in errors.
pub const X_REQUEST_ID: &str = "x-request-id";
/// Total count on paginated commit listings.
pub const X_TOTAL_COUNT: &str = "x-total-count";

/// Content type of commit bodies.
pub const NDJSON: &str = "application/x-ndjson";
/// Content type of LFS batch, completion and verify bodies.
pub const GIT_LFS_JSON: &str = "application/vnd.git-lfs+json";

/// The kinds of repository the Hub hosts.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    Model,
    Dataset,
    Space,
}

impl RepoType {
    pub const ALL: [RepoType; 3] = [RepoType::Model, RepoType::Dataset, RepoType::Space];

    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        }
    }

    /// The plural used in API routes: `/api/models/…`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }

    /// The prefix of non-API routes (resolve, LFS, web URLs): empty for models.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        }
    }

    pub fn from_plural(s: &str) -> Option<RepoType> {
        RepoType::ALL.into_iter().find(|t| t.plural() == s)
    }
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RepoType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RepoType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown repo type `{s}` (expected model, dataset or space)"))
    }
}

/// A repo id, `namespace/name`, validated with the Hub's rules.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoId {
    namespace: String,
    name: String,
}

impl RepoId {
    /// Parses `namespace/name`. Both parts: 1–96 characters of `[A-Za-z0-9._-]`, not starting or
    /// ending with `.` or `-`, without `--` or `..` (the Hub's `REPO_ID_REGEX` rules).
    pub fn parse(s: &str) -> Result<RepoId, String> {
        let Some((namespace, name)) = s.split_once('/') else {
            return Err(format!(
                "repo id `{s}` must be `namespace/name` (for example `alice/tiny-bert`)"
            ));
        };
        for part in [namespace, name] {
            validate_id_part(part).map_err(|why| format!("repo id `{s}`: {why}"))?;
        }
        Ok(RepoId {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Checks one half of a repo id.
pub fn validate_id_part(part: &str) -> Result<(), String> {
    if part.is_empty() || part.len() > 96 {
        return Err(format!("`{part}` must be 1 to 96 characters long"));
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{part}` contains `{c}`; only letters, digits, `.`, `_` and `-` are allowed"
        ));
    }
    if part.starts_with(['.', '-']) || part.ends_with(['.', '-']) {
        return Err(format!("`{part}` must not start or end with `.` or `-`"));
    }
    if part.contains("--") || part.contains("..") {
        return Err(format!("`{part}` must not contain `--` or `..`"));
    }
    Ok(())
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl FromStr for RepoId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RepoId::parse(s)
    }
}

/// Checks a branch or tag name the way git's `check-ref-format` does, for the cases that matter.
pub fn validate_ref_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 256
        || name.starts_with(['/', '.', '-'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name == "@"
        || name.contains("/.")
        || name.split('/').any(|c| c.ends_with(".lock"))
        || name.chars().any(|c| {
            c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if bad {
        Err(format!(
            "`{name}` is not a valid git ref name (no spaces, `..`, `~^:?*[\\`, control characters, or leading `-`/`.`)"
        ))
    } else {
        Ok(())
    }
}

/// Checks a path inside a repo: relative, `/`-separated, no empty, `.` or `..` segments, no
/// backslash, NUL or other control characters.
pub fn validate_repo_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.starts_with('/') {
        return Err(format!("`{path}` must be relative (no leading `/`)"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(format!("`{path}` must not contain `\\` or NUL"));
    }
    // A newline or an escape sequence in a path breaks NDJSON-minded tools, terminals and the
    // Hub's own web pages; the Hub refuses them.
    if path.chars().any(char::is_control) {
        return Err(format!("`{path}` must not contain control characters"));
    }
    if path.len() > 4096 {
        return Err("path longer than 4096 bytes".into());
    }
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!(
                "`{path}` has an empty, `.` or `..` segment; paths must stay inside the repo"
            ));
        }
        if seg == ".git" {
            return Err(format!("`{path}` must not write inside `.git`"));
        }
    }
    Ok(())
}

/// `/api/{type}s/{ns}/{name}`, the prefix of every API route of a repo.
pub fn api_repo_path(repo_type: RepoType, repo: &RepoId) -> String {
    format!("/api/{}/{}", repo_type.plural(), repo)
}

/// `/{prefix}{ns}/{name}`, the prefix of resolve, LFS and web routes.
pub fn web_repo_path(repo_type: RepoType, repo: &RepoId) -> String {
    format!("/{}{}", repo_type.url_prefix(), repo)
}

/// Percent-encodes one path segment the way `quote(s, safe="")` does (so `/` becomes `%2F`).
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encodes a repo path keeping `/` (the resolve route's `quote(filename)`).
pub fn encode_path(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &percent_encoding::AsciiSet = &SEGMENT.remove(b'/');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids() {
        assert!(RepoId::parse("alice/tiny-bert").is_ok());
        assert!(RepoId::parse("alice").is_err());
        assert!(RepoId::parse("alice/a/b").is_err());
        assert!(RepoId::parse("alice/-x").is_err());
        assert!(RepoId::parse("alice/a--b").is_err());
        assert!(RepoId::parse("al ice/x").is_err());
    }

    #[test]
    fn repo_paths() {
        assert!(validate_repo_path("a/b.txt").is_ok());
        for bad in [
            "/a",
            "a/../b",
            "..",
            "a//b",
            "a/./b",
            ".git/config",
            "a\\b",
            "a\nb",
            "bell\u{7}.txt",
            "esc\u{1b}[31m",
        ] {
            assert!(validate_repo_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ref_names() {
        for good in ["main", "dev/feature-1", "v1.0", "release/2024.01"] {
            assert!(validate_ref_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "x/../y",
            "/x",
            "x/",
            ".git",
            "x/.git/y",
            "x/.hidden",
            "a\\b",
            "a//b",
            "x.lock",
            "x.lock/y",
            "a b",
            "a:b",
            "@",
            "a@{b",
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_path("a b/c.txt"), "a%20b/c.txt");
    }
}
