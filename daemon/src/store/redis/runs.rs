//! Runs: creation, reads, listings, the agenda and the state transitions.

use super::codec::{RunReply, fields, from_micros, micros, new_run_fields, run_from_fields, text};
use super::keys::RunKeys;
use super::{RedisStore, scripts, store_err};
use crate::runs::{RunId, RunState};
use crate::store::{
    CancelReason, NewRun, Page, Prepared, Run, RunFilter, StoreError, StoreResult, Transition,
};
use chrono::{DateTime, Utc};
use redis::{Script, Value};
use std::collections::HashMap;

/// How many index entries one listing round trip reads.
const SCAN_BATCH: usize = 200;

impl RedisStore {
    /// The keys of a run.
    pub(super) fn run_keys(&self, id: &RunId) -> RunKeys {
        RunKeys::new(&self.prefix, id)
    }

    /// Brings a run's agenda entry forward to `now` (or adds it) before an
    /// operation that may make it due sooner: see the module docs.
    pub(super) async fn lower_agenda(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<()> {
        redis::cmd("ZADD")
            .arg(&self.global.agenda)
            .arg("LT")
            .arg(micros(now))
            .arg(id.as_str())
            .query_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Runs a run script, then applies the agenda instant it returned.
    pub(super) async fn eval_run(
        &self,
        script: &Script,
        id: &RunId,
        keys: &[&str],
        args: &[String],
    ) -> StoreResult<RunReply> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let value: Value = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let reply = RunReply::parse(value)?;
        scripts::AGENDA_APPLY
            .key(&self.global.agenda)
            .key(&self.global.agenda_seq)
            .arg(id.as_str())
            .arg(reply.seq)
            .arg(reply.agenda)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(reply)
    }

    /// Runs a transition script (`{seq, agenda, 'done' | state | 'missing', fields}`).
    async fn transition(
        &self,
        script: &Script,
        id: &RunId,
        now: DateTime<Utc>,
        sooner: bool,
        args: &[String],
    ) -> StoreResult<Transition> {
        if sooner {
            self.lower_agenda(id, now).await?;
        }
        let k = self.run_keys(id);
        let reply = self
            .eval_run(script, id, &[&k.run, &k.leases], args)
            .await?;
        match reply.text(0)?.as_str() {
            "done" => {
                let run = run_from_fields(&k.run, &fields(reply.rest[1].clone())?)?;
                if sooner {
                    self.announce().await?;
                }
                Ok(Transition::Done(Box::new(run)))
            }
            "missing" => Ok(Transition::NotFound),
            state => state
                .parse::<RunState>()
                .map(Transition::Conflict)
                .map_err(|e| StoreError::Corrupt {
                    key: k.run.clone(),
                    problem: e.to_string(),
                }),
        }
    }

    pub(super) async fn create_run_impl(&self, run: &NewRun) -> StoreResult<bool> {
        let k = self.run_keys(&run.id);
        let now = run.created_at;
        // Index and agenda first: a crash after them leaves entries that
        // readers skip (no run hash) or that the next operation corrects.
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&self.global.runs)
            .arg("NX")
            .arg(micros(run.scheduled_for))
            .arg(run.id.as_str())
            .ignore();
        pipe.cmd("ZADD")
            .arg(self.global.delivery_runs(&run.delivery_id))
            .arg("NX")
            .arg(micros(run.scheduled_for))
            .arg(run.id.as_str())
            .ignore();
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(store_err)?;
        self.lower_agenda(&run.id, now).await?;
        let mut args = vec![micros(now).to_string(), run.definition.clone()];
        for (field, value) in new_run_fields(run) {
            args.push(field.to_owned());
            args.push(value);
        }
        let reply = self
            .eval_run(
                &scripts::CREATE_RUN,
                &run.id,
                &[&k.run, &k.leases, &k.definition],
                &args,
            )
            .await?;
        let created = reply.text(0)? == "created";
        if created {
            self.announce().await?;
        }
        Ok(created)
    }

