//! `hubsync watch`: keep pushing a folder (a training run's output) as it changes — never a
//! half-written file, never a lost checkpoint, at most the commits the Hub allows.
//!
//! # Shape
//!
//! One dispatcher loop ([`run`]) and nothing else: a single `tokio::select!` over
//! - file-system events (`notify`, recursive on every mapped folder; see `fs`),
//! - a readiness timer, armed only while changed paths wait out their debounce window (an idle
//!   watch does no work at all: no polling, no scans),
//! - the round in flight (one future, polled by the loop itself — never spawned),
//! - apply's progress events, and
//! - SIGINT / SIGTERM.
//!
//! A *round* is manifest → local scan → remote snapshot → plan → apply, through
//! [`ops::plan_manifest`] and [`crate::apply::apply`]; the loop makes no HTTP call itself. At
//! most one round runs at a time, so there are never two applies on a repo; events that arrive
//! during a round are recorded and coalesce into the next one. Because every round re-plans
//! from the disk and the Hub, nothing is lost between rounds: the tracked paths only decide
//! *when* to push and *what to hold back*, never what the Hub should hold.
//!
//! # Readiness (`ready`)
//!
//! A changed file is pushed once quiet: no event and the same size and mtime for the debounce
//! window (`--debounce`, default 5 s). Files still changing are left out of the round (they are
//! added to the mapping's `exclude`, so the planner never sees them and `prune` leaves their
//! remote copies alone). A round starts when every changed path is quiet, or when a quiet path
//! has waited three more windows (so a log appended to forever cannot hold a checkpoint back).
//! Temporary names ([`TEMP_EXCLUDES`]) are never pushed. With `ready_marker`, a unit folder
//! (each folder matching `keep_last.pattern`, or else each direct sub-folder) is pushed only
//! once it holds the marker and nothing in it is changing, and then as the only unit of its
//! commit, in one commit (`round`). Since excludes are fixed when a round starts but the scan
//! runs a moment later, every file the plan uploads must also be vouched for afterwards: older
//! than the round's start minus the window, or quiet at the start with the very same size and
//! mtime (`round::hold_unready`). A file that changes while being uploaded fails apply's streaming SHA-256 check,
//! is left out of the commit, and is taken by the next round.
//!
//! # Scheduling (`schedule`)
//!
//! By default a round follows as soon as the changes are ready; with `--every DUR` rounds
//! that push something are at least DUR apart. Either way each repo's commit budget
//! (`--max-commits-per-hour`, default 100, a sliding hour saved beside the manifest) is never
//! exceeded: a repo out of budget waits, and its changes coalesce. Errors are reported and
//! retried with exponential backoff; a 429 waits at least as long as the Hub asked. A
//! persistent error — 401/403, or a repo that is gone while the manifest says `create: false`
//! — stops watch (exit 1).
//!
//! # Start, restart and stop
//!
//! The first round, right at start, is a normal apply of the file changes, auto-approved.
//! Watch takes the manifest folder's apply lock (`.hubsync/apply.lock`) for its lifetime.
//! After a restart (Ctrl-C or `kill -9`), the plan sees what the Hub already holds and the hash
//! cache spares re-hashing unchanged files. The first SIGINT/SIGTERM lets the round in flight
//! finish, then pushes what is complete — the debounce shrinks to at most 1 s and `--every` is
//! ignored; the budget still holds — and exits 0. A second signal drops the round at once:
//! commits are atomic, so nothing partial lands.
//!
//! # Output
//!
//! [`WatchEvent`]s: one `round` per round that pushed (commit ids, files, bytes, duration, next
//! push), plus `started`, `waiting`, `error`, `stopping` and `stopped`. `cli` prints them as
//! lines or as JSON Lines.

mod events;
mod fs;
mod ready;
mod round;
mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

pub use events::{RoundRepo, StopReason, WaitReason, WatchEvent};
pub use ready::{TEMP_EXCLUDES, is_temp_name};
pub use schedule::DEFAULT_MAX_COMMITS_PER_HOUR;

use crate::Error;
use crate::apply::{ApplyError, ApplyEvent, ApplyOptions};
use crate::client::ErrorKind;
use crate::manifest::{self, Manifest};
use crate::ops::{self, PlanOptions};
use crate::plan::{Action, PlanError};
use crate::util::lock::ApplyLock;
use ready::{MappingRule, Snapshot, Stamp, Tracker};
use round::{RoundInput, RoundOutput};
use schedule::{Backoff, Budget};

