//! `hubsync plan`: args → `PlanOptions` → `ops::plan` → a renderer → exit code.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::{GlobalArgs, ManifestArgs, progress};
use crate::exit_code;
use crate::ops::{self, PlanOptions};
use crate::render::{self, OutputFormat, Style};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Only plan this repo (`namespace/name`; repeatable).
    #[arg(long = "repo", value_name = "ID")]
    pub repos: Vec<String>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: OutputFormat,
    /// Also save the plan to this file, for `hubsync apply PLANFILE`.
    #[arg(short = 'o', long = "out", value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when the plan has changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// The colour style for stdout: only on a terminal, never with `NO_COLOR`.
pub fn stdout_style() -> Style {
    Style {
        color: std::io::stdout().is_terminal() && std::env::var_os(crate::env::NO_COLOR).is_none(),
    }
}

pub fn exec(args: PlanArgs, global: &GlobalArgs) -> Result<i32, crate::Error> {
    let PlanArgs {
        manifest,
        repos,
        format,
        out,
        detailed_exitcode,
    } = args;
    let opts = PlanOptions {
        manifest: manifest.file,
        repos,
        endpoint: global.endpoint.clone(),
        token: global.token.clone(),
        diffs: format != OutputFormat::Json,
    };
    let rt = super::runtime()?;
    let bar = progress::Hashing::new(global);
    let planned = rt.block_on(ops::plan(&opts, |e| bar.update(&e)))?;
    bar.finish();
    for w in &planned.warnings {
        eprintln!("warning: {w}");
    }
    let text = match format {
        OutputFormat::Human => render::human::plan(&planned.plan, &planned.diffs, stdout_style()),
        OutputFormat::Json => render::json(&planned.plan),
        OutputFormat::Markdown => render::markdown(&planned.plan, &planned.diffs),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`hubsync plan | head`) is not an error.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
    if let Some(path) = out {
        ops::write_plan(&path, &planned.plan)?;
        if !global.quiet {
            eprintln!(
                "Saved the plan to `{}`; apply it with `hubsync apply {}`.",
                path.display(),
                path.display()
            );
        }
    }
    Ok(if detailed_exitcode && planned.plan.has_changes() {
        exit_code::CHANGES
    } else {
        exit_code::SUCCESS
    })
}
