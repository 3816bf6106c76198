//! `hubsync watch`: args → [`WatchOptions`] → [`ops::watch`] → events printed as lines or JSON
//! Lines → exit code.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;

use super::{GlobalArgs, ManifestArgs};
use crate::apply::ApplyOptions;
use crate::exit_code;
use crate::ops;
use crate::render::{self, bytes};
use crate::watch::{self, StopReason, WaitReason, WatchEvent, WatchExit, WatchOptions};

/// How watch reports on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    /// One line per round on stdout; waits, errors and the end on stderr.
    Human,
    /// JSON Lines on stdout: one event a line, each with a `type` (`started`, `round`,
    /// `waiting`, `error`, `stopping`, `stopped`).
    Json,
}

/// `hubsync watch --help`, after the one-line summary.
pub const LONG_ABOUT: &str = "\
Keep pushing the mapped folders as they change (for example a training run's output).

Watch first reconciles: a normal apply of the file changes the plan shows, AUTO-APPROVED (no
confirmation is asked; run `hubsync plan` first if unsure). Then it watches every mapped folder
and pushes a file once it is quiet: size and mtime unchanged for `--debounce`. Temporary names
(`*.tmp`, `*.partial`, `*~`, `*.lock`, dot-files) are never pushed.

With `ready_marker:` on a mapping, a checkpoint folder (each folder matching `keep_last.pattern`,
or else each direct sub-folder) is pushed only once it holds the marker, alone, in one commit.
With `keep_last:`, older matching folders are deleted from the Hub once a newer one has landed,
never the newest, within `max_deletes`; \"newest\" is natural order (`checkpoint-500` is older
than `checkpoint-1000`). Old folders still on disk are not uploaded again.

Commits per repo stay within `--max-commits-per-hour` (the Hub allows about 128 an hour; the
count survives restarts); changes coalesce while waiting, and a 429 backs off. Restarting (even
after kill -9) re-uploads nothing the Hub has and re-hashes no unchanged file.

The first Ctrl-C (or SIGTERM) finishes the round in flight, pushes what is complete and exits 0;
a second one aborts at once (exit 130) without committing anything partial. Authentication
errors and a repo that is gone (with `create: false`) stop watch with exit 1; other errors are
reported and retried.";

/// `hubsync watch` as typed.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Only watch this repo (`namespace/name`; repeatable).
    #[arg(long = "repo", value_name = "ID")]
    pub repos: Vec<String>,
    /// How long a file must stay unchanged (size and mtime) before it is pushed: `500ms`, `5s`, `1m`.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Push at most once per DUR (like `CommitScheduler`'s `every`), instead of as soon as ready.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Most commits per repo in any hour; changes coalesce while the budget is spent.
    #[arg(long, value_name = "N", default_value_t = watch::DEFAULT_MAX_COMMITS_PER_HOUR,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_commits_per_hour: u32,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: WatchFormat,
    /// Files uploaded at once per repo.
    #[arg(long, default_value_t = 8)]
    pub uploads: usize,
}

pub fn exec(args: WatchArgs, global: &GlobalArgs) -> Result<i32, crate::Error> {
    let WatchArgs {
        manifest,
        repos,
        debounce,
        every,
        max_commits_per_hour,
        format,
        uploads,
    } = args;
    let opts = WatchOptions {
        manifest: manifest.file,
        repos,
        endpoint: global.endpoint.clone(),
        token: global.token.clone(),
        debounce,
        every,
        max_commits_per_hour,
        apply: ApplyOptions {
            uploads: uploads.max(1),
            ..ApplyOptions::default()
        },
    };
    let rt = super::runtime()?;
    let out = Mutex::new(std::io::stdout());
    let quiet = global.quiet;
    let emit = |e: &WatchEvent| {
        let (line, to_stdout) = match format {
            WatchFormat::Json => (serde_json::to_string(e).unwrap_or_default(), true),
            WatchFormat::Human => match human(e) {
                Some(line) => line,
                None => return,
            },
        };
        if to_stdout {
            // A closed stdout (`| head`) must not stop the pushing.
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        } else if !quiet {
            eprintln!("{line}");
        }
    };
    let exit = rt.block_on(ops::watch(&opts, &emit))?;
    Ok(match exit {
        WatchExit::Stopped => exit_code::SUCCESS,
        WatchExit::StoppedWithErrors => exit_code::FAILURE,
        WatchExit::Aborted => exit_code::INTERRUPTED,
    })
}

