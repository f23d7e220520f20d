//! Outcomes, feedback, tracking, counters and recipients' history.

use super::codec::{fields, from_micros, micros, run_from_fields};
use super::lists::{parse_cursor, seen};
use super::{RedisStore, keys, scripts, store_err};
use crate::runs::{Outcome, RunId};
use crate::store::{
    Counters, HistoryEntry, Page, RecipientOutcome, StoreError, StoreResult, TrackingKind,
};
use chrono::{DateTime, Utc};
use redis::Value;

impl RedisStore {
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
        _now: DateTime<Utc>,
    ) -> StoreResult<Option<RecipientOutcome>> {
        let k = self.run_keys(id);
        let json: Option<String> = scripts::AMEND_OUTCOME
            .key(&k.run)
            .key(&k.outcomes)
            .arg(recipient_id)
            .arg(to.as_str())
            .arg(detail)
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        json.map(|j| parse_outcome(&k.outcomes, recipient_id, &j))
            .transpose()
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
            .key(&k.unsubscribes)
            .key(&k.outcomes);
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
        let index = keys::history(&self.prefix, recipient_id);
        let after = cursor.map(parse_cursor).transpose()?;
        let max = after
            .as_ref()
            .map_or("+inf".to_owned(), |(us, _)| us.to_string());
        // Outcomes the indexer has not written yet (`indexer.rs`) are read
        // from the runs that have some queued, before the index: one that
        // moves in between is then seen twice (and kept once), not missed.
        let queued = self.queued_history(recipient_id).await?;
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
                    .map(|(member, us)| (member, us as i64))
                    .filter(|(member, us)| !seen(&after, run_of(member), *us)),
            );
            if picked.len() > limit || !full {
                break;
            }
        }
        for (run, us) in queued {
            if !seen(&after, &run, us) && !picked.iter().any(|(m, _)| run_of(m) == run) {
                picked.push((run, us));
            }
        }
        // Newest first; at one instant, the greater run id first.
        picked
            .sort_by(|(a, a_us), (b, b_us)| b_us.cmp(a_us).then_with(|| run_of(b).cmp(run_of(a))));
        let next_cursor = if picked.len() > limit {
            picked.truncate(limit);
            picked
                .last()
                .map(|(member, us)| format!("{us}:{}", run_of(member)))
        } else {
            None
        };
        if picked.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor,
            });
        }
        // The entries are the runs' own outcome records: one place to
        // amend, one command per recipient when recording.
        let mut pipe = redis::pipe();
        let mut runs = Vec::with_capacity(picked.len());
        for (member, _) in &picked {
            let run: RunId =
                run_of(member)
                    .parse()
                    .map_err(|e: crate::runs::model::BadRunId| StoreError::Corrupt {
                        key: index.clone(),
                        problem: e.to_string(),
                    })?;
            let k = self.run_keys(&run);
            pipe.cmd("HGET").arg(&k.outcomes).arg(recipient_id);
            pipe.cmd("HGET").arg(&k.run).arg("channel");
            runs.push(run);
        }
        let replies: Vec<Option<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut items = Vec::with_capacity(runs.len());
        for ((run, pair), (member, us)) in runs.into_iter().zip(replies.chunks(2)).zip(&picked) {
            // Retention left the outcome in the member when it purged the
            // run; the instant is the score, the channel in the run's hash.
            if let (Some((_, outcome)), Some(channel)) = (member.split_once('\x1f'), &pair[1]) {
                let outcome = outcome
                    .parse()
                    .map_err(|e: crate::runs::model::UnknownValue| StoreError::Corrupt {
                        key: format!("{index} {member}"),
                        problem: e.to_string(),
                    })?;
                items.push(HistoryEntry {
                    delivery_id: run.delivery_id().to_owned(),
                    run_id: run,
                    channel: channel.clone(),
                    outcome,
                    provider_message_id: None,
                    at: from_micros(*us),
                });
                continue;
            }
            // An entry whose record went (an erasure under way) is skipped.
            let (Some(json), Some(channel)) = (&pair[0], &pair[1]) else {
                continue;
            };
            let o = parse_outcome(&self.run_keys(&run).outcomes, recipient_id, json)?;
            items.push(HistoryEntry {
                delivery_id: run.delivery_id().to_owned(),
                run_id: run,
                channel: channel.clone(),
                outcome: o.outcome,
                provider_message_id: o.provider_message_id,
                at: o.at,
            });
        }
        Ok(Page { items, next_cursor })
    }

    /// `(run id, outcome instant)` of the outcomes of `recipient_id` still
    /// queued for the history: one read per run with a queue.
    async fn queued_history(&self, recipient_id: &str) -> StoreResult<Vec<(String, i64)>> {
        let runs: Vec<String> = redis::cmd("ZRANGE")
            .arg(&self.global.history_pending)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        let mut keyed = Vec::with_capacity(runs.len());
        for run in runs {
            let Ok(id) = run.parse::<RunId>() else {
                continue;
            };
            let outcomes = self.run_keys(&id).outcomes;
            pipe.cmd("HGET").arg(&outcomes).arg(recipient_id);
            keyed.push((run, outcomes));
        }
        let records: Vec<Option<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut queued = Vec::new();
        for ((run, outcomes), record) in keyed.into_iter().zip(records) {
            if let Some(json) = record {
                let o = parse_outcome(&outcomes, recipient_id, &json)?;
                queued.push((run, micros(o.at)));
            }
        }
        Ok(queued)
    }
}

/// The run id of a history member (`run id`, or `run id \x1f entry` once archived).
fn run_of(member: &str) -> &str {
    member.split_once('\x1f').map_or(member, |(run, _)| run)
}

/// An outcome record from its JSON.
fn parse_outcome(key: &str, recipient_id: &str, json: &str) -> StoreResult<RecipientOutcome> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        key: format!("{key} {recipient_id}"),
        problem: e.to_string(),
    })
}
