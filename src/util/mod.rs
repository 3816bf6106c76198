//! Small shared helpers, each with a stated owner.

pub mod lock;
pub mod secret;
