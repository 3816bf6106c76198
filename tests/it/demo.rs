//! `hubsync demo`: the README's first command runs from nothing (no hub, no manifest, no token)
//! to "No changes", and cleans up after itself.

use std::process::{Command, Stdio};
use std::time::Instant;

#[test]
fn demo_plans_applies_and_replans_to_no_changes() {
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hubsync"))
        .arg("demo")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        // A user's settings must not leak into the demo.
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("HF_TOKEN", "hf_not_the_demo_token")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let expect_in_order = [
        "Started a local Hub at http://127.0.0.1:",
        "(examples/demo.yaml)",
        "HUBSYNC_DEMO_API_KEY",
        "==> hubsync plan",
        "model demo/tiny-model (main, new repo)",
        "  + model.safetensors (12.6 MB, lfs)",
        "  + tag v1.0 -> main",
        "dataset demo/tiny-dataset (main, new repo)",
        "space demo/tiny-space (main, new repo)",
        "  ~ hardware: cpu-basic -> cpu-upgrade",
        "  + secret API_KEY = (sensitive)",
        "Plan: ",
        "==> hubsync apply --auto-approve",
        "Apply complete.",
        "  model demo/tiny-model: 1 commit, 12.6 MB uploaded",
        "==> hubsync plan (again)",
        "No changes. The Hub matches the manifest.",
        "export HF_ENDPOINT=http://127.0.0.1:",
        "export HF_TOKEN=hf_demo_",
        "export HF_HUB_DISABLE_XET=1",
        "from huggingface_hub import HfApi, snapshot_download",
        "hubsync demo --keep-serving",
    ];
    let mut at = 0;
    for needle in expect_in_order {
        match stdout[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("`{needle}` missing (or out of order) in:\n{stdout}"),
        }
    }
    assert!(
        !stdout.contains("demo-secret-value"),
        "the secret value never prints"
    );
    assert!(
        !stderr.contains("demo-secret-value"),
        "the secret value never prints"
    );
    assert!(stderr.contains("uploaded `model.safetensors`"), "{stderr}");
    assert!(
        stderr.contains("tag `v1.0` set on `demo/tiny-model`"),
        "{stderr}"
    );

    // The temporary folder is gone.
    let data = stdout
        .split("(data in `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .expect("the data folder is named");
    let root = std::path::Path::new(data).parent().unwrap();
    assert!(!root.exists(), "`{}` was left behind", root.display());
    // A few seconds in release; a debug build on a busy machine gets more room.
    assert!(elapsed.as_secs() < 60, "the demo took {elapsed:?}");
}
