//! Recording outcomes: a batch's outcomes (`record_outcomes.lua`), or a
//! chunk's last batch with the chunk's completion (`record_last.lua`),
//! with what rides along in the same round trip.
//!
//! Thousands of one-recipient runs due at one instant each end with a
//! last batch. On one Redis server those are gathered (group commit, as
//! the agenda instants are in `gather.rs`): every last batch waiting when
//! a call goes out rides in it, and each caller waits for its own reply.
//! On a Redis Cluster each run's keys have a slot of their own, and a call
//! records one run.

use super::batcher::{Batcher, per_run, query_with_script};
use super::codec::{micros, text};
use super::connection::RedisConn;
use super::keys::{GlobalKeys, RunKeys};
use super::runs::to_json;
use super::{RedisStore, scripts};
use crate::runs::RunId;
use crate::store::{RecipientOutcome, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use redis::Value;
use std::sync::Arc;

/// Most last batches recorded per call, so one call never holds Redis long.
const PER_CALL: usize = 64;

/// A chunk's last batch, as `record_last.lua` takes it.
#[derive(Clone)]
pub(super) struct LastBatch {
    pub id: RunId,
    pub chunk: u32,
    pub owner: String,
    pub outcomes: Vec<RecipientOutcome>,
    pub accepted_by: Vec<String>,
    pub now: DateTime<Utc>,
}

/// Starts the task that records the last batches waiting, as many per
/// call as are waiting (one server only).
pub(super) fn recorder(
    conn: RedisConn,
    prefix: String,
    global: Arc<GlobalKeys>,
) -> Batcher<LastBatch, Value> {
    Batcher::start(
        "record_last.lua",
        PER_CALL,
        move |batches: Arc<[LastBatch]>, _| {
            let (conn, prefix, global) = (conn.clone(), prefix.clone(), global.clone());
            async move { record_lasts(&conn, &prefix, &global, &batches).await }
        },
    )
}

/// Records last batches in one round trip; each batch's reply, in order.
pub(super) async fn record_lasts(
    conn: &RedisConn,
    prefix: &str,
    global: &GlobalKeys,
    batches: &[LastBatch],
) -> StoreResult<Vec<Value>> {
    let mut invocation = scripts::RECORD_LAST.prepare_invoke();
    let mut riders = Riders::default();
    for b in batches {
        let k = RunKeys::new(prefix, &b.id);
        invocation
            .key(&k.run)
            .key(&k.leases)
            .key(&k.outcomes)
            .key(&k.unindexed);
        invocation
            .arg(b.chunk)
            .arg(&b.owner)
            .arg(micros(b.now))
            .arg(text(b.now))
            .arg(b.outcomes.len());
        add_outcomes(&mut invocation, &b.outcomes);
        riders.add(&b.id, &b.outcomes, &b.accepted_by);
    }
    let reply = send(conn, global, &scripts::RECORD_LAST, &invocation, &riders).await?;
    per_run(reply, batches.len(), "record_last.lua")
}

/// Adds outcomes to a recording script's arguments, four per outcome.
fn add_outcomes(invocation: &mut redis::ScriptInvocation<'_>, outcomes: &[RecipientOutcome]) {
    for o in outcomes {
        invocation
            .arg(&o.recipient_id)
            .arg(o.outcome.as_str())
            .arg(to_json(o))
            .arg(micros(o.at));
    }
}

/// What rides along with recorded outcomes, for one run or many.
#[derive(Default)]
struct Riders {
    /// `history_pending` members: (oldest new outcome µs, run id).
    pending: Vec<(i64, String)>,
    /// `messages` fields: (provider message id, "run id\nrecipient id").
    message_ids: Vec<(String, String)>,
    /// Addresses whose soft bounces a sent batch resets.
    accepted_by: Vec<String>,
}

impl Riders {
    /// Adds what rides along with one run's recorded outcomes.
    fn add(&mut self, id: &RunId, outcomes: &[RecipientOutcome], accepted_by: &[String]) {
        if let Some(first) = outcomes.first() {
            self.pending.push((micros(first.at), id.to_string()));
        }
        for o in outcomes {
            if let Some(pmid) = &o.provider_message_id {
                self.message_ids
                    .push((pmid.clone(), format!("{id}\n{}", o.recipient_id)));
            }
        }
        self.accepted_by.extend_from_slice(accepted_by);
    }
}

/// Runs a recording script (its `invocation` ready) with its riders, in
/// one round trip; returns the script's reply.
async fn send(
    conn: &RedisConn,
    global: &GlobalKeys,
    script: &redis::Script,
    invocation: &redis::ScriptInvocation<'_>,
    riders: &Riders,
) -> StoreResult<Value> {
    // One round trip per batch. The recipients' history keys live in
    // other slots, one key each: writing them here cost more of Redis
    // than the rest of the batch (benches/README.md, P1), so the script
    // queues the new outcomes in the run's slot and the indexer
    // (`indexer.rs`) writes the history later; reads merge the queue.
    // The runs are marked pending after the script, and with every batch:
    // an indexer that empties the queue unmarks a run and then looks at
    // its queue again (`indexer::index_run`).
    let mut pipe = redis::pipe();
    pipe.invoke_script(invocation);
    if !riders.pending.is_empty() {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&global.history_pending).arg("NX");
        for (at, id) in &riders.pending {
            zadd.arg(at).arg(id);
        }
        pipe.add_command(zadd).ignore();
    }
    // A message id sent twice (a batch resent after a crash) points to
    // the same recipient either way.
    if !riders.message_ids.is_empty() {
        let mut hset = redis::cmd("HSET");
        hset.arg(&global.messages);
        for (pmid, value) in &riders.message_ids {
            hset.arg(pmid).arg(value);
        }
        pipe.add_command(hset).ignore();
    }
    // Idempotent, so it may ride along (and be resent with the batch).
    if !riders.accepted_by.is_empty() {
        pipe.cmd("HDEL")
            .arg(&global.soft_bounces)
            .arg(&riders.accepted_by)
            .ignore();
    }
    let reply: (Value,) = query_with_script(conn, script, &pipe).await?;
    Ok(reply.0)
}

