//! Every environment variable hubsync reads, as documented constants. Reading happens in `cli`.

/// Access token for the Hub; overrides the token file.
pub const HF_TOKEN: &str = "HF_TOKEN";
/// Base URL of the Hub (default `https://huggingface.co`).
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
/// Hugging Face home folder; the token file is `$HF_HOME/token`.
pub const HF_HOME: &str = "HF_HOME";
/// Disables colour in human output when set to anything.
pub const NO_COLOR: &str = "NO_COLOR";
/// Log filter for `tracing` (for example `hubsync=debug`).
pub const HUBSYNC_LOG: &str = "HUBSYNC_LOG";
