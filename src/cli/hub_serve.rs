//! `hubsync hub serve`: args → `HubConfig` → serve until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use clap::Args;

use crate::hub::{self, HubConfig, Role, User};
use crate::util::secret::Secret;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder holding all the Hub's state (created if missing); a restart keeps everything.
    #[arg(long)]
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7860")]
    pub bind: String,
    /// The user that `--token` and `--read-token` act as.
    #[arg(long, requires = "token")]
    pub user: Option<String>,
    /// Write token of `--user`.
    #[arg(long, requires = "user", hide_env_values = true)]
    pub token: Option<String>,
    /// Read-only token of `--user`.
    #[arg(long, requires = "user")]
    pub read_token: Option<String>,
    /// An organisation `--user` belongs to (repeatable).
    #[arg(long = "org")]
    pub orgs: Vec<String>,
    /// Another user with a write token, as `NAME:TOKEN` (repeatable; for permission tests).
    #[arg(long = "extra-user", value_name = "NAME:TOKEN")]
    pub extra_users: Vec<String>,
    /// Entries per page of tree and commit listings.
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// LFS objects larger than this many bytes are uploaded in parts of this size.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub multipart_chunk_size: u64,
    /// Serve `GET /admin/stats` (commit and upload counters, for tests and benchmarks).
    #[arg(long)]
    pub admin: bool,
    /// Inject faults, e.g. `seed=7,http500=0.1,http429=0.05,reset=0.05,commit:lost_commit_response=0.2`
    /// (see the README; off unless given).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<crate::hub::faults::FaultSpec>,
}

impl ServeArgs {
    pub fn into_config(self) -> Result<HubConfig, crate::Error> {
        let ServeArgs {
            data,
            bind: _,
            user,
            token,
            read_token,
            orgs,
            extra_users,
            page_size,
            multipart_chunk_size,
            admin,
            faults,
        } = self;
        let mut users = Vec::new();
        if let (Some(name), Some(token)) = (user, token) {
            let mut tokens = vec![(Secret::new(token), Role::Write)];
            if let Some(rt) = read_token {
                tokens.push((Secret::new(rt), Role::Read));
            }
            users.push(User { name, orgs, tokens });
        }
        for spec in extra_users {
            let Some((name, token)) = spec.split_once(':') else {
                return Err(crate::Error::Usage(
                    "`--extra-user` takes `NAME:TOKEN`".to_string(),
                ));
            };
            users.push(User {
                name: name.to_string(),
                orgs: Vec::new(),
                tokens: vec![(Secret::new(token.to_string()), Role::Write)],
            });
        }
        if page_size == 0 || multipart_chunk_size == 0 {
            return Err(crate::Error::Usage(
                "`--page-size` and `--multipart-chunk-size` must be positive".to_string(),
            ));
        }
        Ok(HubConfig {
            data_dir: data,
            users,
            page_size,
            multipart_chunk_size,
            admin,
            faults: faults.unwrap_or_default(),
        })
    }
}

pub fn exec(args: ServeArgs) -> Result<i32, crate::Error> {
    let bind = args.bind.clone();
    let config = args.into_config()?;
    let rt = tokio::runtime::Runtime::new().map_err(|source| crate::Error::Io {
        what: "start the async runtime".into(),
        source,
    })?;
    rt.block_on(async move {
        // Listen for signals before announcing the address: a supervisor may stop the hub as
        // soon as it reads the line.
        let signals = shutdown_signal();
        let running = hub::spawn(config, &bind).await?;
        // The first stdout line is the contract scripts and tests wait for.
        println!("listening on {}", running.url());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        signals.await;
        eprintln!("shutting down");
        running.stop().await?;
        Ok(crate::exit_code::SUCCESS)
    })
}

/// Registers SIGINT and SIGTERM handlers now; the returned future resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