/// Outcomes recorded for a run the store does not have.
fn no_such_run(id: &RunId) -> StoreError {
    StoreError::Other(format!(
        "cannot record outcomes of run `{id}`: the store has no such run"
    ))
}

impl RedisStore {
    pub(super) async fn record_outcomes_impl(
        &self,
        id: &RunId,
        outcomes: &[RecipientOutcome],
        accepted_by: &[String],
    ) -> StoreResult<()> {
        if outcomes.is_empty() {
            return self.reset_soft_bounces_impl(accepted_by).await;
        }
        let k = self.run_keys(id);
        let mut invocation = scripts::RECORD_OUTCOMES.prepare_invoke();
        invocation.key(&k.run).key(&k.outcomes).key(&k.unindexed);
        add_outcomes(&mut invocation, outcomes);
        let mut riders = Riders::default();
        riders.add(id, outcomes, accepted_by);
        self.indexer.recorded();
        let conn = self.conn();
        let reply = send(
            &conn,
            &self.global,
            &scripts::RECORD_OUTCOMES,
            &invocation,
            &riders,
        )
        .await?;
        match reply {
            Value::Nil => Err(no_such_run(id)),
            _ => Ok(()),
        }
    }

    /// Records a chunk's last batch and completes the chunk in one script
    /// (`record_last.lua`), gathered with other runs' on one server;
    /// returns what `complete_chunk` returns.
    pub(super) async fn record_last_impl(
        &self,
        id: &RunId,
        chunk: u32,
        owner: &str,
        outcomes: &[RecipientOutcome],
        accepted_by: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if outcomes.is_empty() {
            self.reset_soft_bounces_impl(accepted_by).await?;
            return self.complete_chunk_impl(id, chunk, owner, now).await;
        }
        let batch = LastBatch {
            id: id.clone(),
            chunk,
            owner: owner.to_owned(),
            outcomes: outcomes.to_vec(),
            accepted_by: accepted_by.to_vec(),
            now,
        };
        self.indexer.recorded();
        let reply = match &self.batched {
            Some(batched) => batched.record_last.call(batch).await?,
            None => {
                let conn = self.conn();
                let mut replies = record_lasts(&conn, &self.prefix, &self.global, &[batch]).await?;
                replies.pop().unwrap_or(Value::Nil)
            }
        };
        if reply == Value::Nil {
            return Err(no_such_run(id));
        }
        Ok(self.apply_reply(id, reply).await?.claimable_at(now))
    }
}
