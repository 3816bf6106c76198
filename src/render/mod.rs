//! Renderers: plans and reports as human text (Terraform-like), JSON and Markdown. They format
//! what they are given and decide nothing. Strings from the Hub or from file names are escaped
//! before they reach a terminal.

pub mod human;

use std::collections::BTreeMap;

use crate::plan::Plan;

/// How output is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Markdown,
}

/// Terminal styling: colour only on a terminal and never with `NO_COLOR`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Old and new text of changed small text files, by repo id and path, for unified diffs.
pub type TextDiffs = BTreeMap<(String, String), (String, String)>;

/// A byte count the way people read it: `438.0 MB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().si().to_string()
}

/// Replaces control characters so names from the Hub or the disk cannot drive the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// The plan as one versioned JSON document.
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a plan always serialises");
    s.push('\n');
    s
}

/// The plan as Markdown, for a pull-request comment or `$GITHUB_STEP_SUMMARY`.
pub fn markdown(plan: &Plan, diffs: &TextDiffs) -> String {
    let mut out = String::from("## hubsync plan\n\n");
    if !plan.has_changes() {
        out.push_str("**No changes.** The Hub matches the manifest.\n");
        return out;
    }
    let unchanged: Vec<_> = plan.repos.iter().filter(|r| r.actions.is_empty()).collect();
    for repo in &unchanged {
        out.push_str(&format!(
            "- `{}` ({}): no changes\n",
            repo.id, repo.repo_type
        ));
    }
    // A blank line ends the list, so the headings below are not read as part of it.
    if !unchanged.is_empty() {
        out.push('\n');
    }
    for repo in plan.repos.iter().filter(|r| !r.actions.is_empty()) {
        out.push_str(&format!(
            "### `{}` ({}, `{}`)\n\n",
            repo.id, repo.repo_type, repo.revision
        ));
        out.push_str("```diff\n");
        for line in human::action_lines(repo, diffs, Style::default()) {
            out.push_str(line.trim_start_matches("  "));
            out.push('\n');
        }
        out.push_str("```\n\n");
    }
    out.push_str(&format!("**{}**\n", human::summary_line(plan)));
    out
}
