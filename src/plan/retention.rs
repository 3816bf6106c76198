//! Retention (`keep_last` on a mapping): which folders matching a pattern (`checkpoint-*`) stay
//! on the Hub, which are deleted, and which local ones are no longer uploaded. Pure: it sees
//! only paths, like the rest of the planner.
//!
//! The rules, which the README and `hubsync watch --help` repeat:
//! - A *retained folder* is the shallowest folder (relative to the mapping's `remote` prefix)
//!   whose name matches the pattern. A pattern without `/` matches a folder's name at any
//!   depth; a pattern with `/` is anchored at the prefix. `*` never crosses a `/`. Files are
//!   never retained folders themselves.
//! - Folders are ordered *naturally*: runs of digits compare as numbers, so `checkpoint-500` is
//!   older than `checkpoint-1000`, and the last in that order is the newest. Ties (`07` vs `7`)
//!   fall back to plain string order. The order is by the folder path, so with a pattern such as
//!   `*/checkpoint-*` all runs share one ranking.
//! - **Deletes follow what the Hub holds, never what is about to be uploaded:** of the retained
//!   folders *on the Hub*, the `count` newest stay and the older ones are deleted (only their
//!   files inside the mapping's scope). So a folder is retired only after a newer one has
//!   landed, and the newest folder on the Hub is never deleted.
//! - **Uploads skip folders that would be retired at once:** a local folder that is not among
//!   the `count` newest of the Hub's and the local folders together is not uploaded. Old
//!   checkpoints still on disk therefore cause no perpetual diff (the Hub deleted them on
//!   purpose), and a fresh repo receives only the newest ones.
//! - A Hub folder that is kept but no longer among the newest overall (a newer local folder
//!   waits to be uploaded) is *frozen*: `prune` does not touch it; the next plan, made after the
//!   newer folder has landed, retires it.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobMatcher};

use super::Scope;
use crate::local::LocalError;

/// A `keep_last` rule of one mapping, compiled.
#[derive(Clone, Debug)]
pub struct Retention {
    /// The mapping's scope: its `remote` prefix and include/exclude filter. Only files in it are
    /// deleted.
    pub scope: Scope,
    /// The folder glob as written in the manifest.
    pub pattern: String,
    /// How many of the newest folders stay on the Hub (at least 1).
    pub count: usize,
    matcher: GlobMatcher,
    /// The pattern has no `/`: match folder names at any depth.
    by_name: bool,
}

/// What a [`Retention`] rule decides, as folder paths relative to the mapping's prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Local folders not to upload: they are not among the newest overall.
    pub skip_local: BTreeSet<String>,
    /// Hub folders to delete: older than the `count` newest on the Hub.
    pub delete_remote: BTreeSet<String>,
    /// Hub folders kept for now but not to be pruned or updated (see the module docs).
    pub frozen: BTreeSet<String>,
}

impl Retention {
    /// Compiles a rule; `count` 0 is treated as 1 (the newest is never deleted).
    pub fn new(scope: Scope, pattern: &str, count: usize) -> Result<Retention, LocalError> {
        let invalid = |reason: String| LocalError::InvalidGlob {
            pattern: pattern.to_string(),
            reason,
        };
        let body = pattern
            .trim_end_matches('/')
            .trim_start_matches("./")
            .trim_start_matches('/');
        if body.is_empty() {
            return Err(invalid("the glob matches nothing".into()));
        }
        let by_name = !pattern.trim_end_matches('/').contains('/');
        let matcher = GlobBuilder::new(body)
            .literal_separator(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string()))?
            .compile_matcher();
        Ok(Retention {
            scope,
            pattern: pattern.to_string(),
            count: count.max(1),
            matcher,
            by_name,
        })
    }

    /// The path relative to the rule's prefix, when `repo_path` is under it.
    pub fn relative<'a>(&self, repo_path: &'a str) -> Option<&'a str> {
        if self.scope.prefix.is_empty() {
            Some(repo_path)
        } else {
            repo_path
                .strip_prefix(self.scope.prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
        }
    }

    /// The retained folder holding `rel` (a path relative to the prefix): its shallowest
    /// ancestor folder that matches the pattern.
    pub fn folder_of<'a>(&self, rel: &'a str) -> Option<&'a str> {
        rel.match_indices('/')
            .map(|(i, _)| &rel[..i])
            .find(|folder| {
                let subject = if self.by_name {
                    folder.rsplit('/').next().unwrap_or(folder)
                } else {
                    folder
                };
                self.matcher.is_match(subject)
            })
    }

    /// The retained folder of a repo path, relative to the prefix.
    pub fn folder_of_repo_path<'a>(&self, repo_path: &'a str) -> Option<&'a str> {
        self.relative(repo_path).and_then(|rel| self.folder_of(rel))
    }

    /// Decides from the Hub's paths and the paths about to be uploaded (both repo paths).
    pub fn verdict<'a>(
        &self,
        remote_paths: impl IntoIterator<Item = &'a str>,
        local_paths: impl IntoIterator<Item = &'a str>,
    ) -> Verdict {
        let folders = |paths: &mut dyn Iterator<Item = &'a str>| -> BTreeSet<String> {
            paths
                .filter_map(|p| self.folder_of_repo_path(p))
                .map(str::to_string)
                .collect()
        };
        let remote = folders(&mut remote_paths.into_iter());
        let local = folders(&mut local_paths.into_iter());
        let keep_remote = newest(remote.iter(), self.count);
        let keep_all = newest(remote.iter().chain(local.iter()), self.count);
        Verdict {
            skip_local: local
                .iter()
                .filter(|f| !keep_all.contains(*f))
                .cloned()
                .collect(),
            delete_remote: remote
                .iter()
                .filter(|f| !keep_remote.contains(*f))
                .cloned()
                .collect(),
            frozen: keep_remote
                .iter()
                .filter(|f| !keep_all.contains(*f))
                .cloned()
                .collect(),
        }
    }
}