/// How long a file must stay unchanged before it is pushed, when `--debounce` is not given.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(5);
/// A quiet file waits at most this many more debounce windows for the others to settle.
const MAX_DELAY_WINDOWS: u32 = 3;
/// On the first signal the debounce shrinks to at most this.
const STOP_DEBOUNCE: Duration = Duration::from_secs(1);
/// Rounds allowed after the first signal (each pushes something; this only bounds a folder
/// that never stops changing).
const MAX_STOP_ROUNDS: u32 = 32;
/// The file, beside the manifest, that keeps the commit budget across restarts.
pub const BUDGET_FILE: &str = "watch-commits.json";

/// What `watch` needs.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub manifest: PathBuf,
    /// Only these repos (`namespace/name`); empty means all.
    pub repos: Vec<String>,
    pub endpoint: Option<String>,
    pub token: Option<String>,
    /// How long a file must stay unchanged before it is pushed.
    pub debounce: Duration,
    /// Push at most once per this interval.
    pub every: Option<Duration>,
    /// Commits per repo in any hour.
    pub max_commits_per_hour: u32,
    pub apply: ApplyOptions,
}

impl WatchOptions {
    /// Defaults for everything but the manifest.
    pub fn new(manifest: impl Into<PathBuf>) -> WatchOptions {
        WatchOptions {
            manifest: manifest.into(),
            repos: Vec::new(),
            endpoint: None,
            token: None,
            debounce: DEFAULT_DEBOUNCE,
            every: None,
            max_commits_per_hour: DEFAULT_MAX_COMMITS_PER_HOUR,
            apply: ApplyOptions::default(),
        }
    }
}

/// How watch ended, short of a persistent error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchExit {
    /// A signal; everything complete was pushed.
    Stopped,
    /// A signal, but the final push failed; changes were left unpushed.
    StoppedWithErrors,
    /// A second signal: stopped at once.
    Aborted,
}

/// Where watch sends its events.
pub type Emit<'a> = &'a (dyn Fn(&WatchEvent) + Send + Sync);

/// Watches until a signal or a persistent error (see the module docs).
pub async fn run(opts: &WatchOptions, emit: Emit<'_>) -> Result<WatchExit, Error> {
    run_until(opts, emit, std::future::pending()).await
}

/// [`run`], with `shutdown` acting as a first signal when it completes (for embedding watch in
/// another program, and for benchmarks). SIGINT and SIGTERM still work.
pub async fn run_until(
    opts: &WatchOptions,
    emit: Emit<'_>,
    shutdown: impl Future<Output = ()>,
) -> Result<WatchExit, Error> {
    let manifest = ops::load_manifest(&opts.manifest, &opts.repos)?;
    manifest::check_paths(&manifest)?;
    let state_dir = manifest.base_dir.join(".hubsync");
    let _lock = ApplyLock::acquire(&state_dir.join("apply.lock"))?;
    let mut rules = Vec::new();
    for (ri, r) in manifest.repos.iter().enumerate() {
        for (mi, f) in r.files.iter().enumerate() {
            rules.push(MappingRule::new(ri, mi, f)?);
        }
    }
    let roots: BTreeSet<PathBuf> = rules.iter().map(|r| r.root.clone()).collect();
    let (fs_tx, fs_rx) = mpsc::channel(fs::CHANNEL_CAPACITY);
    // Watch before the first scan, so nothing written meanwhile is missed.
    let _watcher = fs::watch(&roots, fs_tx)?;
    let mut signals = Signals::new()?;

    let mut d = Dispatcher {
        emit,
        plan_opts: PlanOptions {
            manifest: opts.manifest.clone(),
            repos: Vec::new(),
            endpoint: opts.endpoint.clone(),
            token: opts.token.clone(),
            diffs: false,
        },
        apply_opts: opts.apply.clone(),
        debounce: opts.debounce,
        every: opts.every,
        retention: manifest
            .repos
            .iter()
            .any(|r| r.files.iter().any(|f| f.keep_last.is_some())),
        budget: Budget::load(state_dir.join(BUDGET_FILE), opts.max_commits_per_hour),
        manifest,
        rules,
        tracker: Tracker::new(),
        snapshot: Snapshot::default(),
        backoff: Backoff::default(),
        backoff_until: None,
        rerun: true,
        check: false,
        held: BTreeSet::new(),
        announced: BTreeSet::new(),
        last_push: None,
        stopping: None,
        stop_rounds: 0,
        flush_failed: false,
        rounds: 0,
        commits: 0,
        warned: false,
    };
    d.seed(Instant::now(), d.debounce);
    emit(&WatchEvent::Started {
        repos: d.manifest.repos.iter().map(|r| r.id.to_string()).collect(),
        folders: roots.iter().map(|r| r.display().to_string()).collect(),
        debounce_ms: opts.debounce.as_millis() as u64,
        every_ms: opts.every.map(|e| e.as_millis() as u64),
        max_commits_per_hour: opts.max_commits_per_hour,
    });
    d.run(fs_rx, &mut signals, shutdown).await
}

