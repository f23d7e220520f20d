//! The deliveries folder, live: rescanned when files change (notify with a
//! debouncer), on SIGHUP, and every [`RESCAN_EVERY`] as a safety net for
//! events a network file system never sends. A file that turns invalid
//! keeps its last good version active; its errors are published beside.

use super::{Delivery, FileError, ValidationContext, load_folder};
use crate::engine::Deliveries;
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Rescan period of the safety net.
pub const RESCAN_EVERY: Duration = Duration::from_secs(30);

/// File events closer together than this are handled as one rescan.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The loaded deliveries and the errors of the files that are not.
pub struct LiveFolder {
    context: ValidationContext,
    /// The last good version of each file.
    by_source: HashMap<PathBuf, Arc<Delivery>>,
    deliveries: watch::Sender<Deliveries>,
    errors: watch::Sender<Arc<Vec<FileError>>>,
}

impl LiveFolder {
    /// A folder with nothing loaded yet.
    pub fn new(context: ValidationContext) -> Self {
        LiveFolder {
            context,
            by_source: HashMap::new(),
            deliveries: watch::channel(Deliveries::default()).0,
            errors: watch::channel(Arc::new(Vec::new())).0,
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

    /// Replaces the validation context (SIGHUP reloads `audience_roots`).
    pub fn set_context(&mut self, context: ValidationContext) {
        self.context = context;
    }

    /// Reads the whole folder and publishes the result.
    pub fn rescan(&mut self) {
        let context = self.context.clone();
        let loaded = load_folder(&context);
        let failed: std::collections::HashSet<PathBuf> =
            loaded.errors.iter().map(|e| e.file.clone()).collect();
        let mut by_source: HashMap<PathBuf, Arc<Delivery>> = loaded
            .deliveries
            .into_iter()
            .map(|d| (d.source().to_path_buf(), Arc::new(d)))
            .collect();
        for (source, previous) in &self.by_source {
            if failed.contains(source) && !by_source.contains_key(source) {
                warn!(file = %source.display(), delivery_id = %previous.id(), "Delivery file is invalid; its last good version stays active.");
                by_source.insert(source.clone(), previous.clone());
            }
        }
        let before = self.errors.borrow().clone();
        for error in loaded.errors.iter().filter(|e| !before.contains(e)) {
            warn!(file = %error.file.display(), line = error.line, column = error.column, message = %error.message, "Delivery file error.");
        }
        let map: BTreeMap<String, Arc<Delivery>> = by_source
            .values()
            .map(|d| (d.id().to_owned(), d.clone()))
            .collect();
        metrics::gauge!("herald_deliveries_loaded").set(map.len() as f64);
        metrics::gauge!("herald_delivery_file_errors").set(failed.len() as f64);
        let changed = self.by_source.len() != by_source.len()
            || by_source.iter().any(|(k, v)| {
                self.by_source
                    .get(k)
                    .is_none_or(|old| old.definition_hash() != v.definition_hash())
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

    /// Watches the folder until `stopping`; `rescans` asks for a rescan
    /// (SIGHUP), answered on the returned channel's sender when done.
    pub async fn watch(
        mut self,
        mut rescans: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
        stopping: CancellationToken,
    ) {
        let (events_tx, mut events) = mpsc::channel::<()>(1);
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
                    let _ = events_tx.try_send(());
                }
            },
        );
        let _watcher = match watcher {
            Ok(mut watcher) => {
                match watcher.watch(&self.context.deliveries_dir, RecursiveMode::Recursive) {
                    Ok(()) => Some(watcher),
                    Err(error) => {
                        warn!(%error, dir = %self.context.deliveries_dir.display(), "Cannot watch the deliveries folder; relying on the periodic rescan.");
                        None
                    }
                }
            }
            Err(error) => {
                warn!(%error, "Cannot start the file watcher; relying on the periodic rescan.");
                None
            }
        };
        let mut safety_net = tokio::time::interval(RESCAN_EVERY);
        safety_net.tick().await;
        loop {
            tokio::select! {
                () = stopping.cancelled() => break,
                Some(()) = events.recv() => self.rescan_off_thread().await,
                _ = safety_net.tick() => self.rescan_off_thread().await,
                Some(done) = rescans.recv() => {
                    self.rescan_off_thread().await;
                    let _ = done.send(());
                }
            }
        }
    }

    /// Rescans on a blocking thread: loading reads files and CSV headers.
    async fn rescan_off_thread(&mut self) {
        let taken = std::mem::replace(self, LiveFolder::new(self.context.clone()));
        let deliveries = taken.deliveries.clone();
        let errors = taken.errors.clone();
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
            }
        }
    }
}
