//! Manifest loading and validation, end to end: a catalogue of bad manifests with their exact
//! messages, the example manifests, the committed JSON Schema, and the `validate` and `schema`
//! commands run as the real binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hubsync::manifest::{self, ManifestError};

#[path = "it/common/figures.rs"]
mod figures;

const FILE: &str = "hubsync.yaml";

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Loads `yaml` as `hubsync.yaml` in `/work`, with only `API_KEY` and `EMPTY` set.
fn load(yaml: &str) -> Result<manifest::Manifest, ManifestError> {
    let env = env_of(&[("API_KEY", "hf_not_a_real_secret"), ("EMPTY", "")]);
    manifest::from_str(yaml, Path::new(FILE), Path::new("/work"), &env)
}

fn error_of(yaml: &str) -> ManifestError {
    match load(yaml) {
        Ok(m) => panic!(
            "expected an error, got a manifest with {} repos",
            m.repos.len()
        ),
        Err(e) => e,
    }
}

/// Bad manifests and the exact message each one gives. The header is prepended to each YAML
/// body unless the body starts with `!raw`, so line numbers in the bodies start at 2.
const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "syntax error: unclosed flow list",
        "repos: [\n",
        "hubsync.yaml:2:8: unclosed bracket '['",
    ),
    (
        "syntax error: tab indentation",
        "repos:\n  - id: alice/x\n\tprivate: true\n",
        "hubsync.yaml:3:9: while scanning a plain scalar, found a tab",
    ),
    (
        "empty file",
        "!raw# nothing here yet\n",
        "hubsync.yaml:1:1: the manifest is empty",
    ),
    (
        "missing version",
        "!rawrepos:\n  - id: alice/x\n",
        "hubsync.yaml:1:1: `version` is missing or empty",
    ),
    (
        "version 2",
        "!rawversion: 2\nrepos:\n  - id: alice/x\n",
        "hubsync.yaml:1:10: unsupported manifest version 2; this hubsync reads version 1",
    ),
    (
        "version 2 with keys this hubsync does not know",
        "!rawversion: 2\nrepos:\n  - id: alice/x\n    mirror: true\n",
        "hubsync.yaml:1:10: unsupported manifest version 2; this hubsync reads version 1",
    ),
    (
        "version is not a number",
        "!rawversion: one\nrepos:\n  - id: alice/x\n",
        "hubsync.yaml:1:10: expected a whole number (0 or more)",
    ),
    (
        "missing repos",
        "endpoint: https://huggingface.co\n",
        "hubsync.yaml:1:1: `repos` is missing or empty",
    ),
    (
        "empty repos",
        "repos: []\n",
        "hubsync.yaml:2:8: `repos` is empty; the manifest syncs nothing",
    ),
    (
        "repos is a mapping",
        "repos: {id: alice/x}\n",
        "hubsync.yaml:2:8: expected a list",
    ),
    (
        "unknown top-level key with suggestion",
        "repo:\n  - id: alice/x\n",
        "hubsync.yaml:2:1: unknown key `repo`; did you mean `repos`?",
    ),
    (
        "unknown repo key with suggestion",
        "repos:\n  - id: alice/x\n    revison: main\n",
        "hubsync.yaml:4:5: unknown key `revison`; did you mean `revision`?",
    ),
    (
        "unknown mapping key with suggestion",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./out\n        prun: true\n",
        "hubsync.yaml:6:9: unknown key `prun`; did you mean `prune`?",
    ),
    (
        "unknown key without a close match",
        "repos:\n  - id: alice/x\n    visibility: private\n",
        "hubsync.yaml:4:5: unknown key `visibility`",
    ),
    (
        "duplicate key",
        "repos:\n  - id: alice/x\n    id: alice/y\n",
        "hubsync.yaml:4:5: duplicate key `id`",
    ),
    (
        "wrong type: list expected",
        "repos:\n  - id: alice/x\n    files: ./outputs\n",
        "hubsync.yaml:4:12: expected a list",
    ),
    (
        "wrong type: boolean expected",
        "repos:\n  - id: alice/x\n    private: yes\n",
        "hubsync.yaml:4:14: expected `true` or `false`",
    ),
    (
        "wrong type: negative count",
        "repos:\n  - id: alice/x\n    max_deletes: -1\n",
        "hubsync.yaml:4:18: expected a whole number (0 or more)",
    ),
    (
        "missing id",
        "repos:\n  - type: model\n",
        "hubsync.yaml:3:5: `id` is missing or empty",
    ),
    (
        "empty id",
        "repos:\n  - id:\n",
        "hubsync.yaml:3:5: `id` is missing or empty",
    ),
    (
        "bad repo id: no namespace",
        "repos:\n  - id: tiny-bert\n",
        "hubsync.yaml:3:9: repo id `tiny-bert` must be `namespace/name` (for example `alice/tiny-bert`)",
    ),
    (
        "bad repo id: forbidden character",
        "repos:\n  - id: alice/tiny bert\n",
        "hubsync.yaml:3:9: repo id `alice/tiny bert`: `tiny bert` contains ` `; only letters, digits, `.`, `_` and `-` are allowed",
    ),
    (
        "bad repo id: double dash",
        "repos:\n  - id: alice/tiny--bert\n",
        "hubsync.yaml:3:9: repo id `alice/tiny--bert`: `tiny--bert` must not contain `--` or `..`",
    ),
    (
        "bad type with suggestion",
        "repos:\n  - id: alice/x\n    type: modle\n",
        "hubsync.yaml:4:11: unknown value `modle`, expected one of `model`, `dataset`, `space`; did you mean `model`?",
    ),
    (
        "bad sdk with suggestion",
        "repos:\n  - id: alice/x\n    type: space\n    space: {sdk: gradoi}\n",
        "hubsync.yaml:5:18: unknown value `gradoi`, expected one of `gradio`, `streamlit`, `docker`, `static`; did you mean `gradio`?",
    ),
    (
        "remote with ..",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./out\n        remote: ../escape\n",
        "hubsync.yaml:6:17: remote path `../escape` has an empty, `.` or `..` segment; paths must stay inside the repo",
    ),
    (
        "remote with .. in the middle",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./out\n        remote: weights/../../x\n",
        "hubsync.yaml:6:17: remote path `weights/../../x` has an empty, `.` or `..` segment; paths must stay inside the repo",
    ),
    (
        "absolute remote",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./out\n        remote: /weights\n",
        "hubsync.yaml:6:17: remote path `/weights` is absolute; it must be relative to the repo root",
    ),
    (
        "remote inside .git",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./out\n        remote: .git/hooks\n",
        "hubsync.yaml:6:17: remote path `.git/hooks` must not write inside `.git`",
    ),
    (
        "duplicate targets: same remote, no includes",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        remote: weights\n      - local: ./b\n        remote: weights/\n",
        "hubsync.yaml:7:9: this mapping and the one at line 5 both write to `weights` and neither has `include` globs, so both could produce the same file",
    ),
    (
        "duplicate targets: repo root, same includes in another order",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        include: ['*.json', '*.bin']\n      - local: ./b\n        include: ['*.bin', '*.json']\n",
        "hubsync.yaml:7:9: this mapping and the one at line 5 both write to the repo root and both have the same `include` globs, so both could produce the same file",
    ),
    (
        "bad glob in include",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        include: ['weights/[abc']\n",
        "hubsync.yaml:6:19: invalid glob `weights/[abc` in `include`: unclosed character class; missing ']'",
    ),
    (
        "bad glob in exclude",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        exclude: ['{a,b']\n",
        "hubsync.yaml:6:19: invalid glob `{a,b` in `exclude`: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)",
    ),
    (
        "unquoted glob read as an alias",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        include: [*.json]\n",
        "hubsync.yaml:6:19: `*` starts a YAML alias, and no `&anchor` has this name",
    ),
    (
        "single glob instead of a list",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        include: '*.json'\n",
        "hubsync.yaml:6:18: expected a list",
    ),
    (
        "empty include list",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./a\n        include: []\n",
        "hubsync.yaml:6:18: `include` is empty, so this mapping matches no file",
    ),
    (
        "missing keep_last count",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./runs\n        keep_last:\n          pattern: 'checkpoint-*'\n",
        "hubsync.yaml:7:11: `count` is missing or empty",
    ),
    (
        "missing local",
        "repos:\n  - id: alice/x\n    files:\n      - remote: weights\n",
        "hubsync.yaml:5:9: `local` is missing or empty",
    ),
    (
        "bad branch name",
        "repos:\n  - id: alice/x\n    branches:\n      - { name: 'my branch', from: main }\n",
        "hubsync.yaml:5:17: `branches.name`: `my branch` is not a valid git ref name (no spaces, `..`, `~^:?*[\\`, control characters, or leading `-`/`.`)",
    ),
    (
        "bad revision",
        "repos:\n  - id: alice/x\n    revision: feature..x\n",
        "hubsync.yaml:4:15: `revision`: `feature..x` is not a valid git ref name (no spaces, `..`, `~^:?*[\\`, control characters, or leading `-`/`.`)",
    ),
    (
        "bad tag name",
        "repos:\n  - id: alice/x\n    tags:\n      - name: v1.0^\n",
        "hubsync.yaml:5:15: `tags.name`: `v1.0^` is not a valid git ref name (no spaces, `..`, `~^:?*[\\`, control characters, or leading `-`/`.`)",
    ),
    (
        "duplicate branch",
        "repos:\n  - id: alice/x\n    branches:\n      - name: dev\n      - name: dev\n",
        "hubsync.yaml:6:15: branch `dev` is listed twice; the first is at line 5",
    ),
    (
        "tag named like the revision",
        "repos:\n  - id: alice/x\n    tags:\n      - name: main\n",
        "hubsync.yaml:5:15: tag `main` has the same name as a branch",
    ),
    (
        "bad max_bytes string",
        "defaults:\n  commit:\n    max_bytes: 5XB\n",
        "hubsync.yaml:4:16: `5XB` is not a size; write a number of bytes or a size such as `500MB` or `2GiB`",
    ),
    (
        "negative max_bytes",
        "repos:\n  - id: alice/x\n    commit: { max_bytes: -5 }\n",
        "hubsync.yaml:4:26: `-5` is not a size; write a number of bytes or a size such as `500MB` or `2GiB`",
    ),
    (
        "zero max_files",
        "defaults:\n  commit: { max_files: 0 }\nrepos:\n  - id: alice/x\n",
        "hubsync.yaml:3:24: `max_files` must be at least 1",
    ),
    (
        "zero keep_last count",
        "repos:\n  - id: alice/x\n    files:\n      - local: ./runs\n        keep_last: { pattern: 'checkpoint-*', count: 0 }\n",
        "hubsync.yaml:6:54: `keep_last.count` must be at least 1",
    ),
    (
        "space on a model",
        "repos:\n  - id: alice/x\n    space:\n      hardware: t4-small\n",
        "hubsync.yaml:5:7: `space:` is only for Spaces, but `alice/x` is a model",
    ),
    (
        "space without sdk",
        "repos:\n  - id: alice/demo\n    type: space\n",
        "hubsync.yaml:3:5: Space `alice/demo` is created when missing (`create` defaults to true) but names no SDK",
    ),
    (
        "bad sleep time",
        "repos:\n  - id: alice/demo\n    type: space\n    space: { sdk: gradio, sleep_time: 0 }\n",
        "hubsync.yaml:5:39: `sleep_time` 0 is not allowed",
    ),
    (
        "missing env var",
        "repos:\n  - id: alice/demo\n    type: space\n    space:\n      sdk: gradio\n      secrets: { TOKEN: '${MISSING_TOKEN}' }\n",
        "hubsync.yaml:7:25: secret `TOKEN` reads the environment variable `MISSING_TOKEN`, which is not set",
    ),
    (
        "empty env var",
        "repos:\n  - id: alice/demo\n    type: space\n    space:\n      sdk: gradio\n      secrets: { TOKEN: '${EMPTY}' }\n",
        "hubsync.yaml:7:25: secret `TOKEN` reads the environment variable `EMPTY`, which is empty",
    ),
    (
        "secret written in clear",
        "repos:\n  - id: alice/demo\n    type: space\n    space:\n      sdk: gradio\n      secrets: { TOKEN: hf_live_value }\n",
        "hubsync.yaml:7:25: secret `TOKEN` must reference an environment variable as `${VAR}`",
    ),
    (
        "bad variable name",
        "repos:\n  - id: alice/demo\n    type: space\n    space:\n      sdk: gradio\n      variables: { MODEL-ID: x }\n",
        "hubsync.yaml:7:20: variable name `MODEL-ID` is not a valid environment variable name",
    ),
    (
        "duplicate repo",
        "repos:\n  - id: alice/x\n  - id: alice/y\n  - id: alice/x\n",
        "hubsync.yaml:5:5: repo `alice/x` (model) is listed twice; the first entry is at line 3",
    ),
    (
        "bad endpoint",
        "endpoint: huggingface.co\nrepos:\n  - id: alice/x\n",
        "hubsync.yaml:2:11: `endpoint` `huggingface.co` is not an http(s) URL",
    ),
    (
        "two documents",
        "repos:\n  - id: alice/x\n---\nversion: 1\n",
        "hubsync.yaml:4:1: the manifest holds more than one YAML document",
    ),
    (
        "several problems at once, sorted by line",
        "repos:\n  - id: nobody\n    revision: 'a b'\n  - id: alice/x\n    type: dataset\n    space: { sdk: gradio }\n",
        "3 problems in manifest `hubsync.yaml`:\n  \
         hubsync.yaml:3:9: repo id `nobody` must be `namespace/name` (for example `alice/tiny-bert`)\n  \
         hubsync.yaml:4:15: `revision`: `a b` is not a valid git ref name (no spaces, `..`, `~^:?*[\\`, control characters, or leading `-`/`.`)\n  \
         hubsync.yaml:7:12: `space:` is only for Spaces, but `alice/x` is a dataset",
    ),
];