/// The `count` newest of `folders` in natural order.
fn newest<'a>(folders: impl Iterator<Item = &'a String>, count: usize) -> BTreeSet<String> {
    let mut all: Vec<&String> = folders.collect::<BTreeSet<_>>().into_iter().collect();
    all.sort_by(|a, b| natural_cmp(a, b));
    all.into_iter().rev().take(count).cloned().collect()
}

/// Natural order: runs of ASCII digits compare as numbers (`a-9` < `a-10`), everything else
/// byte by byte; equal under that, plain string order decides (`a-07` vs `a-7`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (chunks(a), chunks(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
                let order = if digits(p) && digits(q) {
                    let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                    p.len().cmp(&q.len()).then_with(|| p.cmp(q))
                } else {
                    p.cmp(q)
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Splits a string into maximal runs of digits and of non-digits.
fn chunks(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let digit = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::PathFilter;

    fn rule(prefix: &str, pattern: &str, count: usize) -> Retention {
        let scope = Scope {
            prefix: prefix.into(),
            filter: PathFilter::new(&[], &[]).unwrap(),
        };
        Retention::new(scope, pattern, count).unwrap()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn natural_order_compares_numbers() {
        let mut v = vec![
            "checkpoint-1000",
            "checkpoint-500",
            "checkpoint-50",
            "checkpoint-9",
            "checkpoint-10",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "checkpoint-9",
                "checkpoint-10",
                "checkpoint-50",
                "checkpoint-500",
                "checkpoint-1000"
            ]
        );
        assert_eq!(natural_cmp("a-07", "a-7"), "a-07".cmp("a-7"));
        assert_eq!(
            natural_cmp("epoch-2-step-10", "epoch-10-step-1"),
            Ordering::Less
        );
        assert_eq!(natural_cmp("a", "a-1"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn folders_are_the_shallowest_matching_ancestor() {
        let r = rule("ckpt", "checkpoint-*", 2);
        assert_eq!(r.folder_of("checkpoint-5/model.bin"), Some("checkpoint-5"));
        assert_eq!(r.folder_of("checkpoint-5/sub/x"), Some("checkpoint-5"));
        assert_eq!(r.folder_of("run/checkpoint-5/x"), Some("run/checkpoint-5"));
        assert_eq!(r.folder_of("checkpoint-5"), None, "a file is not a folder");
        assert_eq!(r.folder_of("logs/x"), None);
        assert_eq!(
            r.folder_of_repo_path("ckpt/checkpoint-5/a"),
            Some("checkpoint-5")
        );
        assert_eq!(r.folder_of_repo_path("other/checkpoint-5/a"), None);
        let anchored = rule("", "runs/checkpoint-*", 1);
        assert_eq!(
            anchored.folder_of("runs/checkpoint-1/a"),
            Some("runs/checkpoint-1")
        );
        assert_eq!(anchored.folder_of("x/runs/checkpoint-1/a"), None);
        assert_eq!(anchored.folder_of("checkpoint-1/a"), None);
    }

    #[test]
    fn deletes_follow_the_hub_and_keep_the_newest() {
        let r = rule("", "checkpoint-*", 2);
        let remote = [
            "checkpoint-500/w",
            "checkpoint-1000/w",
            "checkpoint-1500/w",
            "README.md",
        ];
        let v = r.verdict(remote, []);
        assert_eq!(v.delete_remote, set(&["checkpoint-500"]));
        assert!(v.skip_local.is_empty() && v.frozen.is_empty());

        // One remote folder: never deleted, whatever `count` is.
        let v = rule("", "checkpoint-*", 1).verdict(["checkpoint-1/w"], []);
        assert!(v.delete_remote.is_empty());
    }

    #[test]
    fn uploads_skip_folders_that_would_be_retired_at_once() {
        let r = rule("", "checkpoint-*", 2);
        // The Hub has 4 and 5; the disk still has 1..5 plus a new 6.
        let remote = ["checkpoint-4/w", "checkpoint-5/w"];
        let local: Vec<String> = (1..=6).map(|i| format!("checkpoint-{i}/w")).collect();
        let v = r.verdict(remote, local.iter().map(String::as_str));
        assert_eq!(
            v.skip_local,
            set(&[
                "checkpoint-1",
                "checkpoint-2",
                "checkpoint-3",
                "checkpoint-4"
            ])
        );
        // 6 has not landed yet, so 4 stays on the Hub (frozen) until it has.
        assert!(v.delete_remote.is_empty());
        assert_eq!(v.frozen, set(&["checkpoint-4"]));

        // After 6 landed, 4 goes.
        let remote = ["checkpoint-4/w", "checkpoint-5/w", "checkpoint-6/w"];
        let v = r.verdict(remote, local.iter().map(String::as_str));
        assert_eq!(v.delete_remote, set(&["checkpoint-4"]));
        assert!(v.frozen.is_empty());

        // A fresh repo gets only the newest ones.
        let v = r.verdict([], local.iter().map(String::as_str));
        assert_eq!(v.skip_local.len(), 4);
        assert!(!v.skip_local.contains("checkpoint-6"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        let scope = Scope {
            prefix: String::new(),
            filter: PathFilter::new(&[], &[]).unwrap(),
        };
        assert!(Retention::new(scope.clone(), "[abc", 1).is_err());
        assert!(Retention::new(scope, "/", 1).is_err());
    }

    /// Through [`super::super::compute`]: retention deletes even without `prune`, never
    /// uploads old local folders, and keeps `prune` off frozen folders.
    #[test]
    fn compute_applies_retention() {
        use std::collections::BTreeMap;

        use super::super::{Action, CommitSettings, DesiredFile, DesiredRepo, RemoteMap, compute};
        use crate::api::{RepoId, RepoType};
        use crate::remote::{RemoteFile, RemoteSnapshot};

        let file = |name: &str| DesiredFile {
            local_path: name.into(),
            size: 3,
            mtime_ns: 0,
            sha256: format!("{:0>64}", name.len()),
            git_oid: Some(format!("{:0>40}", name.len())),
            binary: false,
        };
        let remote_file = || RemoteFile {
            oid: "f".repeat(40),
            size: 3,
            lfs: None,
        };
        let scope = || Scope {
            prefix: "ckpt".into(),
            filter: PathFilter::new(&[], &[]).unwrap(),
        };
        let desired = |prune: bool| DesiredRepo {
            id: RepoId::parse("alice/run").unwrap(),
            repo_type: RepoType::Model,
            revision: "main".into(),
            private: None,
            create: true,
            files: (1..=6)
                .map(|i| (format!("ckpt/checkpoint-{i}/w"), file(&format!("w{i}"))))
                .collect(),
            prune_scopes: if prune { vec![scope()] } else { vec![] },
            retention: vec![Retention::new(scope(), "checkpoint-*", 2).unwrap()],
            max_deletes: 100,
            commit: CommitSettings {
                message: "m".into(),
                max_files: 100,
                max_bytes: u64::MAX,
            },
            branches: vec![],
            tags: vec![],
            space: None,
        };
        let mut remote = RemoteSnapshot {
            exists: true,
            head: Some("a".repeat(40)),
            branches: BTreeMap::from([("main".to_string(), "a".repeat(40))]),
            ..Default::default()
        };
        for i in [1, 4, 5] {
            remote
                .files
                .insert(format!("ckpt/checkpoint-{i}/w"), remote_file());
        }
        let map: RemoteMap = [((RepoType::Model, "alice/run".to_string()), remote)]
            .into_iter()
            .collect();
        for prune in [false, true] {
            let plan = compute(&[desired(prune)], &map).unwrap();
            let paths: Vec<(String, &str)> = plan.repos[0]
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::FileAdd(f) => Some((f.path.clone(), "add")),
                    Action::FileUpdate(f) => Some((f.path.clone(), "update")),
                    Action::FileDelete { path, .. } => Some((path.clone(), "delete")),
                    _ => None,
                })
                .collect();
            // 6 is new and among the newest; 5 is kept and updated; 4 is frozen (neither
            // updated nor pruned) until 6 has landed; 1 is retired; 2 and 3 are never uploaded.
            assert_eq!(
                paths,
                vec![
                    ("ckpt/checkpoint-5/w".to_string(), "update"),
                    ("ckpt/checkpoint-6/w".to_string(), "add"),
                    ("ckpt/checkpoint-1/w".to_string(), "delete"),
                ],
                "prune: {prune}"
            );
        }
    }
}
