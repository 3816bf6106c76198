//! Tokens and secret values never leave hubsync in the clear: every command, at maximum
//! verbosity and in every output format, is checked, and so is every file hubsync and the local
//! hub write (saved plans, the hash cache, the hub's data folder).

use std::path::Path;

use crate::common::{TestHub, record_figures};

const SECRET: &str = "s3cr3t-VALUE-4f9d2c71";

fn hubsync(hub: &TestHub, dir: &Path, args: &[&str]) -> (i32, String) {
    let out = crate::common::hubsync(hub.url(), dir, args)
        .env("HF_HOME", dir.join("hf-home"))
        .env("API_KEY", SECRET)
        .env("HUBSYNC_LOG", "trace")
        .output()
        .expect("run hubsync");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Every file under `root`, searched as bytes for `needle`.
fn files_containing(root: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(entry.path().display().to_string());
        }
    }
    hits
}

#[test]
fn no_token_or_secret_value_anywhere() {
    let hub = TestHub::builder().admin().start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/app.py"), "print('hi')\n").unwrap();
    std::fs::write(
        dir.join("hubsync.yaml"),
        format!(
            "version: 1\nrepos:\n  - id: {user}/leaky\n    type: space\n    files:\n      - local: ./app\n    space:\n      sdk: gradio\n      variables: {{ MODE: demo }}\n      secrets: {{ API_KEY: \"${{API_KEY}}\" }}\n",
            user = TestHub::USER
        ),
    )
    .unwrap();

    let runs: &[&[&str]] = &[
        &["-vvv", "validate"],
        &["-vvv", "plan"],
        &["-vvv", "plan", "--format", "json"],
        &["-vvv", "plan", "--format", "markdown", "-o", "plan.json"],
        &["-vvv", "apply", "-y", "--format", "json"],
        &["-vvv", "plan", "--detailed-exitcode"],
        &["-vvv", "apply", "-y"],
        &["-vvv", "--token", TestHub::WRITE_TOKEN, "plan"],
    ];
    let mut outputs = Vec::new();
    for args in runs {
        let (code, text) = hubsync(&hub, dir, args);
        assert!(
            code == 0 || code == 2,
            "hubsync {args:?} failed ({code}):\n{text}"
        );
        outputs.push((args.to_vec(), text));
    }
    // The secret really was set (and no diff is perpetual): the second plan had no changes.
    let (code, _) = hubsync(&hub, dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0);

    for (args, text) in &outputs {
        assert!(
            !text.contains(TestHub::WRITE_TOKEN),
            "the token leaked in `hubsync {args:?}`:\n{text}"
        );
        assert!(
            !text.contains(SECRET),
            "the secret leaked in `hubsync {args:?}`:\n{text}"
        );
    }
    for needle in [TestHub::WRITE_TOKEN, SECRET] {
        assert_eq!(
            files_containing(dir, needle),
            Vec::<String>::new(),
            "files in the work folder hold it"
        );
        assert_eq!(
            files_containing(&hub.data_dir(), needle),
            Vec::<String>::new(),
            "hub data holds it"
        );
    }
    assert!(!hub.log().contains(SECRET) && !hub.log().contains(TestHub::WRITE_TOKEN));
    let files = |root: &Path| {
        walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .count()
    };
    let scanned = files(dir) + files(&hub.data_dir());
    record_figures(
        "leaks::no_token_or_secret_value_anywhere",
        serde_json::json!({
            "command_runs": outputs.len(),
            "files_scanned": scanned,
            // Two needles (the token and the secret value) in every output, every file and
            // the hub's log.
            "secrets_checked": 2 * (outputs.len() + scanned + 1),
        }),
    );
}
