//! Small shared helpers, each with a stated owner.

pub mod error;
pub mod io;
pub mod lock;
pub mod secret;
