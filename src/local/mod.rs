//! The local side: walking mapped folders with include/exclude globs, streaming SHA-256 and git
//! blob SHA-1, and a persistent hash cache. Must not know Hub types.

/// A local filesystem error, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("failed to read `{path}`")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
