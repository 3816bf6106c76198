//! Command-line types (clap) and dispatch: args → settings → library call → exit code.
//! Must not contain logic beyond resolving settings and rendering the outcome.

mod apply;
mod demo;
mod hub_serve;
mod plan;
mod progress;
mod schema;
mod validate;
mod watch;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::Error;

/// Keep Hugging Face Hub repositories in sync with a declarative manifest.
#[derive(Debug, Parser)]
#[command(name = "hubsync", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command that talks to the Hub.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Hub base URL (default: `HF_ENDPOINT`, then the manifest's `endpoint:`, then huggingface.co).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// Access token; prefer the `HF_TOKEN` environment variable.
    #[arg(long, global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// More logging on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// `-f FILE`, shared by every command that reads a manifest.
#[derive(Debug, Args, Clone)]
pub struct ManifestArgs {
    /// The manifest, relative to the current folder; paths inside it are relative to its folder.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = crate::manifest::DEFAULT_FILE)]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change: the Hub compared with the manifest and local folders.
    Plan(plan::PlanArgs),
    /// Make the Hub match the manifest (asks first on a terminal), or apply a saved plan.
    Apply(apply::ApplyArgs),
    /// Keep pushing the mapped folders as they change (reconciles first, auto-approved).
    #[command(long_about = watch::LONG_ABOUT)]
    Watch(watch::WatchArgs),
    /// Check a manifest without touching the network or the mapped folders.
    Validate(validate::ValidateArgs),
    /// Print the manifest's JSON Schema (or the JSON plan's, with `--plan`).
    Schema(schema::SchemaArgs),
    /// Try hubsync on an embedded local Hub: plan, apply and re-plan an example manifest.
    Demo(demo::DemoArgs),
    /// Run the local Hub.
    #[command(subcommand)]
    Hub(HubCommand),
}

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Serve a persistent local Hub that `huggingface_hub` and hubsync accept.
    // Boxed: the serve options are by far the largest arguments.
    Serve(Box<hub_serve::ServeArgs>),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    init_logging(&cli.global);
    let global = cli.global;
    let result = match cli.command {
        Command::Plan(args) => plan::exec(args, &global),
        Command::Apply(args) => apply::exec(args, &global),
        Command::Watch(args) => watch::exec(args, &global),
        Command::Validate(args) => validate::exec(args),
        Command::Schema(args) => schema::exec(args),
        Command::Demo(args) => demo::exec(args, &global),
        Command::Hub(HubCommand::Serve(args)) => hub_serve::exec(*args),
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Prints an error with its cause chain and hints on stderr; returns its exit code.
pub fn report(err: &Error) -> i32 {
    eprintln!("{}", error_text(err));
    err.exit_code()
}

/// An error as `report` prints it: `error: …`, a `caused by:` line per cause, then its hints.
pub fn error_text(err: &Error) -> String {
    let mut msg = format!(
        "error: {}",
        crate::util::error::messages(err).join("\n  caused by: ")
    );
    for hint in err.hints() {
        msg.push_str(&format!("\n\nhint: {hint}"));
    }
    msg
}

fn init_logging(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "hubsync=info,warn",
        (false, 2) => "hubsync=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(crate::env::HUBSYNC_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The async runtime commands run on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "start the async runtime".into(),
            source,
        })
}
