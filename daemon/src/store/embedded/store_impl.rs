//! [`Store`] for [`EmbeddedStore`]: each method moves its arguments into
//! one transaction (see `tables::Tx` and its operation modules) and wakes
//! the scheduler when a run may be due sooner.

use super::EmbeddedStore;
use crate::runs::{Outcome, RunId, RunState};
use crate::store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|_| Ok(())).await
    }

    fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.inner.changes.clone()
    }

    async fn cursors(&self, delivery_ids: &[String]) -> StoreResult<Vec<Option<DateTime<Utc>>>> {
        let ids = delivery_ids.to_vec();
        self.read(move |tx| ids.iter().map(|d| tx.cursor(d)).collect())
            .await
    }

    async fn advance_cursors(&self, moves: &[(String, DateTime<Utc>)]) -> StoreResult<()> {
        if moves.is_empty() {
            return Ok(());
        }
        let moves = moves.to_vec();
        self.write(move |tx| {
            moves
                .iter()
                .try_for_each(|(d, to)| tx.advance_cursor(d, *to))
        })
        .await
    }

    async fn create_run(&self, run: &NewRun) -> StoreResult<bool> {
        let run = run.clone();
        let created = self.write(move |tx| tx.create_run(&run)).await?;
        if created {
            self.notify();
        }
        Ok(created)
    }

    async fn run(&self, id: &RunId) -> StoreResult<Option<Run>> {
        let id = id.clone();
        self.read(move |tx| Ok(tx.get_run(id.as_str())?.map(|r| r.run)))
            .await
    }

    async fn definition(&self, id: &RunId) -> StoreResult<Option<String>> {
        let id = id.clone();
        self.read(move |tx| tx.definition(&id)).await
    }

    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Run>> {
        let (filter, cursor) = (filter.clone(), cursor.map(str::to_owned));
        self.read(move |tx| tx.list_runs(&filter, cursor.as_deref(), limit))
            .await
    }

    async fn due_runs(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RunId>> {
        self.read(move |tx| tx.due_runs(now, limit)).await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.read(|tx| tx.next_due()).await
    }

    async fn claim_preparation(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |tx| tx.claim_preparation(&id, &owner, lease_until, now))
            .await
    }

    async fn put_chunk(&self, id: &RunId, chunk: &Chunk) -> StoreResult<()> {
        let (id, chunk) = (id.clone(), chunk.clone());
        self.write(move |tx| tx.put_chunk(&id, &chunk)).await
    }

    async fn finish_preparation(
        &self,
        id: &RunId,
        owner: &str,
        prepared: &Prepared,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let (id, owner, prepared) = (id.clone(), owner.to_owned(), prepared.clone());
        let t = self
            .write(move |tx| tx.finish_preparation(&id, &owner, &prepared, now))
            .await?;
        self.notify_done(&t);
        Ok(t)
    }

    async fn fail_run(
        &self,
        id: &RunId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let (id, reason) = (id.clone(), reason.to_owned());
        self.write(move |tx| tx.fail_run(&id, &reason, now)).await
    }

    async fn confirm(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        let (id, by) = (id.clone(), by.to_owned());
        let t = self.write(move |tx| tx.confirm(&id, &by, now)).await?;
        self.notify_done(&t);
        Ok(t)
    }

    async fn cancel(
        &self,
        id: &RunId,
        by: Option<&str>,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let (id, by) = (id.clone(), by.map(str::to_owned));
        let t = self
            .write(move |tx| tx.cancel(&id, by.as_deref(), reason, now))
            .await?;
        // Only a run that was sending stays due (for its `cancelled` outcomes).
        if let Transition::Done(run) = &t {
            if run.finished_at.is_none() {
                self.notify();
            }
        }
        Ok(t)
    }

    async fn pause(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        let (id, by) = (id.clone(), by.to_owned());
        self.write(move |tx| tx.pause(&id, &by, now)).await
    }

    async fn resume(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        let (id, by) = (id.clone(), by.to_owned());
        let t = self.write(move |tx| tx.resume(&id, &by, now)).await?;
        self.notify_done(&t);
        Ok(t)
    }

    async fn expire(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition> {
        let id = id.clone();
        self.write(move |tx| tx.expire(&id, now)).await
    }

    async fn start_sending(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition> {
        let id = id.clone();
        let t = self.write(move |tx| tx.start_sending(&id, now)).await?;
        self.notify_done(&t);
        Ok(t)
    }

    async fn claim_chunk(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedChunk>> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |tx| tx.claim_chunk(&id, &owner, lease_until, now))
            .await
    }

    async fn renew_lease(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |tx| tx.renew_lease(&id, chunk, &owner, lease_until))
            .await
    }

    async fn record_outcomes(&self, id: &RunId, outcomes: &[RecipientOutcome]) -> StoreResult<()> {
        let (id, outcomes) = (id.clone(), outcomes.to_vec());
        self.write(move |tx| tx.record_outcomes(&id, &outcomes))
            .await
    }

    async fn complete_chunk(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |tx| tx.complete_chunk(&id, chunk, &owner, now))
            .await
    }

    async fn release_chunk(&self, id: &RunId, chunk: u32, owner: &str) -> StoreResult<()> {
        let (id, owner) = (id.clone(), owner.to_owned());
        if self
            .write(move |tx| tx.release_chunk(&id, chunk, &owner))
            .await?
        {
            self.notify();
        }
        Ok(())
    }

    async fn throttle(
        &self,
        delivery_id: &str,
        per_second: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration> {
        let d = delivery_id.to_owned();
        self.write(move |tx| tx.throttle(&d, per_second, n, now))
            .await
    }

    async fn outcome(
        &self,
        id: &RunId,
        recipient_id: &str,
    ) -> StoreResult<Option<RecipientOutcome>> {
        let (id, r) = (id.clone(), recipient_id.to_owned());
        self.read(move |tx| tx.outcome(&id, &r)).await
    }

    async fn find_message(
        &self,
        provider_message_id: &str,
    ) -> StoreResult<Option<(RunId, String)>> {
        let pmid = provider_message_id.to_owned();
        self.read(move |tx| tx.find_message(&pmid)).await
    }

    async fn amend_outcome(
        &self,
        id: &RunId,
        recipient_id: &str,
        to: Outcome,
        detail: &str,
        _now: DateTime<Utc>,
    ) -> StoreResult<Option<RecipientOutcome>> {
        let (id, r, detail) = (id.clone(), recipient_id.to_owned(), detail.to_owned());
        self.write(move |tx| tx.amend_outcome(&id, &r, to, &detail))
            .await
    }

    async fn record_tracking(
        &self,
        id: &RunId,
        events: &[(String, TrackingKind)],
    ) -> StoreResult<()> {
        let (id, events) = (id.clone(), events.to_vec());
        self.write(move |tx| tx.record_tracking(&id, &events)).await
    }

    async fn recount(&self, id: &RunId) -> StoreResult<Counters> {
        let id = id.clone();
        self.write(move |tx| tx.recount(&id)).await
    }

    async fn history(
        &self,
        recipient_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<HistoryEntry>> {
        let (r, cursor) = (recipient_id.to_owned(), cursor.map(str::to_owned));
        self.read(move |tx| tx.history(&r, cursor.as_deref(), limit))
            .await
    }

    async fn suppressed(&self, addresses: &[String]) -> StoreResult<Vec<Option<SuppressionList>>> {
        let addresses = addresses.to_vec();
        self.read(move |tx| tx.suppressed(&addresses)).await
    }

    async fn suppress(
        &self,
        list: SuppressionList,
        address: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (a, reason) = (address.to_owned(), reason.to_owned());
        self.write(move |tx| tx.suppress(list, &a, &reason, now).map(drop))
            .await
    }

    async fn unsuppress(&self, list: SuppressionList, address: &str) -> StoreResult<bool> {
        let a = address.to_owned();
        self.write(move |tx| tx.unsuppress(list, &a)).await
    }

    async fn suppressions(
        &self,
        list: SuppressionList,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Suppression>> {
        let cursor = cursor.map(str::to_owned);
        self.read(move |tx| tx.suppressions(list, cursor.as_deref(), limit))
            .await
    }

    async fn soft_bounce(
        &self,
        address: &str,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let a = address.to_owned();
        self.write(move |tx| tx.soft_bounce(&a, threshold, now))
            .await
    }

    async fn reset_soft_bounces(&self, addresses: &[String]) -> StoreResult<()> {
        let addresses = addresses.to_vec();
        self.write(move |tx| tx.reset_soft_bounces(&addresses))
            .await
    }

    async fn count_by_state(&self) -> StoreResult<Vec<(RunState, u64)>> {
        self.read(|tx| tx.count_by_state()).await
    }

    async fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let (name, candidate) = (name.to_owned(), candidate.to_vec());
        self.write(move |tx| tx.shared_secret(&name, &candidate))
            .await
    }

    async fn runs_to_purge(
        &self,
        ended_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        self.read(move |tx| tx.runs_to_purge(ended_before, limit))
            .await
    }

    async fn purge_run(&self, id: &RunId, limit: usize) -> StoreResult<Step> {
        let id = id.clone();
        self.write(move |tx| tx.purge_run(&id, limit)).await
    }

    async fn purge_history(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        self.write(move |tx| tx.purge_history(before, limit)).await
    }

    async fn erase_from_run(
        &self,
        id: &RunId,
        recipient_id: &str,
        from_chunk: u32,
        max_chunks: u32,
    ) -> StoreResult<Step> {
        let (id, recipient) = (id.clone(), recipient_id.to_owned());
        self.write(move |tx| tx.erase_from_run(&id, &recipient, from_chunk, max_chunks))
            .await
    }

    async fn erase_history(&self, recipient_id: &str) -> StoreResult<u64> {
        let recipient = recipient_id.to_owned();
        self.write(move |tx| tx.erase_history(&recipient)).await
    }

    async fn keep_erasure(
        &self,
        id: &RunId,
        recipient_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (id, recipient) = (id.clone(), recipient_id.to_owned());
        self.write(move |tx| tx.keep_erasure(&id, &recipient, now))
            .await
    }

    async fn kept_erasures(&self, limit: usize) -> StoreResult<Vec<(RunId, String)>> {
        self.read(move |tx| tx.kept_erasures(limit)).await
    }

    async fn drop_erasure(&self, id: &RunId, recipient_id: &str) -> StoreResult<()> {
        let (id, recipient) = (id.clone(), recipient_id.to_owned());
        self.write(move |tx| tx.drop_erasure(&id, &recipient)).await
    }
}
