//! The deliveries folder, live: rescanned when files change (notify with a
//! debouncer), on SIGHUP, and every [`RESCAN_EVERY`] as a safety net for
//! events a network file system never sends. A file that turns invalid
//! keeps its last good version active; its errors are published beside.
//! SIGHUP also brings the reloaded `deliveries_dir` and `audience_roots`.
//! A rescan reads only the files that may have changed (`file_cache`).

use super::file_cache::{FileCache, SETTLE, ScanCount};
use super::folder::Loaded;
use super::{Delivery, FileError, ValidationContext};
use crate::engine::Deliveries;
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{Debouncer, RecommendedCache};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Rescan period of the safety net.
pub const RESCAN_EVERY: Duration = Duration::from_secs(30);

/// File events closer together than this are handled as one rescan.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// A rescan asked for from outside the folder (SIGHUP).
#[derive(Debug)]
pub struct RescanRequest {
    /// The folders of the reloaded config; `None` (it did not load) keeps the current ones.
    pub context: Option<ValidationContext>,
    /// Told once the rescan is done.
    pub done: oneshot::Sender<()>,
}

/// The loaded deliveries and the errors of the files that are not.
pub struct LiveFolder {
    context: ValidationContext,
    /// The last good version of each file.
    by_source: HashMap<PathBuf, Arc<Delivery>>,
    /// The verdicts of the last scan, reused for files that did not change.
    cache: FileCache,
    deliveries: watch::Sender<Deliveries>,
    errors: watch::Sender<Arc<Vec<FileError>>>,
    /// How each scan had its files.
    scans: watch::Sender<ScanCount>,
}

impl LiveFolder {
    /// A folder with nothing loaded yet.
    pub fn new(context: ValidationContext) -> Self {
        LiveFolder {
            context,
            by_source: HashMap::new(),
            cache: FileCache::default(),
            deliveries: watch::channel(Deliveries::default()).0,
            errors: watch::channel(Arc::new(Vec::new())).0,
            scans: watch::channel(ScanCount::default()).0,
        }
    }

    /// Follows the loaded deliveries.
    pub fn deliveries(&self) -> watch::Receiver<Deliveries> {
        self.deliveries.subscribe()
    }

    /// Follows the errors of the files that do not load.
    pub fn errors(&self) -> watch::Receiver<Arc<Vec<FileError>>> {
        self.errors.subscribe()
    }

    /// How the latest scan had its files (read, reused, too fresh to keep).
    #[cfg(test)]
    pub(crate) fn scans(&self) -> watch::Receiver<ScanCount> {
        self.scans.subscribe()
    }

    /// The folders files are checked against now.
    pub fn context(&self) -> &ValidationContext {
        &self.context
    }

    /// Takes the folders of a reloaded config for the next rescans. A new
    /// `deliveries_dir` that is not a folder is refused and the current one
    /// kept: a typo must not unload every delivery and cancel their runs.
    pub fn set_context(&mut self, mut context: ValidationContext) {
        let current = &self.context.deliveries_dir;
        if context.deliveries_dir != *current {
            if context.deliveries_dir.is_dir() {
                info!(from = %current.display(), to = %context.deliveries_dir.display(), "Deliveries folder changed; loading and watching the new one.");
            } else {
                warn!(dir = %context.deliveries_dir.display(), kept = %current.display(), "The reloaded `deliveries_dir` is not a folder; keeping the current one. Create it, then send SIGHUP again.");
                context.deliveries_dir = current.clone();
            }
        }
        if context.audience_roots != self.context.audience_roots {
            info!(audience_roots = ?context.audience_roots, "Audience roots changed; delivery files are checked against the new ones.");
        }
        self.context = context;
    }

    /// Walks the whole folder, checks the files that may have changed, and
    /// publishes the result.
    pub fn rescan(&mut self) {
        self.rescan_started(SystemTime::now());
    }

    /// [`rescan`](Self::rescan) as of `started`, which decides which
    /// verdicts are recent enough to check again next time.
    fn rescan_started(&mut self, started: SystemTime) {
        let loaded = self.cache.load(&self.context, started);
        let count = self.cache.last_scan();
        self.scans.send_replace(count);
        debug!(
            checked = count.checked,
            reused = count.reused,
            "Deliveries folder rescanned."
        );
        self.publish(loaded);
    }

    /// Publishes a scan's result: the deliveries, each invalid file's last
    /// good version kept, and the errors.
    fn publish(&mut self, loaded: Loaded<Arc<Delivery>>) {
        let failed: std::collections::HashSet<PathBuf> =
            loaded.errors.iter().map(|e| e.file.clone()).collect();
        let mut by_source: HashMap<PathBuf, Arc<Delivery>> = loaded
            .deliveries
            .into_iter()
            .map(|d| (d.source().to_path_buf(), d))
            .collect();
        for (source, previous) in &self.by_source {
            if failed.contains(source) && !by_source.contains_key(source) {
                warn!(file = %source.display(), delivery_id = %previous.id(), "Delivery file is invalid; its last good version stays active.");
                by_source.insert(source.clone(), previous.clone());
            }
        }
        let before = self.errors.borrow().clone();
        for error in loaded.errors.iter().filter(|e| !before.contains(e)) {
            warn!(file = %error.file.display(), line = error.line, column = error.column, error = ?error.message, "Delivery file error.");
        }
        let map: BTreeMap<String, Arc<Delivery>> = by_source
            .values()
            .map(|d| (d.id().to_owned(), d.clone()))
            .collect();
        metrics::gauge!("herald_deliveries_loaded").set(map.len() as f64);
        metrics::gauge!("herald_delivery_file_errors").set(failed.len() as f64);
        // A reused verdict is the same `Arc`: no need to hash it to know.
        let changed = self.by_source.len() != by_source.len()
            || by_source.iter().any(|(k, v)| {
                self.by_source.get(k).is_none_or(|old| {
                    !Arc::ptr_eq(old, v) && old.definition_hash() != v.definition_hash()
                })
            });
        self.by_source = by_source;
        if changed {
            info!(
                loaded = map.len(),
                invalid = failed.len(),
                "Deliveries loaded."
            );
            self.deliveries.send_replace(Arc::new(map));
        }
        self.errors.send_replace(Arc::new(loaded.errors));
    }

