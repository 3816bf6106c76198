//! Property tests of the parsers that take untrusted input (issue 6, "Fuzzing"): the hub's NDJSON
//! commit parser and LFS batch parser, and the manifest loader. proptest stands in for
//! cargo-fuzz, which needs a nightly toolchain CI does not install; these are the fuzz targets,
//! kept in the suite.
//!
//! Each parser must return (an error is fine) on anything, never panic; and what a well-behaved
//! client sends must parse back to what it meant. Case counts are modest so the suite stays fast;
//! raise them for a longer run with `PROPTEST_CASES=100000 cargo test --test it fuzz::`.

use std::path::Path;

use base64::Engine;
use hubsync::api::{
    CommitDelete, CommitFile, CommitHeader, CommitLfsFile, CommitLine, LfsBatchRequest,
    LfsObjectSpec, LfsRef,
};
use hubsync::hub::parse::{parse_commit_body, parse_lfs_batch};
use hubsync::hub::store::Op;
use proptest::prelude::*;
use serde_json::Value;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Shrinking only matters once something fails; keep it bounded.
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

// ---- generators -------------------------------------------------------------------------------

/// Strings a hostile client might put anywhere: short unicode, traversal, control characters.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-z./\\\\_-]{0,12}",
        1 => Just("..".to_string()),
        1 => Just("/".to_string()),
        1 => Just(String::new()),
        1 => Just("\u{0}".to_string()),
        1 => Just("a".repeat(5000)),
        1 => Just("%2e%2e/x".to_string()),
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names: mostly ones the parsers know, so objects get deep into them.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "key", "value", "summary", "description", "parentCommit", "path", "content",
            "encoding", "oldPath", "algo", "oid", "size", "operation", "transfers", "objects",
            "hash_algo", "ref", "name",
        ])
        .prop_map(str::to_string),
        1 => nasty_string(),
    ]
}

/// A value for the `key` of a commit line: known kinds mostly.
fn line_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::sample::select(vec!["header", "file", "lfsFile", "deletedFile", "deletedFolder"])
            .prop_map(Value::from),
        1 => json_value(),
    ]
}

/// One JSON-ish commit line: a `{key, value}` object with plausible or arbitrary parts, any JSON
/// value, or arbitrary text.
fn commit_line() -> impl Strategy<Value = String> {
    let object = (
        line_key(),
        prop::collection::btree_map(field_name(), json_value(), 0..6),
        prop::option::of((field_name(), json_value())),
    )
        .prop_map(|(key, value, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("key".into(), key);
            m.insert("value".into(), Value::Object(value.into_iter().collect()));
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m).to_string()
        });
    prop_oneof![
        6 => object,
        2 => json_value().prop_map(|v| v.to_string()),
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
}

/// A repo path as a client might send it (valid or not; the parser does not judge paths).
fn path() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-zA-Z0-9_.-]{1,8}(/[a-zA-Z0-9_.-]{1,8}){0,3}", 1 => nasty_string()]
}

