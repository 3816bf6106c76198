//! The human plan: `+` add, `~` change, `-` delete, grouped by repo with its base commit, and a
//! summary line.

use super::{Style, TextDiffs, bytes, sanitize};
use crate::plan::{Action, Effect, Plan, RepoPlan, SecretReason};

const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED: &str = "31";
const BOLD: &str = "1";
const DIM: &str = "2";

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(7)]
}

/// The whole plan as text.
pub fn plan(plan: &Plan, diffs: &TextDiffs, style: Style) -> String {
    if !plan.has_changes() {
        return "No changes. The Hub matches the manifest.\n".to_string();
    }
    let mut out = String::new();
    for repo in &plan.repos {
        let base = match &repo.base_commit {
            Some(c) => format!("at {}", short(c)),
            None if repo
                .actions
                .iter()
                .any(|a| matches!(a, Action::RepoCreate { .. })) =>
            {
                "new repo".to_string()
            }
            None => format!("new branch `{}`", repo.revision),
        };
        let header = format!(
            "{} {} ({}, {base})",
            repo.repo_type,
            repo.id,
            sanitize(&repo.revision)
        );
        out.push_str(&style.paint(BOLD, &header));
        out.push('\n');
        if repo.actions.is_empty() {
            out.push_str("  no changes\n\n");
            continue;
        }
        for line in action_lines(repo, diffs, style) {
            out.push_str(&line);
            out.push('\n');
        }
        if repo.commits > 0 {
            let commits = if repo.commits == 1 {
                "1 commit".to_string()
            } else {
                format!("{} commits", repo.commits)
            };
            out.push_str(&style.paint(
                DIM,
                &format!("  ({commits}, {} to upload)", bytes(repo.upload_bytes)),
            ));
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

/// `Plan: 3 to add, 1 to change, 2 to delete; 2 commits, 438.0 MB to upload.`
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let commits = if s.commits == 1 {
        "1 commit".to_string()
    } else {
        format!("{} commits", s.commits)
    };
    format!(
        "Plan: {} to add, {} to change, {} to delete; {commits}, {} to upload.",
        s.add,
        s.change,
        s.delete,
        bytes(s.upload_bytes)
    )
}

/// One line per action (plus diff lines), indented by two spaces.
pub fn action_lines(repo: &RepoPlan, diffs: &TextDiffs, style: Style) -> Vec<String> {
    let mut lines = Vec::new();
    for a in &repo.actions {
        let (sign, color) = match a.effect() {
            Effect::Add => ("+", GREEN),
            Effect::Change => ("~", YELLOW),
            Effect::Delete => ("-", RED),
        };
        let text = match a {
            Action::RepoCreate { private, sdk } => {
                let vis = if *private { "private" } else { "public" };
                match sdk {
                    Some(sdk) => format!("create {vis} {} (sdk {sdk})", repo.repo_type),
                    None => format!("create {vis} {}", repo.repo_type),
                }
            }
            Action::Visibility { from, to } => format!("visibility: {from} -> {to}"),
            Action::FileAdd(f) => format!(
                "{} ({}{})",
                sanitize(&f.path),
                bytes(f.size),
                if f.lfs { ", lfs" } else { "" }
            ),
            Action::FileUpdate(f) => format!(
                "{} ({}{})",
                sanitize(&f.path),
                bytes(f.size),
                if f.lfs { ", lfs" } else { "" }
            ),
            Action::FileDelete { path, size, .. } => {
                format!("{} ({})", sanitize(path), bytes(*size))
            }
            Action::BranchCreate { name, from } => {
                format!("branch {} (from {})", sanitize(name), sanitize(from))
            }
            Action::TagCreate { name, revision, .. } => {
                format!("tag {} -> {}", sanitize(name), sanitize(revision))
            }
            Action::TagMove { name, from, to } => {
                format!("tag {}: {} -> {}", sanitize(name), short(from), short(to))
            }
            Action::SpaceHardware { from, to } => {
                format!("hardware: {} -> {to}", from.as_deref().unwrap_or("none"))
            }
            Action::SpaceSleepTime { from, to } => {
                let f = from
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "never".into());
                let t = if *to < 0 {
                    "never".to_string()
                } else {
                    to.to_string()
                };
                format!("sleep time: {f} -> {t}")
            }
            Action::VariableAdd { key, value } => format!("variable {key} = {:?}", sanitize(value)),
            Action::VariableChange { key, from, to } => {
                format!("variable {key}: {:?} -> {:?}", sanitize(from), sanitize(to))
            }
            Action::VariableDelete { key } => format!("variable {key}"),
            Action::SecretAdd { key } => format!("secret {key} = (sensitive)"),
            Action::SecretChange { key, reason } => {
                let why = match reason {
                    SecretReason::ValueChanged => "value changed",
                    SecretReason::NotSetByHubsync => "not set by hubsync, value unknown",
                    SecretReason::EditedElsewhere => "edited outside hubsync",
                };
                format!("secret {key} = (sensitive)  # {why}")
            }
            Action::SecretDelete { key } => format!("secret {key}"),
        };
        lines.push(style.paint(color, &format!("  {sign} {text}")));
        if let Action::FileUpdate(f) = a
            && let Some((old, new)) = diffs.get(&(repo.id.clone(), f.path.clone()))
        {
            let diff = similar::TextDiff::from_lines(old, new);
            for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
                for l in hunk.to_string().lines() {
                    let l = sanitize(l);
                    let painted = match l.chars().next() {
                        Some('+') => style.paint(GREEN, &l),
                        Some('-') => style.paint(RED, &l),
                        _ => l,
                    };
                    lines.push(format!("      {painted}"));
                }
            }
        }
    }
    lines
}
