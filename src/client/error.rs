//! `HubError`: what failed (method, redacted URL, status, Hub error code and message).

/// An error talking to the Hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Other(String),
}

impl HubError {
    pub fn hints(&self) -> Vec<String> {
        Vec::new()
    }
}
