//! Validation: checks a parsed manifest against every rule that the manifest alone can show,
//! applies defaults, resolves `local` paths and `${VAR}` secrets, and reports all problems at
//! once, each at its line and column.
//!
//! Nothing here touches the filesystem or the network; [`check_paths`] is the separate,
//! filesystem-reading check that `plan` runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::error::{Diagnostic, ManifestError};
use super::raw;
use super::span::{Located, Location};
use super::spec::{
    BranchSpec, CommitSettings, DEFAULT_MAX_DELETES, DEFAULT_REVISION, FileMapping, KeepLast,
    Manifest, RepoSpec, SpaceSecret, SpaceSpec, TagSpec,
};
use crate::api::{RepoId, RepoType, validate_ref_name, validate_repo_path};
use crate::util::secret::Secret;

/// The manifest format version this hubsync reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Reads an environment variable; `None` when unset. Passed in so tests are deterministic.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for [`Env`]. Values that are not UTF-8 count as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Validates a parsed manifest and resolves it. `file` names the manifest in messages;
/// `base_dir` is the folder relative `local` paths are resolved against; `env` supplies the
/// `${VAR}` values of Space secrets. Returns every problem found, sorted by position.
pub fn validate(
    raw: &raw::Manifest,
    file: &Path,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Manifest, ManifestError> {
    let mut v = Validator {
        diagnostics: Vec::new(),
        base_dir,
        env,
    };
    let manifest = v.manifest(raw, file);
    if v.diagnostics.is_empty() {
        Ok(manifest)
    } else {
        let mut diagnostics = v.diagnostics;
        diagnostics.sort_by_key(|d| d.location);
        Err(ManifestError::Invalid {
            file: file.to_path_buf(),
            diagnostics,
        })
    }
}

/// Checks that every mapping's `local` folder exists and is a folder. Separate from
/// [`validate`] because it reads the filesystem: `validate` must judge a manifest alone (in CI,
/// before a training run has written anything), `plan` needs the folders.
pub fn check_paths(manifest: &Manifest) -> Result<(), ManifestError> {
    let mut diagnostics = Vec::new();
    for repo in &manifest.repos {
        for mapping in &repo.files {
            let problem = match std::fs::metadata(&mapping.local_path) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => "is not a folder",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
                Err(_) => "cannot be read",
            };
            diagnostics.push(
                Diagnostic::new(
                    mapping.location,
                    format!(
                        "local folder `{}` of `{}` {problem} (resolved to `{}`)",
                        mapping.local.display(),
                        repo.id,
                        mapping.local_path.display()
                    ),
                )
                .with_hint(
                    "create the folder, or fix `local:` (a relative path is relative to the manifest's folder)",
                ),
            );
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(manifest.error(diagnostics))
    }
}

struct Validator<'a> {
    diagnostics: Vec<Diagnostic>,
    base_dir: &'a Path,
    env: Env<'a>,
}

