//! File-system events: a `notify` watcher, recursive on every mapped folder (folders created
//! later are added by notify itself), whose callback forwards each event into a bounded tokio
//! channel that the dispatcher reads. Nothing else happens on notify's thread.

use std::collections::BTreeSet;
use std::path::PathBuf;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// What the callback forwards.
pub(crate) type FsEvent = notify::Result<notify::Event>;

/// Events buffered before notify's thread waits for the dispatcher.
pub(crate) const CHANNEL_CAPACITY: usize = 4096;

/// Starts watching `roots`; events go to `tx` until the returned watcher is dropped.
pub(crate) fn watch(
    roots: &BTreeSet<PathBuf>,
    tx: mpsc::Sender<FsEvent>,
) -> Result<RecommendedWatcher, crate::Error> {
    let io = |root: &PathBuf, e: notify::Error| crate::Error::Io {
        what: format!("watch `{}`", root.display()),
        source: std::io::Error::other(e),
    };
    let mut watcher = notify::recommended_watcher(move |event: FsEvent| {
        // A full channel makes notify wait (and the kernel queue absorb the burst, or report an
        // overflow, which becomes a rescan). A closed channel means watch is ending.
        let _ = tx.blocking_send(event);
    })
    .map_err(|e| io(&PathBuf::from("."), e))?;
    for root in roots {
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| io(root, e))?;
    }
    Ok(watcher)
}
