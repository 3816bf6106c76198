//! Exit codes: part of the CLI contract, documented in the README.

/// Success; for `plan`, also "no changes" when `--detailed-exitcode` is given.
pub const SUCCESS: i32 = 0;
/// Any error: bad usage, a bad manifest, a Hub error, a failed transfer.
pub const FAILURE: i32 = 1;
/// `plan --detailed-exitcode`: the plan succeeded and has changes.
pub const CHANGES: i32 = 2;
/// `watch`: a second SIGINT/SIGTERM aborted it at once (128 + SIGINT, as shells report).
pub const INTERRUPTED: i32 = 130;
