//! YAML text → [`raw::Manifest`], turning serde-saphyr's errors into manifest errors that name
//! `file:line:col`, say what was expected, and suggest the key or value the user probably meant.

use std::path::Path;

use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};

use super::error::{Diagnostic, ManifestError, did_you_mean, sanitize};
use super::raw;
use super::span::{Located, Location};
use super::validate::MANIFEST_VERSION;

/// Parses manifest YAML. `file` is only used in messages.
pub fn parse(text: &str, file: &Path) -> Result<raw::Manifest, ManifestError> {
    if is_blank(text) {
        return Err(parse_error(
            file,
            Diagnostic::new(Location::new(1, 1), "the manifest is empty").with_hint(
                "start it with `version: 1` and a `repos:` list; `hubsync schema` prints every key",
            ),
        ));
    }
    // Read `version:` first, so a manifest written for a newer hubsync says so instead of
    // failing on the first key this version does not know.
    if let Ok(VersionProbe {
        version: Some(version),
    }) = serde_saphyr::from_str_with_options::<VersionProbe>(text, options())
        && version.value != MANIFEST_VERSION
    {
        return Err(parse_error(file, unsupported_version(&version)));
    }
    serde_saphyr::from_str_with_options::<raw::Manifest>(text, options())
        .map_err(|err| parse_error(file, translate(&err)))
}

/// Just the `version:` key of a manifest, ignoring the rest.
#[derive(serde::Deserialize)]
struct VersionProbe {
    #[serde(default)]
    version: Option<Located<u32>>,
}

/// The error for a `version:` this hubsync does not read.
pub(crate) fn unsupported_version(version: &Located<u32>) -> Diagnostic {
    let hint = if version.value > MANIFEST_VERSION {
        "this hubsync reads `version: 1`; upgrade hubsync to read newer manifests"
    } else {
        "set `version: 1`"
    };
    Diagnostic::new(
        version.location,
        format!(
            "unsupported manifest version {}; this hubsync reads version {MANIFEST_VERSION}",
            version.value
        ),
    )
    .with_hint(hint)
}

/// Parser options: the defaults with tighter alias limits. A manifest is a few hundred lines
/// written by hand; an input that replays a hundred thousand alias events is an attack (a
/// "billion laughs" bomb), and must fail fast instead of eating memory.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 32,
            max_aliases: 1_000,
            max_nodes: 200_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
        // YAML 1.2 booleans only: `private: no` silently meaning `false` is the "Norway problem",
        // and in a manifest that decides visibility it is better refused.
        strict_booleans: true,
        // Snippets are rendered by hubsync, not embedded in the error.
        with_snippet: false,
    }
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

fn parse_error(file: &Path, d: Diagnostic) -> ManifestError {
    ManifestError::Parse {
        file: file.to_path_buf(),
        location: d.location,
        message: d.message,
        hint: d.hint,
    }
}

/// The error under snippet and alias wrappers, which carry no message of their own.
fn original(err: &YamlError) -> &YamlError {
    match err {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            original(error)
        }
        other => other,
    }
}

