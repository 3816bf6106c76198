//! Generated files under `schemas/` are committed; these tests fail when they are stale and
//! name the command that regenerates them.

use std::path::Path;

fn committed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn committed_plan_schema_is_up_to_date() {
    assert!(
        committed("plan.schema.json") == hubsync::plan::json_schema_string(),
        "`schemas/plan.schema.json` is stale; regenerate it with `{}`",
        hubsync::plan::SCHEMA_REGENERATE_COMMAND
    );
}

#[test]
fn schema_command_prints_the_committed_schemas() {
    let ctx = crate::common::TestContext::new();
    for (args, file) in [
        (&["schema"][..], "manifest.schema.json"),
        (&["schema", "--plan"][..], "plan.schema.json"),
    ] {
        let out = ctx.hubsync(args);
        crate::common::assert_exit(&out, 0);
        assert!(
            String::from_utf8_lossy(&out.stdout) == committed(file),
            "`hubsync {}` differs from `schemas/{file}`",
            args.join(" ")
        );
    }
}

/// The schema describes the document `plan --format json` prints: every action kind of
/// DESIGN.md is one of its variants, each closed to unknown fields.
#[test]
fn plan_schema_lists_every_action_kind() {
    let schema: serde_json::Value =
        serde_json::from_str(&hubsync::plan::json_schema_string()).unwrap();
    let variants = schema["$defs"]["Action"]["oneOf"].as_array().unwrap();
    let kinds: Vec<&str> = variants
        .iter()
        .map(|v| v["properties"]["kind"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "repo_create",
            "visibility",
            "file_add",
            "file_update",
            "file_delete",
            "branch_create",
            "tag_create",
            "tag_move",
            "space_hardware",
            "space_sleep_time",
            "variable_add",
            "variable_change",
            "variable_delete",
            "secret_add",
            "secret_change",
            "secret_delete",
        ]
    );
    for v in variants {
        assert_eq!(v["additionalProperties"], false, "{v}");
    }
    assert_eq!(schema["properties"]["schema_version"]["type"], "integer");
}
