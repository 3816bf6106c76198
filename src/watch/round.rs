//! One round: adjust the manifest for readiness → [`ops::plan_manifest`] → cut the plan to what
//! this round may push → [`apply::apply`]. A round is one future, owned and polled by the
//! dispatcher; dropping it (a second signal) abandons it before any further commit.
//!
//! What a round may push (pure functions, tested below):
//! - [`hold_unready`]: the excludes are decided when the round starts, but the scan runs a
//!   little later, so a file created or written in between could slip in half-written. After
//!   planning, every file to upload must therefore be vouched for: either its mtime is older
//!   than the round's start minus the debounce window, or it was quiet at the start with
//!   exactly this size and mtime. A unit is pushed only if its marker exists and every one of
//!   its files is vouched for; otherwise all of it waits (its events will bring it back).
//! - [`restrict_to_one_unit`]: when the plan adds or updates files of `ready_marker` units, the
//!   round takes only the first such unit (natural order, so checkpoints land oldest first),
//!   so that the unit lands in **one** commit of its own. Loose files and retention deletes ride
//!   along when everything fits in that commit; otherwise the unit goes alone, with the repo's
//!   commit caps raised to fit it. The other units wait for the next round, which follows at
//!   once.
//! - [`restrict_to_budget`]: a repo gets at most as many commits as its budget has left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::ready::{MappingRule, Snapshot, Stamp};
use crate::apply::{self, ApplyEvent, ApplyOptions, ApplyReport};
use crate::manifest::Manifest;
use crate::ops::{self, PlanOptions};
use crate::plan::{
    self, Action, FileChange, LADDER, Plan, RepoPlan, START_RUNG, file_order, natural_cmp,
    next_batch, split_commits,
};

/// Everything a round needs; it owns it all, so the round is `'static`.
pub(crate) struct RoundInput {
    pub number: u64,
    /// The manifest, already narrowed to the repos with budget left.
    pub manifest: Manifest,
    pub rules: Vec<MappingRule>,
    /// Paths that are still changing.
    pub busy: Vec<PathBuf>,
    /// The paths that were quiet at the start, with their stamps.
    pub quiet: Snapshot,
    /// Files modified after this (ns since the Unix epoch) are pushed only if `quiet` vouches
    /// for them: the round's start minus the debounce window.
    pub cutoff_ns: i64,
    /// Commits each repo may still make.
    pub budget: BTreeMap<String, usize>,
    pub plan_opts: PlanOptions,
    pub apply_opts: ApplyOptions,
    /// Apply's progress, for the dispatcher.
    pub events: mpsc::UnboundedSender<ApplyEvent>,
}

/// How a round ended.
pub(crate) struct RoundOutput {
    pub number: u64,
    pub elapsed: Duration,
    pub result: Result<RoundDone, crate::Error>,
}

/// A round that planned (and perhaps applied).
pub(crate) struct RoundDone {
    /// The plan as applied (after the cuts); `None` when there was nothing to do.
    pub plan: Option<Plan>,
    pub report: Option<ApplyReport>,
    /// Something was held back for a later round.
    pub deferred: bool,
    /// Scan warnings (symlinks skipped, …).
    pub warnings: Vec<String>,
    /// What the local scan had to read (the rest came from the hash cache).
    pub hashed_files: u64,
    pub hashed_bytes: u64,
}

pub(crate) async fn run(input: RoundInput) -> RoundOutput {
    let started = Instant::now();
    let number = input.number;
    let result = run_inner(input).await;
    RoundOutput {
        number,
        elapsed: started.elapsed(),
        result,
    }
}

