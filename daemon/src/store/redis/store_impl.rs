//! The [`Store`] trait, delegated to the backend's modules.

use super::{RedisStore, scripts, store_err};
use crate::runs::{Outcome, RunId, RunState};
use crate::store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        ::redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    async fn cursors(&self, delivery_ids: &[String]) -> StoreResult<Vec<Option<DateTime<Utc>>>> {
        self.cursors_impl(delivery_ids).await
    }

    async fn advance_cursors(&self, moves: &[(String, DateTime<Utc>)]) -> StoreResult<()> {
        self.advance_cursors_impl(moves).await
    }

    async fn create_run(&self, run: &NewRun) -> StoreResult<bool> {
        self.create_run_impl(run).await
    }

    async fn create_and_take(
        &self,
        run: &NewRun,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Creation> {
        self.create_and_take_impl(run, owner, lease_until).await
    }

    async fn run(&self, id: &RunId) -> StoreResult<Option<Run>> {
        self.run_impl(id).await
    }

    async fn definition(&self, id: &RunId) -> StoreResult<Option<String>> {
        self.definition_impl(id).await
    }

    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Run>> {
        self.list_runs_impl(filter, cursor, limit).await
    }

    async fn due_runs(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RunId>> {
        self.due_runs_impl(now, limit).await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.next_due_impl().await
    }

    async fn claim_preparation(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.claim_preparation_impl(id, owner, lease_until, now)
            .await
    }

    async fn release_preparation(
        &self,
        id: &RunId,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if self.claim_preparation_impl(id, owner, now, now).await? {
            // Due now: the other instances need not wait for their safety net.
            self.announce();
        }
        Ok(())
    }

    async fn take_due(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Due>> {
        self.take_due_impl(id, owner, lease_until, now).await
    }

    async fn take_due_many(
        &self,
        ids: &[RunId],
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<StoreResult<Option<Due>>> {
        self.take_due_many_impl(ids, owner, lease_until, now).await
    }

    async fn put_chunk(&self, id: &RunId, chunk: &Chunk) -> StoreResult<()> {
        self.put_chunk_impl(id, chunk).await
    }

    async fn finish_preparation(
        &self,
        id: &RunId,
        owner: &str,
        prepared: &Prepared,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        self.finish_preparation_impl(id, owner, prepared, now).await
    }

    async fn finish_and_claim(
        &self,
        run: &Run,
        owner: &str,
        prepared: &Prepared,
        last: Option<&Chunk>,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Transition, Option<ClaimedChunk>)> {
        self.finish_and_claim_impl(run, owner, prepared, last, lease_until, now)
            .await
    }

    async fn fail_run(
        &self,
        id: &RunId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        self.fail_run_impl(id, reason, now).await
    }

    async fn confirm(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        self.act(&scripts::CONFIRM, id, by, now, true).await
    }

    async fn cancel(
        &self,
        id: &RunId,
        by: Option<&str>,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        self.cancel_impl(id, by, reason, now).await
    }

    async fn pause(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        self.act(&scripts::PAUSE, id, by, now, false).await
    }

    async fn resume(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        self.act(&scripts::RESUME, id, by, now, true).await
    }

    async fn expire(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition> {
        self.timed(&scripts::EXPIRE, id, now, false).await
    }

    async fn start_sending(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition> {
        self.timed(&scripts::START_SENDING, id, now, true).await
    }

    async fn claim_chunk(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedChunk>> {
        self.claim_chunk_impl(id, owner, lease_until, now).await
    }

    async fn renew_lease(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.renew_lease_impl(id, chunk, owner, lease_until).await
    }

    async fn record_outcomes(&self, id: &RunId, outcomes: &[RecipientOutcome]) -> StoreResult<()> {
        self.record_outcomes_impl(id, outcomes, &[]).await
    }

    async fn record_sent(
        &self,
        id: &RunId,
        outcomes: &[RecipientOutcome],
        accepted_by: &[String],
    ) -> StoreResult<()> {
        self.record_outcomes_impl(id, outcomes, accepted_by).await
    }

    async fn record_last(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        outcomes: &[RecipientOutcome],
        accepted_by: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.record_last_impl(id, chunk, owner, outcomes, accepted_by, now)
            .await
    }

    async fn complete_chunk(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.complete_chunk_impl(id, chunk, owner, now).await
    }

    async fn release_chunk(&self, id: &RunId, chunk: u32, owner: &str) -> StoreResult<()> {
        self.release_chunk_impl(id, chunk, owner).await
    }

    async fn throttle(
        &self,
        delivery_id: &str,
        per_second: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration> {
        self.throttle_impl(delivery_id, per_second, n, now).await
    }

    async fn outcome(
        &self,
        id: &RunId,
        recipient_id: &str,
    ) -> StoreResult<Option<RecipientOutcome>> {
        self.outcome_impl(id, recipient_id).await
    }

    async fn find_message(
        &self,
        provider_message_id: &str,
    ) -> StoreResult<Option<(RunId, String)>> {
        self.find_message_impl(provider_message_id).await
    }

    async fn amend_outcome(
        &self,
        id: &RunId,
        recipient_id: &str,
        to: Outcome,
        detail: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RecipientOutcome>> {
        self.amend_outcome_impl(id, recipient_id, to, detail, now)
            .await
    }

    async fn record_tracking(
        &self,
        id: &RunId,
        events: &[(String, TrackingKind)],
    ) -> StoreResult<()> {
        self.record_tracking_impl(id, events).await
    }

    async fn recount(&self, id: &RunId) -> StoreResult<Counters> {
        self.recount_impl(id).await
    }

    async fn history(
        &self,
        recipient_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<HistoryEntry>> {
        self.history_impl(recipient_id, cursor, limit).await
    }

    async fn suppressed(&self, addresses: &[String]) -> StoreResult<Vec<Option<SuppressionList>>> {
        self.suppressed_impl(addresses).await
    }

    async fn suppress(
        &self,
        list: SuppressionList,
        address: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.suppress_impl(list, address, reason, now).await
    }

    async fn unsuppress(&self, list: SuppressionList, address: &str) -> StoreResult<bool> {
        self.unsuppress_impl(list, address).await
    }

    async fn suppressions(
        &self,
        list: SuppressionList,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Suppression>> {
        self.suppressions_impl(list, cursor, limit).await
    }

    async fn soft_bounce(
        &self,
        address: &str,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.soft_bounce_impl(address, threshold, now).await
    }

    async fn reset_soft_bounces(&self, addresses: &[String]) -> StoreResult<()> {
        self.reset_soft_bounces_impl(addresses).await
    }

    async fn count_by_state(&self) -> StoreResult<Vec<(RunState, u64)>> {
        self.count_by_state_impl().await
    }

    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        self.shared_secret_impl(name, candidate).await
    }

    async fn runs_to_purge(
        &self,
        ended_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        self.runs_to_purge_impl(ended_before, limit).await
    }

    async fn purge_run(&self, id: &RunId, limit: usize) -> StoreResult<Step> {
        self.purge_run_impl(id, limit).await
    }

    async fn purge_history(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        self.purge_history_impl(before, limit).await
    }

    async fn erase_from_run(
        &self,
        id: &RunId,
        recipient_id: &str,
        from_chunk: u32,
        max_chunks: u32,
    ) -> StoreResult<Step> {
        self.erase_from_run_impl(id, recipient_id, from_chunk, max_chunks)
            .await
    }

    async fn erase_history(&self, recipient_id: &str) -> StoreResult<u64> {
        self.erase_history_impl(recipient_id).await
    }

    async fn keep_erasure(
        &self,
        id: &RunId,
        recipient_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.keep_erasure_impl(id, recipient_id, now).await
    }

    async fn kept_erasures(&self, limit: usize) -> StoreResult<Vec<(RunId, String)>> {
        self.kept_erasures_impl(limit).await
    }

    async fn drop_erasure(&self, id: &RunId, recipient_id: &str) -> StoreResult<()> {
        self.drop_erasure_impl(id, recipient_id).await
    }
}
