//! A due run's first step (`take_due.lua`), for one run or many per call.
//!
//! Thousands of one-recipient runs can fall due at one instant. Each call
//! has a cost of its own to Redis (parsing the keys and arguments, setting
//! up Lua) and to the daemon (a request, a reply, a wake-up), so on one
//! Redis server a call takes up to [`PER_CALL`] runs. On a Redis Cluster
//! every run's keys have a slot of their own, and a call takes one run.

use super::batcher::per_run;
use super::codec::{RunReply, micros, sending_run_from, text};
use super::gather::copy;
use super::sending::claimed;
use super::{RedisStore, scripts, store_err};
use crate::runs::RunId;
use crate::store::{Due, StoreResult};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use redis::Value;

/// Most runs taken per script call: past a few dozen the call's own cost
/// is spread thin and a longer script only holds Redis longer
/// (benches/README.md, P4 session 9: `take_due.lua` 12.9 µs of Redis per
/// run at one per call, 11.1 at 64, 11.0 at 256).
const PER_CALL: usize = 64;

impl RedisStore {
    pub(super) async fn take_due_impl(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Due>> {
        let mut taken = self
            .take_group(std::slice::from_ref(id), owner, lease_until, now)
            .await;
        taken.pop().unwrap_or(Ok(None))
    }

    pub(super) async fn take_due_many_impl(
        &self,
        ids: &[RunId],
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<StoreResult<Option<Due>>> {
        let per_call = if self.conn.is_cluster() { 1 } else { PER_CALL };
        let groups = ids
            .chunks(per_call)
            .map(|group| self.take_group(group, owner, lease_until, now));
        join_all(groups).await.into_iter().flatten().collect()
    }

    /// Takes the runs `ids` in one script call; a failed call is every
    /// run's error.
    async fn take_group(
        &self,
        ids: &[RunId],
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<StoreResult<Option<Due>>> {
        let replies = match self.call_take(ids, owner, lease_until, now).await {
            Ok(replies) => replies,
            Err(error) => return ids.iter().map(|_| Err(copy(&error))).collect(),
        };
        let taken = ids
            .iter()
            .zip(replies)
            .map(|(id, reply)| self.due_of(id, reply));
        join_all(taken).await
    }

    /// One `take_due.lua` call: each run's reply, in order.
    async fn call_take(
        &self,
        ids: &[RunId],
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Value>> {
        let mut invocation = scripts::TAKE_DUE.prepare_invoke();
        for id in ids {
            let k = self.run_keys(id);
            invocation.key(&k.run).key(&k.leases).key(&k.chunks);
        }
        invocation
            .arg(micros(now))
            .arg(owner)
            .arg(micros(lease_until))
            .arg(text(now));
        // No agenda lowering first: the runs' entries are due already (the
        // scheduler found them there), so a crash before the script's new
        // instants are applied leaves them early, never late.
        let value: Value = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        per_run(value, ids.len(), "take_due.lua")
    }

    /// What one run's reply says, once its agenda instant is applied (or
    /// deferred, for a run it started).
    async fn due_of(&self, id: &RunId, value: Value) -> StoreResult<Option<Due>> {
        let reply = RunReply::parse(value)?;
        let k = self.run_keys(id);
        let verdict = reply.text(0)?;
        if verdict == "started" && reply.agenda >= 0 {
            // The run was due (its entry no later than now), and a run just
            // started is next due when its lease ends, or now: the instant
            // never makes the entry earlier, so sending need not wait for it.
            self.gather.defer(id.as_str(), reply.seq, reply.agenda);
        } else {
            self.gather
                .apply(id.as_str(), reply.seq, reply.agenda)
                .await?;
        }
        if verdict == "started" {
            let sending =
                sending_run_from(&k.run, reply.rest.get(5).cloned().unwrap_or(Value::Nil))?;
            // Other instances may help with the chunks not claimed here.
            if sending.chunks_left > 1 {
                self.announce();
            }
            let claimed = claimed(&k.chunks, &reply, 1)?;
            return Ok(Some(Due::Started(Box::new(sending), claimed)));
        }
        // Rarer: a run taken to prepare, or only read, is read whole.
        let Some(run) = self.run_impl(id).await? else {
            return Ok(None);
        };
        Ok(Some(match verdict.as_str() {
            "taken" => Due::Taken(Box::new(run)),
            _ => Due::Found(Box::new(run)),
        }))
    }
}
