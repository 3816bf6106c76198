//! The one integration-test binary (see STYLE.md rule 14): one module per topic, shared helpers
//! in [`common`].

mod common;

mod apply;
mod client;
mod concurrency;
mod crash;
mod demo;
mod faults;
mod fuzz;
mod hostile_fs;
mod hostile_server;
mod hub_crash;
mod hub_security;
mod leaks;
mod plan;
mod plan_fixtures;
mod schemas;
mod watch;