/// A well-formed commit: header plus operations as the client builds them.
fn commit() -> impl Strategy<Value = (CommitHeader, Vec<CommitLine>)> {
    let header = (
        "[^\\s]{1}.{0,40}",
        ".{0,40}",
        prop::option::of("[0-9a-f]{5,40}"),
    )
        .prop_map(|(summary, description, parent_commit)| CommitHeader {
            summary,
            description,
            parent_commit,
        });
    let op = prop_oneof![
        (path(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(path, content)| {
            CommitLine::File(CommitFile {
                path,
                content: base64::engine::general_purpose::STANDARD.encode(content),
                encoding: "base64".into(),
                old_path: None,
            })
        }),
        (path(), "[0-9a-f]{64}", prop::option::of(any::<u64>())).prop_map(|(path, oid, size)| {
            CommitLine::LfsFile(CommitLfsFile {
                path,
                algo: Some("sha256".into()),
                oid,
                size,
                old_path: None,
            })
        }),
        path().prop_map(|path| CommitLine::DeletedFile(CommitDelete { path })),
        path().prop_map(|path| CommitLine::DeletedFolder(CommitDelete { path })),
    ];
    (header, prop::collection::vec(op, 0..12))
}

/// The body `HubClient::commit` sends: one JSON line each, newline-terminated.
fn ndjson(header: &CommitHeader, ops: &[CommitLine]) -> Vec<u8> {
    let mut body = Vec::new();
    for line in std::iter::once(&CommitLine::Header(header.clone())).chain(ops) {
        serde_json::to_writer(&mut body, line).unwrap();
        body.push(b'\n');
    }
    body
}

/// Whether a parsed operation is the one that was sent.
fn same_op(sent: &CommitLine, got: &Op) -> bool {
    match (sent, got) {
        (CommitLine::File(f), Op::Put { path, content }) => {
            *path == f.path
                && base64::engine::general_purpose::STANDARD
                    .decode(&f.content)
                    .is_ok_and(|c| c == *content)
        }
        (CommitLine::LfsFile(f), Op::PutLfs { path, sha256, size }) => {
            *path == f.path && *sha256 == f.oid && *size == f.size
        }
        (CommitLine::DeletedFile(d), Op::DeleteFile { path }) => *path == d.path,
        (CommitLine::DeletedFolder(d), Op::DeleteFolder { path }) => *path == d.path,
        _ => false,
    }
}

fn lfs_batch() -> impl Strategy<Value = LfsBatchRequest> {
    (
        prop::collection::vec(
            prop::sample::select(vec!["basic", "multipart", "xet"]).prop_map(str::to_string),
            0..3,
        ),
        prop::collection::vec(
            (
                prop_oneof![3 => "[0-9a-f]{64}", 1 => nasty_string()],
                any::<u64>(),
            )
                .prop_map(|(oid, size)| LfsObjectSpec { oid, size }),
            0..20,
        ),
        prop::option::of(prop::sample::select(vec!["sha256", "sha_256"]).prop_map(str::to_string)),
        prop::option::of(nasty_string().prop_map(|name| LfsRef { name })),
    )
        .prop_map(|(transfers, objects, hash_algo, git_ref)| LfsBatchRequest {
            operation: "upload".into(),
            transfers,
            objects,
            hash_algo,
            git_ref,
        })
}

// ---- the hub's commit parser ------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn commit_parser_survives_any_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_commit_body(&body);
    }

    #[test]
    fn commit_parser_survives_json_ish_lines(
        lines in prop::collection::vec(commit_line(), 0..10),
        header_first in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let mut lines = lines;
        if header_first {
            lines.insert(0, r#"{"key":"header","value":{"summary":"s"}}"#.to_string());
        }
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        let _ = parse_commit_body(body.as_bytes());
    }

    #[test]
    fn client_commit_bodies_parse_back_to_what_was_sent(
        (header, ops) in commit(),
        blank_lines in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let mut body = ndjson(&header, &ops);
        // Blank lines anywhere are ignored.
        for at in blank_lines {
            let newlines: Vec<usize> = body
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect();
            let i = newlines[at.index(newlines.len())];
            body.insert(i, b'\n');
        }
        let (h, parsed) = parse_commit_body(&body)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&body))))?;
        prop_assert_eq!(h.summary, header.summary);
        prop_assert_eq!(h.description, header.description);
        prop_assert_eq!(h.parent_commit, header.parent_commit);
        prop_assert_eq!(parsed.len(), ops.len());
        for (sent, got) in ops.iter().zip(&parsed) {
            prop_assert!(same_op(sent, got), "sent {:?}, parsed {:?}", sent, got);
        }
    }

    #[test]
    fn a_corrupted_client_body_never_panics(
        (header, ops) in commit(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut body = ndjson(&header, &ops);
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = parse_commit_body(&body);
    }
}

