//! `hubsync apply [PLANFILE]`: plan (or read a saved plan and check it is current), show it,
//! confirm, apply, report.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use clap::Args;

use super::{GlobalArgs, ManifestArgs, progress};
use crate::apply::{self, ApplyEvent, ApplyOptions, ApplyReport};
use crate::exit_code;
use crate::ops::{self, HubSettings, PlanOptions};
use crate::render;

/// How apply reports progress on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApplyFormat {
    Human,
    /// JSON Lines: one event a line, each with a `type`.
    Json,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Only apply to this repo (`namespace/name`; repeatable). Not with PLANFILE.
    #[arg(long = "repo", value_name = "ID")]
    pub repos: Vec<String>,
    /// Apply without asking for confirmation.
    #[arg(short = 'y', long)]
    pub auto_approve: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ApplyFormat,
    /// Files uploaded at once per repo.
    #[arg(long, default_value_t = 8)]
    pub uploads: usize,
    /// Parts of one multipart upload sent at once.
    #[arg(long, default_value_t = 8)]
    pub parts: usize,
    /// Apply exactly this saved plan (from `hubsync plan -o`), refusing it if anything moved.
    #[arg(value_name = "PLANFILE")]
    pub planfile: Option<PathBuf>,
}

pub fn exec(args: ApplyArgs, global: &GlobalArgs) -> Result<i32, crate::Error> {
    let ApplyArgs {
        manifest,
        repos,
        auto_approve,
        format,
        uploads,
        parts,
        planfile,
    } = args;
    let rt = super::runtime()?;
    let json = format == ApplyFormat::Json;
    let out = Mutex::new(std::io::stdout());
    let print = |s: &str| {
        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(o, "{s}");
        let _ = o.flush();
    };

    // One apply per manifest folder at a time; a lock left by a dead process is recovered.
    let lock_dir = match &planfile {
        Some(p) if !manifest.file.exists() => {
            p.parent().map(|d| d.to_path_buf()).unwrap_or_default()
        }
        _ => manifest
            .file
            .parent()
            .map(|d| d.to_path_buf())
            .unwrap_or_default(),
    };
    let lock_dir = if lock_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        lock_dir
    };
    let _lock =
        crate::util::lock::ApplyLock::acquire(&lock_dir.join(".hubsync").join("apply.lock"))?;
    let (plan, client, secrets) = match &planfile {
        Some(path) => {
            if !repos.is_empty() {
                return Err(crate::Error::Usage(
                    "`--repo` cannot narrow a saved plan; plan again with `--repo`".into(),
                ));
            }
            let plan = ops::read_plan(path)?;
            // Secret values never go in a plan file: they come from the manifest's environment.
            let m = if manifest.file.exists() {
                Some(ops::load_manifest(&manifest.file, &[])?)
            } else {
                None
            };
            let hub = HubSettings::resolve(
                global.endpoint.as_deref(),
                global.token.as_deref(),
                m.as_ref().and_then(|m| m.endpoint.as_deref()),
                &|k| std::env::var(k).ok(),
            );
            let client = hub.client()?;
            rt.block_on(ops::check_stale(&client, &plan))?;
            let secrets = m.as_ref().map(ops::secret_values).unwrap_or_default();
            (plan, client, secrets)
        }
        None => {
            let opts = PlanOptions {
                manifest: manifest.file,
                repos,
                endpoint: global.endpoint.clone(),
                token: global.token.clone(),
                diffs: !json,
            };
            let bar = progress::Hashing::new(global);
            let planned = rt.block_on(ops::plan(&opts, |e| bar.update(&e)))?;
            bar.finish();
            for w in &planned.warnings {
                eprintln!("warning: {w}");
            }
            if json {
                // Serialized straight from the plan: a `json!` value would copy 10,000 actions.
                #[derive(serde::Serialize)]
                struct PlanEvent<'a> {
                    r#type: &'static str,
                    plan: &'a crate::plan::Plan,
                }
                let event = PlanEvent {
                    r#type: "plan",
                    plan: &planned.plan,
                };
                print(&serde_json::to_string(&event).unwrap_or_default());
            } else {
                let text =
                    render::human::plan(&planned.plan, &planned.diffs, super::plan::stdout_style());
                print(text.trim_end());
            }
            (planned.plan, planned.client, planned.secrets)
        }
    };
    if !plan.has_changes() {
        if planfile.is_some() && !json {
            print("No changes. The Hub matches the manifest.");
        }
        return Ok(exit_code::SUCCESS);
    }
    if !auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(crate::Error::Usage(
                "refusing to apply without confirmation: there is no terminal to ask on; review the plan, then pass `--auto-approve` (`-y`)"
                    .into(),
            ));
        }
        eprint!("\nApply these changes? Only `yes` is accepted: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("Apply cancelled; nothing was changed.");
            return Ok(exit_code::FAILURE);
        }
    }

    let quiet = global.quiet;
    let bars = if json {
        None
    } else {
        progress::ApplyBars::new(global, &plan)
    };
    let emit = |e: ApplyEvent| {
        if json {
            print(&serde_json::to_string(&e).unwrap_or_default());
        } else if let Some(bars) = &bars {
            bars.event(&e, render::human::apply_event(&e));
        } else if !quiet && let Some(line) = render::human::apply_event(&e) {
            eprintln!("{line}");
        }
    };
    let opts = ApplyOptions {
        repos: 4,
        uploads: uploads.max(1),
        parts: parts.max(1),
    };
    let report = rt.block_on(apply::apply(&client, &plan, &secrets, &opts, &emit));
    if let Some(bars) = &bars {
        bars.finish();
    }
    if !json {
        print(&render::human::apply_report(&report));
    }
    finish(report)
}

fn finish(report: ApplyReport) -> Result<i32, crate::Error> {
    let mut errors = Vec::new();
    let mut hints = Vec::new();
    for r in &report.repos {
        if let Some(e) = &r.error {
            errors.push(crate::util::error::messages(e).join("\n  caused by: "));
            hints.extend(e.hints());
        }
        if !r.failed_files.is_empty() {
            errors.push(format!(
                "{} file(s) of `{}` were not uploaded (see above)",
                r.failed_files.len(),
                r.id
            ));
            hints.push("fix or stop changing those files, then run `hubsync apply` again".into());
        }
    }
    if errors.is_empty() {
        return Ok(exit_code::SUCCESS);
    }
    hints.dedup();
    Err(crate::Error::Apply(errors.join("\nerror: "), hints))
}
