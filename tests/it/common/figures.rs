//! Figures for `RELIABILITY.md`: a reliability test records what it tried (crash points, bad
//! inputs, secrets checked, …) as `target/reliability/<file>__<test>.json`, and
//! `scripts/reliability` renders them. Shared by the `it` and `manifest` test binaries (the
//! latter includes this file with `#[path]`), so it depends on nothing else in `common`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Where tests leave the figures `RELIABILITY.md` is rendered from: `target/reliability/`.
pub fn figures_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("reliability")
}

/// Records the figures of one reliability test (how many crash points, bad inputs, secrets
/// checked, …) as `target/reliability/<name>.json`, which `scripts/reliability` renders into
/// `RELIABILITY.md`. `name` is `file::test`, e.g. `hub_crash::kill_9_at_random_points`.
/// Best effort: a test never fails because its figures cannot be written.
pub fn record_figures(name: &str, figures: serde_json::Value) {
    let dir = figures_dir();
    let doc = serde_json::json!({
        "test": name,
        "figures": figures,
        "recorded_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    });
    let stem = name.replace("::", "__");
    let file = dir.join(format!("{stem}.json"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{stem}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)?;
        std::fs::rename(&tmp, &file)
    };
    if let Err(e) = write() {
        eprintln!("could not record figures in `{}`: {e}", file.display());
    }
}
