//! Renders `RELIABILITY.md` from a Markdown template, the figures the reliability tests record
//! (`target/reliability/*.json`, see `tests/it/common/figures.rs`) and the test results of the
//! run (`target/reliability/tests.txt`, the output of `cargo test`). `scripts/reliability` runs
//! the tests and then this:
//!
//! ```text
//! cargo run --example reliability_report -- TEMPLATE FIGURES_DIR OUTPUT
//! ```
//!
//! Placeholders in the template:
//! - `{{result FILE::TEST}}`: `passed`, `**FAILED**`, `ignored` or `not run` (the test is not in
//!   this checkout, or the run did not include it);
//! - `{{results FILE}}`: how the tests of one file did (`15 passed`, `2 of 15 **FAILED**`,
//!   `not run`);
//! - `{{fig FILE::TEST KEY}}`: one recorded figure (`—` when not recorded);
//! - `{{sum KEY}}`: a figure summed over every test that records it;
//! - `{{tests passed|failed|total}}`: counts over the tests of the files the template names;
//! - `{{all_results}}`: a table of every test of those files with its result;
//! - `{{commit}}`, `{{date}}`: what was tested, and when.
//!
//! An unknown placeholder is an error, so a typo cannot render as an empty cell.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

/// The outcome of one test in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Ignored,
}

struct Inputs {
    /// `file::test` → outcome. Tests of the `it` binary are named by module already; tests of
    /// another binary get its name as a prefix (`manifest::catalogue_of_bad_manifests`).
    results: BTreeMap<String, Outcome>,
    /// `file::test` → its recorded figures.
    figures: BTreeMap<String, serde_json::Map<String, Value>>,
    commit: String,
    date: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [template, dir, output] = args.as_slice() else {
        eprintln!("usage: reliability_report TEMPLATE FIGURES_DIR OUTPUT");
        return ExitCode::from(2);
    };
    match run(Path::new(template), Path::new(dir), Path::new(output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(template: &Path, dir: &Path, output: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(template)
        .map_err(|e| format!("cannot read `{}`: {e}", template.display()))?;
    let inputs = Inputs {
        results: read_results(&dir.join("tests.txt"))?,
        figures: read_figures(dir)?,
        commit: std::env::var("RELIABILITY_COMMIT").unwrap_or_else(|_| "unknown".into()),
        date: now(),
    };
    let rendered = render(&text, &inputs)?;
    let tmp = PathBuf::from(format!("{}.tmp", output.display()));
    std::fs::write(&tmp, rendered)
        .and_then(|_| std::fs::rename(&tmp, output))
        .map_err(|e| format!("cannot write `{}`: {e}", output.display()))
}

/// Parses `cargo test` output: `Running tests/<bin>.rs` or `tests/<bin>/main.rs` headers, then
/// `test NAME ... ok|FAILED|ignored` lines.
fn read_results(path: &Path) -> Result<BTreeMap<String, Outcome>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the test output `{}`: {e}", path.display()))?;
    let mut binary = String::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Running ") {
            let target = rest.split_whitespace().next().unwrap_or("");
            binary = match target.strip_suffix("/main.rs") {
                Some(dir) => dir.rsplit('/').next().unwrap_or("").to_string(),
                None => Path::new(target)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            continue;
        }
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, outcome)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let outcome = match outcome.split_whitespace().next() {
            Some("ok") => Outcome::Passed,
            Some("FAILED") => Outcome::Failed,
            Some("ignored") => Outcome::Ignored,
            _ => continue,
        };
        let name = if binary == "it" || binary.is_empty() {
            name.to_string()
        } else {
            format!("{binary}::{name}")
        };
        out.insert(name, outcome);
    }
    Ok(out)
}

fn read_figures(dir: &Path) -> Result<BTreeMap<String, serde_json::Map<String, Value>>, String> {
    let mut out = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not JSON: {e}", path.display()))?;
        let (Some(test), Some(figures)) = (doc["test"].as_str(), doc["figures"].as_object()) else {
            return Err(format!("`{}` has no `test` and `figures`", path.display()));
        };
        out.insert(test.to_string(), figures.clone());
    }
    Ok(out)
}

