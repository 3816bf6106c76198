//! hubsync: a declarative sync/reconcile agent for Hugging Face Hub repositories.
//!
//! Data flows one way: [`manifest`] → [`local`] scan → [`remote`] snapshot → [`plan`] (pure)
//! → apply → [`render`]. The [`hub`] module is the local Hub (`hubsync hub serve`), which shares
//! the wire types of [`api`] with the [`client`].

pub mod api;
pub mod apply;
pub mod cli;
pub mod client;
pub mod env;
pub mod error;
pub mod exit_code;
pub mod hub;
pub mod local;
pub mod manifest;
pub mod ops;
pub mod plan;
pub mod remote;
pub mod render;
pub mod util;
pub mod watch;

pub use error::Error;
