//! Erasing a profile (`DELETE /api/v1/profiles/{recipient_id}`).
//!
//! Which runs hold the recipient: the recipient's history already is a
//! per-recipient index of every run that recorded an outcome for them,
//! written with the outcome in the recipient's own slot, so it costs
//! nothing more. Two kinds of runs are not in it: runs still going (their
//! outcome may come later) and finished runs that froze an audience but
//! never sent it (expired, or cancelled before sending). The first are few
//! at any time and get a kept erasure each, applied when they finish; the
//! second are found by listing the runs in those states, and each is
//! searched chunk by chunk in bounded steps.

use super::CHUNKS_PER_STEP;
use crate::runs::{RunId, RunState};
use crate::store::{RunFilter, SharedStore, Step, StoreResult};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Runs listed per page while looking for candidates.
const PAGE: usize = 500;

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// History entries removed (as the profile listed them before).
    pub history_entries: u64,
    /// Finished runs that had sent the recipient a message, now cleared of
    /// their rows (runs that only froze them in an audience are cleared too,
    /// unlisted).
    pub runs_erased: Vec<RunId>,
    /// Runs not finished yet: the erasure is kept and applied when they finish.
    pub runs_pending: Vec<RunId>,
}

/// Erases `recipient_id`: from finished runs now, from runs still going
/// when they finish; then their whole history.
pub async fn erase_profile(
    store: &SharedStore,
    recipient_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Erasure> {
    let mut sent = BTreeSet::new();
    let mut listed = 0;
    let mut cursor = None;
    loop {
        let page = store.history(recipient_id, cursor.as_deref(), PAGE).await?;
        listed += page.items.len() as u64;
        sent.extend(page.items.into_iter().map(|e| e.run_id.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut runs = sent.clone();
    runs.extend(unsent_or_going(store).await?.iter().map(RunId::to_string));
    let mut erasure = Erasure::default();
    for text in runs {
        let Ok(run) = text.parse::<RunId>() else {
            continue;
        };
        if erase_from_finished(store, &run, recipient_id).await? == Step::NotFinished {
            store.keep_erasure(&run, recipient_id, now).await?;
            erasure.runs_pending.push(run);
        } else if sent.contains(&text) {
            erasure.runs_erased.push(run);
        }
    }
    // Clearing a run also drops its history entry: count what was listed.
    erasure.history_entries = listed.max(store.erase_history(recipient_id).await?);
    Ok(erasure)
}

/// Erases the recipient from one run in bounded steps; `NotFinished`
/// (nothing touched) when the run has not ended.
pub(super) async fn erase_from_finished(
    store: &SharedStore,
    run: &RunId,
    recipient_id: &str,
) -> StoreResult<Step> {
    let mut from = 0;
    loop {
        match store
            .erase_from_run(run, recipient_id, from, CHUNKS_PER_STEP)
            .await?
        {
            Step::More(next) => {
                from = next;
                tokio::task::yield_now().await;
            }
            other => return Ok(other),
        }
    }
}

/// Runs that are not finished, and finished runs that froze an audience
/// they never sent (so the recipient has no history entry there).
async fn unsent_or_going(store: &SharedStore) -> StoreResult<Vec<RunId>> {
    let mut found = Vec::new();
    for state in RunState::ALL.iter().copied() {
        let mut cursor = None;
        loop {
            let filter = RunFilter {
                state: Some(state),
                delivery_id: None,
            };
            let page = store.list_runs(&filter, cursor.as_deref(), PAGE).await?;
            found.extend(
                page.items
                    .into_iter()
                    .filter(|r| {
                        !r.state.is_final() || r.finished_at.is_none() || r.chunks_done < r.chunks
                    })
                    .map(|r| r.id),
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(found)
}
