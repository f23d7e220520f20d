//! The store: everything Herald keeps between instants and between
//! instances. [`Store`] is the one interface; `redis` (production, several
//! instances) and `embedded` (redb, single instance, the default) implement
//! it, and one conformance suite (`conformance`) runs against both so
//! their behaviour cannot drift.
//!
//! Every state change of a run or a chunk is one atomic operation of the
//! backend (one Lua script on Redis, one transaction on redb). The store
//! also keeps the *agenda*: for each run that needs work, the instant it
//! next needs it (preparation now, expiry at the confirm deadline, sending
//! at the scheduled instant, reclaim when a lease expires). Operations keep
//! the agenda up to date themselves; the engine only asks what is due.

#[cfg(test)]
pub mod conformance;
pub mod embedded;
pub mod redis;
pub mod types;

pub use types::*;

use crate::runs::{Outcome, RunId, RunState};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached (Redis down, connection reset); the
    /// caller retries with backoff and reports not-ready.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The embedded store file is held by another daemon.
    #[error(
        "the store file {path} is in use by another herald process (pid {pid}); stop it or point `store.path` elsewhere"
    )]
    Locked {
        /// The store file.
        path: std::path::PathBuf,
        /// The holder's process id, when known.
        pid: String,
    },
    /// Data in the store does not have the expected shape.
    #[error("the store holds unexpected data at {key}: {problem}")]
    Corrupt {
        /// Where.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A paging cursor that no page of this store gave: the caller's
    /// mistake, which the API answers with `400`, not a store failure.
    #[error("`{cursor}` is not a paging cursor given by this store")]
    BadCursor {
        /// The cursor as given.
        cursor: String,
    },
    /// The store refused the operation for another reason (config, I/O).
    #[error("store error: {0}")]
    Other(String),
}

/// Shorthand for results of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// A store shared by the engine's tasks.
pub type SharedStore = Arc<dyn Store>;

