//! Creating runs: each run's index entries and agenda entry, then its
//! hash and definition snapshot (`create_run.lua`). On one server the
//! runs created at once share those calls (`batcher.rs`): a burst of ten
//! thousand deliveries due at one instant creates their runs in calls of
//! up to 64, not ten thousand pairs of round trips.

use super::RedisStore;
use super::batcher::{Attempt, Batcher, per_run};
use super::codec::{micros, new_run_fields, run_from_fields};
use super::connection::RedisConn;
use super::keys::{GlobalKeys, RunKeys};
use super::{scripts, store_err};
use crate::runs::RunId;
use crate::store::{Creation, NewRun, StoreResult};
use chrono::{DateTime, Utc};
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Most runs created per call, so one call never holds Redis long.
const PER_CALL: usize = 64;

/// A run to create, as `create_run.lua` takes it.
#[derive(Clone)]
pub(super) struct Creating {
    id: RunId,
    delivery_id: String,
    scheduled_us: i64,
    now_us: i64,
    definition: String,
    fields: Vec<(&'static str, String)>,
}

/// Starts the task that creates the runs waiting, as many per call as are
/// waiting (one server only).
pub(super) fn creator(
    conn: RedisConn,
    prefix: String,
    global: Arc<GlobalKeys>,
) -> Batcher<Creating, Value> {
    Batcher::start(
        "create_run.lua",
        PER_CALL,
        move |runs: Arc<[Creating]>, attempt| {
            let (conn, prefix, global) = (conn.clone(), prefix.clone(), global.clone());
            async move { create_runs(&conn, &prefix, &global, &runs, attempt).await }
        },
    )
}

/// Creates runs: their index and agenda entries first, then the script;
/// each run's reply, in order. A run sent `Again` that exists from this
/// very creation gets the answer `created` again.
async fn create_runs(
    conn: &RedisConn,
    prefix: &str,
    global: &GlobalKeys,
    runs: &[Creating],
    attempt: Attempt,
) -> StoreResult<Vec<Value>> {
    // Index and agenda first: a crash after them leaves entries that
    // readers skip (no run hash) or that the next operation corrects.
    // One pipeline: these keys share the `{P}` slot.
    let mut pipe = redis::pipe();
    let mut every = redis::cmd("ZADD");
    let mut agenda = redis::cmd("ZADD");
    every.arg(&global.runs).arg("NX");
    agenda.arg(&global.agenda).arg("LT");
    for run in runs {
        every.arg(run.scheduled_us).arg(run.id.as_str());
        agenda.arg(run.now_us).arg(run.id.as_str());
        pipe.cmd("ZADD")
            .arg(global.delivery_runs(&run.delivery_id))
            .arg("NX")
            .arg(run.scheduled_us)
            .arg(run.id.as_str())
            .ignore();
    }
    pipe.add_command(every).ignore();
    pipe.add_command(agenda).ignore();
    pipe.query_async::<()>(&mut conn.clone())
        .await
        .map_err(store_err)?;

    let mut invocation = scripts::CREATE_RUN.prepare_invoke();
    invocation.arg(if attempt == Attempt::Again {
        "again"
    } else {
        ""
    });
    for run in runs {
        let k = RunKeys::new(prefix, &run.id);
        invocation.key(&k.run).key(&k.leases).key(&k.definition);
        invocation
            .arg(run.now_us)
            .arg(&run.definition)
            .arg(run.fields.len());
        for (field, value) in &run.fields {
            invocation.arg(*field).arg(value);
        }
    }
    let value: Value = invocation
        .invoke_async(&mut conn.clone())
        .await
        .map_err(store_err)?;
    per_run(value, runs.len(), "create_run.lua")
}

impl RedisStore {
    pub(super) async fn create_run_impl(&self, run: &NewRun) -> StoreResult<bool> {
        let creation = self.create(run, None).await?;
        Ok(creation != Creation::Existed)
    }

    pub(super) async fn create_and_take_impl(
        &self,
        run: &NewRun,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Creation> {
        self.create(run, Some((owner, lease_until))).await
    }

    /// Creates a run, with its preparation already taken by `taker` when
    /// given: the lease is written with the run's fields, so taking costs
    /// nothing more and the run is read back from what was written.
    async fn create(
        &self,
        run: &NewRun,
        taker: Option<(&str, DateTime<Utc>)>,
    ) -> StoreResult<Creation> {
        let mut fields = new_run_fields(run);
        if let Some((owner, lease_until)) = taker {
            fields.push(("prep_owner", owner.to_owned()));
            fields.push(("prep_until_us", micros(lease_until).to_string()));
        }
        let creating = Creating {
            id: run.id.clone(),
            delivery_id: run.delivery_id.clone(),
            scheduled_us: micros(run.scheduled_for),
            now_us: micros(run.created_at),
            definition: run.definition.clone(),
            fields: if taker.is_some() {
                fields.clone()
            } else {
                std::mem::take(&mut fields)
            },
        };
        let value = match &self.batched {
            Some(batched) => batched.create.call(creating).await?,
            None => {
                let mut replies = create_runs(
                    &self.conn,
                    &self.prefix,
                    &self.global,
                    &[creating],
                    Attempt::First,
                )
                .await?;
                replies.pop().unwrap_or(Value::Nil)
            }
        };
        // Applied even though a new run's instant is the entry just put:
        // a script on the run id that ran in between, finding no run,
        // removed that entry.
        let reply = self.apply_reply(&run.id, value).await?;
        if reply.text(0)? != "created" {
            return Ok(Creation::Existed);
        }
        if taker.is_none() {
            // Due now for any instance; a taken run is due to nobody else
            // until its lease ends.
            self.announce();
            return Ok(Creation::Created);
        }
        let written: HashMap<String, String> = fields
            .into_iter()
            .map(|(field, value)| (field.to_owned(), value))
            .collect();
        let taken = run_from_fields(&self.run_keys(&run.id).run, &written)?;
        Ok(Creation::Taken(Box::new(taken)))
    }
}