fn catalogue_yaml(body: &str) -> String {
    match body.strip_prefix("!raw") {
        Some(raw) => raw.to_string(),
        None => format!("version: 1\n{body}"),
    }
}

#[test]
fn catalogue_of_bad_manifests() {
    assert!(CATALOGUE.len() >= 25);
    let mut failures = Vec::new();
    for (name, body, expected) in CATALOGUE {
        let yaml = catalogue_yaml(body);
        let got = match load(&yaml) {
            Ok(_) => "<no error>".to_string(),
            Err(e) => e.to_string(),
        };
        if &got != expected {
            failures.push(format!(
                "{name}\n  yaml:     {yaml:?}\n  expected: {expected}\n  got:      {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        CATALOGUE.len(),
        failures.join("\n\n")
    );
    figures::record_figures(
        "manifest::catalogue_of_bad_manifests",
        serde_json::json!({ "bad_inputs": CATALOGUE.len() }),
    );
}

#[test]
fn every_catalogue_error_has_a_hint_or_a_suggestion() {
    for (name, body, _) in CATALOGUE {
        let err = error_of(&catalogue_yaml(body));
        let msg = err.to_string();
        // YAML syntax errors come from the parser and carry no fix we could state better.
        let syntax = msg.contains("bracket") || msg.contains("found a tab");
        assert!(
            syntax
                || !err.hints().is_empty()
                || msg.contains("did you mean")
                || msg.contains("; write"),
            "{name}: no hint for {msg}"
        );
    }
}

#[test]
fn hints_say_the_fix() {
    let err = error_of("version: 1\nrepos:\n  - id: alice/x\n    visibility: private\n");
    assert_eq!(
        err.hints(),
        vec![
            "the keys allowed here are `id`, `type`, `private`, `create`, `revision`, `files`, \
             `max_deletes`, `commit`, `branches`, `tags`, `space`"
                .to_string()
        ]
    );
    let err = error_of("repos:\n  - id: alice/x\n");
    assert_eq!(err.hints(), vec!["start the manifest with `version: 1`"]);
    let err = error_of(
        "version: 1\nrepos:\n  - id: a/b\n    type: space\n    space:\n      sdk: docker\n      secrets: { K: '${NOPE}' }\n",
    );
    assert_eq!(
        err.hints(),
        vec!["set `NOPE` in the environment hubsync runs in (in CI, from its secret store)"]
    );
}

#[test]
fn secret_values_never_appear_in_errors_or_debug_output() {
    // Written in clear: refused without echoing the value.
    let err = error_of(
        "version: 1\nrepos:\n  - id: a/b\n    type: space\n    space:\n      sdk: docker\n      secrets: { K: hf_live_value }\n",
    );
    let all = format!("{err} {:?} {:?}", err.hints(), err);
    assert!(!all.contains("hf_live_value"), "{all}");

    // Resolved from the environment: held in a `Secret`, redacted in Debug.
    let m = load(
        "version: 1\nrepos:\n  - id: a/b\n    type: space\n    space:\n      sdk: docker\n      secrets: { K: '${API_KEY}' }\n",
    )
    .unwrap();
    let space = m.repos[0].space.as_ref().unwrap();
    let secret = &space.secrets["K"];
    assert_eq!(secret.env_var, "API_KEY");
    assert_eq!(secret.value.expose(), "hf_not_a_real_secret");
    assert!(!format!("{m:?}").contains("hf_not_a_real_secret"));
}

#[test]
fn defaults_and_resolution() {
    let yaml = "\
version: 1
endpoint: http://127.0.0.1:8080/
defaults:
  commit: { message: Nightly, max_bytes: 2GiB }
repos:
  - id: alice/tiny-bert
    files:
      - local: ./outputs
        remote: weights/
        include: ['*.safetensors']
      - local: /abs/data
  - id: alice/data
    type: dataset
    private: true
    create: false
    revision: dev
    max_deletes: 0
    commit: { max_files: 10, max_bytes: 500MB }
    tags: [{ name: v1 }]
    branches: [{ name: exp }]
  - id: alice/demo
    type: space
    space:
      sdk: static
      hardware: cpu-basic
      sleep_time: -1
      variables: { PORT: 7860, DEBUG: true, NAME: demo }
";
    let m = load(yaml).unwrap();
    assert_eq!(m.endpoint.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(m.repos.len(), 3);
    assert_eq!(m.mapping_count(), 2);

    let model = &m.repos[0];
    assert_eq!(model.id.to_string(), "alice/tiny-bert");
    assert_eq!(model.repo_type, hubsync::api::RepoType::Model);
    assert_eq!(model.revision, "main");
    assert!(model.create);
    assert_eq!(model.private, None);
    assert_eq!(model.max_deletes, 100);
    assert_eq!(
        model.commit,
        manifest::CommitSettings {
            message: "Nightly".into(),
            max_files: 1000,
            max_bytes: 2 * 1024 * 1024 * 1024,
        }
    );
    assert_eq!(model.location, manifest::Location::new(6, 5));
    let weights = &model.files[0];
    assert_eq!(weights.local, PathBuf::from("./outputs"));
    assert_eq!(weights.local_path, PathBuf::from("/work/outputs"));
    assert_eq!(weights.remote, "weights");
    assert_eq!(
        weights.remote_path("model.safetensors"),
        "weights/model.safetensors"
    );
    assert_eq!(weights.include, vec!["*.safetensors"]);
    assert!(!weights.prune);
    assert_eq!(model.files[1].local_path, PathBuf::from("/abs/data"));
    assert_eq!(model.files[1].remote, "");
    assert_eq!(model.files[1].remote_path("a/b.txt"), "a/b.txt");

    let data = &m.repos[1];
    assert_eq!(data.private, Some(true));
    assert!(!data.create);
    assert_eq!(data.max_deletes, 0);
    assert_eq!(data.commit.message, "Nightly");
    assert_eq!(data.commit.max_files, 10);
    assert_eq!(data.commit.max_bytes, 500_000_000);
    assert_eq!(
        data.tags[0].revision, "dev",
        "a tag defaults to the repo's revision"
    );
    assert_eq!(data.branches[0].from, None);

    let space = m.repos[2].space.as_ref().unwrap();
    assert_eq!(space.sdk, Some(manifest::SpaceSdk::Static));
    assert_eq!(space.sleep_time, Some(-1));
    assert_eq!(space.variables["PORT"], "7860");
    assert_eq!(space.variables["DEBUG"], "true");
}

#[test]
fn keep_last_and_ready_marker() {
    let m = load(
        "version: 1\nrepos:\n  - id: a/b\n    files:\n      - local: runs\n        remote: checkpoints\n        ready_marker: trainer_state.json\n        keep_last: { pattern: 'checkpoint-*', count: 3 }\n",
    )
    .unwrap();
    let f = &m.repos[0].files[0];
    assert_eq!(f.ready_marker.as_deref(), Some("trainer_state.json"));
    assert_eq!(
        f.keep_last,
        Some(manifest::KeepLast {
            pattern: "checkpoint-*".into(),
            count: 3
        })
    );
}

#[test]
fn different_remotes_or_includes_do_not_collide() {
    let m = load(
        "version: 1\nrepos:\n  - id: a/b\n    files:\n      - local: a\n        remote: x\n      - local: b\n        remote: y\n      - local: c\n        include: ['*.json']\n      - local: d\n        include: ['*.md']\n  - id: a/b\n    type: dataset\n    files:\n      - local: a\n        remote: x\n",
    )
    .unwrap();
    assert_eq!(m.mapping_count(), 5);
}

/// Builds `count` repo entries all aliasing one big anchored `files` list: small to write,
/// large once expanded.
fn alias_bomb(count: usize) -> String {
    let mut yaml = String::from("version: 1\nrepos:\n  - id: a/b0\n    files: &f [");
    for i in 0..50 {
        yaml.push_str(&format!("{{local: d{i}, remote: r{i}, include: [a, b]}}, "));
    }
    yaml.push_str("]\n");
    for i in 1..count {
        yaml.push_str(&format!("  - {{id: a/b{i}, files: *f}}\n"));
    }
    yaml
}

#[test]
fn alias_bombs_fail_fast() {
    let started = Instant::now();
    let err = error_of(&alias_bomb(2_000));
    assert!(started.elapsed() < Duration::from_secs(10));
    let msg = err.to_string();
    assert!(
        msg.starts_with("hubsync.yaml:") && msg.contains("expands too many aliases"),
        "{msg}"
    );

    // The classic "billion laughs": nested lists of aliases. It cannot fit the manifest's types,
    // so it fails at the first nested alias instead of expanding.
    let mut lol = String::from(
        "version: 1\nrepos:\n  - id: a/b\n    files:\n      - local: x\n        include: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for (i, (name, prev)) in ["b", "c", "d", "e", "f", "g", "h", "i", "j"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
        .enumerate()
    {
        let _ = i;
        lol.push_str(&format!(
            "        exclude: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let started = Instant::now();
    let err = error_of(&lol);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().starts_with("hubsync.yaml:"), "{err}");
}

#[test]
fn a_small_anchor_is_fine() {
    let m = load(&alias_bomb(3)).unwrap();
    assert_eq!(m.repos.len(), 3);
    assert_eq!(m.mapping_count(), 150);
    // An alias use is reported where it is used.
    assert_eq!(m.repos[2].location.line, 6);
}

#[test]
fn check_paths_reports_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("outputs")).unwrap();
    std::fs::write(dir.path().join("file.txt"), "x").unwrap();
    let path = dir.path().join("hubsync.yaml");
    std::fs::write(
        &path,
        "version: 1\nrepos:\n  - id: a/b\n    files:\n      - local: ./outputs\n      - local: missing\n        remote: m\n      - local: file.txt\n        remote: f\n",
    )
    .unwrap();
    let m = manifest::load(&path, &|_| None).unwrap();
    assert_eq!(m.repos[0].files[0].local_path, dir.path().join("outputs"));
    let err = manifest::check_paths(&m).unwrap_err();
    let p = path.display();
    let d = dir.path().display();
    assert_eq!(
        err.to_string(),
        format!(
            "2 problems in manifest `{p}`:\n  \
             {p}:6:9: local folder `missing` of `a/b` does not exist (resolved to `{d}/missing`)\n  \
             {p}:8:9: local folder `file.txt` of `a/b` is not a folder (resolved to `{d}/file.txt`)"
        )
    );
}

#[test]
fn a_missing_manifest_file_says_how_to_name_another() {
    let err = manifest::load(Path::new("/nonexistent/hubsync.yaml"), &|_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to read manifest `/nonexistent/hubsync.yaml`"
    );
    assert_eq!(
        err.hints(),
        vec!["create `/nonexistent/hubsync.yaml`, or name another manifest with `-f FILE`"]
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn examples_are_valid() {
    let env = env_of(&[
        ("OPENAI_API_KEY", "sk-test"),
        ("RAG_DATABASE_URL", "postgres://test"),
        ("ACME_HF_READ_TOKEN", "hf_test"),
        ("HUBSYNC_DEMO_API_KEY", "demo"),
    ]);
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/manifest.schema.json\n"),
            "{} must start with the yaml-language-server schema comment",
            path.display()
        );
        if let Err(e) = manifest::load(&path, &env) {
            panic!("{e}\n{:?}", e.hints());
        }
        seen += 1;
    }
    assert!(
        seen >= 4,
        "expected the demo's and three realistic example manifests"
    );
}

#[test]
fn committed_schema_is_up_to_date() {
    let path = repo_root().join("schemas/manifest.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == manifest::json_schema_string(),
        "`schemas/manifest.schema.json` is stale; regenerate it with `{}`",
        manifest::SCHEMA_REGENERATE_COMMAND
    );
}

fn hubsync(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hubsync"))
        .args(args)
        .current_dir(dir)
        .env_remove("HUBSYNC_LOG")
        .env_remove("DEMO_SECRET")
        .output()
        .unwrap()
}

#[test]
fn cli_validate_ok_uses_hubsync_yaml_in_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hubsync.yaml"),
        "version: 1\nrepos:\n  - id: a/b\n    files:\n      - local: out\n  - id: a/c\n",
    )
    .unwrap();
    let out = hubsync(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "`hubsync.yaml` is valid: 2 repos, 1 file mapping\n"
    );
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn cli_validate_error_names_file_line_col_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(
        dir.path().join("conf/sync.yaml"),
        "version: 1\nrepos:\n  - id: a/b\n    revison: main\n",
    )
    .unwrap();
    let out = hubsync(dir.path(), &["validate", "-f", "conf/sync.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: conf/sync.yaml:4:5: unknown key `revison`; did you mean `revision`?\n\nhint: the keys allowed here are"
        ),
        "{stderr}"
    );
}

#[test]
fn cli_validate_missing_secret_env_exits_1_without_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hubsync.yaml"),
        "version: 1\nrepos:\n  - id: a/demo\n    type: space\n    space:\n      sdk: gradio\n      secrets: { KEY: '${DEMO_SECRET}' }\n",
    )
    .unwrap();
    let out = hubsync(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: hubsync.yaml:7:23: secret `KEY` reads the environment variable `DEMO_SECRET`, which is not set"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_hubsync"))
        .args(["validate"])
        .current_dir(dir.path())
        .env("DEMO_SECRET", "s3cr3t-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("s3cr3t-value"));
}

#[test]
fn cli_validate_missing_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = hubsync(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: failed to read manifest `hubsync.yaml`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: create `hubsync.yaml`, or name another manifest with `-f FILE`")
    );
}

#[test]
fn cli_schema_prints_the_committed_schema() {
    let out = hubsync(&repo_root(), &["schema"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, manifest::json_schema_string());
    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(schema["title"], "hubsync manifest");
    assert_eq!(schema["required"], serde_json::json!(["version", "repos"]));
}
