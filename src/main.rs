//! The `hubsync` binary: parse, run, exit. All logic lives in the library.

use clap::Parser;

fn main() {
    let cli = hubsync::cli::Cli::parse();
    let code = hubsync::cli::run(cli);
    std::process::exit(code);
}
