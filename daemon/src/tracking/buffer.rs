//! Tracked events kept in memory until the next flush, so a tracking
//! request only takes a lock and never waits on the store. The store makes
//! events unique per recipient and kind; the buffer already drops repeats
//! within one interval so a recipient reloading a page costs nothing.
//!
//! Unsubscribes whose denylist write the store could not take at once
//! (slow or down) wait here too, and the flush writes them first.

use crate::runs::RunId;
use crate::store::{SharedStore, StoreError, StoreResult, SuppressionList, TrackingKind};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tracing::warn;

/// At most this many distinct events wait for a flush; beyond it new ones
/// are dropped (and counted) rather than letting memory grow without end.
const MAX_PENDING: usize = 1_000_000;

/// Events per run waiting for the next flush.
#[derive(Default)]
pub struct Buffer {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    runs: HashMap<RunId, HashSet<(String, TrackingKind)>>,
    /// Unsubscribes still to put on the denylist, with when they were asked.
    unsubscribes: HashMap<(RunId, String), DateTime<Utc>>,
    count: usize,
}

/// Puts the address `recipient` of `run` was sent to on the denylist, as
/// unsubscribed at `at`; `false` when the run has no outcome for the
/// recipient (purged or erased), so there is no address to list.
pub async fn denylist_recipient(
    store: &SharedStore,
    run: &RunId,
    recipient: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let Some(outcome) = store.outcome(run, recipient).await? else {
        return Ok(false);
    };
    if outcome.address.is_empty() {
        return Ok(false);
    }
    store
        .suppress(
            SuppressionList::Denylist,
            &outcome.address,
            "unsubscribed",
            at,
        )
        .await?;
    Ok(true)
}

impl Buffer {
    /// Keeps one event for the next flush.
    pub fn record(&self, run: RunId, recipient: &str, kind: TrackingKind) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.count >= MAX_PENDING {
            metrics::counter!("herald_tracking_dropped_total").increment(1);
            return;
        }
        if pending
            .runs
            .entry(run)
            .or_default()
            .insert((recipient.to_owned(), kind))
        {
            pending.count += 1;
        }
    }

    /// Keeps an unsubscribe asked at `at` whose denylist write the store
    /// could not take now; the flush writes it, then counts it.
    pub fn defer_unsubscribe(&self, run: RunId, recipient: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Never dropped for room, unlike opens: the recipient was promised it.
        pending
            .unsubscribes
            .entry((run, recipient.to_owned()))
            .or_insert(at);
    }

    /// How many distinct events wait, deferred unsubscribes included.
    pub fn len(&self) -> usize {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.count + pending.unsubscribes.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts the deferred unsubscribes on the denylist, then writes every
    /// waiting event with one `record_tracking` per run. What the store
    /// cannot take now waits for the next flush; a run the store does not
    /// know (purged) loses its events.
    pub async fn flush(&self, store: &SharedStore) {
        let mut taken = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending)
        };
        for ((run, recipient), at) in taken.unsubscribes {
            match denylist_recipient(store, &run, &recipient, at).await {
                Ok(true) => {
                    taken
                        .runs
                        .entry(run)
                        .or_default()
                        .insert((recipient, TrackingKind::Unsubscribe));
                }
                Ok(false) => {
                    warn!(delivery_id = run.delivery_id(), run_id = %run, recipient_id = ?recipient, "Unsubscribe dropped: the run has no outcome, so no address, for the recipient any more.");
                }
                Err(error @ StoreError::Unavailable(_)) => {
                    warn!(delivery_id = run.delivery_id(), run_id = %run, %error, "Unsubscribe kept for the next flush.");
                    self.defer_unsubscribe(run, &recipient, at);
                }
                Err(error) => {
                    warn!(delivery_id = run.delivery_id(), run_id = %run, recipient_id = ?recipient, %error, "Unsubscribe could not be put on the denylist; the recipient can use the link again.");
                }
            }
        }
        for (run, events) in taken.runs {
            let list: Vec<(String, TrackingKind)> = events.into_iter().collect();
            match store.record_tracking(&run, &list).await {
                Ok(()) => {}
                Err(error @ StoreError::Unavailable(_)) => {
                    warn!(delivery_id = run.delivery_id(), run_id = %run, events = list.len(), %error, "Tracked events kept for the next flush.");
                    for (recipient, kind) in list {
                        self.record(run.clone(), &recipient, kind);
                    }
                }
                Err(error) => {
                    warn!(delivery_id = run.delivery_id(), run_id = %run, events = list.len(), %error, "Tracked events of this run dropped.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use std::sync::Arc;

    #[test]
    fn repeats_within_an_interval_are_kept_once() {
        let buffer = Buffer::default();
        let run: RunId = "d@once".parse().unwrap();
        buffer.record(run.clone(), "c1", TrackingKind::Open);
        buffer.record(run.clone(), "c1", TrackingKind::Open);
        buffer.record(run.clone(), "c1", TrackingKind::Click);
        buffer.record(run, "c2", TrackingKind::Open);
        assert_eq!(buffer.len(), 3);
    }

    #[tokio::test]
    async fn a_flush_writes_unique_counts_and_empties_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            Arc::new(EmbeddedStore::open(dir.path().join("db")).await.unwrap());
        let new = crate::store::conformance::new_run("d", 60, false);
        let run = new.id.clone();
        assert!(store.create_run(&new).await.unwrap());
        let buffer = Buffer::default();
        buffer.record(run.clone(), "c1", TrackingKind::Click);
        buffer.record(run.clone(), "c2", TrackingKind::Open);
        buffer.record(run.clone(), "c3", TrackingKind::Unsubscribe);
        buffer.record("gone@once".parse().unwrap(), "c1", TrackingKind::Open);
        buffer.flush(&store).await;
        assert!(buffer.is_empty());
        // The same events again in a later interval change nothing.
        buffer.record(run.clone(), "c1", TrackingKind::Open);
        buffer.flush(&store).await;
        let c = store.run(&run).await.unwrap().unwrap().counters;
        // c1 clicked, c2 opened, c3 unsubscribed: three opened.
        assert_eq!((c.opened, c.clicked, c.unsubscribed), (3, 1, 1));
    }
}