/// What the loop does next when no round is running.
enum Next {
    Start,
    /// Sleep until then (`None`: until an event).
    Wait(Option<Instant>),
    Exit,
}

// Not `Send`: the round is polled by the dispatcher itself, never spawned.
type RoundFuture = Pin<Box<dyn Future<Output = RoundOutput>>>;

/// The dispatcher's state. Only [`Dispatcher::run`] drives it.
struct Dispatcher<'a> {
    emit: Emit<'a>,
    manifest: Manifest,
    rules: Vec<MappingRule>,
    plan_opts: PlanOptions,
    apply_opts: ApplyOptions,
    debounce: Duration,
    every: Option<Duration>,
    /// Some mapping has `keep_last`: a push may leave old folders to retire next round.
    retention: bool,
    tracker: Tracker,
    /// The quiet paths the round in flight started with.
    snapshot: Snapshot,
    budget: Budget,
    backoff: Backoff,
    backoff_until: Option<Instant>,
    /// Plan again even without new changes (the start, held-back work, after errors).
    rerun: bool,
    /// Plan again to let retention retire old folders after a push: like `rerun`, but it may
    /// well find nothing, so it does not count as a due push.
    check: bool,
    /// Repos with work held back by the commit budget.
    held: BTreeSet<String>,
    /// Repos whose budget wait was reported (reported once per wait).
    announced: BTreeSet<String>,
    /// When the last round that pushed something ended.
    last_push: Option<Instant>,
    /// When the first signal came.
    stopping: Option<Instant>,
    stop_rounds: u32,
    flush_failed: bool,
    rounds: u64,
    commits: usize,
    /// Scan warnings were shown once.
    warned: bool,
}

