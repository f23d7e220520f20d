//! The housekeeping pass and the timer that runs it.

use super::{BATCH, erase::erase_from_finished};
use crate::clock::Clock;
use crate::config::RetentionConfig;
use crate::store::{SharedStore, Step, StoreResult};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often the housekeeping pass runs.
pub const EVERY: Duration = Duration::from_secs(60);

/// Runs one pass purges at most, so a backlog is worked off over passes.
const RUNS_PER_PASS: usize = 20;

/// Kept erasures one pass looks at.
const ERASURES_PER_PASS: usize = 200;

/// History purge calls one pass makes at most.
const HISTORY_CALLS_PER_PASS: usize = 200;

/// How long personal data is kept (`retention` in the config, reloadable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Finished runs' frozen audiences, outcomes and previews.
    pub runs: chrono::Duration,
    /// Profile history entries.
    pub history: chrono::Duration,
}

impl Policy {
    /// The policy a config asks for.
    pub fn from_config(config: &RetentionConfig) -> Policy {
        let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        Policy {
            runs: span(config.runs.get()),
            history: span(config.history.get()),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Runs whose per-recipient rows are now all gone.
    pub runs_purged: usize,
    /// History entries removed.
    pub history_entries: u64,
    /// Kept erasures applied (their runs finished).
    pub erasures_applied: usize,
}

/// One housekeeping pass at `now`: kept erasures, old runs, old history.
pub async fn sweep(store: &SharedStore, now: DateTime<Utc>, policy: &Policy) -> StoreResult<Swept> {
    let mut swept = Swept::default();
    for (run, recipient) in store.kept_erasures(ERASURES_PER_PASS).await? {
        if erase_from_finished(store, &run, &recipient).await? != Step::NotFinished {
            store.drop_erasure(&run, &recipient).await?;
            swept.erasures_applied += 1;
        }
    }
    let cutoff = now
        .checked_sub_signed(policy.runs)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    for run in store.runs_to_purge(cutoff, RUNS_PER_PASS).await? {
        loop {
            match store.purge_run(&run, BATCH).await? {
                Step::More(_) => tokio::task::yield_now().await,
                Step::Done => {
                    swept.runs_purged += 1;
                    break;
                }
                Step::NotFinished => break,
            }
        }
    }
    let cutoff = now
        .checked_sub_signed(policy.history)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    for _ in 0..HISTORY_CALLS_PER_PASS {
        let removed = store.purge_history(cutoff, BATCH).await?;
        swept.history_entries += removed;
        if removed == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(swept)
}

/// Runs [`sweep`] every [`EVERY`] until `stopping`, with the policy of the
/// config last loaded (SIGHUP replaces it).
pub async fn run(
    store: SharedStore,
    clock: Clock,
    policy: watch::Receiver<Policy>,
    stopping: CancellationToken,
) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        let current = *policy.borrow();
        match sweep(&store, clock.now(), &current).await {
            Ok(swept) if swept != Swept::default() => info!(
                runs_purged = swept.runs_purged,
                history_entries = swept.history_entries,
                erasures_applied = swept.erasures_applied,
                "Retention purged personal data."
            ),
            Ok(_) => {}
            Err(error) => {
                warn!(%error, "Retention could not finish its pass; it retries on the next one.")
            }
        }
    }
}