async fn run_inner(input: RoundInput) -> Result<RoundDone, crate::Error> {
    let RoundInput {
        number: _,
        mut manifest,
        rules,
        busy,
        quiet,
        cutoff_ns,
        budget,
        plan_opts,
        apply_opts,
        events,
    } = input;

    // Reading the unit folders and their markers touches the disk: keep it off the runtime.
    let (manifest, rules) = tokio::task::spawn_blocking(move || {
        for rule in &rules {
            let extra = rule.round_excludes(&busy);
            if let Some(f) = manifest
                .repos
                .get_mut(rule.repo)
                .and_then(|r| r.files.get_mut(rule.mapping))
            {
                f.exclude.extend(extra);
            }
        }
        (manifest, rules)
    })
    .await
    .map_err(|e| crate::Error::Io {
        what: "read the watched folders".into(),
        source: std::io::Error::other(e),
    })?;

    let planned = ops::plan_manifest(manifest, &plan_opts, |_| {}).await?;
    let mut plan = planned.plan;
    let mut deferred = false;
    for (i, rp) in plan.repos.iter_mut().enumerate() {
        let repo_rules: Vec<&MappingRule> = rules
            .iter()
            .filter(|r| r.repo == i && r.marker.is_some())
            .collect();
        let unit_of = |path: &str| {
            repo_rules.iter().find_map(|r| {
                r.unit_of_repo_path(path)
                    .map(|u| (r.mapping, u.to_string()))
            })
        };
        let vouched = |f: &FileChange| {
            f.mtime_ns <= cutoff_ns
                || quiet.vouches(
                    &f.local_path,
                    Stamp {
                        size: f.size,
                        mtime_ns: f.mtime_ns,
                    },
                )
        };
        let has_marker = |(mapping, unit): &(usize, String)| {
            repo_rules.iter().any(|r| {
                r.mapping == *mapping
                    && r.marker
                        .as_ref()
                        .is_some_and(|m| r.root.join(unit).join(m).is_file())
            })
        };
        let held = hold_unready(rp, vouched, unit_of, has_marker);
        if held > 0 {
            tracing::debug!(repo = %rp.id, held, "changes not ready yet; their events bring them back");
        }
        deferred |= restrict_to_one_unit(rp, unit_of);
        let left = budget.get(&rp.id).copied().unwrap_or(usize::MAX);
        deferred |= restrict_to_budget(rp, left);
    }
    plan.summary = plan::summarize(&plan.repos);
    let warnings = planned.warnings;
    let (hashed_files, hashed_bytes) = (planned.scan.files_hashed, planned.scan.bytes_hashed);
    if !plan.has_changes() {
        return Ok(RoundDone {
            plan: None,
            report: None,
            deferred,
            warnings,
            hashed_files,
            hashed_bytes,
        });
    }
    let emit = move |e: ApplyEvent| {
        let _ = events.send(e);
    };
    let report = apply::apply(&planned.client, &plan, &planned.secrets, &apply_opts, &emit).await;
    Ok(RoundDone {
        plan: Some(plan),
        report: Some(report),
        deferred,
        warnings,
        hashed_files,
        hashed_bytes,
    })
}

/// Keeps only the actions for which `keep` holds (non-file actions always stay) and recounts.
fn retain_files(rp: &mut RepoPlan, keep: impl Fn(usize, &Action) -> bool) -> bool {
    let before = rp.actions.len();
    let mut i = 0;
    rp.actions.retain(|a| {
        let k = a.file_path().is_none() || keep(i, a);
        i += 1;
        k
    });
    recount(rp);
    rp.actions.len() != before
}

/// Recomputes the commit count and upload bytes after actions were removed.
fn recount(rp: &mut RepoPlan) {
    rp.commits = split_commits(&rp.actions, &rp.commit).len();
    let mut seen = BTreeSet::new();
    rp.upload_bytes = rp
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::FileAdd(f) | Action::FileUpdate(f)
                if f.lfs && !f.uploaded && seen.insert(f.sha256.clone()) =>
            {
                Some(f.size)
            }
            _ => None,
        })
        .sum();
}

/// Drops the file changes that were not ready at the round's start (see the module docs):
/// loose files that `vouched` rejects, and whole units — adds, updates and deletes — that lack
/// their marker (`has_marker`) or hold a rejected file. Returns how many actions were dropped.
/// Nothing is marked deferred: each dropped file has an event of its own to come back with.
pub(crate) fn hold_unready(
    rp: &mut RepoPlan,
    vouched: impl Fn(&FileChange) -> bool,
    unit_of: impl Fn(&str) -> Option<(usize, String)>,
    has_marker: impl Fn(&(usize, String)) -> bool,
) -> usize {
    let mut units: BTreeMap<(usize, String), bool> = BTreeMap::new();
    for a in &rp.actions {
        let Some(unit) = a.file_path().and_then(&unit_of) else {
            continue;
        };
        let ok = match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => vouched(f),
            _ => true,
        };
        let entry = units.entry(unit).or_insert(true);
        *entry &= ok;
    }
    for (unit, ok) in units.iter_mut() {
        *ok &= has_marker(unit);
    }
    let before = rp.actions.len();
    retain_files(rp, |_, a| match a.file_path().and_then(&unit_of) {
        Some(unit) => units.get(&unit).copied().unwrap_or(false),
        None => match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => vouched(f),
            _ => true,
        },
    });
    before - rp.actions.len()
}