/// Everything the engine, the API and the KPIs need from storage.
///
/// `owner` arguments identify a daemon instance (`hostname:pid:random`);
/// `now` arguments come from the engine's clock so tests can fake time.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- health and wake-ups -----

    /// Answers when the store is reachable (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Notified when another operation (here or in another instance) may
    /// have made a run due sooner: the scheduler re-reads the agenda.
    fn changes(&self) -> Arc<tokio::sync::Notify>;

    // ----- schedule cursors -----

    /// The last occurrence of each recurring delivery the scheduler handled
    /// (created or skipped), so missed occurrences can be caught up; in the
    /// order asked, in one store call (a start plans thousands at once).
    async fn cursors(&self, delivery_ids: &[String]) -> StoreResult<Vec<Option<DateTime<Utc>>>>;

    /// Moves each delivery's cursor forward to its instant, never
    /// backward, in one store call.
    async fn advance_cursors(&self, moves: &[(String, DateTime<Utc>)]) -> StoreResult<()>;

    /// One delivery's cursor.
    async fn cursor(&self, delivery_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self
            .cursors(&[delivery_id.to_owned()])
            .await?
            .pop()
            .flatten())
    }

    /// Moves one delivery's cursor forward to `to`; never backward.
    async fn advance_cursor(&self, delivery_id: &str, to: DateTime<Utc>) -> StoreResult<()> {
        self.advance_cursors(&[(delivery_id.to_owned(), to)]).await
    }

    // ----- runs -----

    /// Creates the run in `preparing`, due now; `false` (and no change)
    /// when a run with this id exists, whoever created it.
    async fn create_run(&self, run: &NewRun) -> StoreResult<bool>;

    /// Creates the run as [`create_run`](Self::create_run) does and, when
    /// it is created here, takes its preparation for `owner` until
    /// `lease_until` in the same step where the backend can, so the
    /// creator prepares it at once instead of finding it on the agenda.
    async fn create_and_take(
        &self,
        run: &NewRun,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Creation> {
        if !self.create_run(run).await? {
            return Ok(Creation::Existed);
        }
        if !self
            .claim_preparation(&run.id, owner, lease_until, run.created_at)
            .await?
        {
            return Ok(Creation::Created);
        }
        Ok(match self.run(&run.id).await? {
            Some(stored) => Creation::Taken(Box::new(stored)),
            None => Creation::Created,
        })
    }

    /// A run by id.
    async fn run(&self, id: &RunId) -> StoreResult<Option<Run>>;

    /// The definition snapshot (JSON) the run was prepared from.
    async fn definition(&self, id: &RunId) -> StoreResult<Option<String>>;

    /// Runs, newest `scheduled_for` first, `limit` per page.
    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Run>>;

    /// Runs whose agenda instant is at or before `now`, soonest first.
    async fn due_runs(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RunId>>;

    /// The soonest agenda instant, if any run needs work.
    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>>;

    // ----- preparation -----

    /// Takes (or renews) the right to prepare a `preparing` run until
    /// `lease_until`; `false` when another owner holds an unexpired lease
    /// or the run is not `preparing`. The agenda makes it due again at
    /// `lease_until`, so a preparer that dies is replaced.
    async fn claim_preparation(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Gives back the preparation of a `preparing` run that `owner` holds
    /// but will not prepare (it is stopping): the run is due at once for
    /// any instance. Nothing changes when the lease is another's.
    async fn release_preparation(
        &self,
        id: &RunId,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.claim_preparation(id, owner, now, now)
            .await
            .map(|_| ())
    }

    /// A due run's first step in one where the backend can: reads the run;
    /// when it is `preparing`, takes its preparation as
    /// [`claim_preparation`](Self::claim_preparation) does; when it is
    /// `scheduled` and its instant has come, starts sending it as
    /// [`start_sending`](Self::start_sending) does and claims a chunk for
    /// `owner` as [`claim_chunk`](Self::claim_chunk) does. `None`: no such run.
    /// A run it starts may reach its new place on the agenda (later than
    /// its old one) just after the call returns.
    async fn take_due(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Due>> {
        let Some(run) = self.run(id).await? else {
            return Ok(None);
        };
        match run.state {
            RunState::Preparing if self.claim_preparation(id, owner, lease_until, now).await? => {
                Ok(Some(Due::Taken(Box::new(run))))
            }
            RunState::Scheduled if run.scheduled_for <= now => {
                match self.start_sending(id, now).await? {
                    Transition::Done(after) => {
                        let claimed = match after.state {
                            RunState::Sending => {
                                self.claim_chunk(id, owner, lease_until, now).await?
                            }
                            _ => None,
                        };
                        Ok(Some(Due::Started(Box::new((&*after).into()), claimed)))
                    }
                    Transition::NotFound => Ok(None),
                    // Changed meanwhile (cancelled): read it as it is now.
                    Transition::Conflict(_) => {
                        Ok(self.run(id).await?.map(|run| Due::Found(Box::new(run))))
                    }
                }
            }
            _ => Ok(Some(Due::Found(Box::new(run)))),
        }
    }

    /// [`take_due`](Self::take_due) for many runs, each with its own
    /// result in the order given: where the backend can, in fewer calls.
    async fn take_due_many(
        &self,
        ids: &[RunId],
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<StoreResult<Option<Due>>> {
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            taken.push(self.take_due(id, owner, lease_until, now).await);
        }
        taken
    }

    /// Writes (or overwrites) one chunk of a `preparing` run.
    async fn put_chunk(&self, id: &RunId, chunk: &Chunk) -> StoreResult<()>;

    /// Ends preparation: records the counts and preview, then moves the
    /// run to `pending` (confirm required), `sending` (due) or `scheduled`.
    /// A run that left `preparing` meanwhile (cancelled) is left as it is.
    async fn finish_preparation(
        &self,
        id: &RunId,
        owner: &str,
        prepared: &Prepared,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition>;

    /// The common end of a preparation in one step where the backend can:
    /// writes `last` (the run's last chunk) as [`put_chunk`](Self::put_chunk),
    /// ends preparation as [`finish_preparation`](Self::finish_preparation)
    /// and, when that moves the run to `sending`, claims a chunk for
    /// `owner` as [`claim_chunk`](Self::claim_chunk). `run` is the run as
    /// `owner` took its preparation. Returns the run as preparation left
    /// it and the chunk claimed, if any.
    async fn finish_and_claim(
        &self,
        run: &Run,
        owner: &str,
        prepared: &Prepared,
        last: Option<&Chunk>,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Transition, Option<ClaimedChunk>)> {
        let id = &run.id;
        if let Some(chunk) = last {
            self.put_chunk(id, chunk).await?;
        }
        let transition = self.finish_preparation(id, owner, prepared, now).await?;
        let claimed = match &transition {
            Transition::Done(run) if run.state == RunState::Sending => {
                self.claim_chunk(id, owner, lease_until, now).await?
            }
            _ => None,
        };
        Ok((transition, claimed))
    }

    /// Moves a run that is not final to `failed` with a reason.
    async fn fail_run(
        &self,
        id: &RunId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition>;

    // ----- actions (spec README, "What each action does in each state") -----

    /// `pending` → `scheduled` (or `sending` when its instant has come).
    async fn confirm(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition>;

    /// Any state but final → `cancelled`. A run that was sending or paused
    /// stays due so its unsent recipients get the outcome `cancelled`.
    async fn cancel(
        &self,
        id: &RunId,
        by: Option<&str>,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition>;

    /// `sending` → `paused`: no more chunks are claimed.
    async fn pause(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition>;

    /// `paused` → `sending`.
    async fn resume(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition>;

    /// `pending` past its confirm deadline → `expired`; otherwise a conflict.
    async fn expire(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition>;

    /// `scheduled` whose instant has come → `sending`; otherwise a conflict.
    async fn start_sending(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition>;

    // ----- sending -----

    /// Claims a chunk of a `sending` run (or of a cancelled run whose
    /// chunks still need their `cancelled` outcomes) that nobody holds or
    /// whose lease expired. `None` when there is none to claim now.
    async fn claim_chunk(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedChunk>>;

    /// Extends a lease; `false` when the lease was lost (expired and taken).
    async fn renew_lease(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Records final outcomes and moves the run's counters with them, in
    /// one atomic operation per batch. A recipient that already has an
    /// outcome keeps it and is not counted twice. Also appends the
    /// recipients' profile history and indexes provider message ids.
    async fn record_outcomes(&self, id: &RunId, outcomes: &[RecipientOutcome]) -> StoreResult<()>;

    /// A sent batch's bookkeeping in one step where the backend can:
    /// records its final outcomes as [`record_outcomes`](Self::record_outcomes)
    /// does and resets the soft-bounce counts of the addresses that took a
    /// message as [`reset_soft_bounces`](Self::reset_soft_bounces) does.
    async fn record_sent(
        &self,
        id: &RunId,
        outcomes: &[RecipientOutcome],
        accepted_by: &[String],
    ) -> StoreResult<()> {
        let (recorded, reset) = tokio::join!(
            self.record_outcomes(id, outcomes),
            self.reset_soft_bounces(accepted_by)
        );
        recorded.and(reset)
    }

    /// A chunk's last batch in one step where the backend can: records it
    /// as [`record_sent`](Self::record_sent) does, then marks the chunk
    /// finished as [`complete_chunk`](Self::complete_chunk) does and
    /// returns what that returns.
    async fn record_last(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        outcomes: &[RecipientOutcome],
        accepted_by: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.record_sent(id, outcomes, accepted_by).await?;
        self.complete_chunk(id, chunk, owner, now).await
    }

    /// Marks a claimed chunk finished; the run becomes `sent` when it was
    /// the last one (a cancelled run records its end). Returns whether the
    /// run may have a chunk to claim now, so a worker that finished the
    /// last one does not ask again.
    async fn complete_chunk(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Gives a claimed chunk back unfinished (clean shutdown) so another
    /// instance claims it at once.
    async fn release_chunk(&self, id: &RunId, chunk: u32, owner: &str) -> StoreResult<()>;

    /// Token bucket shared by all instances: takes `n` messages of the
    /// delivery's throttle; returns how long to wait before sending them
    /// (zero when allowed now).
    async fn throttle(
        &self,
        delivery_id: &str,
        per_second: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration>;

    // ----- outcomes, feedback, tracking, KPIs -----

    /// The recorded outcome of one recipient of a run.
    async fn outcome(
        &self,
        id: &RunId,
        recipient_id: &str,
    ) -> StoreResult<Option<RecipientOutcome>>;

    /// The run and recipient a provider message id was recorded for.
    async fn find_message(&self, provider_message_id: &str)
    -> StoreResult<Option<(RunId, String)>>;

    /// Turns a recipient's `delivered` outcome into `bounced` or `failed`
    /// (later feedback), moving the counters; returns the outcome now
    /// recorded, or `None` for an unknown recipient.
    async fn amend_outcome(
        &self,
        id: &RunId,
        recipient_id: &str,
        to: Outcome,
        detail: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RecipientOutcome>>;

    /// Writes buffered tracking events: unique per recipient and kind, a
    /// click implying an open; moves `opened`, `clicked`, `unsubscribed`.
    async fn record_tracking(
        &self,
        id: &RunId,
        events: &[(String, TrackingKind)],
    ) -> StoreResult<()>;

    /// Recomputes the run's counters from its recorded outcomes and
    /// tracking records, stores and returns them ("compute statistics").
    /// Runs with `outcomes_purged` keep their counters.
    async fn recount(&self, id: &RunId) -> StoreResult<Counters>;

    /// A recipient's history, newest first.
    async fn history(
        &self,
        recipient_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<HistoryEntry>>;

    // ----- suppressions (quarantine and denylist) -----

    /// For each address, the list it is on (denylist wins), in order.
    async fn suppressed(&self, addresses: &[String]) -> StoreResult<Vec<Option<SuppressionList>>>;

    /// Puts an address on a list (idempotent; keeps the first `since`).
    async fn suppress(
        &self,
        list: SuppressionList,
        address: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Lifts an entry; `false` when there was none.
    async fn unsuppress(&self, list: SuppressionList, address: &str) -> StoreResult<bool>;

    /// Entries of a list, by address.
    async fn suppressions(
        &self,
        list: SuppressionList,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Suppression>>;

    /// Counts a soft bounce; quarantines the address at `threshold`.
    /// Returns `true` when this bounce quarantined it.
    async fn soft_bounce(
        &self,
        address: &str,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// A successful send resets the soft-bounce counts of these addresses.
    async fn reset_soft_bounces(&self, addresses: &[String]) -> StoreResult<()>;

    // ----- shared secrets -----

    /// The secret kept under `name` (the HMAC key of tracking links), shared
    /// by every instance: stores `candidate` when there is none yet (set
    /// once, never overwritten) and returns the one kept.
    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;

    // ----- retention and erasure (daemon.md `retention`, http-api.md profiles) -----

    /// Finished runs (`sent`, `cancelled`, `expired`, `failed`) that ended
    /// at or before `ended_before` and whose per-recipient rows retention
    /// has not purged yet, oldest first, at most `limit`.
    async fn runs_to_purge(
        &self,
        ended_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>>;

    /// One bounded step of purging a finished run: removes at most `limit`
    /// recipients' outcomes and tracking records with their provider
    /// message ids, then (last step) its frozen audience and preview. The
    /// counters stay and the run is marked `outcomes_purged`. History
    /// entries outlive the run's rows until `retention.history`.
    async fn purge_run(&self, id: &RunId, limit: usize) -> StoreResult<Step>;

    /// Removes history entries recorded before `before`, for at most
    /// `limit` recipients per call; returns how many entries went.
    async fn purge_history(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<u64>;

    /// One bounded step of erasing a recipient from a finished run: on the
    /// first step (`from_chunk` 0) its outcome, tracking records, provider
    /// message id and history entry for the run; on every step its rows in
    /// at most `max_chunks` chunks from `from_chunk`. A run it touched is
    /// marked `outcomes_purged`; counters stay.
    async fn erase_from_run(
        &self,
        id: &RunId,
        recipient_id: &str,
        from_chunk: u32,
        max_chunks: u32,
    ) -> StoreResult<Step>;

    /// Deletes a recipient's whole history; returns how many entries went.
    async fn erase_history(&self, recipient_id: &str) -> StoreResult<u64>;

    /// Keeps the erasure of a recipient from a run that has not finished,
    /// to be applied when it does (idempotent).
    async fn keep_erasure(
        &self,
        id: &RunId,
        recipient_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Kept erasures as `(run, recipient)`, at most `limit`.
    async fn kept_erasures(&self, limit: usize) -> StoreResult<Vec<(RunId, String)>>;

    /// Forgets a kept erasure once applied (or its run is gone).
    async fn drop_erasure(&self, id: &RunId, recipient_id: &str) -> StoreResult<()>;

    // ----- run states at a glance -----

    /// How many runs are in each state (metrics `herald_runs{state}`).
    async fn count_by_state(&self) -> StoreResult<Vec<(RunState, u64)>>;
}