    /// Starts watching the folder; called before the first scan, so a file
    /// written while the daemon starts is not left to the periodic rescan.
    pub fn start_watch(&self) -> FolderWatch {
        let (events_tx, events) = mpsc::channel::<()>(1);
        let watcher = watch_folder(&self.context.deliveries_dir, events_tx.clone());
        FolderWatch {
            events_tx,
            events,
            watcher,
        }
    }

    /// Watches the folder until `stopping`; `rescans` asks for a rescan
    /// (SIGHUP), maybe with reloaded folders, answered when done.
    pub async fn watch(
        mut self,
        watch: FolderWatch,
        mut rescans: mpsc::Receiver<RescanRequest>,
        stopping: CancellationToken,
    ) {
        let FolderWatch {
            events_tx,
            mut events,
            watcher,
        } = watch;
        let mut _watcher = watcher;
        let mut safety_net = tokio::time::interval(RESCAN_EVERY);
        safety_net.tick().await;
        // Files too fresh to cache (a deploy that just wrote thousands)
        // are read once more when they have settled, so that the cost is
        // paid now rather than at the safety net's next tick, which may
        // fall in the middle of the sending they scheduled.
        let settle = tokio::time::sleep(Duration::MAX);
        tokio::pin!(settle);
        let mut settling = self.cache.last_scan().fresh > 0;
        loop {
            if settling {
                settle
                    .as_mut()
                    .reset(tokio::time::Instant::now() + SETTLE + SETTLE / 4);
            }
            tokio::select! {
                () = stopping.cancelled() => break,
                Some(()) = events.recv() => self.rescan_off_thread().await,
                _ = safety_net.tick() => self.rescan_off_thread().await,
                () = &mut settle, if settling => self.rescan_off_thread().await,
                Some(request) = rescans.recv() => {
                    if let Some(context) = request.context {
                        self.set_context(context);
                    }
                    // A SIGHUP reads every file, as before there was a
                    // cache: the operator's way past anything the cache
                    // could miss (a file server's clock far behind ours).
                    self.cache.clear();
                    // Watch afresh: the folder may be a new one, or one a
                    // deploy tool swapped in under the old watch.
                    _watcher = watch_folder(&self.context.deliveries_dir, events_tx.clone());
                    self.rescan_off_thread().await;
                    let _ = request.done.send(());
                }
            }
            settling = self.cache.last_scan().fresh > 0;
        }
    }

    /// Rescans on a blocking thread: loading reads files and CSV headers.
    async fn rescan_off_thread(&mut self) {
        let taken = std::mem::replace(self, LiveFolder::new(self.context.clone()));
        let deliveries = taken.deliveries.clone();
        let errors = taken.errors.clone();
        let scans = taken.scans.clone();
        match tokio::task::spawn_blocking(move || {
            let mut folder = taken;
            folder.rescan();
            folder
        })
        .await
        {
            Ok(folder) => *self = folder,
            Err(error) => {
                warn!(%error, "Rescan of the deliveries folder panicked; keeping the last state.");
                self.deliveries = deliveries;
                self.errors = errors;
                self.scans = scans;
            }
        }
    }
}

/// A started watch of the deliveries folder, handed to [`LiveFolder::watch`].
pub struct FolderWatch {
    events_tx: mpsc::Sender<()>,
    events: mpsc::Receiver<()>,
    watcher: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
}

/// A debounced watch of `dir` that sends on `changes` when a file under it
/// changes; `None` (logged) when it cannot be had: the periodic rescan remains.
fn watch_folder(
    dir: &Path,
    changes: mpsc::Sender<()>,
) -> Option<Debouncer<RecommendedWatcher, RecommendedCache>> {
    let watcher = notify_debouncer_full::new_debouncer(
        DEBOUNCE,
        None,
        move |result: notify_debouncer_full::DebounceEventResult| {
            // Reading the files for a rescan makes access events: only
            // changes count, or every rescan would start the next one.
            let changed = result.is_ok_and(|events| {
                events
                    .iter()
                    .any(|e| !matches!(e.event.kind, EventKind::Access(_)))
            });
            if changed {
                let _ = changes.try_send(());
            }
        },
    );
    match watcher {
        Ok(mut watcher) => match watcher.watch(dir, RecursiveMode::Recursive) {
            Ok(()) => Some(watcher),
            Err(error) => {
                warn!(%error, dir = %dir.display(), "Cannot watch the deliveries folder; relying on the periodic rescan.");
                None
            }
        },
        Err(error) => {
            warn!(%error, "Cannot start the file watcher; relying on the periodic rescan.");
            None
        }
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
