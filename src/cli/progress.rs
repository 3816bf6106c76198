//! Progress on stderr: indicatif bars on a terminal, nothing otherwise (the final report and
//! `--format json` events carry the facts).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::GlobalArgs;
use crate::local::ProgressEvent;

/// Whether bars may be drawn.
pub fn enabled(global: &GlobalArgs) -> bool {
    !global.no_progress && !global.quiet && std::io::stderr().is_terminal()
}

/// The hashing bar of a scan.
pub struct Hashing {
    bar: Option<ProgressBar>,
}

impl Hashing {
    pub fn new(global: &GlobalArgs) -> Hashing {
        Hashing {
            bar: enabled(global).then(ProgressBar::hidden),
        }
    }

    pub fn update(&self, e: &ProgressEvent) {
        let Some(bar) = &self.bar else { return };
        match e {
            ProgressEvent::Listed {
                files_to_hash,
                bytes_to_hash,
                ..
            } if *files_to_hash > 0 => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_length(*bytes_to_hash);
                bar.set_style(
                    ProgressStyle::with_template(
                        "hashing {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(format!("{files_to_hash} files"));
            }
            ProgressEvent::Hashing { bytes_done, .. } => bar.set_position(*bytes_done),
            _ => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
