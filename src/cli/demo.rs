//! `hubsync demo [--keep-serving]`: a temporary folder → `ops::demo::run` → rendered steps, then
//! (with `--keep-serving`) wait for Ctrl-C before stopping the hub and deleting the folder.

use std::io::Write;

use clap::Args;

use super::GlobalArgs;
use crate::exit_code;
use crate::ops::demo::{self, DemoOptions, DemoStep};
use crate::render;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the local Hub running after the demo, until Ctrl-C, so other clients can use it.
    #[arg(long)]
    pub keep_serving: bool,
}

pub fn exec(args: DemoArgs, global: &GlobalArgs) -> Result<i32, crate::Error> {
    let DemoArgs { keep_serving } = args;
    let root = tempfile::Builder::new()
        .prefix("hubsync-demo-")
        .tempdir()
        .map_err(|source| crate::Error::Io {
            what: "create a temporary folder for the demo".into(),
            source,
        })?;
    let style = super::plan::stdout_style();
    let quiet = global.quiet;
    let print = |s: &str| {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`hubsync demo | head`) is not an error.
        let _ = writeln!(out, "{s}").and_then(|_| out.flush());
    };
    let on_step = |step: DemoStep<'_>| match &step {
        DemoStep::Apply(e) => {
            if !quiet && let Some(line) = render::human::apply_event(e) {
                eprintln!("{line}");
            }
        }
        _ => {
            if let Some(text) = render::human::demo_step(&step, style) {
                print(&text);
            }
        }
    };
    let rt = super::runtime()?;
    rt.block_on(async {
        let opts = DemoOptions {
            root: root.path().to_path_buf(),
        };
        let finished = demo::run(&opts, &on_step).await?;
        // Handlers first, so a Ctrl-C right after the notes below stops the hub cleanly.
        let signals = keep_serving.then(super::hub_serve::shutdown_signal);
        print(&render::human::demo_connect(&finished, keep_serving, style));
        if let Some(signals) = signals {
            signals.await;
            eprintln!("shutting down");
        }
        finished.stop().await
    })?;
    drop(root);
    Ok(exit_code::SUCCESS)
}