    pub(super) async fn run_impl(&self, id: &RunId) -> StoreResult<Option<Run>> {
        let k = self.run_keys(id);
        let f: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&k.run)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        if f.is_empty() {
            return Ok(None);
        }
        run_from_fields(&k.run, &f).map(Some)
    }

    pub(super) async fn definition_impl(&self, id: &RunId) -> StoreResult<Option<String>> {
        redis::cmd("GET")
            .arg(self.run_keys(id).definition)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)
    }

    pub(super) async fn list_runs_impl(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Run>> {
        let index = match &filter.delivery_id {
            Some(delivery) => self.global.delivery_runs(delivery),
            None => self.global.runs.clone(),
        };
        let after = cursor.map(parse_cursor).transpose()?;
        let max = after
            .as_ref()
            .map_or("+inf".to_owned(), |(us, _)| us.to_string());
        let mut items: Vec<(i64, Run)> = Vec::new();
        let mut offset = 0;
        'scan: loop {
            let batch = index_page(self, &index, &max, offset).await?;
            offset += batch.len();
            let fresh: Vec<(String, i64)> = batch
                .iter()
                .filter(|(id, us)| !seen(&after, id, *us))
                .cloned()
                .collect();
            if fresh.is_empty() {
                // An empty pipeline is an "empty command" error in Redis.
                if batch.len() < SCAN_BATCH {
                    break;
                }
                continue;
            }
            let mut pipe = redis::pipe();
            for (id, _) in &fresh {
                let id: RunId =
                    id.parse()
                        .map_err(|e: crate::runs::model::BadRunId| StoreError::Corrupt {
                            key: index.clone(),
                            problem: e.to_string(),
                        })?;
                pipe.cmd("HGETALL").arg(self.run_keys(&id).run);
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            for ((id, us), f) in fresh.iter().zip(hashes) {
                if f.is_empty() {
                    continue;
                }
                let run = run_from_fields(id, &f)?;
                if filter.state.is_none_or(|s| s == run.state) {
                    items.push((*us, run));
                    if items.len() > limit {
                        break 'scan;
                    }
                }
            }
            if batch.len() < SCAN_BATCH {
                break;
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(us, run)| format!("{us}:{}", run.id))
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|(_, run)| run).collect(),
            next_cursor,
        })
    }

    pub(super) async fn due_runs_impl(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&self.global.agenda)
            .arg("-inf")
            .arg(micros(now))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|e: crate::runs::model::BadRunId| StoreError::Corrupt {
                        key: self.global.agenda.clone(),
                        problem: e.to_string(),
                    })
            })
            .collect()
    }

    pub(super) async fn next_due_impl(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let first: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&self.global.agenda)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(first.first().map(|(_, us)| from_micros(*us as i64)))
    }

    pub(super) async fn count_by_state_impl(&self) -> StoreResult<Vec<(RunState, u64)>> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&self.global.runs)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut counts: HashMap<RunState, u64> = HashMap::new();
        for batch in ids.chunks(1000) {
            let mut pipe = redis::pipe();
            for id in batch {
                match id.parse::<RunId>() {
                    Ok(id) => pipe.cmd("HGET").arg(self.run_keys(&id).run).arg("state"),
                    Err(_) => pipe.cmd("ECHO").arg(""),
                };
            }
            let states: Vec<Option<String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            for state in states.into_iter().flatten() {
                if let Ok(state) = state.parse() {
                    *counts.entry(state).or_default() += 1;
                }
            }
        }
        Ok(RunState::ALL
            .iter()
            .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
            .collect())
    }

    pub(super) async fn cursor_impl(
        &self,
        delivery_id: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let value: Option<String> = redis::cmd("HGET")
            .arg(&self.global.cursors)
            .arg(delivery_id)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let Some(value) = value else { return Ok(None) };
        let corrupt = || StoreError::Corrupt {
            key: format!("{} {delivery_id}", self.global.cursors),
            problem: format!("`{value}` is not `µs;instant`"),
        };
        let (_, when) = value.split_once(';').ok_or_else(corrupt)?;
        DateTime::parse_from_rfc3339(when)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| corrupt())
    }

    pub(super) async fn advance_cursor_impl(
        &self,
        delivery_id: &str,
        to: DateTime<Utc>,
    ) -> StoreResult<()> {
        scripts::ADVANCE_CURSOR
            .key(&self.global.cursors)
            .arg(delivery_id)
            .arg(micros(to))
            .arg(text(to))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn claim_preparation_impl(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let k = self.run_keys(id);
        let args = [
            micros(now).to_string(),
            owner.to_owned(),
            micros(lease_until).to_string(),
        ];
        let reply = self
            .eval_run(&scripts::CLAIM_PREPARATION, id, &[&k.run, &k.leases], &args)
            .await?;
        Ok(reply.int(0)? == 1)
    }

    pub(super) async fn finish_preparation_impl(
        &self,
        id: &RunId,
        owner: &str,
        prepared: &Prepared,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let args = [
            micros(now).to_string(),
            owner.to_owned(),
            prepared.targeted.to_string(),
            to_json(&prepared.excluded_by_reason),
            prepared.chunks.to_string(),
            prepared.preview.as_ref().map_or(String::new(), to_json),
            text(now),
        ];
        self.transition(&scripts::FINISH_PREPARATION, id, now, true, &args)
            .await
    }

    pub(super) async fn fail_run_impl(
        &self,
        id: &RunId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let args = [micros(now).to_string(), reason.to_owned(), text(now)];
        self.transition(&scripts::FAIL_RUN, id, now, false, &args)
            .await
    }

    /// confirm, pause and resume: `(now, who, now text)`.
    pub(super) async fn act(
        &self,
        script: &Script,
        id: &RunId,
        by: &str,
        now: DateTime<Utc>,
        sooner: bool,
    ) -> StoreResult<Transition> {
        let args = [micros(now).to_string(), by.to_owned(), text(now)];
        self.transition(script, id, now, sooner, &args).await
    }

    pub(super) async fn cancel_impl(
        &self,
        id: &RunId,
        by: Option<&str>,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let reason = match reason {
            CancelReason::Cancelled => "cancelled",
            CancelReason::DeliveryRemoved => "delivery_removed",
        };
        let args = [
            micros(now).to_string(),
            by.unwrap_or_default().to_owned(),
            reason.to_owned(),
            text(now),
        ];
        self.transition(&scripts::CANCEL, id, now, true, &args)
            .await
    }

    /// expire and start_sending: `(now, now text)`.
    pub(super) async fn timed(
        &self,
        script: &Script,
        id: &RunId,
        now: DateTime<Utc>,
        sooner: bool,
    ) -> StoreResult<Transition> {
        let args = [micros(now).to_string(), text(now)];
        self.transition(script, id, now, sooner, &args).await
    }
}

