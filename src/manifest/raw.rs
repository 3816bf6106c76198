//! The manifest as written: serde and JSON Schema types for manifest version 1.
//!
//! These types mirror the YAML one to one. Every struct denies unknown keys, and every value that
//! validation may reject is wrapped in [`Located`] so its error can name `file:line:col`. Defaults
//! are applied later, in [`super::validate`]: here an absent key is `None`, so the schema shows
//! what the user may write and `validate` decides what it means. The doc comments become the
//! JSON Schema descriptions that editors show.
//!
//! Required keys are `Option`s too, marked `#[schemars(required)]` for the schema: serde reports
//! a missing key at the end of the mapping, which can be lines away from it, while validation
//! knows where the mapping starts.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::span::Located;
use crate::api::RepoType;

/// A hubsync manifest: which Hugging Face Hub repos should exist, what they should contain and
/// how they are configured.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hubsync manifest")]
pub struct Manifest {
    /// Manifest format version; must be `1`.
    #[schemars(required, range(min = 1, max = 1))]
    pub version: Option<Located<u32>>,
    /// Hub base URL, for example `https://huggingface.co`. The `--endpoint` flag and the
    /// `HF_ENDPOINT` environment variable take precedence.
    #[serde(default)]
    pub endpoint: Option<Located<String>>,
    /// Settings every repo inherits unless it overrides them.
    #[serde(default)]
    pub defaults: Option<Defaults>,
    /// The repos to keep in sync (at least one).
    #[schemars(required, length(min = 1))]
    pub repos: Option<Located<Vec<Located<Repo>>>>,
}

/// Settings every repo inherits.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How changes are split into commits.
    #[serde(default)]
    pub commit: Option<Located<Commit>>,
}

/// How changes are split into commits, and their message. Each key falls back to
/// `defaults.commit`, then to the built-in default.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// Commit message (default: `Sync with hubsync`).
    #[serde(default)]
    pub message: Option<Located<String>>,
    /// Most files in one commit (default: 1000).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_files: Option<Located<u64>>,
    /// Most bytes in one commit: an integer number of bytes or a size such as `500MB` or
    /// `2GiB` (default: `5GB`). A single file larger than this still goes in a commit of its own.
    #[serde(default)]
    pub max_bytes: Option<Located<ByteSize>>,
}

/// One Hub repository and what it should hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// Repo id, `namespace/name` (a user or an organization, then the repo name).
    #[schemars(required)]
    pub id: Option<Located<String>>,
    /// Repo type: `model`, `dataset` or `space` (default: `model`).
    #[serde(default, rename = "type")]
    #[schemars(extend("default" = "model"))]
    pub repo_type: Option<Located<RepoType>>,
    /// Desired visibility: `true` private, `false` public. Absent: leave it as it is.
    #[serde(default)]
    pub private: Option<Located<bool>>,
    /// Create the repo when it does not exist (default: `true`).
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub create: Option<Located<bool>>,
    /// Branch the files are committed to (default: `main`); created from the default branch when
    /// missing.
    #[serde(default)]
    #[schemars(extend("default" = "main"))]
    pub revision: Option<Located<String>>,
    /// Local folders and the repo paths they map to.
    #[serde(default)]
    pub files: Option<Located<Vec<Located<FileMapping>>>>,
    /// Refuse a plan that deletes more files than this from the repo (default: 100).
    #[serde(default)]
    #[schemars(extend("default" = 100))]
    pub max_deletes: Option<Located<u64>>,
    /// Commit settings for this repo; each key overrides `defaults.commit`.
    #[serde(default)]
    pub commit: Option<Located<Commit>>,
    /// Branches to create when missing. Branches not listed are left alone.
    #[serde(default)]
    pub branches: Option<Located<Vec<Located<Branch>>>>,
    /// Tags to create when missing. Tags not listed are left alone.
    #[serde(default)]
    pub tags: Option<Located<Vec<Located<Tag>>>>,
    /// Space settings (only for `type: space`).
    #[serde(default)]
    pub space: Option<Located<Space>>,
}

/// A local folder mapped to a path prefix in the repo.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileMapping {
    /// Local folder; a relative path is relative to the manifest's folder.
    #[schemars(required)]
    pub local: Option<Located<String>>,
    /// Path prefix in the repo (default: the repo root). Must stay inside the repo: no `..`, no
    /// leading `/`.
    #[serde(default)]
    pub remote: Option<Located<String>>,
    /// Globs, relative to `local`, of the files to sync (default: every file).
    #[serde(default)]
    pub include: Option<Located<Vec<Located<String>>>>,
    /// Globs, relative to `local`, of files to leave out.
    #[serde(default)]
    pub exclude: Option<Located<Vec<Located<String>>>>,
    /// Delete repo files in this mapping's scope that are absent locally (default: `false`).
    #[serde(default)]
    pub prune: Option<Located<bool>>,
    /// Push a folder only once it holds this file, and push it as one commit (for `hubsync
    /// watch` beside a trainer).
    #[serde(default)]
    pub ready_marker: Option<Located<String>>,
    /// Keep only the newest folders matching a pattern on the Hub.
    #[serde(default)]
    pub keep_last: Option<Located<KeepLast>>,
}

