//! The manifest: YAML types, loading with `file:line:col` errors, validation and `${ENV}`
//! interpolation. Must not walk folders or call the Hub.

/// A manifest error, always naming the file and, where known, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}")]
    Invalid(String),
}

impl ManifestError {
    pub fn hints(&self) -> Vec<String> {
        Vec::new()
    }
}