/// A human line for an event, and whether it is data (stdout) rather than a message (stderr).
fn human(e: &WatchEvent) -> Option<(String, bool)> {
    let short = |c: &str| c[..c.len().min(7)].to_string();
    Some(match e {
        WatchEvent::Started {
            repos,
            folders,
            debounce_ms,
            every_ms,
            ..
        } => {
            let folders: Vec<String> = folders
                .iter()
                .map(|f| format!("`{}`", render::sanitize(f)))
                .collect();
            let schedule = match every_ms {
                Some(ms) => format!("at most every {}", secs(*ms)),
                None => "when quiet".to_string(),
            };
            (
                format!(
                    "watching {} for {} (push {schedule}, debounce {}); Ctrl-C to stop",
                    folders.join(", "),
                    repos
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    secs(*debounce_ms)
                ),
                false,
            )
        }
        WatchEvent::Round {
            round,
            repos,
            duration_ms,
            next_push_ms,
            ..
        } => {
            let parts: Vec<String> = repos
                .iter()
                .map(|r| {
                    let commits: Vec<String> = r.commits.iter().map(|c| short(c)).collect();
                    let mut s = format!(
                        "`{}` {} ({} file{}, {})",
                        r.repo,
                        if commits.is_empty() {
                            "no commit".to_string()
                        } else {
                            commits.join(" ")
                        },
                        r.files,
                        if r.files == 1 { "" } else { "s" },
                        bytes(r.bytes)
                    );
                    if !r.changed_during_upload.is_empty() {
                        s.push_str(&format!(
                            ", {} changed during upload",
                            r.changed_during_upload.len()
                        ));
                    }
                    s
                })
                .collect();
            let next = match next_push_ms {
                None => "next push on change".to_string(),
                Some(0) => "next push now".to_string(),
                Some(ms) => format!("next push in {}", secs(*ms)),
            };
            (
                format!(
                    "round {round}: {} in {}; {next}",
                    parts.join("; "),
                    secs(*duration_ms)
                ),
                true,
            )
        }
        WatchEvent::Waiting {
            reason,
            repo,
            wait_ms,
        } => {
            let who = repo
                .as_ref()
                .map(|r| format!("`{r}`"))
                .unwrap_or_else(|| "push".into());
            let why = match reason {
                WaitReason::CommitBudget => "its commit budget is spent",
                WaitReason::RateLimited => "the Hub asked to slow down (429)",
            };
            (
                format!(
                    "waiting: {who} waits {} ({why}); changes coalesce",
                    secs(*wait_ms)
                ),
                false,
            )
        }
        WatchEvent::Error {
            message,
            hints,
            retry_ms,
            fatal,
        } => {
            let mut s = format!("error: {}", render::sanitize(message));
            match (fatal, retry_ms) {
                (true, _) => {}
                (false, Some(ms)) => s.push_str(&format!(" (retrying in {})", secs(*ms))),
                (false, None) => s.push_str(" (retrying on the next change)"),
            }
            for h in hints {
                s.push_str(&format!("\nhint: {h}"));
            }
            (s, false)
        }
        WatchEvent::Stopping { pending } => (
            format!(
                "stopping: finishing and pushing what is complete ({pending} changed path(s)); press Ctrl-C again to abort"
            ),
            false,
        ),
        WatchEvent::Stopped {
            reason,
            rounds,
            commits,
            unpushed,
        } => {
            let how = match reason {
                StopReason::Signal => "stopped",
                StopReason::Aborted => "aborted",
                StopReason::Error => "stopped on an error",
            };
            let mut s = format!("{how} after {rounds} round(s), {commits} commit(s)");
            if *unpushed > 0 {
                s.push_str(&format!("; {unpushed} changed path(s) not pushed"));
            }
            (s, false)
        }
    })
}

fn secs(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. `500ms`, `5s`, `1m`"))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}`; use `ms`, `s`, `m` or `h`"
            ));
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "5x", "0s", "-1s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_human_line_per_round() {
        let e = WatchEvent::Round {
            round: 3,
            repos: vec![watch::RoundRepo {
                repo: "alice/run".into(),
                commits: vec!["0123456789abcdef".into()],
                files: 2,
                bytes: 12_600_000,
                changed_during_upload: vec![],
            }],
            files: 2,
            bytes: 12_600_000,
            duration_ms: 1300,
            hashed_files: 2,
            hashed_bytes: 12_600_000,
            next_push_ms: None,
        };
        let (line, stdout) = human(&e).unwrap();
        assert!(stdout);
        assert_eq!(
            line,
            "round 3: `alice/run` 0123456 (2 files, 12.6 MB) in 1.3s; next push on change"
        );
    }
}
