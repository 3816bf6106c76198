//! The local Hub (`hubsync hub serve`): a storage core that knows nothing of HTTP
//! ([`store`]) behind one axum [`router`]. Must not import client, plan or apply.

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("failed to bind `{addr}`")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}
