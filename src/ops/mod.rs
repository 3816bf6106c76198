//! Library entry points, one per verb: they wire the stages together (manifest → local scan →
//! remote snapshot → plan → apply) and return data; they never print. `cli` renders.

pub mod demo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::api::RepoId;
use crate::apply::SecretValues;
use crate::client::HubClient;
use crate::local::{HashCache, PathFilter, ScanOptions, ScanResult, ScanSpec};
use crate::manifest::{self, Manifest};
use crate::plan::{
    self, Action, CommitSettings, DesiredFile, DesiredRepo, DesiredSpace, Plan, Scope, TagSpec,
};
use crate::remote::{self, Target};
use crate::render::TextDiffs;
use crate::util::secret::Secret;
use crate::{Error, env};

/// The Hub hubsync talks to when nothing says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Changed text files up to this size get a unified diff in the human plan.
const DIFF_MAX_BYTES: u64 = 64 * 1024;
/// At most this many diffs per plan.
const DIFF_MAX_FILES: usize = 20;

/// Where to find the Hub and how to authenticate, resolved from flags, environment and manifest.
#[derive(Clone, Debug)]
pub struct HubSettings {
    pub endpoint: String,
    pub token: Option<Secret<String>>,
}

impl HubSettings {
    /// Endpoint: `--endpoint` > `HF_ENDPOINT` > the manifest's `endpoint:` > huggingface.co.
    /// Token: `--token` > `HF_TOKEN` > the token file `hf` writes (`$HF_HOME/token`).
    pub fn resolve(
        endpoint_flag: Option<&str>,
        token_flag: Option<&str>,
        manifest_endpoint: Option<&str>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> HubSettings {
        let endpoint = endpoint_flag
            .map(str::to_string)
            .or_else(|| getenv(env::HF_ENDPOINT).filter(|s| !s.is_empty()))
            .or_else(|| manifest_endpoint.map(str::to_string))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = token_flag
            .map(str::to_string)
            .or_else(|| getenv(env::HF_TOKEN).filter(|s| !s.is_empty()))
            .or_else(|| {
                let home = getenv(env::HF_HOME)
                    .map(PathBuf::from)
                    .or_else(|| getenv("HOME").map(|h| Path::new(&h).join(".cache/huggingface")))?;
                let text = std::fs::read_to_string(home.join("token")).ok()?;
                Some(text.trim().to_string()).filter(|t| !t.is_empty())
            })
            .map(Secret::new);
        HubSettings {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
        }
    }

    pub fn client(&self) -> Result<HubClient, Error> {
        Ok(HubClient::builder(&self.endpoint)
            .token(self.token.clone())
            .build()?)
    }
}

/// What `plan` needs.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub manifest: PathBuf,
    /// Only these repos (`namespace/name`); empty means all.
    pub repos: Vec<String>,
    pub endpoint: Option<String>,
    pub token: Option<String>,
    /// Fetch old versions of small changed text files for unified diffs.
    pub diffs: bool,
}

/// A computed plan and what came with it.
pub struct Planned {
    pub manifest: Manifest,
    pub plan: Plan,
    pub diffs: TextDiffs,
    /// Things skipped on purpose during the scan (symlinks, …), already worded.
    pub warnings: Vec<String>,
    pub hub: HubSettings,
    pub client: HubClient,
    pub secrets: SecretValues,
    pub scan: crate::local::ScanStats,
}

/// Loads and validates the manifest, keeping only the `--repo` selection.
pub fn load_manifest(path: &Path, repos: &[String]) -> Result<Manifest, Error> {
    load_manifest_with_env(path, repos, &manifest::process_env)
}

