//! Remote paths the Hub would refuse (a backslash, a control character, a `.git` segment, …),
//! found from the desired state alone, so a plan with such a name fails before any request is
//! made instead of half-way through an apply.

use std::path::PathBuf;

use super::{DesiredRepo, PlanError};
use crate::api::{self, RepoType};

/// A local file whose remote path the Hub refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPath {
    pub repo: String,
    pub repo_type: RepoType,
    /// The path in the repo, as the mapping would name it.
    pub path: String,
    pub local_path: PathBuf,
    /// Why the Hub refuses it.
    pub why: String,
}

impl std::fmt::Display for BadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (would be `{}` in {} `{}`): {}",
            escape(&self.local_path.display().to_string()),
            escape(&self.path),
            self.repo_type,
            self.repo,
            escape(&self.why)
        )
    }
}

/// Checks every remote path of every desired file with [`api::validate_repo_path`], and lists
/// all the refused ones in one error.
pub fn check_remote_paths(desired: &[DesiredRepo]) -> Result<(), PlanError> {
    let bad: Vec<BadPath> = desired
        .iter()
        .flat_map(|r| {
            r.files.iter().filter_map(move |(path, f)| {
                api::validate_repo_path(path).err().map(|why| BadPath {
                    repo: r.id.to_string(),
                    repo_type: r.repo_type,
                    path: path.clone(),
                    local_path: f.local_path.clone(),
                    why,
                })
            })
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(PlanError::BadPaths { paths: bad })
    }
}

/// Escapes control characters (a name may hold a newline or a terminal escape sequence) and
/// leaves everything else, backslashes included, as it is.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RepoId;
    use crate::plan::{CommitSettings, DesiredFile};

    fn repo(paths: &[&str]) -> DesiredRepo {
        DesiredRepo {
            id: RepoId::parse("alice/x").unwrap(),
            repo_type: RepoType::Model,
            revision: "main".into(),
            private: None,
            create: true,
            files: paths
                .iter()
                .map(|p| {
                    (
                        p.to_string(),
                        DesiredFile {
                            local_path: PathBuf::from("/w/src").join(p),
                            size: 1,
                            mtime_ns: 0,
                            sha256: String::new(),
                            git_oid: None,
                            binary: false,
                        },
                    )
                })
                .collect(),
            prune_scopes: Vec::new(),
            retention: Vec::new(),
            max_deletes: 100,
            commit: CommitSettings {
                message: "m".into(),
                max_files: 100,
                max_bytes: 1 << 30,
            },
            branches: Vec::new(),
            tags: Vec::new(),
            space: None,
        }
    }

    #[test]
    fn all_refused_paths_in_one_error() {
        assert_eq!(check_remote_paths(&[repo(&["a.txt", "d/b.bin"])]), Ok(()));
        let err = check_remote_paths(&[repo(&["a\\b.txt", "ok.txt", "new\nline", "x/\u{1b}[2J"])])
            .unwrap_err();
        let PlanError::BadPaths { paths } = &err else {
            panic!("{err:?}")
        };
        let names: Vec<&str> = paths.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(names, ["a\\b.txt", "new\nline", "x/\u{1b}[2J"]);
        let text = err.to_string();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("`new\\nline`"), "{text}");
        assert!(text.contains("`x/\\u{1b}[2J`"), "{text}");
        assert!(
            text.contains("`a\\b.txt` must not contain `\\` or NUL"),
            "{text}"
        );
    }
}