fn render(template: &str, inputs: &Inputs) -> Result<String, String> {
    // The files the template names, for the counts and the full table.
    let mut files = BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        let mut words = inner.split_whitespace();
        match (words.next(), words.next()) {
            (Some("result" | "fig"), Some(test)) => {
                if let Some((file, _)) = test.split_once("::") {
                    files.insert(file.to_string());
                }
            }
            (Some("results"), Some(file)) => {
                files.insert(file.to_string());
            }
            _ => {}
        }
        rest = &rest[start + end + 2..];
    }
    let in_scope: BTreeMap<&String, Outcome> = inputs
        .results
        .iter()
        .filter(|(name, _)| {
            name.split_once("::")
                .is_some_and(|(file, _)| files.contains(file))
        })
        .map(|(n, o)| (n, *o))
        .collect();

    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        line += rest[..start].matches('\n').count();
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("line {line}: `{{{{` without `}}}}`"))?;
        let inner = rest[start + 2..start + end].trim();
        out.push_str(&expand(inner, inputs, &in_scope).map_err(|e| format!("line {line}: {e}"))?);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand(
    placeholder: &str,
    inputs: &Inputs,
    in_scope: &BTreeMap<&String, Outcome>,
) -> Result<String, String> {
    let words: Vec<&str> = placeholder.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["result", test] => outcome_text(inputs.results.get(*test).copied()).to_string(),
        ["results", file] => {
            let prefix = format!("{file}::");
            let of_file: Vec<Outcome> = inputs
                .results
                .iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(_, o)| *o)
                .collect();
            let failed = of_file.iter().filter(|o| **o == Outcome::Failed).count();
            let passed = of_file.iter().filter(|o| **o == Outcome::Passed).count();
            match (of_file.len(), failed) {
                (0, _) => "not run".to_string(),
                (n, 0) => format!("{passed} of {n} passed"),
                (n, f) => format!("{f} of {n} **FAILED**"),
            }
        }
        ["fig", test, key] => inputs
            .figures
            .get(*test)
            .and_then(|f| f.get(*key))
            .map(show)
            .unwrap_or_else(|| "—".into()),
        ["sum", key] => {
            let values: Vec<f64> = inputs
                .figures
                .values()
                .filter_map(|f| f.get(*key))
                .filter_map(Value::as_f64)
                .collect();
            if values.is_empty() {
                "— (not recorded yet)".into()
            } else {
                let total: f64 = values.iter().sum();
                format!(
                    "{} (from {} test{})",
                    total,
                    values.len(),
                    if values.len() == 1 { "" } else { "s" }
                )
            }
        }
        ["tests", what] => {
            let count = |o: Outcome| in_scope.values().filter(|x| **x == o).count();
            match *what {
                "passed" => count(Outcome::Passed).to_string(),
                "failed" => count(Outcome::Failed).to_string(),
                "total" => in_scope.len().to_string(),
                other => return Err(format!("unknown count `{other}`")),
            }
        }
        ["all_results"] => {
            let mut t = String::from("| test | result |\n|---|---|\n");
            for (name, o) in in_scope {
                t.push_str(&format!("| `{name}` | {} |\n", outcome_text(Some(*o))));
            }
            t
        }
        ["commit"] => inputs.commit.clone(),
        ["date"] => inputs.date.clone(),
        _ => return Err(format!("unknown placeholder `{{{{{placeholder}}}}}`")),
    })
}

fn outcome_text(o: Option<Outcome>) -> &'static str {
    match o {
        Some(Outcome::Passed) => "passed",
        Some(Outcome::Failed) => "**FAILED**",
        Some(Outcome::Ignored) => "ignored",
        None => "not run",
    }
}

/// A figure for a table cell: numbers and strings as they are, lists joined, maps as `k: v`.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}: {}", show(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn now() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}
