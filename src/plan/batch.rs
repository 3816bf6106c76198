//! Splitting a repo's file actions into commits: at most `max_files` files and `max_bytes`
//! bytes each, with a bounded inline payload for regular files; adds and updates before deletes.

use super::{Action, CommitSettings};

/// Regular files travel base64-encoded in the commit body; keep each body well under the
/// Hub's limits.
pub const MAX_INLINE_BYTES: u64 = 64 * 1024 * 1024;

/// One commit: indexes into the repo plan's actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitBatch {
    pub actions: Vec<usize>,
}

/// Splits the file actions of `actions` into commits, in order.
pub fn split_commits(actions: &[Action], caps: &CommitSettings) -> Vec<CommitBatch> {
    let max_files = caps.max_files.max(1);
    let mut batches = Vec::new();
    let mut cur = CommitBatch::default();
    let (mut bytes, mut inline) = (0u64, 0u64);
    let files = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::FileAdd(_) | Action::FileUpdate(_)))
        .chain(
            actions
                .iter()
                .enumerate()
                .filter(|(_, a)| matches!(a, Action::FileDelete { .. })),
        );
    for (i, a) in files {
        let (size, is_inline) = match a {
            Action::FileAdd(f) | Action::FileUpdate(f) => (f.size, !f.lfs),
            _ => (0, false),
        };
        let inline_size = if is_inline { size } else { 0 };
        let full = cur.actions.len() >= max_files
            || (bytes + size > caps.max_bytes && !cur.actions.is_empty())
            || (inline + inline_size > MAX_INLINE_BYTES && !cur.actions.is_empty());
        if full {
            batches.push(std::mem::take(&mut cur));
            bytes = 0;
            inline = 0;
        }
        cur.actions.push(i);
        bytes += size;
        inline += inline_size;
    }
    if !cur.actions.is_empty() {
        batches.push(cur);
    }
    batches
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
