//! The manifest: the YAML file that says which Hub repos should exist, what they hold and how
//! they are configured.
//!
//! This module owns the manifest's serde and JSON Schema types ([`raw`]), loading them with
//! errors that name `file:line:col` ([`parse`]), validating everything the manifest alone can
//! show ([`validate`]), resolving `local` paths against the manifest's folder and `${VAR}`
//! secrets from the environment, and the validated form the rest of hubsync reads
//! ([`Manifest`], [`RepoSpec`], [`FileMapping`]). It must not walk folders or call the Hub;
//! [`check_paths`], which only `stat`s the mapped folders, is the one filesystem check, kept apart
//! so `hubsync validate` judges the manifest alone.
//!
//! ```no_run
//! # fn main() -> Result<(), hubsync::manifest::ManifestError> {
//! use std::path::Path;
//! use hubsync::manifest;
//!
//! let m = manifest::load(Path::new("hubsync.yaml"), &manifest::process_env)?;
//! manifest::check_paths(&m)?;
//! for repo in &m.repos {
//!     println!("{} ({}): {} mappings", repo.id, repo.repo_type, repo.files.len());
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod parse;
pub mod raw;
mod span;
mod spec;
mod validate;

use std::path::Path;

pub use error::{Diagnostic, ManifestError};
pub use parse::parse;
pub use raw::{ByteSize, SpaceSdk};
pub use span::{Located, Location};
pub use spec::*;
pub use validate::{Env, MANIFEST_VERSION, check_paths, process_env, validate};

/// The manifest `-f` names when not given.
pub const DEFAULT_FILE: &str = "hubsync.yaml";

/// The command that regenerates `schemas/manifest.schema.json`.
pub const SCHEMA_REGENERATE_COMMAND: &str = "cargo run -- schema > schemas/manifest.schema.json";

/// Reads, parses and validates the manifest at `path`. Relative `local` paths resolve against
/// the manifest's folder, made absolute from the current folder; `env` supplies `${VAR}` secret
/// values. Does not look at the mapped folders (see [`check_paths`]).
pub fn load(path: &Path, env: Env<'_>) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parent = path.parent().unwrap_or(Path::new(""));
    // Absolute, so later stages (a hash cache, `watch`) do not depend on the current folder.
    // `std::path::absolute` only fails on an empty path or an unreadable current folder; falling
    // back to the relative folder keeps paths correct for this process.
    let base_dir = std::path::absolute(if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    })
    .unwrap_or_else(|_| parent.to_path_buf());
    from_str(&text, path, &base_dir, env)
}

/// Parses and validates manifest text. `file` names the manifest in messages; `base_dir` is the
/// folder relative `local` paths resolve against.
pub fn from_str(
    text: &str,
    file: &Path,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Manifest, ManifestError> {
    let raw = parse(text, file)?;
    validate(&raw, file, base_dir, env)
}

/// The manifest's JSON Schema (draft 2020-12), generated from [`raw::Manifest`].
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(raw::Manifest)
}

/// [`json_schema`] as pretty JSON with a final newline: the content of
/// `schemas/manifest.schema.json`.
pub fn json_schema_string() -> String {
    // `{:#}` on a `serde_json::Value` is its pretty form, and cannot fail.
    format!("{:#}\n", json_schema().as_value())
}
