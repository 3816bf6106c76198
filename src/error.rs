//! The top-level [`Error`]: collects the module errors and owns the exit code and the hints.
//! It must not print; `cli` renders it.

use crate::exit_code;

/// Every error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    #[error(transparent)]
    Hub(#[from] crate::client::HubError),
    #[error(transparent)]
    Serve(#[from] crate::hub::ServeError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Stale(#[from] crate::ops::StalePlan),
    #[error("{0}")]
    Apply(String, Vec<String>),
    #[error(transparent)]
    Lock(#[from] crate::util::lock::LockError),
    #[error("{0}")]
    Usage(String),
    #[error("failed to {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        exit_code::FAILURE
    }

    /// "hint: …" lines that say how to fix the error, rendered after it.
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Hub(e) => e.hints(),
            Error::Manifest(e) => e.hints(),
            Error::Plan(e) => e.hints(),
            Error::Stale(_) => vec!["run `hubsync plan` again and apply the new plan".into()],
            Error::Apply(_, hints) => hints.clone(),
            Error::Lock(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}
