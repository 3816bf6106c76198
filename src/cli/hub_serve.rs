//! `hubsync hub serve`.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder holding all the Hub's state; created if missing.
    #[arg(long)]
    pub data: PathBuf,
}

pub fn exec(_args: ServeArgs) -> Result<i32, crate::Error> {
    Err(crate::Error::Usage("not implemented yet".into()))
}