impl Dispatcher<'_> {
    async fn run(
        mut self,
        mut fs_rx: mpsc::Receiver<fs::FsEvent>,
        signals: &mut Signals,
        shutdown: impl Future<Output = ()>,
    ) -> Result<WatchExit, Error> {
        let shutdown = shutdown;
        tokio::pin!(shutdown);
        let mut shutdown_open = true;
        let (apply_tx, mut apply_rx) = mpsc::unbounded_channel::<ApplyEvent>();
        let mut round: Option<RoundFuture> = None;
        let mut fs_open = true;
        loop {
            let mut wake = None;
            if round.is_none() {
                match self.decide(Instant::now()) {
                    Next::Start => {
                        round = Some(Box::pin(round::run(
                            self.round_input(Instant::now(), apply_tx.clone()),
                        )));
                    }
                    Next::Wait(at) => wake = at,
                    Next::Exit => return Ok(self.finish()),
                }
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = fs_rx.recv(), if fs_open => match ev {
                    Some(ev) => {
                        let now = Instant::now();
                        self.on_fs(ev, now);
                        // Take what is already queued too: a burst of events costs one
                        // decision, not one per event.
                        for _ in 0..fs::CHANNEL_CAPACITY {
                            match fs_rx.try_recv() {
                                Ok(ev) => self.on_fs(ev, now),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        fs_open = false;
                        tracing::warn!("the file watcher stopped; changes are no longer seen");
                    }
                },
                out = async { round.as_mut().expect("guarded by is_some").await }, if round.is_some() => {
                    round = None;
                    self.on_round(out, Instant::now())?;
                }
                Some(e) = apply_rx.recv() => log_apply_event(&e),
                _ = sleep => {}
                sig = signals.recv() => {
                    if let Some(exit) = self.on_signal(sig, &mut round) {
                        return Ok(exit);
                    }
                }
                _ = &mut shutdown, if shutdown_open => {
                    shutdown_open = false;
                    if let Some(exit) = self.on_signal("shutdown requested", &mut round) {
                        return Ok(exit);
                    }
                }
            }
        }
    }

    /// The first signal starts stopping; a second one aborts, dropping the round in flight.
    fn on_signal(&mut self, sig: &str, round: &mut Option<RoundFuture>) -> Option<WatchExit> {
        if self.stopping.is_some() {
            // Dropping the round drops its requests: a commit is atomic on the Hub, so either
            // it landed whole or not at all.
            drop(round.take());
            tracing::info!("{sig} again: aborting");
            (self.emit)(&WatchEvent::Stopped {
                reason: StopReason::Aborted,
                rounds: self.rounds,
                commits: self.commits,
                unpushed: self.tracker.len(),
            });
            return Some(WatchExit::Aborted);
        }
        tracing::info!("{sig}: finishing the round in flight and pushing what is complete");
        self.stopping = Some(Instant::now());
        (self.emit)(&WatchEvent::Stopping {
            pending: self.tracker.len(),
        });
        None
    }

    /// The debounce in force: shorter once stopping.
    fn debounce(&self) -> Duration {
        if self.stopping.is_some() {
            self.debounce.min(STOP_DEBOUNCE)
        } else {
            self.debounce
        }
    }

    fn max_delay(&self) -> Duration {
        self.debounce() * MAX_DELAY_WINDOWS
    }

    fn decide(&mut self, now: Instant) -> Next {
        let debounce = self.debounce();
        let max_delay = self.max_delay();
        self.tracker.refresh(now, debounce, Stamp::of);
        let stopping = self.stopping.is_some();
        if !self.rerun && !self.check && self.tracker.is_empty() && self.held.is_empty() {
            return if stopping {
                Next::Exit
            } else {
                Next::Wait(None)
            };
        }
        if let Some(at) = self.backoff_until
            && now < at
        {
            return if stopping {
                Next::Exit
            } else {
                Next::Wait(Some(at))
            };
        }
        let sys = SystemTime::now();
        let has_budget = |d: &Self, id: &str| d.budget.remaining(id, sys) > 0;
        let held_ready = self.held.iter().any(|id| has_budget(self, id));
        let ready =
            self.rerun || self.check || held_ready || self.tracker.ready(now, debounce, max_delay);
        if !ready {
            let next = self.tracker.next_check(now, debounce, max_delay);
            let budget_slot = self
                .held
                .iter()
                .map(|id| now + self.budget.wait(id, sys))
                .min();
            let next = [next, budget_slot].into_iter().flatten().min();
            if let Some(t) = self.stopping {
                let deadline = t + 2 * debounce;
                if now >= deadline || next.is_none() {
                    return Next::Exit;
                }
                return Next::Wait(next.map(|n| n.min(deadline)));
            }
            return Next::Wait(next);
        }
        if stopping && self.stop_rounds >= MAX_STOP_ROUNDS {
            return Next::Exit;
        }
        if !stopping
            && let (Some(every), Some(last)) = (self.every, self.last_push)
            && now < last + every
        {
            return Next::Wait(Some(last + every));
        }
        let ids: Vec<String> = self
            .manifest
            .repos
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        if ids.iter().all(|id| !has_budget(self, id)) {
            if stopping {
                return Next::Exit;
            }
            self.hold(&ids, sys);
            let wait = ids.iter().map(|id| self.budget.wait(id, sys)).min();
            return Next::Wait(wait.map(|w| now + w));
        }
        Next::Start
    }

    /// Marks repos as held back by their budget, reporting each wait once.
    fn hold(&mut self, ids: &[String], sys: SystemTime) {
        for id in ids {
            self.held.insert(id.clone());
            if self.announced.insert(id.clone()) {
                (self.emit)(&WatchEvent::Waiting {
                    reason: WaitReason::CommitBudget,
                    repo: Some(id.clone()),
                    wait_ms: self.budget.wait(id, sys).as_millis() as u64,
                });
            }
        }
    }

    /// Builds the next round: the repos with budget left, the busy paths to leave out.
    fn round_input(
        &mut self,
        now: Instant,
        events: mpsc::UnboundedSender<ApplyEvent>,
    ) -> RoundInput {
        let debounce = self.debounce();
        let busy = self.tracker.busy(now, debounce);
        self.snapshot = self.tracker.snapshot(now, debounce);
        let cutoff_ns = SystemTime::now()
            .checked_sub(debounce)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        self.rerun = false;
        self.check = false;
        self.rounds += 1;
        if self.stopping.is_some() {
            self.stop_rounds += 1;
        }
        let sys = SystemTime::now();
        let mut manifest = self.manifest.clone();
        let mut budget = BTreeMap::new();
        let mut index = BTreeMap::new();
        let mut out_of_budget = Vec::new();
        let mut kept = Vec::new();
        for (i, r) in std::mem::take(&mut manifest.repos).into_iter().enumerate() {
            let id = r.id.to_string();
            let left = self.budget.remaining(&id, sys);
            if left == 0 {
                out_of_budget.push(id);
                continue;
            }
            self.held.remove(&id);
            self.announced.remove(&id);
            budget.insert(id, left);
            index.insert(i, kept.len());
            kept.push(r);
        }
        manifest.repos = kept;
        self.hold(&out_of_budget, sys);
        let rules = self
            .rules
            .iter()
            .filter_map(|r| {
                index
                    .get(&r.repo)
                    .map(|&repo| MappingRule { repo, ..r.clone() })
            })
            .collect();
        RoundInput {
            number: self.rounds,
            manifest,
            rules,
            busy,
            quiet: self.snapshot.clone(),
            cutoff_ns,
            budget,
            plan_opts: self.plan_opts.clone(),
            apply_opts: self.apply_opts.clone(),
            events,
        }
    }

    fn on_round(&mut self, out: RoundOutput, now: Instant) -> Result<(), Error> {
        let snapshot = std::mem::take(&mut self.snapshot);
        let done = match out.result {
            Ok(done) => done,
            Err(e) => return self.on_round_error(e, snapshot, now),
        };
        if !self.warned {
            self.warned = true;
            for w in &done.warnings {
                tracing::warn!("{w}");
            }
        }
        self.tracker.forget(&snapshot);
        if done.deferred {
            self.rerun = true;
        }
        let (Some(plan), Some(report)) = (done.plan, done.report) else {
            self.backoff.reset();
            return Ok(());
        };
        let sys = SystemTime::now();
        let mut repos = Vec::new();
        let mut fatal = None;
        let mut retry_after: Option<Option<Duration>> = None;
        for (rp, rr) in plan.repos.iter().zip(&report.repos) {
            self.budget.record(&rr.id, rr.commits.len(), sys);
            self.commits += rr.commits.len();
            if let Some(e) = &rr.error {
                let (message, hints) = describe_apply_error(e);
                if apply_error_is_fatal(e) {
                    (self.emit)(&WatchEvent::Error {
                        message: message.clone(),
                        hints: hints.clone(),
                        retry_ms: None,
                        fatal: true,
                    });
                    fatal = Some(Error::Apply(message, hints));
                    continue;
                }
                let rate_limited = rate_limit(e);
                if let Some(wait) = rate_limited {
                    (self.emit)(&WatchEvent::Waiting {
                        reason: WaitReason::RateLimited,
                        repo: Some(rr.id.clone()),
                        wait_ms: wait.unwrap_or_default().as_millis() as u64,
                    });
                }
                let hint = retry_after.get_or_insert(None);
                *hint = (*hint).max(rate_limited.flatten());
                (self.emit)(&WatchEvent::Error {
                    message,
                    hints,
                    retry_ms: None,
                    fatal: false,
                });
            }
            if rr.commits.is_empty() && rr.failed_files.is_empty() {
                continue;
            }
            let failed: BTreeSet<&str> = rr.failed_files.iter().map(|(p, _)| p.as_str()).collect();
            let files = if rr.commits.is_empty() {
                0
            } else {
                rp.actions
                    .iter()
                    .filter_map(Action::file_path)
                    .filter(|p| !failed.contains(p))
                    .count()
            };
            repos.push(RoundRepo {
                repo: rr.id.clone(),
                commits: rr.commits.iter().map(|c| c.oid.clone()).collect(),
                files,
                bytes: rr.bytes_uploaded,
                changed_during_upload: rr.failed_files.iter().map(|(p, _)| p.clone()).collect(),
            });
        }
        if let Some(e) = fatal {
            self.stop(StopReason::Error);
            return Err(e);
        }
        let pushed = repos.iter().any(|r| !r.commits.is_empty());
        if pushed {
            self.last_push = Some(now);
            // Retention retires old folders only once the new one is on the Hub: plan again.
            self.check |= self.retention;
        }
        if repos.iter().any(|r| !r.changed_during_upload.is_empty()) {
            self.rerun = true;
        }
        match retry_after {
            Some(hub_wait) => {
                let wait = self.backoff.fail(hub_wait);
                self.backoff_until = Some(now + wait);
                self.rerun = true;
                if self.stopping.is_some() {
                    self.flush_failed = true;
                }
            }
            None => {
                self.backoff.reset();
                self.backoff_until = None;
            }
        }
        if !repos.is_empty() {
            (self.emit)(&WatchEvent::Round {
                round: out.number,
                files: repos.iter().map(|r| r.files).sum(),
                bytes: repos.iter().map(|r| r.bytes).sum(),
                repos,
                duration_ms: out.elapsed.as_millis() as u64,
                hashed_files: done.hashed_files,
                hashed_bytes: done.hashed_bytes,
                next_push_ms: self.next_push(now).map(|d| d.as_millis() as u64),
            });
        }
        Ok(())
    }

    fn on_round_error(&mut self, e: Error, snapshot: Snapshot, now: Instant) -> Result<(), Error> {
        let (message, hints) = describe_error(&e);
        if is_fatal(&e) {
            (self.emit)(&WatchEvent::Error {
                message,
                hints,
                retry_ms: None,
                fatal: true,
            });
            self.stop(StopReason::Error);
            return Err(e);
        }
        if self.stopping.is_some() {
            self.flush_failed = true;
        }
        if matches!(e, Error::Plan(PlanError::TooManyDeletes { .. })) {
            // Retrying cannot help; the next change (or a fixed manifest and a restart) will.
            self.tracker.forget(&snapshot);
            (self.emit)(&WatchEvent::Error {
                message,
                hints,
                retry_ms: None,
                fatal: false,
            });
            return Ok(());
        }
        let hub_wait = match &e {
            Error::Hub(h) => match h.kind() {
                ErrorKind::RateLimited { retry_after } => Some(retry_after.unwrap_or_default()),
                _ => None,
            },
            _ => None,
        };
        let wait = self.backoff.fail(hub_wait);
        self.backoff_until = Some(now + wait);
        self.rerun = true;
        (self.emit)(&WatchEvent::Error {
            message,
            hints,
            retry_ms: Some(wait.as_millis() as u64),
            fatal: false,
        });
        Ok(())
    }

    /// When the next push is due, from now: `None` when it waits for a change.
    fn next_push(&self, now: Instant) -> Option<Duration> {
        if !self.rerun && self.tracker.is_empty() && self.held.is_empty() {
            return None;
        }
        let mut at = now;
        if let (Some(every), Some(last)) = (self.every, self.last_push) {
            at = at.max(last + every);
        }
        if let Some(b) = self.backoff_until {
            at = at.max(b);
        }
        if !self.rerun && self.tracker.is_empty() {
            let sys = SystemTime::now();
            if let Some(w) = self.held.iter().map(|id| self.budget.wait(id, sys)).min() {
                at = at.max(now + w);
            }
        }
        Some(at - now)
    }

    fn stop(&self, reason: StopReason) {
        (self.emit)(&WatchEvent::Stopped {
            reason,
            rounds: self.rounds,
            commits: self.commits,
            unpushed: self.tracker.len(),
        });
    }

    fn finish(&self) -> WatchExit {
        self.stop(StopReason::Signal);
        if self.flush_failed {
            WatchExit::StoppedWithErrors
        } else {
            WatchExit::Stopped
        }
    }

    fn on_fs(&mut self, event: fs::FsEvent, now: Instant) {
        let event = match event {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "file watching reported an error; planning again");
                self.rerun = true;
                return;
            }
        };
        if event.need_rescan() {
            // Events were lost: treat everything changed lately as changed.
            tracing::info!("file events overflowed; rescanning");
            let window = self
                .last_push
                .map_or(self.debounce, |t| now.duration_since(t) + self.debounce);
            self.seed(now, window);
            self.rerun = true;
            return;
        }
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            self.on_path(path, now);
        }
    }

    /// Records a changed path; a folder (created, or renamed into place) records its files.
    fn on_path(&mut self, path: &Path, now: Instant) {
        let meta = std::fs::symlink_metadata(path).ok();
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        let is_file = meta.as_ref().is_some_and(|m| m.is_file());
        let mut touched = false;
        for rule in &self.rules {
            let Some(rel) = rule.relative(path) else {
                continue;
            };
            if is_dir {
                if rule.watches(&rel, false) {
                    for file in files_under(path, rule) {
                        self.tracker.touch(file.clone(), Stamp::of(&file), now);
                    }
                }
            } else if meta.is_none() || is_file {
                // A file, or a path that is gone (deleted, or renamed away).
                if rule.watches(&rel, is_file) {
                    touched = true;
                }
            }
        }
        if touched {
            self.tracker
                .touch(path.to_path_buf(), meta.and(Stamp::of(path)), now);
        }
    }

    /// Tracks the files modified within `window` before now (at start, or after lost events).
    fn seed(&mut self, now: Instant, window: Duration) {
        let sys = SystemTime::now();
        for rule in &self.rules {
            for file in files_under(&rule.root, rule) {
                let Ok(meta) = std::fs::symlink_metadata(&file) else {
                    continue;
                };
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| sys.duration_since(m).ok())
                    .unwrap_or_default();
                if age < window {
                    let since = now.checked_sub(age).unwrap_or(now);
                    self.tracker.seed(file.clone(), Stamp::of(&file), since);
                }
            }
        }
    }
}

