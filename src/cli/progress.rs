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
                        "hashing {msg} {wide_bar} {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}",
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

/// Apply's bars: bytes uploaded, files committed, commits made. Event lines print above them.
pub struct ApplyBars {
    multi: indicatif::MultiProgress,
    bytes: ProgressBar,
    files: ProgressBar,
    commits: ProgressBar,
}

impl ApplyBars {
    /// `None` when bars are off (no terminal, `--no-progress`, `-q`).
    pub fn new(global: &GlobalArgs, plan: &crate::plan::Plan) -> Option<ApplyBars> {
        if !enabled(global) {
            return None;
        }
        let multi = indicatif::MultiProgress::new();
        let style = |t: &str| {
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let files_total: usize = plan
            .repos
            .iter()
            .map(|r| r.actions.iter().filter(|a| a.file_path().is_some()).count())
            .sum();
        let bytes = multi.add(ProgressBar::new(plan.summary.upload_bytes));
        bytes.set_style(style(
            "upload  {wide_bar} {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}",
        ));
        let files = multi.add(ProgressBar::new(files_total as u64));
        files.set_style(style("files   {wide_bar} {pos}/{len}"));
        let commits = multi.add(ProgressBar::new(plan.summary.commits as u64));
        commits.set_style(style("commits {wide_bar} {pos}/{len}"));
        Some(ApplyBars {
            multi,
            bytes,
            files,
            commits,
        })
    }

    pub fn event(&self, e: &crate::apply::ApplyEvent, line: Option<String>) {
        use crate::apply::ApplyEvent;
        match e {
            ApplyEvent::UploadDone {
                size,
                skipped: false,
                ..
            } => self.bytes.inc(*size),
            ApplyEvent::CommitCreated { files, .. } => {
                self.files.inc(*files as u64);
                self.commits.inc(1);
            }
            _ => {}
        }
        if let Some(line) = line {
            let _ = self.multi.println(line);
        }
    }

    pub fn finish(&self) {
        for b in [&self.bytes, &self.files, &self.commits] {
            b.finish_and_clear();
        }
    }
}