fn translate(err: &YamlError) -> Diagnostic {
    let location = err
        .location()
        .map(Location::from_saphyr)
        .unwrap_or(Location::UNKNOWN);
    let inner = original(err);
    let location = location.or(inner
        .location()
        .map(Location::from_saphyr)
        .unwrap_or(Location::UNKNOWN));
    match inner {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let allowed = list(expected);
            match did_you_mean(field, expected) {
                Some(suggestion) => Diagnostic::new(
                    location,
                    format!("unknown key `{field}`; did you mean `{suggestion}`?"),
                )
                .with_hint(format!("the keys allowed here are {allowed}")),
                None => Diagnostic::new(location, format!("unknown key `{field}`"))
                    .with_hint(format!("the keys allowed here are {allowed}")),
            }
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let allowed = list(expected);
            let message = match did_you_mean(variant, expected) {
                Some(s) => {
                    format!(
                        "unknown value `{variant}`, expected one of {allowed}; did you mean `{s}`?"
                    )
                }
                None => format!("unknown value `{variant}`, expected one of {allowed}"),
            };
            Diagnostic::new(location, message)
        }
        YamlError::SerdeMissingField { field, .. } => {
            let d = Diagnostic::new(location, format!("missing key `{field}`"));
            match *field {
                "version" => d.with_hint("start the manifest with `version: 1`"),
                "repos" => d.with_hint("list the repos to sync under `repos:`"),
                "id" => d.with_hint("name the repo with `id: namespace/name`"),
                "local" => d.with_hint("name the local folder with `local: ./folder`"),
                other => d.with_hint(format!("add `{other}:`")),
            }
        }
        YamlError::DuplicateMappingKey { key, .. } => {
            let message = match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_string(),
            };
            Diagnostic::new(location, message)
                .with_hint("a key may appear once in a mapping; remove or merge the repeated one")
        }
        YamlError::InvalidScalar { ty, .. } => {
            Diagnostic::new(location, format!("expected {}", describe_type(ty)))
                .with_hint(TYPES_HINT)
        }
        YamlError::InvalidBooleanStrict { .. } => {
            Diagnostic::new(location, "expected `true` or `false`")
                .with_hint("write booleans as `true` or `false` (not `yes`/`no`/`on`/`off`)")
        }
        YamlError::NullIntoString { .. } => {
            Diagnostic::new(location, "expected a string, found an empty value")
                .with_hint("write a value after the `:`, or quote an empty string as `\"\"`")
        }
        YamlError::Unexpected { expected, .. } => {
            let d = Diagnostic::new(
                location,
                format!("expected {}", describe_expected(expected)),
            );
            if *expected == "sequence start" {
                d.with_hint("write a list as `[a, b]` or as `- a` lines, even for a single item")
            } else {
                d.with_hint(TYPES_HINT)
            }
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => Diagnostic::new(location, format!("expected {expected}, found {unexpected}"))
            .with_hint(TYPES_HINT),
        YamlError::UnknownAnchor { .. } => Diagnostic::new(
            location,
            "`*` starts a YAML alias, and no `&anchor` has this name",
        )
        .with_hint("quote values that start with `*`, such as globs: `\"*.json\"`"),
        YamlError::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Documents { .. },
            ..
        }
        | YamlError::MultipleDocuments { .. } => {
            Diagnostic::new(location, "the manifest holds more than one YAML document")
                .with_hint("keep one document: remove the extra `---` separator")
        }
        YamlError::Budget { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. }
        | YamlError::AliasReplayCounterOverflow { .. } => Diagnostic::new(
            location,
            format!(
                "the manifest is too large or expands too many aliases ({})",
                message_of(inner)
            ),
        )
        .with_hint("write the manifest out without deeply nested `&anchor`/`*alias` references"),
        YamlError::Eof { .. } => Diagnostic::new(location, "unexpected end of the manifest"),
        other => Diagnostic::new(location, message_of(other)),
    }
}

const TYPES_HINT: &str = "`hubsync schema` prints every key with the type it takes";

/// serde-saphyr's own user-facing wording, with control characters escaped.
fn message_of(err: &YamlError) -> String {
    sanitize(&UserMessageFormatter.format_message(err))
}

fn describe_expected(expected: &str) -> &str {
    match expected {
        "sequence start" => "a list",
        "mapping start" => "a mapping of `key: value` pairs",
        "string scalar" | "scalar" => "a single value, not a list or mapping",
        other => other,
    }
}

fn describe_type(ty: &str) -> &'static str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        "char" => "a single character",
        _ => "a different kind of value",
    }
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::raw::ByteSize;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("500MB"), Ok(ByteSize(500_000_000)));
        assert_eq!(ByteSize::parse("2GiB"), Ok(ByteSize(2 << 30)));
        assert_eq!(ByteSize::parse(" 1.5 GB "), Ok(ByteSize(1_500_000_000)));
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert!(ByteSize::parse("").is_err());
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("5XB").is_err());
    }

    #[test]
    fn byte_sizes_in_yaml() {
        let m = parse(
            "version: 1\ndefaults:\n  commit: { max_bytes: 1048576 }\nrepos:\n  - id: a/b\n    commit: { max_bytes: 2GiB }\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        let default = m.defaults.unwrap().commit.unwrap().value.max_bytes.unwrap();
        assert_eq!(default.value, ByteSize(1 << 20));
        assert_eq!(default.location, Location::new(3, 24));
        let repos = m.repos.unwrap().value;
        let repo = repos[0].value.commit.as_ref().unwrap();
        assert_eq!(
            repo.value.max_bytes.as_ref().unwrap().value,
            ByteSize(2 << 30)
        );
    }

    #[test]
    fn yaml_1_1_booleans_are_refused() {
        let err = parse(
            "version: 1\nrepos:\n  - id: a/b\n    private: no\n",
            Path::new("m.yaml"),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "m.yaml:4:14: expected `true` or `false`");
    }

    #[test]
    fn a_newer_version_is_reported_before_unknown_keys() {
        let err = parse(
            "version: 3\nrepos: []\nnew_feature: {}\n",
            Path::new("m.yaml"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.yaml:1:10: unsupported manifest version 3; this hubsync reads version 1"
        );
        assert_eq!(
            err.hints(),
            vec!["this hubsync reads `version: 1`; upgrade hubsync to read newer manifests"]
        );
    }

    #[test]
    fn blank_manifests() {
        for text in ["", "\n\n", "# only a comment\n", "---\n"] {
            let err = parse(text, Path::new("m.yaml")).unwrap_err();
            assert_eq!(
                err.to_string(),
                "m.yaml:1:1: the manifest is empty",
                "{text:?}"
            );
        }
    }
}