// ---- the hub's LFS batch parser ---------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn lfs_batch_parser_survives_any_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_lfs_batch(&body);
    }

    #[test]
    fn lfs_batch_parser_survives_any_json(v in json_value()) {
        let _ = parse_lfs_batch(v.to_string().as_bytes());
    }

    #[test]
    fn client_lfs_batches_parse_back_to_what_was_sent(req in lfs_batch()) {
        let body = serde_json::to_vec(&req).unwrap();
        let parsed = parse_lfs_batch(&body).map_err(TestCaseError::fail)?;
        prop_assert_eq!(serde_json::to_value(&parsed).unwrap(), serde_json::to_value(&req).unwrap());
    }

    #[test]
    fn lfs_batches_of_other_operations_are_refused(op in "[a-z]{0,10}", req in lfs_batch()) {
        prop_assume!(op != "upload");
        let body = serde_json::to_vec(&LfsBatchRequest { operation: op, ..req }).unwrap();
        prop_assert!(parse_lfs_batch(&body).is_err());
    }
}

// ---- the manifest loader ----------------------------------------------------------------------

/// YAML-ish manifest text built from the manifest's own vocabulary, so generated documents get
/// past the YAML parser into validation.
fn manifest_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "version",
        "endpoint",
        "defaults",
        "commit",
        "message",
        "max_files",
        "max_bytes",
        "repos",
        "- id",
        "id",
        "type",
        "private",
        "revision",
        "files",
        "- local",
        "local",
        "remote",
        "include",
        "exclude",
        "prune",
        "max_deletes",
        "branches",
        "tags",
        "name",
        "from",
        "space",
        "sdk",
        "hardware",
        "secrets",
        "variables",
        "value",
        "sleep_time",
        "unknown",
    ]);
    let value = prop_oneof![
        Just(String::new()),
        Just("1".to_string()),
        Just("2".to_string()),
        Just("alice/tiny-bert".to_string()),
        Just("../../etc".to_string()),
        Just("/abs/path".to_string()),
        Just("${API_KEY}".to_string()),
        Just("${MISSING}".to_string()),
        Just("true".to_string()),
        Just("10GB".to_string()),
        Just("-1".to_string()),
        Just("[\"*.bin\", \"**/x\"]".to_string()),
        Just("{ name: dev, from: main }".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("*a".to_string()),
        Just("!!binary aGk=".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("99999999999999999999999".to_string()),
        "[a-z0-9./_-]{0,12}",
        any::<String>(),
    ];
    let line = (0usize..4, key, value)
        .prop_map(|(indent, k, v)| format!("{}{k}: {v}", "  ".repeat(indent)));
    (prop::bool::ANY, prop::collection::vec(line, 0..24)).prop_map(|(versioned, lines)| {
        let mut text = if versioned {
            "version: 1\n".to_string()
        } else {
            String::new()
        };
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
        text
    })
}

/// The example manifests, read once.
fn examples() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    out.sort();
    out
}

fn load_manifest(text: &str) {
    let env = |name: &str| (name == "API_KEY").then(|| "hf_not_a_real_secret".to_string());
    let _ = hubsync::manifest::from_str(text, Path::new("hubsync.yaml"), Path::new("/work"), &env);
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn manifest_loader_survives_any_string(text in any::<String>()) {
        load_manifest(&text);
    }

    #[test]
    fn manifest_loader_survives_yaml_ish_documents(text in manifest_text()) {
        load_manifest(&text);
    }

    #[test]
    fn manifest_loader_survives_mutated_examples(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(vec![
                ":", "-", " ", "\n", "  ", "[", "]", "{", "}", "&a", "*a", "'", "\"", "#", "\t",
                "${", "..", "/", "\u{0}", "é",
            ])),
            1..6,
        ),
    ) {
        let all = examples();
        let mut text = all[which.index(all.len())].clone();
        for (at, action, piece) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match action {
                0 => text.insert_str(i, piece),
                1 => {
                    let mut end = (i + piece.len()).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(i..end, "");
                }
                _ => {
                    let mut end = (i + 1).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(i..end, piece);
                }
            }
        }
        load_manifest(&text);
    }
}

#[test]
fn the_examples_load_unmutated() {
    // The mutation property starts from valid documents; check they are.
    for text in examples() {
        let env = |name: &str| Some(format!("value-of-{name}"));
        hubsync::manifest::from_str(&text, Path::new("hubsync.yaml"), Path::new("/work"), &env)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