/// Keep the `count` newest folders whose name matches `pattern`; older ones are deleted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepLast {
    /// Glob matched against folder names, for example `checkpoint-*`.
    #[schemars(required)]
    pub pattern: Option<Located<String>>,
    /// How many of the newest matching folders to keep (at least 1).
    #[schemars(required, range(min = 1))]
    pub count: Option<Located<u64>>,
}

/// A branch to create when missing.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Branch name.
    #[schemars(required)]
    pub name: Option<Located<String>>,
    /// Branch, tag or commit to start it from (default: the repo's default branch).
    #[serde(default)]
    pub from: Option<Located<String>>,
}

/// A tag to create when missing.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// Tag name.
    #[schemars(required)]
    pub name: Option<Located<String>>,
    /// What the tag points at (default: the repo's `revision`). A branch name: the tag is created
    /// at that branch's head after this apply's commits, then left alone. A commit id: the tag is
    /// moved when it points elsewhere.
    #[serde(default)]
    pub revision: Option<Located<String>>,
    /// Tag message.
    #[serde(default)]
    pub message: Option<Located<String>>,
}

/// Space settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// SDK, used when the Space is created (required when `create` is true).
    #[serde(default)]
    pub sdk: Option<Located<SpaceSdk>>,
    /// Hardware flavour, for example `cpu-basic`, `cpu-upgrade`, `t4-small`, `a10g-small`.
    #[serde(default)]
    pub hardware: Option<Located<String>>,
    /// Seconds of inactivity before the Space sleeps; `-1` means never.
    #[serde(default)]
    #[schemars(range(min = -1))]
    pub sleep_time: Option<Located<i64>>,
    /// Public environment variables; values are compared and shown in plans.
    #[serde(default)]
    #[schemars(schema_with = "variables_schema")]
    pub variables: Option<Located<BTreeMap<Located<String>, Located<String>>>>,
    /// Secrets, each written `${VAR}` and read from the environment variable `VAR`. Values are
    /// never printed.
    #[serde(default)]
    #[schemars(schema_with = "secrets_schema")]
    pub secrets: Option<Located<BTreeMap<Located<String>, Located<String>>>>,
}

/// Names of variables and secrets: they become environment variables in the Space.
const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

fn variables_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // Numbers and booleans are accepted and kept as written (`PORT: 7860`), so the schema must
    // not make editors flag them.
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": ENV_NAME_PATTERN },
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    })
}

fn secrets_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": ENV_NAME_PATTERN },
        "additionalProperties": {
            "type": "string",
            "pattern": "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$"
        }
    })
}

/// The SDK a Space runs with.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SpaceSdk {
    Gradio,
    Streamlit,
    Docker,
    Static,
}

impl SpaceSdk {
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceSdk::Gradio => "gradio",
            SpaceSdk::Streamlit => "streamlit",
            SpaceSdk::Docker => "docker",
            SpaceSdk::Static => "static",
        }
    }
}

impl fmt::Display for SpaceSdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A size in bytes, written as an integer (`1048576`) or a string with a unit (`500MB`,
/// `2GiB`). Decimal units are powers of 1000, binary units (`KiB`, `MiB`, …) powers of 1024.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `500MB`, `2GiB`, `1.5 GB` or a plain number of bytes.
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let trimmed = s.trim();
        // bytesize saturates absurd values to u64::MAX; that is still "a very large cap", which
        // is what the user asked for.
        match trimmed.parse::<bytesize::ByteSize>() {
            Ok(size) if !trimmed.is_empty() => Ok(ByteSize(size.as_u64())),
            _ => Err(not_a_size(s)),
        }
    }
}

fn not_a_size(s: &str) -> String {
    format!("`{s}` is not a size; write a number of bytes or a size such as `500MB` or `2GiB`")
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // An explicit visitor rather than `#[serde(untagged)]`: an untagged enum would hide what
        // was expected behind "data did not match any variant".
        struct ByteSizeVisitor;

        impl Visitor<'_> for ByteSizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a size such as `500MB` or `2GiB`")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                // Negative: the same message as any other unreadable size.
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(not_a_size(&v.to_string())))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number of bytes, or a size with a unit such as `500MB` or `2GiB`.",
            "oneOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*[A-Za-z]*\\s*$" }
            ]
        })
    }
}
