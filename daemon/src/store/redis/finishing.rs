//! The end of a preparation: the run's last chunk, its counts and preview,
//! its next state and, when it goes straight on to sending, the claim of
//! its first chunk, in one script (`finish_and_claim.lua`). On one server
//! the preparations that end at once share a call (`batcher.rs`), with
//! their agenda entries lowered in the same round trip.

use super::RedisStore;
use super::batcher::{Batcher, per_run, query_with_script};
use super::codec::micros;
use super::connection::RedisConn;
use super::keys::{GlobalKeys, RunKeys};
use super::runs::{preparation_args, to_json};
use super::sending::{chunk_ids, claimed};
use super::{scripts, store_err};
use crate::runs::{RunId, RunState};
use crate::store::{Chunk, ClaimedChunk, Counters, Prepared, Run, StoreResult, Transition};
use chrono::{DateTime, Utc};
use redis::Value;
use std::sync::Arc;

/// Most preparations ended per call, so one call never holds Redis long.
const PER_CALL: usize = 64;

/// A preparation to end, as `finish_and_claim.lua` takes it.
#[derive(Clone)]
pub(super) struct Finishing {
    id: RunId,
    now_us: i64,
    /// The script's eleven arguments for this run.
    args: Vec<String>,
}

/// Starts the task that ends the preparations waiting, as many per call
/// as are waiting (one server only).
pub(super) fn finisher(
    conn: RedisConn,
    prefix: String,
    global: Arc<GlobalKeys>,
) -> Batcher<Finishing, Value> {
    Batcher::start(
        "finish_and_claim.lua",
        PER_CALL,
        move |runs: Arc<[Finishing]>, _| {
            let (conn, prefix, global) = (conn.clone(), prefix.clone(), global.clone());
            async move { finish_runs(&conn, &prefix, &global, &runs).await }
        },
    )
}

/// Ends preparations in one round trip on one server: ending one may make
/// its run due sooner, so its agenda entry is lowered to `now` first
/// (`mod.rs`), then the script runs; each run's reply, in order.
async fn finish_runs(
    conn: &RedisConn,
    prefix: &str,
    global: &GlobalKeys,
    runs: &[Finishing],
) -> StoreResult<Vec<Value>> {
    let mut lower = redis::cmd("ZADD");
    lower.arg(&global.agenda).arg("LT");
    for run in runs {
        lower.arg(run.now_us).arg(run.id.as_str());
    }
    let mut pipe = redis::pipe();
    pipe.add_command(lower).ignore();
    pipe.invoke_script(&invocation(prefix, runs));
    let (value,): (Value,) = query_with_script(conn, &scripts::FINISH_AND_CLAIM, &pipe).await?;
    per_run(value, runs.len(), "finish_and_claim.lua")
}

/// The script call for `runs`.
fn invocation(prefix: &str, runs: &[Finishing]) -> redis::ScriptInvocation<'static> {
    let mut invocation = scripts::FINISH_AND_CLAIM.prepare_invoke();
    for run in runs {
        for key in RunKeys::new(prefix, &run.id).claim_keys() {
            invocation.key(key);
        }
        for arg in &run.args {
            invocation.arg(arg);
        }
    }
    invocation
}

impl RedisStore {
    /// Writes the last chunk, ends preparation and claims a chunk of a run
    /// that went on to sending, in one script (`finish_and_claim.lua`).
    pub(super) async fn finish_and_claim_impl(
        &self,
        run: &Run,
        owner: &str,
        prepared: &Prepared,
        last: Option<&Chunk>,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Transition, Option<ClaimedChunk>)> {
        let (number, body, ids) = match last {
            Some(chunk) => (chunk.number.to_string(), to_json(chunk), chunk_ids(chunk)),
            None => Default::default(),
        };
        let mut args = preparation_args(owner, prepared, now);
        args.extend([micros(lease_until).to_string(), number, body, ids]);
        let id = &run.id;
        let finishing = Finishing {
            id: id.clone(),
            now_us: micros(now),
            args,
        };
        let value = match &self.batched {
            Some(batched) => batched.finish.call(finishing).await?,
            None => {
                // On a cluster the agenda and the run are in two slots: two calls.
                self.lower_agenda(id, now).await?;
                let value: Value = invocation(&self.prefix, &[finishing])
                    .invoke_async(&mut self.conn())
                    .await
                    .map_err(store_err)?;
                per_run(value, 1, "finish_and_claim.lua")?
                    .pop()
                    .unwrap_or(Value::Nil)
            }
        };
        let reply = self.apply_reply(id, value).await?;
        let k = self.run_keys(id);
        if reply.text(0)? == "started" {
            let claimed = match last {
                // The chunk this call wrote, claimed: not sent back.
                Some(chunk) if reply.text(3)?.is_empty() => Some(ClaimedChunk {
                    number: chunk.number,
                    recipients: chunk.recipients.clone(),
                    cancelled: false,
                }),
                _ => claimed(&k.chunks, &reply, 2)?,
            };
            if prepared.chunks > 1 {
                // Other instances may help with the chunks not claimed here.
                self.announce();
            }
            let after = started(run, prepared, now);
            return Ok((Transition::Done(Box::new(after)), claimed));
        }
        let transition = Self::transition_of(&k.run, &reply)?;
        if matches!(transition, Transition::Done(_)) {
            self.announce();
        }
        Ok((transition, claimed(&k.chunks, &reply, 2)?))
    }
}

/// The run as the common case of `finish_and_claim.lua` left it: as its
/// preparer took it (still `preparing`, so nothing else changed it), with
/// the fields the script wrote.
fn started(run: &Run, prepared: &Prepared, now: DateTime<Utc>) -> Run {
    Run {
        state: RunState::Sending,
        started_at: Some(now),
        preview: prepared.preview.clone(),
        chunks: prepared.chunks,
        chunks_done: 0,
        counters: Counters {
            targeted: prepared.targeted,
            excluded_by_reason: prepared.excluded_by_reason.clone(),
            ..run.counters.clone()
        },
        ..run.clone()
    }
}