/// A value as JSON: plain maps and strings, whose serialisation cannot fail.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// One page of an index ZSET, newest first, from score `max` down.
async fn index_page(
    store: &RedisStore,
    index: &str,
    max: &str,
    offset: usize,
) -> StoreResult<Vec<(String, i64)>> {
    let page: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
        .arg(index)
        .arg(max)
        .arg("-inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(offset)
        .arg(SCAN_BATCH)
        .query_async(&mut store.conn())
        .await
        .map_err(store_err)?;
    Ok(page.into_iter().map(|(id, us)| (id, us as i64)).collect())
}

/// Whether an entry was on an earlier page: newest first, and among equal
/// instants by id descending (the order of ZREVRANGEBYSCORE).
pub(super) fn seen(after: &Option<(i64, String)>, id: &str, us: i64) -> bool {
    after.as_ref().is_some_and(|(last_us, last_id)| {
        us > *last_us || (us == *last_us && id >= last_id.as_str())
    })
}

/// A `µs:id` paging cursor.
pub(super) fn parse_cursor(cursor: &str) -> StoreResult<(i64, String)> {
    cursor
        .split_once(':')
        .and_then(|(us, id)| Some((us.parse().ok()?, id.to_owned())))
        .ok_or_else(|| {
            StoreError::Other(format!(
                "`{cursor}` is not a paging cursor given by this store; start again without a cursor"
            ))
        })
}
