//! Chunks, leases and the shared throttle.

use super::codec::{RunReply, micros, text};
use super::runs::{lease_args, to_json};
use super::{RedisStore, scripts, store_err};
use crate::runs::RunId;
use crate::store::{Chunk, ClaimedChunk, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Separates recipient ids in a chunk's id list (ASCII unit separator).
const ID_SEPARATOR: char = '\x1f';

impl RedisStore {
    pub(super) async fn put_chunk_impl(&self, id: &RunId, chunk: &Chunk) -> StoreResult<()> {
        let k = self.run_keys(id);
        scripts::PUT_CHUNK
            .key(&k.run)
            .key(&k.chunks)
            .key(&k.chunk_ids)
            .arg(chunk.number)
            .arg(to_json(chunk))
            .arg(chunk_ids(chunk))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn claim_chunk_impl(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedChunk>> {
        let k = self.run_keys(id);
        let args = lease_args(owner, lease_until, now);
        let keys = k.claim_keys();
        let reply = self
            .eval_run(&scripts::CLAIM_CHUNK, id, &keys, &args)
            .await?;
        claimed(&k.chunks, &reply, 0)
    }

    pub(super) async fn renew_lease_impl(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let k = self.run_keys(id);
        let renewed: i64 = scripts::RENEW_LEASE
            .key(&k.leases)
            .arg(chunk)
            .arg(owner)
            .arg(micros(lease_until))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(renewed == 1)
    }

    pub(super) async fn complete_chunk_impl(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let k = self.run_keys(id);
        let args = [
            chunk.to_string(),
            owner.to_owned(),
            micros(now).to_string(),
            text(now),
        ];
        let reply = self
            .eval_run(&scripts::COMPLETE_CHUNK, id, &[&k.run, &k.leases], &args)
            .await?;
        Ok(reply.claimable_at(now))
    }

    pub(super) async fn release_chunk_impl(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
    ) -> StoreResult<()> {
        let k = self.run_keys(id);
        // The release makes the run due at once: bring the agenda forward
        // first (the epoch is "at once" whatever the engine's clock says).
        self.lower_agenda(id, DateTime::UNIX_EPOCH).await?;
        let reply = self
            .eval_run(
                &scripts::RELEASE_CHUNK,
                id,
                &[&k.run, &k.leases],
                &[chunk.to_string(), owner.to_owned()],
            )
            .await?;
        if reply.int(0)? == 1 {
            self.announce();
        }
        Ok(())
    }

    pub(super) async fn throttle_impl(
        &self,
        delivery_id: &str,
        per_second: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(StoreError::Other(format!(
                "throttle of delivery `{delivery_id}` is {per_second} messages per second; it must be a positive number"
            )));
        }
        let wait_us: i64 = scripts::THROTTLE
            .key(self.global.throttle(delivery_id))
            .arg(micros(now))
            .arg(per_second)
            .arg(n)
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(Duration::from_micros(wait_us.max(0) as u64))
    }
}

/// A chunk's recipient ids, as `:chunk_ids` keeps them.
pub(super) fn chunk_ids(chunk: &Chunk) -> String {
    let ids: Vec<&str> = chunk.recipients.iter().map(|r| r.id.as_str()).collect();
    ids.join(&ID_SEPARATOR.to_string())
}

/// The chunk a claim returned from `at` on in a run script's reply:
/// number or -1, chunk JSON, per-recipient outcome flags, cancelled.
pub(super) fn claimed(
    chunks_key: &str,
    reply: &RunReply,
    at: usize,
) -> StoreResult<Option<ClaimedChunk>> {
    let number = reply.int(at)?;
    if number < 0 {
        return Ok(None);
    }
    let body = reply.text(at + 1)?;
    let corrupt = |problem: String| StoreError::Corrupt {
        key: format!("{chunks_key} {number}"),
        problem,
    };
    if body.is_empty() {
        return Err(corrupt(
            "the chunk was never written; prepare the run again".to_owned(),
        ));
    }
    let chunk: Chunk = serde_json::from_str(&body).map_err(|e| corrupt(e.to_string()))?;
    let has_outcome = reply.text(at + 2)?.into_bytes();
    let recipients = chunk
        .recipients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| has_outcome.get(*i) != Some(&b'1'))
        .map(|(_, r)| r)
        .collect();
    Ok(Some(ClaimedChunk {
        number: chunk.number,
        recipients,
        cancelled: reply.int(at + 3)? == 1,
    }))
}
