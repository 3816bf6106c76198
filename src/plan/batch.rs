//! Splitting a repo's file actions into commits: at most `max_files` files and `max_bytes`
//! bytes each, with a bounded inline payload for regular files; adds and updates before deletes.
//!
//! Under those caps the number of files per commit adapts the way `huggingface_hub`'s upload
//! pipeline does: it climbs a ladder of sizes from 250 files while commits are quick, and steps
//! down after a slow or failed one, because the Hub times commits out after 60 s and allows only
//! about 128 commits an hour per repo. The plan predicts the climb (no failures); apply walks it.

use super::{Action, CommitSettings};

/// Regular files travel base64-encoded in the commit body; keep each body well under the
/// Hub's limits.
pub const MAX_INLINE_BYTES: u64 = 64 * 1024 * 1024;

/// One commit: indexes into the repo plan's actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitBatch {
    pub actions: Vec<usize>,
}

/// Files per commit, as `huggingface_hub`'s pipeline sizes them.
pub const LADDER: [usize; 10] = [20, 50, 75, 100, 125, 200, 250, 400, 600, 1000];
/// Where the climb starts (250 files).
pub const START_RUNG: usize = 6;

/// Splits the file actions of `actions` into commits, in order, assuming every commit is quick
/// (so the batch size climbs the ladder each time).
pub fn split_commits(actions: &[Action], caps: &CommitSettings) -> Vec<CommitBatch> {
    let mut rung = START_RUNG;
    let mut batches = Vec::new();
    let mut rest: Vec<usize> = file_order(actions);
    while !rest.is_empty() {
        let batch = next_batch(actions, &rest, caps, LADDER[rung]);
        // A batch is always a non-empty prefix of what is left.
        rest.drain(..batch.actions.len());
        batches.push(batch);
        rung = (rung + 1).min(LADDER.len() - 1);
    }
    batches
}

/// Indexes of the file actions: adds and updates first, then deletes.
pub fn file_order(actions: &[Action]) -> Vec<usize> {
    let adds = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::FileAdd(_) | Action::FileUpdate(_)));
    let dels = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::FileDelete { .. }));
    adds.chain(dels).map(|(i, _)| i).collect()
}

/// The next commit: the longest prefix of `order` that fits `caps` and `file_cap` files (never
/// empty when `order` is not: one file over `max_bytes` goes alone).
pub fn next_batch(
    actions: &[Action],
    order: &[usize],
    caps: &CommitSettings,
    file_cap: usize,
) -> CommitBatch {
    let max_files = caps.max_files.min(file_cap).max(1);
    let mut cur = CommitBatch::default();
    let (mut bytes, mut inline) = (0u64, 0u64);
    for &i in order {
        let (size, is_inline) = match &actions[i] {
            Action::FileAdd(f) | Action::FileUpdate(f) => (f.size, !f.lfs),
            _ => (0, false),
        };
        let inline_size = if is_inline { size } else { 0 };
        let full = cur.actions.len() >= max_files
            || (bytes + size > caps.max_bytes && !cur.actions.is_empty())
            || (inline + inline_size > MAX_INLINE_BYTES && !cur.actions.is_empty());
        if full {
            break;
        }
        cur.actions.push(i);
        bytes += size;
        inline += inline_size;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::super::FileChange;
    use super::*;

    fn add(path: &str, size: u64, lfs: bool) -> Action {
        Action::FileAdd(FileChange {
            path: path.into(),
            size,
            sha256: String::new(),
            git_oid: String::new(),
            lfs,
            old_git_oid: None,
            uploaded: false,
            local_path: path.into(),
            mtime_ns: 0,
        })
    }

    #[test]
    fn caps_files_and_bytes() {
        let caps = CommitSettings {
            message: "m".into(),
            max_files: 100,
            max_bytes: 1000,
        };
        let actions: Vec<Action> = (0..1050).map(|i| add(&format!("f{i}"), 0, false)).collect();
        assert_eq!(split_commits(&actions, &caps).len(), 11);
        let actions = vec![
            add("a", 600, true),
            add("b", 600, true),
            add("c", 5000, true),
        ];
        let b = split_commits(&actions, &caps);
        assert_eq!(
            b.iter().map(|b| b.actions.clone()).collect::<Vec<_>>(),
            vec![vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn batch_sizes_climb_the_ladder() {
        let caps = CommitSettings {
            message: "m".into(),
            max_files: 1000,
            max_bytes: u64::MAX,
        };
        let actions: Vec<Action> = (0..2000).map(|i| add(&format!("f{i}"), 0, false)).collect();
        let sizes: Vec<usize> = split_commits(&actions, &caps)
            .iter()
            .map(|b| b.actions.len())
            .collect();
        assert_eq!(sizes, vec![250, 400, 600, 750]);
    }

    #[test]
    fn deletes_come_after_adds() {
        let caps = CommitSettings {
            message: "m".into(),
            max_files: 2,
            max_bytes: u64::MAX,
        };
        let actions = vec![
            Action::FileDelete {
                path: "z".into(),
                size: 1,
                old_git_oid: String::new(),
            },
            add("a", 1, false),
            add("b", 1, false),
        ];
        let b = split_commits(&actions, &caps);
        assert_eq!(
            b,
            vec![
                CommitBatch {
                    actions: vec![1, 2]
                },
                CommitBatch { actions: vec![0] }
            ]
        );
    }
}