/// When `rp` adds or updates files of a unit (`unit_of` gives `(mapping, folder)` for a repo
/// path), keeps the first unit's file actions and raises the commit caps so they fit in one
/// commit; other units' adds and updates wait. What is not tied to a waiting unit — files
/// outside every unit, and deletes in units that add or update nothing (retention retiring an
/// old checkpoint) — rides along when the whole still fits in that one commit under the
/// repo's caps. Returns whether anything was held back.
pub(crate) fn restrict_to_one_unit(
    rp: &mut RepoPlan,
    unit_of: impl Fn(&str) -> Option<(usize, String)>,
) -> bool {
    let changing: BTreeSet<(usize, String)> = rp
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => unit_of(&f.path),
            _ => None,
        })
        .collect();
    let Some(unit) = changing
        .iter()
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| natural_cmp(&a.1, &b.1)))
        .cloned()
    else {
        return false;
    };
    let original = rp.clone();
    let in_unit = |a: &Action| a.file_path().and_then(&unit_of).as_ref() == Some(&unit);
    let rides_along = |a: &Action| match a.file_path().and_then(&unit_of) {
        None => true,
        Some(u) => matches!(a, Action::FileDelete { .. }) && !changing.contains(&u),
    };
    let caps = rp.commit.clone();
    // First try the unit with what may ride along, under the repo's own caps.
    retain_files(rp, |_, a| in_unit(a) || rides_along(a));
    if rp.commits > 1 {
        // Too much: the unit alone, with caps raised to fit it.
        *rp = original.clone();
        retain_files(rp, |_, a| in_unit(a));
        let (files, bytes) = rp.actions.iter().filter(|a| a.file_path().is_some()).fold(
            (0usize, 0u64),
            |(n, b), a| match a {
                Action::FileAdd(f) | Action::FileUpdate(f) => (n + 1, b + f.size),
                _ => (n + 1, b),
            },
        );
        // TODO-correctness: apply's batch ladder caps a commit at 250 files (fewer after an
        // ambiguous failure) whatever `max_files` says, so a unit of more files than that still
        // spans commits. Checkpoints hold far fewer; a per-plan "keep together" hint for apply
        // would close this.
        rp.commit.max_files = caps.max_files.max(files);
        rp.commit.max_bytes = caps.max_bytes.max(bytes);
        recount(rp);
    }
    rp.actions.len() != original.actions.len()
}

/// The commits apply makes for `actions` when every commit succeeds: batches of the ladder's
/// starting size under the caps. The plan's own count assumes the batch size also climbs; the
/// budget must not count on that.
// TODO-correctness: apply steps the batch size down after an ambiguous commit failure, which
// can add commits beyond this count; the default budget (100) keeps a margin below the Hub's
// limit (about 128) for that.
fn commits_without_climbing(actions: &[Action], caps: &plan::CommitSettings) -> Vec<Vec<usize>> {
    let mut rest = file_order(actions);
    let mut out = Vec::new();
    while !rest.is_empty() {
        let batch = next_batch(actions, &rest, caps, LADDER[START_RUNG]);
        rest.drain(..batch.actions.len());
        out.push(batch.actions);
    }
    out
}

