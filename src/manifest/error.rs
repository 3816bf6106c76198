//! Manifest errors: every one names the manifest file and, where the YAML shows it, the line and
//! column, and says how to fix it.
//!
//! YAML syntax and type errors stop the parse, so they come one at a time
//! ([`ManifestError::Parse`]). Validation looks at the whole parsed manifest and reports every
//! problem it finds at once ([`ManifestError::Invalid`]), because fixing a manifest one error per
//! run is tedious.

use std::fmt;
use std::path::{Path, PathBuf};

use super::span::Location;

/// One problem in a manifest, at a line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// How to fix it, when there is more to say than the message does.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location,
            message: sanitize(&message.into()),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(sanitize(&hint.into()));
        self
    }
}

/// A manifest that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("failed to read manifest `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the manifest's shape (syntax error, wrong type,
    /// unknown key, duplicate key, missing key).
    #[error("{}:{}: {}", file.display(), location.or(Location::new(1, 1)), message)]
    Parse {
        file: PathBuf,
        location: Location,
        message: String,
        hint: Option<String>,
    },
    /// The manifest parsed but breaks one or more rules; every problem found is listed.
    #[error("{}", DiagnosticsDisplay { file, diagnostics })]
    Invalid {
        file: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl ManifestError {
    /// "hint: …" lines saying how to fix the error.
    pub fn hints(&self) -> Vec<String> {
        match self {
            ManifestError::Read { path, source } => {
                if source.kind() == std::io::ErrorKind::NotFound {
                    vec![format!(
                        "create `{}`, or name another manifest with `-f FILE`",
                        path.display()
                    )]
                } else {
                    Vec::new()
                }
            }
            ManifestError::Parse { hint, .. } => hint.iter().cloned().collect(),
            ManifestError::Invalid { diagnostics, .. } => {
                let mut hints: Vec<String> = Vec::new();
                for hint in diagnostics.iter().filter_map(|d| d.hint.as_ref()) {
                    if !hints.contains(hint) {
                        hints.push(hint.clone());
                    }
                }
                hints
            }
        }
    }

    /// The manifest file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. } => path,
            ManifestError::Parse { file, .. } | ManifestError::Invalid { file, .. } => file,
        }
    }

    /// Every problem with its location (one for read and parse errors).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ManifestError::Read { .. } => Vec::new(),
            ManifestError::Parse {
                location,
                message,
                hint,
                ..
            } => vec![Diagnostic {
                location: *location,
                message: message.clone(),
                hint: hint.clone(),
            }],
            ManifestError::Invalid { diagnostics, .. } => diagnostics.clone(),
        }
    }
}

/// Most problems listed in one message; past that, one more fix usually clears many of them.
const MAX_SHOWN: usize = 20;

struct DiagnosticsDisplay<'a> {
    file: &'a Path,
    diagnostics: &'a [Diagnostic],
}

impl fmt::Display for DiagnosticsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.diagnostics {
            [] => write!(f, "{file}: invalid manifest"),
            [one] => write!(
                f,
                "{file}:{}: {}",
                one.location.or(Location::new(1, 1)),
                one.message
            ),
            many => {
                // One `file:line:col: message` per line, so editors and CI annotations can pick
                // each one up.
                write!(f, "{} problems in manifest `{file}`:", many.len())?;
                for d in many.iter().take(MAX_SHOWN) {
                    write!(
                        f,
                        "\n  {file}:{}: {}",
                        d.location.or(Location::new(1, 1)),
                        d.message
                    )?;
                }
                if many.len() > MAX_SHOWN {
                    write!(f, "\n  … and {} more", many.len() - MAX_SHOWN)?;
                }
                Ok(())
            }
        }
    }
}

/// Escapes control characters so a hostile or broken manifest cannot drive the terminal.
pub(crate) fn sanitize(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Allow about one edit in three characters, and at least one: `revison` → `revision`,
    // `privat` → `private`, but not `foo` → `id`.
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, counting a swap of two neighbours as one edit (`tpye` → `type`).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("revison", "revision"), 1);
        assert_eq!(edit_distance("tpye", "type"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = ["id", "type", "private", "revision", "files"];
        assert_eq!(did_you_mean("revison", &keys), Some("revision"));
        assert_eq!(did_you_mean("tpye", &keys), Some("type"));
        assert_eq!(did_you_mean("Private", &keys), Some("private"));
        assert_eq!(did_you_mean("foo", &keys), None);
        assert_eq!(did_you_mean("weights", &keys), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("plain"), "plain");
    }

    #[test]
    fn display_lists_every_problem() {
        let err = ManifestError::Invalid {
            file: "hubsync.yaml".into(),
            diagnostics: vec![
                Diagnostic::new(Location::new(3, 9), "bad id").with_hint("fix the id"),
                Diagnostic::new(Location::new(7, 5), "bad glob").with_hint("fix the id"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "2 problems in manifest `hubsync.yaml`:\n  hubsync.yaml:3:9: bad id\n  hubsync.yaml:7:5: bad glob"
        );
        assert_eq!(err.hints(), vec!["fix the id".to_string()]);
    }
}
