//! Include/exclude matching for one mapping: [`PathFilter`] turns the manifest's globs into
//! gitignore-like rules over `/`-separated paths relative to the mapping's root, and adds the
//! folders hubsync never uploads. It does no I/O, so the planner can use the same rules to decide
//! which remote paths are in a mapping's scope.
//!
//! The rules, which the README repeats for users:
//! - `*` and `?` never cross a `/`; `**` matches any number of folders (including none).
//! - A glob without a `/` matches a name at any depth: `*.json` matches `config.json` and
//!   `a/b/config.json`.
//! - A glob with a `/` is anchored at the mapping root: `weights/*.bin` matches
//!   `weights/x.bin` only. A leading `/` (or `./`) just anchors and is removed.
//! - A glob that matches a folder matches everything under it: `exclude: [logs]` drops
//!   `logs/a.txt` and `x/logs/b.txt`. A trailing `/` makes a glob match folders only.
//! - A file is selected when `include` is empty or some include glob matches it, and no exclude
//!   glob or default ignore matches it.
//! - Always ignored, at any depth: `.git` (folder or worktree file), `.hubsync` (hubsync's own
//!   state), and `.cache/huggingface` (the `hf` client's local metadata).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::LocalError;

/// Ignored in every mapping, whatever the include globs say. Written in the gitignore-like
/// syntax above; `**/` makes the anchored ones match at any depth.
pub const DEFAULT_IGNORES: &[&str] = &["**/.git", "**/.hubsync", "**/.cache/huggingface/"];

/// Compiled include/exclude rules for one mapping.
#[derive(Debug, Clone)]
pub struct PathFilter {
    /// `None` means "include everything".
    include: Option<GlobSet>,
    /// Matches files excluded by a user glob or a default ignore.
    exclude: GlobSet,
    /// Matches folders whose whole subtree is excluded, so the walk never enters them.
    exclude_dirs: GlobSet,
}

impl PathFilter {
    /// Compiles `include` and `exclude` globs (see the module docs for their meaning).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, LocalError> {
        let include = if include.is_empty() {
            None
        } else {
            let mut set = GlobSetBuilder::new();
            for pattern in include {
                for glob in translate(pattern)?.file_globs() {
                    set.add(glob);
                }
            }
            Some(build(set, include)?)
        };
        let mut files = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        let defaults = DEFAULT_IGNORES.iter().map(|s| s.to_string());
        let all: Vec<String> = defaults.chain(exclude.iter().cloned()).collect();
        for pattern in &all {
            let rule = translate(pattern)?;
            for glob in rule.file_globs() {
                files.add(glob);
            }
            dirs.add(rule.glob.clone());
        }
        Ok(PathFilter {
            include,
            exclude: build(files, &all)?,
            exclude_dirs: build(dirs, &all)?,
        })
    }

    /// Whether the file at `rel` (relative to the mapping root, `/`-separated) is selected.
    pub fn matches(&self, rel: &str) -> bool {
        !self.is_excluded(rel) && self.include.as_ref().is_none_or(|set| set.is_match(rel))
    }

    /// Whether an exclude glob or a default ignore drops `rel`, regardless of `include`.
    pub fn is_excluded(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }

    /// Whether the folder at `rel` and everything under it is excluded, so the walk can skip it.
    pub fn prunes_dir(&self, rel: &str) -> bool {
        self.exclude_dirs.is_match(rel)
    }
}

/// One user glob in globset form: the glob for the path itself and whether it may also match
/// the path as a file (as opposed to only as a folder).
struct Rule {
    glob: Glob,
    /// The same glob with `/**` appended, matching everything under a matched folder.
    under: Glob,
    dir_only: bool,
}

impl Rule {
    fn file_globs(&self) -> Vec<Glob> {
        if self.dir_only {
            vec![self.under.clone()]
        } else {
            vec![self.glob.clone(), self.under.clone()]
        }
    }
}

fn translate(pattern: &str) -> Result<Rule, LocalError> {
    let invalid = |reason: &str| LocalError::InvalidGlob {
        pattern: pattern.to_string(),
        reason: reason.to_string(),
    };
    if pattern.starts_with('!') {
        // Gitignore users expect `!` to re-include; globset would treat it as a literal `!`,
        // silently matching nothing. Say so instead.
        return Err(invalid(
            "negation with `!` is not supported; list the files in `include` or narrow `exclude`",
        ));
    }
    let mut body = pattern;
    let dir_only = body.ends_with('/');
    body = body.trim_end_matches('/');
    let anchored_prefix = body.starts_with('/') || body.starts_with("./");
    body = body.trim_start_matches("./").trim_start_matches('/');
    if body.is_empty() {
        return Err(invalid("the glob matches nothing"));
    }
    if body.split('/').any(|c| c == "..") {
        return Err(invalid("`..` cannot appear in a glob"));
    }
    let anchored = anchored_prefix || body.contains('/');
    let full = if anchored {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    let compile = |text: &str| {
        GlobBuilder::new(text)
            .literal_separator(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string().as_str()))
    };
    Ok(Rule {
        glob: compile(&full)?,
        under: compile(&format!("{full}/**"))?,
        dir_only,
    })
}

