//! Outcomes, feedback, tracking, counters and recipients' history.

use super::codec::{fields, micros, run_from_fields};
use super::runs::{parse_cursor, seen, to_json};
use super::{RedisStore, keys, scripts, store_err};
use crate::runs::{Outcome, RunId};
use crate::store::{
    Counters, HistoryEntry, Page, RecipientOutcome, StoreError, StoreResult, TrackingKind,
};
use chrono::{DateTime, Utc};
use redis::Value;

impl RedisStore {
    pub(super) async fn record_outcomes_impl(
        &self,
        id: &RunId,
        outcomes: &[RecipientOutcome],
    ) -> StoreResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let k = self.run_keys(id);
        let mut invocation = scripts::RECORD_OUTCOMES.prepare_invoke();
        invocation.key(&k.run).key(&k.outcomes);
        for o in outcomes {
            invocation
                .arg(&o.recipient_id)
                .arg(o.outcome.as_str())
                .arg(to_json(o));
        }
        let reply: Option<(String, Vec<usize>)> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let Some((channel, new)) = reply else {
            return Err(StoreError::Other(format!(
                "cannot record outcomes of run `{id}`: the store has no such run"
            )));
        };
        // History and the provider id index live in other slots: one
        // pipelined round trip for the whole batch, for new outcomes only.
        let mut pipe = redis::pipe();
        for position in new {
            let Some(o) = outcomes.get(position.wrapping_sub(1)) else {
                continue;
            };
            self.queue_history(&mut pipe, id, &channel, o);
            if let Some(pmid) = &o.provider_message_id {
                pipe.cmd("HSET")
                    .arg(&self.global.messages)
                    .arg(pmid)
                    .arg(format!("{id}\n{}", o.recipient_id))
                    .ignore();
            }
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(store_err)
    }

    /// Queues the history entry of an outcome (written or overwritten).
    fn queue_history(
        &self,
        pipe: &mut redis::Pipeline,
        id: &RunId,
        channel: &str,
        o: &RecipientOutcome,
    ) {
        let (entries, index) = keys::history(&self.prefix, &o.recipient_id);
        let entry = HistoryEntry {
            run_id: id.clone(),
            delivery_id: id.delivery_id().to_owned(),
            channel: channel.to_owned(),
            outcome: o.outcome,
            provider_message_id: o.provider_message_id.clone(),
            at: o.at,
        };
        pipe.cmd("HSET")
            .arg(entries)
            .arg(id.as_str())
            .arg(to_json(&entry))
            .ignore();
        pipe.cmd("ZADD")
            .arg(index)
            .arg(micros(o.at))
            .arg(id.as_str())
            .ignore();
    }

    pub(super) async fn outcome_impl(
        &self,
        id: &RunId,
        recipient_id: &str,
    ) -> StoreResult<Option<RecipientOutcome>> {
        let k = self.run_keys(id);
        let json: Option<String> = redis::cmd("HGET")
            .arg(&k.outcomes)
            .arg(recipient_id)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        json.map(|j| parse_outcome(&k.outcomes, recipient_id, &j))
            .transpose()
    }

    pub(super) async fn find_message_impl(
        &self,
        provider_message_id: &str,
    ) -> StoreResult<Option<(RunId, String)>> {
        let value: Option<String> = redis::cmd("HGET")
            .arg(&self.global.messages)
            .arg(provider_message_id)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let Some(value) = value else { return Ok(None) };
        let corrupt = || StoreError::Corrupt {
            key: format!("{} {provider_message_id}", self.global.messages),
            problem: format!("`{value}` is not `run_id\\nrecipient_id`"),
        };
        let (run, recipient) = value.split_once('\n').ok_or_else(corrupt)?;
        let run = run.parse().map_err(|_| corrupt())?;
        Ok(Some((run, recipient.to_owned())))
    }

    pub(super) async fn amend_outcome_impl(
        &self,
        id: &RunId,
        recipient_id: &str,
        to: Outcome,
        detail: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RecipientOutcome>> {
        let k = self.run_keys(id);
        let reply: Option<(String, String, i64)> = scripts::AMEND_OUTCOME
            .key(&k.run)
            .key(&k.outcomes)
            .arg(recipient_id)
            .arg(to.as_str())
            .arg(detail)
            .arg(super::codec::text(now))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let Some((json, channel, changed)) = reply else {
            return Ok(None);
        };
        let outcome = parse_outcome(&k.outcomes, recipient_id, &json)?;
        if changed == 1 {
            let mut pipe = redis::pipe();
            self.queue_history(&mut pipe, id, &channel, &outcome);
            pipe.query_async::<()>(&mut self.conn())
                .await
                .map_err(store_err)?;
        }
        Ok(Some(outcome))
    }

    pub(super) async fn record_tracking_impl(
        &self,
        id: &RunId,
        events: &[(String, TrackingKind)],
    ) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let k = self.run_keys(id);
        let mut invocation = scripts::RECORD_TRACKING.prepare_invoke();
        invocation
            .key(&k.run)
            .key(&k.opens)
            .key(&k.clicks)
            .key(&k.unsubscribes);
        for (recipient, kind) in events {
            let kind = match kind {
                TrackingKind::Open => "open",
                TrackingKind::Click => "click",
                TrackingKind::Unsubscribe => "unsubscribe",
            };
            invocation.arg(recipient).arg(kind);
        }
        invocation
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn recount_impl(&self, id: &RunId) -> StoreResult<Counters> {
        let k = self.run_keys(id);
        let reply: Value = scripts::RECOUNT
            .key(&k.run)
            .key(&k.outcomes)
            .key(&k.opens)
            .key(&k.clicks)
            .key(&k.unsubscribes)
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        if reply == Value::Nil {
            return Err(StoreError::Other(format!(
                "cannot recount run `{id}`: the store has no such run"
            )));
        }
        Ok(run_from_fields(&k.run, &fields(reply)?)?.counters)
    }

    pub(super) async fn history_impl(
        &self,
        recipient_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<HistoryEntry>> {
        let (entries, index) = keys::history(&self.prefix, recipient_id);
        let after = cursor.map(parse_cursor).transpose()?;
        let max = after
            .as_ref()
            .map_or("+inf".to_owned(), |(us, _)| us.to_string());
        let mut picked: Vec<(String, i64)> = Vec::new();
        let mut offset = 0;
        let batch = limit + 1 + 16;
        loop {
            let page: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&index)
                .arg(&max)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(offset)
                .arg(batch)
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            offset += page.len();
            let full = page.len() == batch;
            picked.extend(
                page.into_iter()
                    .map(|(run, us)| (run, us as i64))
                    .filter(|(run, us)| !seen(&after, run, *us)),
            );
            if picked.len() > limit || !full {
                break;
            }
        }
        let next_cursor = if picked.len() > limit {
            picked.truncate(limit);
            picked.last().map(|(run, us)| format!("{us}:{run}"))
        } else {
            None
        };
        if picked.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor,
            });
        }
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(&entries);
        for (run, _) in &picked {
            hmget.arg(run);
        }
        let jsons: Vec<Option<String>> = hmget
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let items = jsons
            .into_iter()
            .flatten()
            .map(|j| {
                serde_json::from_str(&j).map_err(|e| StoreError::Corrupt {
                    key: entries.clone(),
                    problem: e.to_string(),
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(Page { items, next_cursor })
    }
}

/// An outcome record from its JSON.
fn parse_outcome(key: &str, recipient_id: &str, json: &str) -> StoreResult<RecipientOutcome> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        key: format!("{key} {recipient_id}"),
        problem: e.to_string(),
    })
}