/// Cuts `rp` to the file actions of its first `left` commits. Returns whether anything was
/// held back.
pub(crate) fn restrict_to_budget(rp: &mut RepoPlan, left: usize) -> bool {
    let batches = commits_without_climbing(&rp.actions, &rp.commit);
    if batches.len() <= left {
        return false;
    }
    let allowed: BTreeSet<usize> = batches.iter().take(left).flatten().copied().collect();
    retain_files(rp, |i, _| allowed.contains(&i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RepoType;
    use crate::plan::{CommitSettings, FileChange};

    fn add(path: &str, size: u64) -> Action {
        Action::FileAdd(FileChange {
            path: path.into(),
            size,
            sha256: format!("{path:0>64}"),
            git_oid: String::new(),
            lfs: true,
            old_git_oid: None,
            uploaded: false,
            local_path: path.into(),
            mtime_ns: 0,
        })
    }

    fn repo(actions: Vec<Action>, max_files: usize) -> RepoPlan {
        let mut rp = RepoPlan {
            id: "alice/run".into(),
            repo_type: RepoType::Model,
            revision: "main".into(),
            base_commit: None,
            default_branch_commit: None,
            actions,
            commits: 0,
            upload_bytes: 0,
            commit: CommitSettings {
                message: "m".into(),
                max_files,
                max_bytes: 1000,
            },
        };
        recount(&mut rp);
        rp
    }

    fn paths(rp: &RepoPlan) -> Vec<&str> {
        rp.actions.iter().filter_map(|a| a.file_path()).collect()
    }

    fn unit(path: &str) -> Option<(usize, String)> {
        let rel = path.strip_prefix("ckpt/")?;
        rel.split_once('/').map(|(u, _)| (0, u.to_string()))
    }

    #[test]
    fn one_unit_per_round_in_one_commit() {
        let mut rp = repo(
            vec![
                Action::RepoCreate {
                    private: false,
                    sdk: None,
                },
                add("README.md", 1),
                add("ckpt/checkpoint-1000/a", 600),
                add("ckpt/checkpoint-1000/b", 600),
                add("ckpt/checkpoint-500/a", 600),
                add("ckpt/checkpoint-500/b", 600),
                add("ckpt/checkpoint-500/c", 600),
                Action::FileDelete {
                    path: "ckpt/checkpoint-500/old".into(),
                    size: 1,
                    old_git_oid: String::new(),
                },
                Action::FileDelete {
                    path: "other".into(),
                    size: 1,
                    old_git_oid: String::new(),
                },
            ],
            2,
        );
        assert!(restrict_to_one_unit(&mut rp, unit));
        assert_eq!(
            paths(&rp),
            [
                "ckpt/checkpoint-500/a",
                "ckpt/checkpoint-500/b",
                "ckpt/checkpoint-500/c",
                "ckpt/checkpoint-500/old"
            ]
        );
        assert!(matches!(rp.actions[0], Action::RepoCreate { .. }));
        assert_eq!(rp.commits, 1, "the caps were raised to fit the unit");
        assert_eq!(rp.upload_bytes, 1800);

        // Under roomy caps, files outside units and deletes of retired units ride along; the
        // other unit still waits.
        let mut rp = repo(
            vec![
                add("README.md", 1),
                add("ckpt/checkpoint-1000/a", 1),
                add("ckpt/checkpoint-500/a", 1),
                Action::FileDelete {
                    path: "ckpt/checkpoint-100/a".into(),
                    size: 1,
                    old_git_oid: String::new(),
                },
                Action::FileDelete {
                    path: "ckpt/checkpoint-1000/old".into(),
                    size: 1,
                    old_git_oid: String::new(),
                },
            ],
            100,
        );
        assert!(restrict_to_one_unit(&mut rp, unit));
        assert_eq!(
            paths(&rp),
            [
                "README.md",
                "ckpt/checkpoint-500/a",
                "ckpt/checkpoint-100/a"
            ]
        );
        assert_eq!(rp.commits, 1);

        // No unit change: nothing is held back.
        let mut rp = repo(vec![add("README.md", 1), add("x", 1)], 1);
        assert!(!restrict_to_one_unit(&mut rp, unit));
        assert_eq!(rp.commits, 2);
    }

    #[test]
    fn unready_files_and_units_are_held() {
        let recent = |path: &str| {
            let mut a = add(path, 1);
            if let Action::FileAdd(f) = &mut a {
                f.mtime_ns = 100;
            }
            a
        };
        let delete = |path: &str| Action::FileDelete {
            path: path.into(),
            size: 1,
            old_git_oid: String::new(),
        };
        let mut rp = repo(
            vec![
                add("old.txt", 1),
                recent("new.txt"),
                add("ckpt/checkpoint-1/a", 1),
                add("ckpt/checkpoint-1/state", 1),
                add("ckpt/checkpoint-2/a", 1),
                recent("ckpt/checkpoint-2/state"),
                delete("ckpt/checkpoint-2/gone"),
                add("ckpt/checkpoint-3/a", 1),
                delete("gone.txt"),
            ],
            100,
        );
        let vouched = |f: &FileChange| f.mtime_ns < 50;
        let has_marker = |u: &(usize, String)| u.1 != "checkpoint-3";
        assert_eq!(hold_unready(&mut rp, vouched, unit, has_marker), 5);
        assert_eq!(
            paths(&rp),
            [
                "old.txt",
                "ckpt/checkpoint-1/a",
                "ckpt/checkpoint-1/state",
                "gone.txt"
            ]
        );
    }

    #[test]
    fn the_budget_does_not_count_on_bigger_batches() {
        // 600 files: the plan predicts 250 + 400 (a climb), apply sends 250 + 250 + 100.
        let actions: Vec<Action> = (0..600).map(|i| add(&format!("f{i:03}"), 0)).collect();
        let mut rp = repo(actions, 1000);
        rp.commit.max_bytes = u64::MAX;
        recount(&mut rp);
        assert_eq!(rp.commits, 2);
        assert!(restrict_to_budget(&mut rp, 2));
        assert_eq!(paths(&rp).len(), 500);
    }

    #[test]
    fn the_budget_cuts_commits() {
        let actions: Vec<Action> = (0..5).map(|i| add(&format!("f{i}"), 1)).collect();
        let mut rp = repo(actions, 2);
        assert_eq!(rp.commits, 3);
        assert!(!restrict_to_budget(&mut rp, 3));
        assert!(restrict_to_budget(&mut rp, 1));
        assert_eq!(paths(&rp), ["f0", "f1"]);
        assert_eq!(rp.commits, 1);
        assert!(restrict_to_budget(&mut rp, 0));
        assert!(paths(&rp).is_empty());
    }
}
