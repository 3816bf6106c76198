//! The human plan: `+` add, `~` change, `-` delete, grouped by repo with its base commit, and a
//! summary line; apply's progress lines and final report; the demo's closing notes.

use super::{Style, TextDiffs, bytes, sanitize};
use crate::apply::{ApplyEvent, ApplyReport};
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

/// One progress line for a human, on stderr.
pub fn apply_event(e: &ApplyEvent) -> Option<String> {
    Some(match e {
        ApplyEvent::RepoCreated { repo, .. } => format!("created `{repo}`"),
        ApplyEvent::UploadStarted { .. } => return None,
        ApplyEvent::UploadDone {
            repo,
            path,
            size,
            skipped: false,
        } => {
            format!(
                "uploaded `{}` to `{repo}` ({})",
                sanitize(path),
                bytes(*size)
            )
        }
        ApplyEvent::UploadDone { .. } => return None,
        ApplyEvent::UploadFailed { repo, path, error } => {
            format!(
                "error: `{}` of `{repo}` was not uploaded: {}",
                sanitize(path),
                sanitize(error)
            )
        }
        ApplyEvent::CommitCreated {
            repo,
            commit,
            files,
            ..
        } => {
            format!(
                "committed {} to `{repo}` ({files} file changes)",
                &commit[..commit.len().min(7)]
            )
        }
        ApplyEvent::RefCreated {
            repo, kind, name, ..
        } => format!("{kind} `{}` set on `{repo}`", sanitize(name)),
        ApplyEvent::SettingChanged { repo, setting, .. } => {
            format!("{setting} updated on `{repo}`")
        }
        ApplyEvent::HeadMoved { repo, from, to } => format!(
            "`{repo}` moved from {} to {} while applying; continuing on top of it",
            &from[..from.len().min(7)],
            &to[..to.len().min(7)]
        ),
        ApplyEvent::Done { .. } => return None,
    })
}

/// The final report: per repo, commits (ids and URLs), bytes uploaded, time taken.
pub fn apply_report(report: &ApplyReport) -> String {
    let mut out = String::from("\nApply complete.\n");
    if !report.ok() {
        out = String::from("\nApply finished with errors.\n");
    }
    for r in &report.repos {
        out.push_str(&format!(
            "  {} {}: {} commit{}, {} uploaded in {:.1}s\n",
            r.repo_type,
            r.id,
            r.commits.len(),
            if r.commits.len() == 1 { "" } else { "s" },
            bytes(r.bytes_uploaded),
            r.elapsed_ms as f64 / 1000.0
        ));
        for c in &r.commits {
            out.push_str(&format!(
                "    {}  {}\n",
                &c.oid[..c.oid.len().min(7)],
                c.url
            ));
        }
        for (path, why) in &r.failed_files {
            out.push_str(&format!(
                "    failed: {}: {}\n",
                sanitize(path),
                sanitize(why)
            ));
        }
    }
    out.trim_end().to_string()
}

/// What the demo prints on stdout for a step (apply's own events go to stderr, as in `apply`).
pub fn demo_step(step: &crate::ops::demo::DemoStep<'_>, style: Style) -> Option<String> {
    use crate::ops::demo::DemoStep;
    Some(match step {
        DemoStep::HubStarted { url, data_dir } => format!(
            "Started a local Hub at {url} (data in `{}`).",
            data_dir.display()
        ),
        DemoStep::WorkspaceWritten {
            manifest,
            files,
            bytes: n,
        } => format!(
            "Wrote the example manifest `{}` (examples/demo.yaml) and its folders: {files} files, {}.\n\
             The Space secret `API_KEY` takes its value from `${}`, which the demo sets for itself.",
            manifest.display(),
            bytes(*n),
            crate::ops::demo::SECRET_ENV,
        ),
        DemoStep::Planned { plan: p, diffs } => format!(
            "\n{}\n\n{}",
            style.paint(BOLD, "==> hubsync plan"),
            plan(p, diffs, style).trim_end()
        ),
        DemoStep::Apply(_) => return None,
        DemoStep::Applied(report) => format!(
            "\n{}\n{}",
            style.paint(BOLD, "==> hubsync apply --auto-approve"),
            apply_report(report)
        ),
        DemoStep::Replanned { plan: p } => format!(
            "\n{}\n\n{}",
            style.paint(BOLD, "==> hubsync plan (again)"),
            plan(p, &super::TextDiffs::new(), style).trim_end()
        ),
    })
}

/// The demo's closing notes: where the hub is and how to point `huggingface_hub` and hubsync
/// at it.
pub fn demo_connect(demo: &crate::ops::demo::Demo, keep_serving: bool, style: Style) -> String {
    use crate::ops::demo::TOKEN;
    let url = &demo.url;
    let model = demo
        .repos
        .iter()
        .find(|(t, _)| *t == crate::api::RepoType::Model)
        .map(|(_, id)| id.as_str())
        .unwrap_or("demo/tiny-model");
    let space = demo
        .repos
        .iter()
        .find(|(t, _)| *t == crate::api::RepoType::Space)
        .map(|(_, id)| id.as_str())
        .unwrap_or("demo/tiny-space");
    let workspace = demo
        .manifest
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let lines = [
        format!("The local Hub is at {url}; its token (valid on this hub only) is `{TOKEN}`."),
        "Point huggingface_hub at it (with Xet off: the local Hub speaks the classic LFS protocol),\n\
             for example from a shell:"
            .to_string(),
        String::new(),
        format!("export HF_ENDPOINT={url}"),
        format!("export HF_TOKEN={TOKEN}"),
        "export HF_HUB_DISABLE_XET=1".to_string(),
        "python - <<'EOF'".to_string(),
        "from huggingface_hub import HfApi, snapshot_download".to_string(),
        "api = HfApi()".to_string(),
        format!("for c in api.list_repo_commits(\"{model}\"):"),
        "    print(c.commit_id[:7], c.title)".to_string(),
        format!("print(api.get_space_runtime(\"{space}\").requested_hardware)"),
        format!("print(snapshot_download(\"{model}\", revision=\"v1.0\"))"),
        "EOF".to_string(),
        String::new(),
        "Or run hubsync against it:".to_string(),
        String::new(),
        format!("cd '{workspace}'"),
        format!("HF_ENDPOINT={url} HF_TOKEN={TOKEN} hubsync plan"),
        "(then edit a file under `model/` and run `hubsync apply`)".to_string(),
        String::new(),
    ];
    let mut out = format!(
        "\n{}\n\n{}\n",
        style.paint(BOLD, "==> Try it"),
        lines.join("\n")
    );
    if keep_serving {
        out.push_str("The hub keeps running until Ctrl-C; its data is deleted then.");
    } else {
        out.push_str(
            "The hub stops, and its data is deleted, as this command exits; run `hubsync demo --keep-serving` to keep it running.",
        );
    }
    out
}
