//! The one integration-test binary (see STYLE.md rule 14): one module per topic, shared helpers
//! in [`common`].

mod common;

mod client;
mod watch;
