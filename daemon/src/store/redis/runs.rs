//! Runs: creation, reads, listings, the agenda and the state transitions.

use super::codec::{RunReply, fields, micros, run_from_fields, text};
use super::keys::RunKeys;
use super::{RedisStore, scripts, store_err};
use crate::runs::{RunId, RunState};
use crate::store::{CancelReason, Prepared, Run, StoreError, StoreResult, Transition};
use chrono::{DateTime, Utc};
use redis::{Script, Value};
use std::collections::HashMap;

/// Cursors read or moved per Redis command.
const CURSORS_PER_CALL: usize = 1_000;

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
        self.apply_reply(id, value).await
    }

    /// Reads a run script's reply and applies the agenda instant it returned.
    pub(super) async fn apply_reply(&self, id: &RunId, value: Value) -> StoreResult<RunReply> {
        let reply = RunReply::parse(value)?;
        self.gather
            .apply(id.as_str(), reply.seq, reply.agenda)
            .await?;
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
        let k = self.run_keys(id);
        let (transition, _) = self
            .transition_with(script, id, &[&k.run, &k.leases], now, sooner, args)
            .await?;
        Ok(transition)
    }

    /// [`transition`](Self::transition) with the script's own keys (the
    /// run hash first); also returns the reply, for what follows the
    /// transition in it.
    pub(super) async fn transition_with(
        &self,
        script: &Script,
        id: &RunId,
        keys: &[&str],
        now: DateTime<Utc>,
        sooner: bool,
        args: &[String],
    ) -> StoreResult<(Transition, RunReply)> {
        if sooner {
            self.lower_agenda(id, now).await?;
        }
        let reply = self.eval_run(script, id, keys, args).await?;
        let transition = Self::transition_of(keys[0], &reply)?;
        if sooner && matches!(transition, Transition::Done(_)) {
            self.announce();
        }
        Ok((transition, reply))
    }

    /// A transition script's outcome, from its reply's first two results.
    pub(super) fn transition_of(key: &str, reply: &RunReply) -> StoreResult<Transition> {
        match reply.text(0)?.as_str() {
            "done" => {
                let run = run_from_fields(key, &fields(reply.rest[1].clone())?)?;
                Ok(Transition::Done(Box::new(run)))
            }
            "missing" => Ok(Transition::NotFound),
            state => state
                .parse::<RunState>()
                .map(Transition::Conflict)
                .map_err(|e| StoreError::Corrupt {
                    key: key.to_owned(),
                    problem: e.to_string(),
                }),
        }
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

    pub(super) async fn cursors_impl(
        &self,
        delivery_ids: &[String],
    ) -> StoreResult<Vec<Option<DateTime<Utc>>>> {
        let mut cursors = Vec::with_capacity(delivery_ids.len());
        // Bounded commands: a start with many deliveries must not hold
        // Redis for one huge HMGET.
        for ids in delivery_ids.chunks(CURSORS_PER_CALL) {
            let values: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&self.global.cursors)
                .arg(ids)
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            for (delivery_id, value) in ids.iter().zip(values) {
                cursors.push(
                    value
                        .map(|v| self.parse_cursor(delivery_id, &v))
                        .transpose()?,
                );
            }
        }
        Ok(cursors)
    }

    /// A stored cursor, `µs;instant`.
    fn parse_cursor(&self, delivery_id: &str, value: &str) -> StoreResult<DateTime<Utc>> {
        let corrupt = || StoreError::Corrupt {
            key: format!("{} {delivery_id}", self.global.cursors),
            problem: format!("`{value}` is not `µs;instant`"),
        };
        let (_, when) = value.split_once(';').ok_or_else(corrupt)?;
        DateTime::parse_from_rfc3339(when)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| corrupt())
    }

    pub(super) async fn advance_cursors_impl(
        &self,
        moves: &[(String, DateTime<Utc>)],
    ) -> StoreResult<()> {
        for moves in moves.chunks(CURSORS_PER_CALL) {
            let mut invocation = scripts::ADVANCE_CURSORS.key(&self.global.cursors);
            for (delivery_id, to) in moves {
                invocation.arg(delivery_id).arg(micros(*to)).arg(text(*to));
            }
            invocation
                .invoke_async::<i64>(&mut self.conn())
                .await
                .map_err(store_err)?;
        }
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
        let args = lease_args(owner, lease_until, now);
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
        let args = preparation_args(owner, prepared, now);
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

/// The arguments of a claim under a lease: now (µs), owner, lease end (µs).
pub(super) fn lease_args(
    owner: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> [String; 3] {
    [
        micros(now).to_string(),
        owner.to_owned(),
        micros(lease_until).to_string(),
    ]
}

/// The arguments that end preparation (`lib_prepare.lua`): now (µs),
/// owner, counts, excluded by reason, chunks, preview, now (text).
pub(super) fn preparation_args(
    owner: &str,
    prepared: &Prepared,
    now: DateTime<Utc>,
) -> Vec<String> {
    vec![
        micros(now).to_string(),
        owner.to_owned(),
        prepared.targeted.to_string(),
        to_json(&prepared.excluded_by_reason),
        prepared.chunks.to_string(),
        prepared.preview.as_ref().map_or(String::new(), to_json),
        text(now),
    ]
}

/// A value as JSON: plain maps and strings, whose serialisation cannot fail.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