impl Validator<'_> {
    fn error(&mut self, location: Location, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(location, message).with_hint(hint));
    }

    /// The value of a required key, or an error at the start of its mapping. serde cannot tell
    /// `id:` (no value) from no `id` at all, so the message covers both.
    fn required<'r, T>(
        &mut self,
        value: &'r Option<Located<T>>,
        key: &str,
        mapping: Location,
        hint: &str,
    ) -> Option<&'r Located<T>> {
        if value.is_none() {
            self.error(
                mapping.or(Location::new(1, 1)),
                format!("`{key}` is missing or empty"),
                hint,
            );
        }
        value.as_ref()
    }

    fn manifest(&mut self, raw: &raw::Manifest, file: &Path) -> Manifest {
        let top = Location::new(1, 1);
        let version = self.required(
            &raw.version,
            "version",
            top,
            "start the manifest with `version: 1`",
        );
        if let Some(version) = version
            && version.value != MANIFEST_VERSION
        {
            self.diagnostics
                .push(super::parse::unsupported_version(version));
        }

        let endpoint = raw.endpoint.as_ref().and_then(|e| self.endpoint(e));

        let defaults = raw
            .defaults
            .as_ref()
            .and_then(|d| d.commit.as_ref())
            .map(|c| self.commit(c, &CommitSettings::default()))
            .unwrap_or_default();

        let no_repos = Vec::new();
        let repo_list = self
            .required(
                &raw.repos,
                "repos",
                top,
                "list the repos to sync under `repos:`",
            )
            .map_or(&no_repos, |r| &r.value);
        if let Some(repos) = &raw.repos
            && repos.value.is_empty()
        {
            self.error(
                repos.location.or(top),
                "`repos` is empty; the manifest syncs nothing",
                "list at least one repo under `repos:`, for example `- id: alice/tiny-bert`",
            );
        }

        let mut repos = Vec::new();
        let mut seen: BTreeMap<(String, RepoType), Location> = BTreeMap::new();
        for entry in repo_list {
            let Some(repo) = self.repo(entry, &defaults) else {
                continue;
            };
            let key = (repo.id.to_string(), repo.repo_type);
            if let Some(first) = seen.get(&key) {
                self.error(
                    repo.location,
                    format!(
                        "repo `{}` ({}) is listed twice; the first entry is at line {}",
                        repo.id, repo.repo_type, first.line
                    ),
                    "merge the two entries into one",
                );
            } else {
                seen.insert(key, repo.location);
            }
            repos.push(repo);
        }

        Manifest {
            file: file.to_path_buf(),
            base_dir: self.base_dir.to_path_buf(),
            endpoint,
            repos,
        }
    }

    fn endpoint(&mut self, endpoint: &Located<String>) -> Option<String> {
        let text = endpoint.value.trim();
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Some(text.trim_end_matches('/').to_string())
            }
            _ => {
                self.error(
                    endpoint.location,
                    format!("`endpoint` `{text}` is not an http(s) URL"),
                    "write the Hub's base URL, for example `https://huggingface.co`",
                );
                None
            }
        }
    }

    /// Applies a `commit:` block over `base`.
    fn commit(&mut self, commit: &Located<raw::Commit>, base: &CommitSettings) -> CommitSettings {
        let c = &commit.value;
        let mut out = base.clone();
        if let Some(message) = &c.message {
            if message.value.trim().is_empty() {
                self.error(
                    message.location.or(commit.location),
                    "`message` is empty",
                    "write a commit message, or remove `message` to use the default",
                );
            } else {
                out.message = message.value.clone();
            }
        }
        if let Some(max_files) = &c.max_files {
            if max_files.value == 0 {
                self.error(
                    max_files.location.or(commit.location),
                    "`max_files` must be at least 1",
                    "set `max_files` to the most files one commit may hold, for example 1000",
                );
            } else {
                out.max_files = max_files.value;
            }
        }
        if let Some(max_bytes) = &c.max_bytes {
            if max_bytes.value.0 == 0 {
                self.error(
                    max_bytes.location.or(commit.location),
                    "`max_bytes` must be at least 1 byte",
                    "set `max_bytes` to the most bytes one commit may hold, for example `5GB`",
                );
            } else {
                out.max_bytes = max_bytes.value.0;
            }
        }
        out
    }

    fn repo(&mut self, entry: &Located<raw::Repo>, defaults: &CommitSettings) -> Option<RepoSpec> {
        let raw = &entry.value;
        let location = entry.location;

        let raw_id = self.required(
            &raw.id,
            "id",
            location,
            "name the repo with `id: namespace/name`",
        );
        let id = raw_id.and_then(|raw_id| match RepoId::parse(&raw_id.value) {
            Ok(id) => Some(id),
            Err(why) => {
                self.error(
                    raw_id.location,
                    why,
                    "write the repo id as `namespace/name`, for example `alice/tiny-bert`",
                );
                None
            }
        });
        let shown_id = raw_id.map_or("", |i| i.value.as_str());
        let repo_type = raw.repo_type.as_ref().map_or(RepoType::Model, |t| t.value);
        let create = raw.create.as_ref().is_none_or(|c| c.value);

        let revision = match &raw.revision {
            Some(r) => {
                self.ref_name(r, "revision");
                r.value.clone()
            }
            None => DEFAULT_REVISION.to_string(),
        };

        let files = raw
            .files
            .as_ref()
            .map(|files| {
                files
                    .value
                    .iter()
                    .filter_map(|m| self.mapping(m))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        self.overlapping_mappings(&files);

        let max_deletes = raw
            .max_deletes
            .as_ref()
            .map_or(DEFAULT_MAX_DELETES, |m| m.value);
        let commit = raw
            .commit
            .as_ref()
            .map(|c| self.commit(c, defaults))
            .unwrap_or_else(|| defaults.clone());

        let branches = self.branches(raw.branches.as_ref());
        let tags = self.tags(raw.tags.as_ref(), &revision, &branches);

        let space = match &raw.space {
            Some(space) if repo_type != RepoType::Space => {
                self.error(
                    space.location,
                    format!("`space:` is only for Spaces, but `{shown_id}` is a {repo_type}"),
                    "remove `space:`, or set `type: space`",
                );
                None
            }
            Some(space) => Some(self.space(space)),
            None => None,
        };
        if repo_type == RepoType::Space && create && space.as_ref().and_then(|s| s.sdk).is_none() {
            self.error(
                raw.space.as_ref().map_or(location, |s| s.location),
                format!(
                    "Space `{shown_id}` is created when missing (`create` defaults to true) but names no SDK"
                ),
                "add `space: { sdk: gradio }` (or `streamlit`, `docker`, `static`), or set `create: false`",
            );
        }

        Some(RepoSpec {
            id: id?,
            repo_type,
            private: raw.private.as_ref().map(|p| p.value),
            create,
            revision,
            files,
            max_deletes,
            commit,
            branches,
            tags,
            space,
            location,
        })
    }

    fn ref_name(&mut self, name: &Located<String>, key: &str) -> bool {
        match validate_ref_name(&name.value) {
            Ok(()) => true,
            Err(why) => {
                self.error(
                    name.location,
                    format!("`{key}`: {why}"),
                    "use a plain branch or tag name such as `main`, `dev` or `v1.0`",
                );
                false
            }
        }
    }

    fn mapping(&mut self, entry: &Located<raw::FileMapping>) -> Option<FileMapping> {
        let raw = &entry.value;
        let location = entry.location;
        let mut ok = true;

        let raw_local = self.required(
            &raw.local,
            "local",
            location,
            "name the local folder with `local: ./folder` (relative to the manifest)",
        );
        let local = PathBuf::from(raw_local.map_or("", |l| l.value.as_str()));
        match raw_local {
            None => ok = false,
            Some(l) if l.value.trim().is_empty() => {
                self.error(
                    l.location.or(location),
                    "`local` is empty",
                    "name a local folder, for example `local: ./outputs` (relative to the manifest)",
                );
                ok = false;
            }
            Some(_) => {}
        }
        let local_path = resolve_local(self.base_dir, &local);

        let remote = match &raw.remote {
            None => String::new(),
            Some(remote) => match normalize_remote(&remote.value) {
                Ok(r) => r,
                Err(why) => {
                    self.error(
                        remote.location.or(location),
                        format!("remote path {why}"),
                        "write `remote` as a folder inside the repo, such as `weights`, or leave it out for the repo root",
                    );
                    ok = false;
                    String::new()
                }
            },
        };

        let include = self.globs(raw.include.as_ref(), "include");
        let exclude = self.globs(raw.exclude.as_ref(), "exclude");
        if let Some(list) = &raw.include
            && list.value.is_empty()
        {
            self.error(
                list.location.or(location),
                "`include` is empty, so this mapping matches no file",
                "remove `include` to sync every file, or list globs such as `*.safetensors`",
            );
        }

        let ready_marker = raw.ready_marker.as_ref().and_then(|m| {
            match validate_repo_path(m.value.trim_end_matches('/')) {
                Ok(()) => Some(m.value.trim_end_matches('/').to_string()),
                Err(why) => {
                    self.error(
                        m.location.or(location),
                        format!("`ready_marker` {why}"),
                        "name a file inside each pushed folder, for example `trainer_state.json`",
                    );
                    None
                }
            }
        });

        let keep_last = raw.keep_last.as_ref().and_then(|k| {
            let pattern = self.required(
                &k.value.pattern,
                "pattern",
                k.location,
                "name the folders to keep with a glob, for example `pattern: \"checkpoint-*\"`",
            );
            let pattern_ok = pattern.is_some_and(|p| self.glob(p, "keep_last.pattern"));
            let count = self.required(
                &k.value.count,
                "count",
                k.location,
                "set how many of the newest matching folders to keep, for example `count: 3`",
            );
            if let Some(count) = count
                && count.value == 0
            {
                self.error(
                    count.location.or(k.location),
                    "`keep_last.count` must be at least 1",
                    "set how many of the newest matching folders to keep, for example `count: 3`",
                );
            }
            match (pattern, count) {
                (Some(p), Some(c)) if pattern_ok && c.value > 0 => Some(KeepLast {
                    pattern: p.value.clone(),
                    count: c.value,
                }),
                _ => None,
            }
        });

        ok.then(|| FileMapping {
            local,
            local_path,
            remote,
            include: include.unwrap_or_default(),
            exclude: exclude.unwrap_or_default(),
            prune: raw.prune.as_ref().is_some_and(|p| p.value),
            ready_marker,
            keep_last,
            location,
        })
    }

    /// Checks a list of globs; `None` when any is invalid (the errors are recorded).
    fn globs(
        &mut self,
        list: Option<&Located<Vec<Located<String>>>>,
        key: &str,
    ) -> Option<Vec<String>> {
        let list = list?;
        let mut all_ok = true;
        for glob in &list.value {
            all_ok &= self.glob(glob, key);
        }
        all_ok.then(|| list.value.iter().map(|g| g.value.clone()).collect())
    }

    fn glob(&mut self, glob: &Located<String>, key: &str) -> bool {
        match globset::Glob::new(&glob.value) {
            Ok(_) => true,
            Err(e) => {
                self.error(
                    glob.location,
                    format!("invalid glob `{}` in `{key}`: {}", glob.value, e.kind()),
                    "globs use `*`, `**`, `?`, `[abc]` and `{a,b}`; escape a literal `[` or `{` as `[[]` or `[{]`",
                );
                false
            }
        }
    }

    /// Refuses two mappings that the manifest alone shows could write the same repo path: the
    /// same `remote` prefix and the same include globs (or none). Overlaps that depend on the
    /// files on disk are `plan`'s to detect.
    fn overlapping_mappings(&mut self, files: &[FileMapping]) {
        for (i, b) in files.iter().enumerate() {
            let b_includes: BTreeSet<&String> = b.include.iter().collect();
            if let Some(a) = files[..i].iter().find(|a| {
                a.remote == b.remote && a.include.iter().collect::<BTreeSet<_>>() == b_includes
            }) {
                let target = if b.remote.is_empty() {
                    "the repo root".to_string()
                } else {
                    format!("`{}`", b.remote)
                };
                let why = if b.include.is_empty() {
                    "neither has `include` globs"
                } else {
                    "both have the same `include` globs"
                };
                self.error(
                    b.location,
                    format!(
                        "this mapping and the one at line {} both write to {target} and {why}, so both could produce the same file",
                        a.location.line
                    ),
                    "give each mapping its own `remote`, or split the files between them with `include`",
                );
            }
        }
    }

    fn branches(&mut self, list: Option<&Located<Vec<Located<raw::Branch>>>>) -> Vec<BranchSpec> {
        let mut out: Vec<BranchSpec> = Vec::new();
        let mut seen: BTreeMap<&str, Location> = BTreeMap::new();
        for entry in list.map(|l| l.value.as_slice()).unwrap_or_default() {
            let b = &entry.value;
            let Some(name) = self.required(
                &b.name,
                "name",
                entry.location,
                "name the branch with `name: dev`",
            ) else {
                continue;
            };
            let mut ok = self.ref_name(name, "branches.name");
            if let Some(from) = &b.from {
                ok &= self.ref_name(from, "branches.from");
            }
            if let Some(first) = seen.get(name.value.as_str()) {
                self.error(
                    name.location,
                    format!(
                        "branch `{}` is listed twice; the first is at line {}",
                        name.value, first.line
                    ),
                    "remove one of the two entries",
                );
                ok = false;
            } else {
                seen.insert(&name.value, name.location);
            }
            if ok {
                out.push(BranchSpec {
                    name: name.value.clone(),
                    from: b.from.as_ref().map(|f| f.value.clone()),
                });
            }
        }
        out
    }

    fn tags(
        &mut self,
        list: Option<&Located<Vec<Located<raw::Tag>>>>,
        revision: &str,
        branches: &[BranchSpec],
    ) -> Vec<TagSpec> {
        let mut out = Vec::new();
        let mut seen: BTreeMap<&str, Location> = BTreeMap::new();
        for entry in list.map(|l| l.value.as_slice()).unwrap_or_default() {
            let t = &entry.value;
            let Some(name) = self.required(
                &t.name,
                "name",
                entry.location,
                "name the tag with `name: v1.0`",
            ) else {
                continue;
            };
            let mut ok = self.ref_name(name, "tags.name");
            if let Some(rev) = &t.revision {
                ok &= self.ref_name(rev, "tags.revision");
            }
            if let Some(first) = seen.get(name.value.as_str()) {
                self.error(
                    name.location,
                    format!(
                        "tag `{}` is listed twice; the first is at line {}",
                        name.value, first.line
                    ),
                    "remove one of the two entries",
                );
                ok = false;
            } else {
                seen.insert(&name.value, name.location);
            }
            if name.value == revision || branches.iter().any(|b| b.name == name.value) {
                // A ref name that is both a branch and a tag makes `revision: NAME` ambiguous on
                // the Hub.
                self.error(
                    name.location,
                    format!("tag `{}` has the same name as a branch", name.value),
                    "give the tag a name no branch uses, such as `v1.0`",
                );
                ok = false;
            }
            if ok {
                out.push(TagSpec {
                    name: name.value.clone(),
                    revision: t
                        .revision
                        .as_ref()
                        .map_or_else(|| revision.to_string(), |r| r.value.clone()),
                    message: t.message.as_ref().map(|m| m.value.clone()),
                });
            }
        }
        out
    }

    fn space(&mut self, space: &Located<raw::Space>) -> SpaceSpec {
        let s = &space.value;

        let hardware = s.hardware.as_ref().and_then(|h| {
            let valid = !h.value.is_empty()
                && h.value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if valid {
                Some(h.value.clone())
            } else {
                self.error(
                    h.location,
                    format!("`hardware` `{}` is not a hardware flavour name", h.value),
                    "use a flavour such as `cpu-basic`, `cpu-upgrade`, `t4-small` or `a10g-small` (see `GET /api/spaces/hardware`)",
                );
                None
            }
        });

        let sleep_time = s.sleep_time.as_ref().and_then(|t| {
            if t.value == -1 || t.value > 0 {
                Some(t.value)
            } else {
                self.error(
                    t.location,
                    format!("`sleep_time` {} is not allowed", t.value),
                    "set `sleep_time` to a number of seconds (at least 1), or -1 to never sleep",
                );
                None
            }
        });

        let mut variables = BTreeMap::new();
        if let Some(vars) = &s.variables {
            for (key, value) in &vars.value {
                if self.env_key(key, "variable") {
                    variables.insert(key.value.clone(), value.value.clone());
                }
            }
        }

        let mut secrets = BTreeMap::new();
        if let Some(list) = &s.secrets {
            for (key, value) in &list.value {
                let key_ok = self.env_key(key, "secret");
                if variables.contains_key(&key.value) {
                    self.error(
                        key.location,
                        format!("`{}` is both a variable and a secret", key.value),
                        "keep it in one of `variables` or `secrets`",
                    );
                    continue;
                }
                if let Some(secret) = self.secret(key, value)
                    && key_ok
                {
                    secrets.insert(key.value.clone(), secret);
                }
            }
        }

        SpaceSpec {
            sdk: s.sdk.as_ref().map(|s| s.value),
            hardware,
            sleep_time,
            variables,
            secrets,
        }
    }

    /// Variable and secret names become environment variables in the Space.
    fn env_key(&mut self, key: &Located<String>, what: &str) -> bool {
        if is_env_name(&key.value) {
            true
        } else {
            self.error(
                key.location,
                format!(
                    "{what} name `{}` is not a valid environment variable name",
                    key.value
                ),
                "use letters, digits and `_`, not starting with a digit, for example `MODEL_ID`",
            );
            false
        }
    }

    /// Resolves `${VAR}` from the environment. Never puts the value in a message: a secret
    /// written in clear in the manifest is refused without echoing it.
    fn secret(&mut self, key: &Located<String>, value: &Located<String>) -> Option<SpaceSecret> {
        let Some(var) = env_reference(&value.value) else {
            self.error(
                value.location.or(key.location),
                format!(
                    "secret `{}` must reference an environment variable as `${{VAR}}`",
                    key.value
                ),
                format!(
                    "write `{}: \"${{{}}}\"` and set that variable; never put a secret value in the manifest",
                    key.value, key.value
                ),
            );
            return None;
        };
        match (self.env)(var) {
            Some(v) if !v.is_empty() => Some(SpaceSecret {
                env_var: var.to_string(),
                value: Secret::new(v),
            }),
            found => {
                let state = if found.is_some() {
                    "is empty"
                } else {
                    "is not set"
                };
                self.error(
                    value.location.or(key.location),
                    format!(
                        "secret `{}` reads the environment variable `{var}`, which {state}",
                        key.value
                    ),
                    format!("set `{var}` in the environment hubsync runs in (in CI, from its secret store)"),
                );
                None
            }
        }
    }
}

/// `VAR` when `value` is exactly `${VAR}`.
fn env_reference(value: &str) -> Option<&str> {
    let name = value.trim().strip_prefix("${")?.strip_suffix('}')?;
    is_env_name(name).then_some(name)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `remote` without a trailing `/` (users write `weights/`), checked to stay inside the repo.
fn normalize_remote(remote: &str) -> Result<String, String> {
    if remote.starts_with('/') {
        return Err(format!(
            "`{remote}` is absolute; it must be relative to the repo root"
        ));
    }
    let trimmed = remote.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    validate_repo_path(trimmed)
        .map(|()| trimmed.to_string())
        .map_err(|why| why.replace(&format!("`{trimmed}`"), &format!("`{remote}`")))
}

/// `local` joined onto the manifest's folder, without `.` components (`./outputs` and `outputs`
/// resolve the same). `..` is kept: resolving it lexically would be wrong under symlinks.
fn resolve_local(base_dir: &Path, local: &Path) -> PathBuf {
    let joined = if local.is_absolute() {
        local.to_path_buf()
    } else {
        base_dir.join(local)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        if c != Component::CurDir {
            out.push(c);
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references() {
        assert_eq!(env_reference("${API_KEY}"), Some("API_KEY"));
        assert_eq!(env_reference(" ${_X1} "), Some("_X1"));
        assert_eq!(env_reference("$API_KEY"), None);
        assert_eq!(env_reference("${1X}"), None);
        assert_eq!(env_reference("prefix-${X}"), None);
        assert_eq!(env_reference("hf_secret"), None);
    }

    #[test]
    fn remotes() {
        assert_eq!(normalize_remote("weights/").as_deref(), Ok("weights"));
        assert_eq!(normalize_remote("").as_deref(), Ok(""));
        assert_eq!(normalize_remote("a/b").as_deref(), Ok("a/b"));
        assert!(normalize_remote("/weights").is_err());
        assert!(normalize_remote("../x").is_err());
        assert!(normalize_remote("a/./b").is_err());
    }

    #[test]
    fn local_paths_resolve_against_the_manifest_folder() {
        let base = Path::new("/repo/conf");
        assert_eq!(
            resolve_local(base, Path::new("./outputs")),
            PathBuf::from("/repo/conf/outputs")
        );
        assert_eq!(
            resolve_local(base, Path::new("../data")),
            PathBuf::from("/repo/conf/../data")
        );
        assert_eq!(
            resolve_local(base, Path::new("/abs/x")),
            PathBuf::from("/abs/x")
        );
        assert_eq!(
            resolve_local(Path::new(""), Path::new(".")),
            PathBuf::from(".")
        );
    }
}