fn build(set: GlobSetBuilder, patterns: &[String]) -> Result<GlobSet, LocalError> {
    set.build().map_err(|e| LocalError::InvalidGlob {
        pattern: patterns.join(", "),
        reason: e.kind().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> PathFilter {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PathFilter::new(&s(include), &s(exclude)).expect("valid globs")
    }

    #[test]
    fn empty_include_selects_everything_but_default_ignores() {
        let f = filter(&[], &[]);
        assert!(f.matches("a.txt"));
        assert!(f.matches("deep/er/a.txt"));
        assert!(!f.matches(".git/config"));
        assert!(!f.matches("sub/.git/HEAD"));
        assert!(!f.matches("sub/.git"), "a worktree's `.git` file");
        assert!(!f.matches(".hubsync/hash-cache.json"));
        assert!(!f.matches(".cache/huggingface/upload/x.lock"));
        assert!(!f.matches("a/.cache/huggingface/x"));
        assert!(f.matches(".cache/other/x"));
        assert!(f.matches(".gitattributes"));
        assert!(f.matches(".github/workflows/ci.yml"));
        assert!(f.prunes_dir(".git"));
        assert!(f.prunes_dir("x/.cache/huggingface"));
        assert!(!f.prunes_dir(".cache"));
    }

    #[test]
    fn glob_without_slash_matches_names_at_any_depth() {
        let f = filter(&["*.json"], &[]);
        assert!(f.matches("config.json"));
        assert!(f.matches("a/b/config.json"));
        assert!(!f.matches("config.json.bak"));
        assert!(!f.matches("model.safetensors"));
    }

    #[test]
    fn glob_with_slash_is_anchored() {
        let f = filter(&["weights/*.bin"], &[]);
        assert!(f.matches("weights/a.bin"));
        assert!(!f.matches("weights/sub/a.bin"), "`*` does not cross `/`");
        assert!(!f.matches("x/weights/a.bin"));
        let f = filter(&["/top.txt"], &[]);
        assert!(f.matches("top.txt"));
        assert!(!f.matches("a/top.txt"));
        let f = filter(&["./top.txt"], &[]);
        assert!(f.matches("top.txt"));
        assert!(!f.matches("a/top.txt"));
    }

    #[test]
    fn double_star_crosses_folders() {
        let f = filter(&["weights/**/*.bin"], &[]);
        assert!(f.matches("weights/a.bin"));
        assert!(f.matches("weights/x/y/a.bin"));
        assert!(!f.matches("other/a.bin"));
        let f = filter(&[], &["**/*.tmp"]);
        assert!(!f.matches("a.tmp"));
        assert!(!f.matches("a/b/c.tmp"));
        assert!(f.matches("a/b/c.txt"));
    }

    #[test]
    fn a_matched_folder_covers_its_contents() {
        let f = filter(&[], &["logs"]);
        assert!(!f.matches("logs"));
        assert!(!f.matches("logs/a.txt"));
        assert!(!f.matches("run/logs/b/c.txt"));
        assert!(f.matches("logs.txt"));
        assert!(f.prunes_dir("logs"));
        assert!(f.prunes_dir("run/logs"));

        let f = filter(&["checkpoint-*"], &[]);
        assert!(f.matches("checkpoint-100/model.bin"));
        assert!(!f.matches("other/model.bin"));
    }

    #[test]
    fn trailing_slash_matches_folders_only() {
        let f = filter(&[], &["cache/"]);
        assert!(f.matches("cache"), "a file named `cache` stays");
        assert!(!f.matches("cache/x"));
        assert!(!f.matches("a/cache/x"));
        assert!(f.prunes_dir("cache"));
    }

    #[test]
    fn exclude_wins_over_include() {
        let f = filter(&["*.json"], &["secret*.json", "private/"]);
        assert!(f.matches("config.json"));
        assert!(!f.matches("secret-keys.json"));
        assert!(!f.matches("private/config.json"));
        assert!(f.is_excluded("private/config.json"));
        assert!(
            !f.is_excluded("notes.txt"),
            "not included, but not excluded either"
        );
    }

    #[test]
    fn bad_globs_are_errors_naming_the_pattern() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for bad in ["[abc", "!*.tmp", "", "/", "../x", "{a,b"] {
            let err = PathFilter::new(&s(&[bad]), &[]).expect_err(bad);
            assert!(
                matches!(&err, LocalError::InvalidGlob { pattern, .. } if pattern == bad),
                "{bad}: {err}"
            );
        }
    }
}