/// The files under `dir` that `rule` selects (temporary names and excluded folders skipped).
fn files_under(dir: &Path, rule: &MappingRule) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut walker = walkdir::WalkDir::new(dir).follow_links(false).into_iter();
    while let Some(entry) = walker.next() {
        let Ok(entry) = entry else { continue };
        let Some(rel) = rule.relative(entry.path()) else {
            continue;
        };
        if entry.file_type().is_dir() {
            if is_temp_name(&rel) || rule.filter.prunes_dir(&rel) {
                walker.skip_current_dir();
            }
        } else if entry.file_type().is_file() && rule.watches(&rel, true) {
            out.push(entry.into_path());
        }
    }
    out
}

/// Apply's progress, for `-v`.
fn log_apply_event(e: &ApplyEvent) {
    match e {
        ApplyEvent::UploadFailed { repo, path, error } => {
            tracing::info!(%repo, %path, %error, "left out of this round")
        }
        ApplyEvent::CommitCreated {
            repo,
            commit,
            files,
            ..
        } => tracing::info!(%repo, %commit, files, "committed"),
        other => tracing::debug!(event = ?other, "apply"),
    }
}

/// Errors of a round that retrying cannot fix: watch stops on them. (The manifest itself was
/// validated before the first round; a manifest error in a round is a mapped folder that
/// vanished or two mappings colliding on actual files, which the next change may well fix.)
fn is_fatal(e: &Error) -> bool {
    match e {
        Error::Hub(h) => matches!(h.kind(), ErrorKind::Unauthorized | ErrorKind::Forbidden),
        Error::Plan(PlanError::RepoMissing { .. }) => true,
        Error::Lock(_) | Error::Usage(_) => true,
        _ => false,
    }
}

