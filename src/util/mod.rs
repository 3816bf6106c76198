//! Small shared helpers, each with a stated owner.

pub mod secret;