/// [`load_manifest`] with another environment for the manifest's `${VAR}` values (`hubsync
/// demo` gives its Space a secret this way, without touching the process environment).
pub fn load_manifest_with_env(
    path: &Path,
    repos: &[String],
    getenv: manifest::Env<'_>,
) -> Result<Manifest, Error> {
    let mut m = manifest::load(path, getenv)?;
    if !repos.is_empty() {
        for r in repos {
            if !m.repos.iter().any(|spec| spec.id.to_string() == *r) {
                return Err(Error::Usage(format!(
                    "`--repo {r}` is not in `{}`; it lists: {}",
                    path.display(),
                    m.repos
                        .iter()
                        .map(|s| format!("`{}`", s.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        m.repos.retain(|spec| repos.contains(&spec.id.to_string()));
    }
    Ok(m)
}

/// The secret values a manifest holds, for apply.
pub fn secret_values(m: &Manifest) -> SecretValues {
    let mut out = BTreeMap::new();
    for r in &m.repos {
        if let Some(space) = &r.space {
            for (k, s) in &space.secrets {
                out.insert((r.id.to_string(), k.clone()), s.value.clone());
            }
        }
    }
    out
}

/// The hash cache of a manifest: `.hubsync/hash-cache.json` beside it.
pub fn cache_path(m: &Manifest) -> PathBuf {
    m.base_dir.join(".hubsync").join("hash-cache.json")
}

/// The folders to scan for a manifest: one [`ScanSpec`] per file mapping, in manifest order
/// (the order [`desired`] expects the scan's trees in).
pub fn scan_specs(m: &Manifest) -> Vec<ScanSpec> {
    m.repos
        .iter()
        .flat_map(|r| &r.files)
        .map(|f| ScanSpec {
            root: f.local_path.clone(),
            include: f.include.clone(),
            exclude: f.exclude.clone(),
        })
        .collect()
}

/// The remote side to read for a manifest: one [`Target`] per repo.
pub fn targets(m: &Manifest) -> Vec<Target> {
    m.repos
        .iter()
        .map(|r| Target {
            repo_type: r.repo_type,
            id: r.id.clone(),
            revision: r.revision.clone(),
        })
        .collect()
}

/// What each repo of the manifest should look like, given the scan of [`scan_specs`]: the
/// planner's input. Pure: no I/O. Fails when two mappings of one repo produce the same remote
/// path from different local files.
pub fn desired(m: &Manifest, scan: &ScanResult) -> Result<Vec<DesiredRepo>, Error> {
    assert_eq!(
        scan.trees.len(),
        m.mapping_count(),
        "the scan must come from `scan_specs` of this manifest"
    );
    let mut desired = Vec::new();
    let mut trees = scan.trees.iter();
    for r in &m.repos {
        let mut files: BTreeMap<String, DesiredFile> = BTreeMap::new();
        let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut prune_scopes = Vec::new();
        let mut retention = Vec::new();
        for f in &r.files {
            let tree = trees.next().expect("one tree per mapping");
            for (rel, lf) in &tree.files {
                let remote_path = f.remote_path(rel);
                if let Some(other) = origin.get(&remote_path)
                    && *other != lf.abs
                {
                    return Err(m
                        .error(vec![manifest::Diagnostic::new(
                            f.location,
                            format!(
                                "two mappings of `{}` produce `{remote_path}`: `{}` and `{}`",
                                r.id,
                                other.display(),
                                lf.abs.display()
                            ),
                        )
                        .with_hint("give the mappings different `remote` prefixes, or narrow their `include`/`exclude`")])
                        .into());
                }
                origin.insert(remote_path.clone(), lf.abs.clone());
                files.insert(
                    remote_path,
                    DesiredFile {
                        local_path: lf.abs.clone(),
                        size: lf.size,
                        mtime_ns: lf.mtime_ns,
                        sha256: lf.sha256.clone(),
                        git_oid: lf.git_oid.clone(),
                        binary: lf.binary,
                    },
                );
            }
            let scope = Scope {
                prefix: f.remote.clone(),
                filter: PathFilter::new(&f.include, &f.exclude)?,
            };
            if let Some(k) = &f.keep_last {
                retention.push(plan::Retention::new(
                    scope.clone(),
                    &k.pattern,
                    k.count as usize,
                )?);
            }
            if f.prune {
                prune_scopes.push(scope);
            }
        }
        desired.push(DesiredRepo {
            id: r.id.clone(),
            repo_type: r.repo_type,
            revision: r.revision.clone(),
            private: r.private,
            create: r.create,
            files,
            prune_scopes,
            retention,
            max_deletes: r.max_deletes as usize,
            commit: CommitSettings {
                message: r.commit.message.clone(),
                max_files: r.commit.max_files as usize,
                max_bytes: r.commit.max_bytes,
            },
            branches: r
                .branches
                .iter()
                .map(|b| {
                    (
                        b.name.clone(),
                        b.from.clone().unwrap_or_else(|| "main".into()),
                    )
                })
                .collect(),
            tags: r
                .tags
                .iter()
                .map(|t| TagSpec {
                    name: t.name.clone(),
                    revision: t.revision.clone(),
                    message: t.message.clone(),
                })
                .collect(),
            space: r.space.as_ref().map(|s| DesiredSpace {
                sdk: s.sdk.map(|k| k.as_str().to_string()),
                hardware: s.hardware.clone(),
                sleep_time: s.sleep_time,
                variables: Some(s.variables.clone()),
                secrets: Some(
                    s.secrets
                        .iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect(),
                ),
            }),
        });
    }

    Ok(desired)
}

/// manifest → local scan → remote snapshot → plan.
pub async fn plan(
    opts: &PlanOptions,
    progress: impl Fn(crate::local::ProgressEvent),
) -> Result<Planned, Error> {
    let m = load_manifest(&opts.manifest, &opts.repos)?;
    plan_manifest(m, opts, progress).await
}

/// [`plan()`] for a manifest already loaded (and perhaps adjusted: `watch` adds excludes for
/// files that are not ready yet). `opts.manifest` and `opts.repos` are not read again.
pub async fn plan_manifest(
    m: Manifest,
    opts: &PlanOptions,
    progress: impl Fn(crate::local::ProgressEvent),
) -> Result<Planned, Error> {
    manifest::check_paths(&m)?;
    let hub = HubSettings::resolve(
        opts.endpoint.as_deref(),
        opts.token.as_deref(),
        m.endpoint.as_deref(),
        &|k| std::env::var(k).ok(),
    );
    let client = hub.client()?;

    let mut cache = HashCache::load(cache_path(&m));
    let scan = crate::local::scan(
        &scan_specs(&m),
        &mut cache,
        &ScanOptions::default(),
        progress,
    )
    .await?;
    let scan = scan.into_complete()?;
    // A cache that cannot be written only costs time next run.
    if let Err(e) = cache.save() {
        tracing::warn!(error = %e, "could not save the hash cache");
    }
    let warnings = scan.warnings.iter().map(|w| w.to_string()).collect();
    let desired = desired(&m, &scan)?;
    // Names the Hub would refuse stop the plan here, before any request.
    plan::check_remote_paths(&desired)?;

    let remote = remote::snapshot_all(&client, &targets(&m)).await?;
    let plan = plan::compute(&desired, &remote)?;
    let diffs = if opts.diffs {
        text_diffs(&client, &plan).await
    } else {
        TextDiffs::new()
    };
    let secrets = secret_values(&m);
    Ok(Planned {
        manifest: m,
        plan,
        diffs,
        warnings,
        hub,
        client,
        secrets,
        scan: scan.stats,
    })
}

/// Old and new text of small changed text files (best effort: a failure just means no diff).
async fn text_diffs(client: &HubClient, plan: &Plan) -> TextDiffs {
    let mut out = TextDiffs::new();
    for repo in &plan.repos {
        let (Ok(id), Some(base)) = (RepoId::parse(&repo.id), repo.base_commit.as_deref()) else {
            continue;
        };
        for a in &repo.actions {
            if out.len() >= DIFF_MAX_FILES {
                return out;
            }
            let Action::FileUpdate(f) = a else { continue };
            if f.lfs || f.size > DIFF_MAX_BYTES {
                continue;
            }
            let Ok(new) = crate::util::io::read_regular(&f.local_path) else {
                continue;
            };
            let Ok(new) = String::from_utf8(new) else {
                continue;
            };
            let old = match client
                .download(repo.repo_type, &id, base, &f.path, None)
                .await
            {
                Ok(d) => d.bytes().await.ok(),
                Err(_) => None,
            };
            let Some(old) = old.filter(|o| o.len() as u64 <= DIFF_MAX_BYTES) else {
                continue;
            };
            let Ok(old) = String::from_utf8(old.to_vec()) else {
                continue;
            };
            out.insert((repo.id.clone(), f.path.clone()), (old, new));
        }
    }
    out
}

/// Why a saved plan can no longer be applied.
#[derive(Debug, thiserror::Error)]
#[error("the saved plan is stale; {} thing(s) moved since it was made:\n{}", moved.len(), moved.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
pub struct StalePlan {
    pub moved: Vec<String>,
}

/// Checks a saved plan against the Hub and the disk now.
pub async fn check_stale(client: &HubClient, plan: &Plan) -> Result<(), Error> {
    let mut moved = Vec::new();
    for repo in &plan.repos {
        if repo.actions.is_empty() {
            continue;
        }
        let Ok(id) = RepoId::parse(&repo.id) else {
            return Err(Error::Usage(format!(
                "the plan names an invalid repo id `{}`",
                repo.id
            )));
        };
        let target = Target {
            repo_type: repo.repo_type,
            id,
            revision: repo.revision.clone(),
        };
        let snap = remote::snapshot_head(client, &target).await?;
        let creates = repo
            .actions
            .iter()
            .any(|a| matches!(a, Action::RepoCreate { .. }));
        match (&snap, creates) {
            (None, true) => {}
            (None, false) => {
                moved.push(format!("{} `{}` no longer exists", repo.repo_type, repo.id))
            }
            (Some(_), true) => moved.push(format!(
                "{} `{}` was created since planning",
                repo.repo_type, repo.id
            )),
            (Some(head), false) if *head != repo.base_commit => moved.push(format!(
                "{} `{}`: branch `{}` moved from {} to {}",
                repo.repo_type,
                repo.id,
                repo.revision,
                repo.base_commit.as_deref().unwrap_or("(missing)"),
                head.as_deref().unwrap_or("(missing)")
            )),
            _ => {}
        }
        for a in &repo.actions {
            if let Action::FileAdd(f) | Action::FileUpdate(f) = a
                && let Some(why) = crate::apply::moved_since_plan(f)
            {
                moved.push(why);
            }
        }
    }
    if moved.is_empty() {
        Ok(())
    } else {
        Err(StalePlan { moved }.into())
    }
}

/// Watches the manifest's folders and keeps pushing them until a signal or a persistent error
/// (see [`crate::watch`]).
pub async fn watch(
    opts: &crate::watch::WatchOptions,
    emit: crate::watch::Emit<'_>,
) -> Result<crate::watch::WatchExit, Error> {
    crate::watch::run(opts, emit).await
}

/// Reads a saved plan file.
pub fn read_plan(path: &Path) -> Result<Plan, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("read the plan `{}`", path.display()),
        source,
    })?;
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("`{}` is not a hubsync plan: {e}", path.display())))?;
    if plan.schema_version != plan::SCHEMA_VERSION {
        return Err(Error::Usage(format!(
            "`{}` has plan schema_version {}, this hubsync reads {}",
            path.display(),
            plan.schema_version,
            plan::SCHEMA_VERSION
        )));
    }
    Ok(plan)
}

/// Writes a plan file atomically (it may hold local paths, never secret values).
pub fn write_plan(path: &Path, plan: &Plan) -> Result<(), Error> {
    let io = |source| Error::Io {
        what: format!("write the plan `{}`", path.display()),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    use std::io::Write;
    tmp.write_all(crate::render::json(plan).as_bytes())
        .map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
