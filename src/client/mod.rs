//! `HubClient`: the Hub HTTP client (reqwest + rustls) — auth, error decoding, pagination and
//! retries of idempotent calls. Must not know manifests or plans.

mod error;

pub use error::HubError;
