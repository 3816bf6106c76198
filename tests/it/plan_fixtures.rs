//! Fixture-driven snapshots of the pure planner (STYLE.md rule 15): each
//! `tests/fixtures/plan/<case>/` holds a manifest, a local tree and the remote state, and the
//! plan computed from them is compared with `human.snap`, `json.snap` and `markdown.snap` (or
//! `error.snap`) in the same folder.
//!
//! A case folder holds:
//! - `manifest.yaml`: `local:` paths are relative to the case folder (usually `./local`);
//! - `local/` (or whatever the mappings name): the files to upload. A mapped folder that does
//!   not exist is created empty, since git cannot hold an empty folder;
//! - `remote.json`: a map from repo id to [`RemoteSnapshot`] in its serde form; a repo that is
//!   not listed does not exist;
//! - `env` (optional): `KEY=VALUE` lines, the only environment `${VAR}` secrets see;
//! - `generate` (optional): `PATH SIZE BYTE` lines, files too big to commit, written as `SIZE`
//!   copies of the ASCII character `BYTE` before the scan.
//!
//! The case is copied to a temp folder and run through the library exactly as `ops::plan` does,
//! minus the network: `manifest::from_str` → `local::scan` → `ops::desired` → `plan::compute` →
//! `render::human::plan` / `render::json` / `render::markdown`. What differs between runs is normalised in the plan
//! before rendering: `local_path` becomes `[FIXTURE]/<path in the case>` and `mtime_ns` 0.
//!
//! New or changed snapshots: `INSTA_UPDATE=always cargo test --test it plan_fixtures`, then read
//! every changed `.snap` before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hubsync::local::{HashCache, ScanOptions};
use hubsync::manifest;
use hubsync::plan::{self, Action, Plan, RemoteMap};
use hubsync::remote::RemoteSnapshot;
use hubsync::render::{self, Style, TextDiffs};

/// What `local_path` values start with in the snapshots.
const FIXTURE: &str = "[FIXTURE]";

/// A case copied to a temp folder, ready to plan.
struct Case {
    /// Holds the copy; removed on drop.
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Case {
    fn load(source: &Path) -> Case {
        let dir = tempfile::Builder::new()
            .prefix("hubsync-plan-fixture-")
            .tempdir()
            .unwrap();
        copy_tree(source, dir.path());
        let env = match std::fs::read_to_string(source.join("env")) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("`env` lines are KEY=VALUE");
                    (k.to_string(), v.to_string())
                })
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        if let Ok(text) = std::fs::read_to_string(source.join("generate")) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [path, size, byte] = parts[..] else {
                    panic!("`generate` lines are `PATH SIZE BYTE`, got {line:?}");
                };
                let size: usize = size.parse().unwrap();
                let byte = byte.as_bytes()[0];
                let path = dir.path().join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, vec![byte; size]).unwrap();
            }
        }
        Case { dir, env }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The plan, or the error as `hubsync` would print it (message, causes, hints).
    fn plan(&self) -> Result<Plan, String> {
        let text = std::fs::read_to_string(self.root().join("manifest.yaml")).unwrap();
        let env = |k: &str| self.env.get(k).cloned();
        let m = manifest::from_str(&text, Path::new("manifest.yaml"), self.root(), &env)
            .map_err(|e| describe(&e.into()))?;
        for mapping in m.repos.iter().flat_map(|r| &r.files) {
            std::fs::create_dir_all(&mapping.local_path).unwrap();
        }
        manifest::check_paths(&m).map_err(|e| describe(&e.into()))?;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut cache = HashCache::in_memory();
        let scan = rt
            .block_on(hubsync::local::scan(
                &hubsync::ops::scan_specs(&m),
                &mut cache,
                &ScanOptions::default(),
                |_| {},
            ))
            .and_then(|s| s.into_complete())
            .map_err(|e| describe(&e.into()))?;
        assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
        let desired = hubsync::ops::desired(&m, &scan).map_err(|e| describe(&e))?;

        let remote_json = std::fs::read_to_string(self.root().join("remote.json")).unwrap();
        let by_id: BTreeMap<String, RemoteSnapshot> = serde_json::from_str(&remote_json)
            .unwrap_or_else(|e| panic!("remote.json is not a map of RemoteSnapshot: {e}"));
        let mut remote = RemoteMap::new();
        for (id, snapshot) in by_id {
            let repo = m
                .repos
                .iter()
                .find(|r| r.id.to_string() == id)
                .unwrap_or_else(|| panic!("remote.json names `{id}`, which the manifest lacks"));
            remote.insert((repo.repo_type, id), snapshot);
        }
        plan::compute(&desired, &remote).map_err(|e| describe(&e.into()))
    }

    /// Replaces what differs between runs: the temp folder and modification times.
    fn normalise(&self, plan: &mut Plan) {
        for repo in &mut plan.repos {
            for action in &mut repo.actions {
                if let Action::FileAdd(f) | Action::FileUpdate(f) = action {
                    let rel = f.local_path.strip_prefix(self.root()).unwrap_or_else(|_| {
                        panic!("{} is outside the case", f.local_path.display())
                    });
                    f.local_path = Path::new(FIXTURE).join(rel);
                    f.mtime_ns = 0;
                }
            }
        }
    }
}