fn apply_error_is_fatal(e: &ApplyError) -> bool {
    match e {
        ApplyError::Hub { source, .. } => {
            matches!(
                source.kind(),
                ErrorKind::Unauthorized | ErrorKind::Forbidden
            )
        }
        ApplyError::MissingSecret { .. } => true,
        ApplyError::Conflict { .. } | ApplyError::Unstable { .. } => false,
    }
}

/// `Some(the Hub's wait)` when the error is a 429.
fn rate_limit(e: &ApplyError) -> Option<Option<Duration>> {
    match e {
        ApplyError::Hub { source, .. } => match source.kind() {
            ErrorKind::RateLimited { retry_after } => Some(retry_after),
            _ => None,
        },
        _ => None,
    }
}

/// An error's message with its cause chain, and its hints.
fn describe_error(e: &Error) -> (String, Vec<String>) {
    (crate::util::error::one_line(e), e.hints())
}

fn describe_apply_error(e: &ApplyError) -> (String, Vec<String>) {
    (crate::util::error::one_line(e), e.hints())
}

/// SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, Error> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let io = |source| Error::Io {
                what: "listen for SIGINT and SIGTERM".into(),
                source,
            };
            Ok(Signals {
                int: signal(SignalKind::interrupt()).map_err(io)?,
                term: signal(SignalKind::terminate()).map_err(io)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal's name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
