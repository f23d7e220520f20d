//! The KPI timers of tracking: buffered events are written every
//! `kpi.flush_interval`, and the open and click figures of recent runs are
//! recounted from the tracking records every `kpi.rates_interval`.

use super::Tracking;
use crate::runs::RunState;
use crate::store::{RunFilter, SharedStore};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How many of the newest runs the rates timer recounts.
const RECENT_RUNS: usize = 200;

/// Flushes and recounts on their timers until `stopping`; the daemon
/// flushes once more after its listeners closed.
///
/// The two timers run side by side: a recount of many large runs takes
/// a while, and events must not wait for it past `flush_every`
/// (kpis.md: buffered for at most `kpi.flush_interval`).
pub async fn run(
    tracking: Arc<Tracking>,
    store: SharedStore,
    flush_every: Duration,
    rates_every: Duration,
    stopping: CancellationToken,
) {
    let flushing = async {
        let mut flush = tokio::time::interval(flush_every.max(Duration::from_millis(10)));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                _ = flush.tick() => {
                    // Gets the links' key once the store answers, for a daemon
                    // started without it, so the routes can check links.
                    let _ = tracking.load_key().await;
                    tracking.buffer().flush(&store).await;
                }
            }
        }
    };
    let recounting = async {
        let mut rates = tokio::time::interval(rates_every.max(Duration::from_secs(1)));
        rates.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; the first recount waits a period.
        rates.tick().await;
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                _ = rates.tick() => {
                    // What is buffered now is part of the figures recounted.
                    tracking.buffer().flush(&store).await;
                    // Each run's recount is one atomic store call, so a
                    // stop may cut the list short without harm.
                    tokio::select! {
                        () = stopping.cancelled() => return,
                        () = recount_recent(&store) => {}
                    }
                }
            }
        }
    };
    tokio::join!(flushing, recounting);
}

/// Recounts the newest runs that have sent something.
pub async fn recount_recent(store: &SharedStore) {
    recount_newest(store, RECENT_RUNS).await;
}

/// Recounts the `per_state` newest runs of each state in which a run may
/// have sent something, listed state by state so that runs which sent
/// nothing (pending, scheduled, expired) never crowd them out.
async fn recount_newest(store: &SharedStore, per_state: usize) {
    let mut counted = 0;
    for state in [
        RunState::Sending,
        RunState::Paused,
        RunState::Sent,
        RunState::Cancelled,
        RunState::Failed,
    ] {
        let filter = RunFilter {
            state: Some(state),
            delivery_id: None,
        };
        let runs = match store.list_runs(&filter, None, per_state).await {
            Ok(page) => page.items,
            Err(error) => {
                warn!(%error, %state, "Could not list runs to recount their open and click figures.");
                continue;
            }
        };
        for run in runs {
            match store.recount(&run.id).await {
                Ok(_) => counted += 1,
                Err(error) => {
                    warn!(delivery_id = %run.delivery_id, run_id = %run.id, %error, "Could not recount the run.")
                }
            }
        }
    }
    debug!(runs = counted, "Open and click figures recounted.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::run_in;
    use crate::store::embedded::EmbeddedStore;

    /// kpis.md: open and click figures are recomputed on the rates timer;
    /// newer runs that sent nothing do not push a sent run out of it.
    #[tokio::test]
    async fn the_rates_recount_reaches_sent_runs_behind_newer_pending_ones() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = EmbeddedStore::open(dir.path().join("db")).await.unwrap();
        let store: SharedStore = Arc::new(embedded.clone());
        let sent = run_in(&store, "sent", RunState::Sent).await;
        for n in 0..3 {
            run_in(&store, &format!("pending{n}"), RunState::Pending).await;
        }
        let newest = store
            .list_runs(&RunFilter::default(), None, 3)
            .await
            .unwrap();
        assert!(newest.items.iter().all(|r| r.id != sent), "the fixture");
        let truth = store.run(&sent).await.unwrap().unwrap().counters;
        assert_eq!(truth.delivered, 2);
        let mut drifted = truth.clone();
        (drifted.delivered, drifted.opened) = (7, 5);
        embedded.overwrite_counters(&sent, drifted).await;
        recount_newest(&store, 3).await;
        assert_eq!(store.run(&sent).await.unwrap().unwrap().counters, truth);
    }
}