/// An error the way `hubsync` prints it.
fn describe(err: &hubsync::Error) -> String {
    hubsync::cli::error_text(err) + "\n"
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else if entry.path().extension().is_none_or(|e| e != "snap") {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs one case and checks its snapshots.
fn check(case_dir: &Path) {
    let name = case_dir.file_name().unwrap().to_str().unwrap().to_string();
    let case = Case::load(case_dir);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(case_dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.remove_snapshot_suffix();
    settings.set_description(format!("tests/fixtures/plan/{name}"));
    settings.set_omit_expression(true);
    // Error messages may name the temp copy (a mapped folder's resolved path).
    settings.add_filter(&regex_escape(&case.root().display().to_string()), FIXTURE);
    settings.bind(|| match case.plan() {
        Ok(mut plan) => {
            case.normalise(&mut plan);
            let json = render::json(&plan);
            // The JSON is the public contract: it must read back into the same plan.
            let back: Plan = serde_json::from_str(&json).expect("the JSON plan reads back");
            assert_eq!(back, plan, "the JSON plan does not round-trip");
            assert_eq!(back.schema_version, plan::SCHEMA_VERSION);
            let human = render::human::plan(&plan, &TextDiffs::new(), Style::default());
            let markdown = render::markdown(&plan, &TextDiffs::new());
            // Secret values come only from `env`; no rendering may show one.
            for value in case.env.values() {
                for (format, text) in [("human", &human), ("json", &json), ("markdown", &markdown)]
                {
                    assert!(
                        !text.contains(value.as_str()),
                        "{format} shows a secret value"
                    );
                }
            }
            insta::assert_snapshot!("human", human);
            insta::assert_snapshot!("json", json);
            insta::assert_snapshot!("markdown", markdown);
        }
        Err(error) => insta::assert_snapshot!("error", error),
    });
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan")
}

#[test]
fn plan_fixtures() {
    insta::glob!("../fixtures/plan", "*/manifest.yaml", |manifest| {
        check(manifest.parent().unwrap());
    });
}

/// The refusal's exact wording is part of the contract users see in CI logs.
#[test]
fn max_deletes_refusal_names_the_count_and_the_setting() {
    let case = Case::load(&fixtures_dir().join("max_deletes"));
    let err = case.plan().expect_err("max_deletes refuses the plan");
    assert_eq!(
        err,
        "error: the plan for `alice/pruned` deletes 3 files, more than `max_deletes: 2` allows\n\n\
         hint: check the mapping's `prune`, `include` and `exclude`; if the deletes are intended, \
         raise `max_deletes` to at least 3\n"
    );
}

/// Nothing to do must say so every time: re-planning a no-op case gives the same empty plan.
#[test]
fn no_op_cases_say_no_changes() {
    for name in ["no_op", "space_no_op"] {
        let case = Case::load(&fixtures_dir().join(name));
        let plan = case.plan().unwrap();
        assert!(!plan.has_changes(), "{name}: {plan:#?}");
        assert_eq!(
            render::human::plan(&plan, &TextDiffs::new(), Style::default()),
            "No changes. The Hub matches the manifest.\n"
        );
    }
}
