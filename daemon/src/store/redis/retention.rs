//! Retention and erasure: purging finished runs in bounded steps, trimming
//! old history, erasing one recipient, and the erasures kept for runs that
//! have not finished. Each script touches one slot; the writes in other
//! slots (history, provider ids) are ordered so a crash between them
//! leaves data to purge again, never an entry brought back.

use super::codec::micros;
use super::{RedisStore, keys, scripts, store_err};
use crate::runs::{RunId, RunState};
use crate::store::{RecipientOutcome, Step, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// How many runs of the `:runs` index one call reads at a time.
const RUN_PAGE: usize = 500;

/// Whether run-hash fields say the run has ended for good.
fn ended(state: Option<&str>, finished_at: Option<&str>, drain: Option<&str>) -> bool {
    state
        .and_then(|s| s.parse::<RunState>().ok())
        .is_some_and(RunState::is_final)
        && finished_at.is_some()
        && drain != Some("1")
}

impl RedisStore {
    pub(super) async fn runs_to_purge_impl(
        &self,
        ended_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        // A run ends after its scheduled instant, so only runs scheduled
        // before the cutoff can qualify; `purged` ones are skipped cheaply.
        let mut found = Vec::new();
        let mut offset = 0;
        while found.len() < limit {
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&self.global.runs)
                .arg("-inf")
                .arg(micros(ended_before))
                .arg("LIMIT")
                .arg(offset)
                .arg(RUN_PAGE)
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            offset += ids.len();
            if ids.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                let k = keys::RunKeys::new(&self.prefix, &id_of(&self.global.runs, id)?);
                pipe.cmd("HMGET")
                    .arg(&k.run)
                    .arg(&["state", "finished_at", "drain", "purged"]);
            }
            let fields: Vec<Vec<Option<String>>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            for (id, f) in ids.iter().zip(fields) {
                let finished = f[1]
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                if ended(f[0].as_deref(), f[1].as_deref(), f[2].as_deref())
                    && f[3].as_deref() != Some("1")
                    && finished.is_some_and(|t| t <= ended_before)
                {
                    found.push(id_of(&self.global.runs, id)?);
                }
            }
            if ids.len() < RUN_PAGE {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    pub(super) async fn purge_run_impl(&self, id: &RunId, limit: usize) -> StoreResult<Step> {
        let k = self.run_keys(id);
        let Some(run) = self.run_impl(id).await? else {
            return Ok(Step::Done);
        };
        if !run.state.is_final() || run.finished_at.is_none() {
            return Ok(Step::NotFinished);
        }
        // History still queued goes in first: the archive below rewrites
        // the recipients' entries, and the queue goes with the run.
        self.drain_history_queue(id.as_str()).await?;
        let batch: Vec<(String, String)> = redis::cmd("HRANDFIELD")
            .arg(&k.outcomes)
            .arg(limit.max(1))
            .arg("WITHVALUES")
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        if batch.is_empty() {
            let left: i64 = scripts::PURGE_RUN
                .key(&k.run)
                .key(&k.chunks)
                .key(&k.chunk_ids)
                .key(&k.opens)
                .key(&k.clicks)
                .key(&k.unsubscribes)
                .key(&k.leases)
                .key(&k.owners)
                .key(&k.unindexed)
                .key(&k.indexing)
                .invoke_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            return Ok(if left < 0 {
                Step::NotFinished
            } else {
                Step::Done
            });
        }
        // History entries and provider ids first: a crash before the
        // outcomes go leaves them to be purged again, idempotently.
        scripts::ARCHIVE_HISTORY
            .load_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut pipe = redis::pipe();
        let mut message_ids = redis::cmd("HDEL");
        message_ids.arg(&self.global.messages);
        let mut any_message_id = false;
        for (recipient, json) in &batch {
            let o: RecipientOutcome =
                serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                    key: format!("{} {recipient}", k.outcomes),
                    problem: e.to_string(),
                })?;
            let mut archive = scripts::ARCHIVE_HISTORY.prepare_invoke();
            archive
                .key(keys::history(&self.prefix, recipient))
                .arg(id.as_str())
                .arg(o.outcome.as_str());
            pipe.invoke_script(&archive).ignore();
            if let Some(pmid) = &o.provider_message_id {
                message_ids.arg(pmid);
                any_message_id = true;
            }
        }
        if any_message_id {
            pipe.add_command(message_ids).ignore();
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut purge = scripts::PURGE_OUTCOMES.prepare_invoke();
        purge
            .key(&k.run)
            .key(&k.outcomes)
            .key(&k.opens)
            .key(&k.clicks)
            .key(&k.unsubscribes);
        for (recipient, _) in &batch {
            purge.arg(recipient);
        }
        let left: i64 = purge
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(if left < 0 {
            Step::NotFinished
        } else {
            Step::More(0)
        })
    }

    pub(super) async fn purge_history_impl(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<u64> {
        // Outcomes queued for the history since before the cutoff are
        // written first, so they are trimmed like the others (queues are
        // seconds old in practice: this finds none).
        for run in self
            .scored_before(&self.global.history_pending, before, limit)
            .await?
        {
            self.drain_history_queue(&run).await?;
        }
        let due = self
            .scored_before(&self.global.history_due, before, limit)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        scripts::TRIM_HISTORY
            .load_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut pipe = redis::pipe();
        for recipient in &due {
            let mut trim = scripts::TRIM_HISTORY.prepare_invoke();
            trim.key(keys::history(&self.prefix, recipient))
                .arg(micros(before));
            pipe.invoke_script(&trim);
        }
        let trimmed: Vec<(u64, String)> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        // The due index follows each recipient's oldest entry left. An entry
        // written between the trim and this update is newer than the cutoff,
        // so at worst it waits for the recipient's next entry to be indexed.
        let mut index = redis::pipe();
        let mut removed = 0;
        for (recipient, (n, oldest)) in due.iter().zip(trimmed) {
            removed += n;
            match oldest.parse::<f64>() {
                Ok(us) if us >= 0.0 => index
                    .cmd("ZADD")
                    .arg(&self.global.history_due)
                    .arg(us as i64)
                    .arg(recipient)
                    .ignore(),
                _ => index
                    .cmd("ZREM")
                    .arg(&self.global.history_due)
                    .arg(recipient)
                    .ignore(),
            };
        }
        index
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(removed)
    }

    /// Up to `limit` members of sorted set `key` scored (µs) before `before`.
    async fn scored_before(
        &self,
        key: &str,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        redis::cmd("ZRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(format!("({}", micros(before)))
            .arg("LIMIT")
            .arg(0)
            .arg(limit.max(1))
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)
    }

    /// Writes every outcome of run `run` still queued for the history.
    async fn drain_history_queue(&self, run: &str) -> StoreResult<()> {
        use super::indexer::{Indexed, index_run};
        let owner = self.indexer.owner();
        loop {
            match index_run(&self.conn, &self.prefix, &self.global, owner, run)
                .await
                .map_err(store_err)?
            {
                Indexed::Left(0) => return Ok(()),
                Indexed::Left(_) => {}
                // Purging under its writes would leave entries behind.
                Indexed::Busy => {
                    return Err(StoreError::Other(format!(
                        "the history of run {run} is being written by another instance; retention tries again at its next sweep"
                    )));
                }
            }
        }
    }

    pub(super) async fn erase_from_run_impl(
        &self,
        id: &RunId,
        recipient_id: &str,
        from_chunk: u32,
        max_chunks: u32,
    ) -> StoreResult<Step> {
        let k = self.run_keys(id);
        let (status, next, pmid): (String, u32, String) = scripts::ERASE_FROM_RUN
            .key(&k.run)
            .key(&k.outcomes)
            .key(&k.chunks)
            .key(&k.chunk_ids)
            .key(&k.opens)
            .key(&k.clicks)
            .key(&k.unsubscribes)
            .arg(recipient_id)
            .arg(from_chunk)
            .arg(max_chunks.max(1))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        if status == "not_finished" {
            return Ok(Step::NotFinished);
        }
        if from_chunk == 0 {
            let mut pipe = redis::pipe();
            pipe.cmd("ZREM")
                .arg(keys::history(&self.prefix, recipient_id))
                .arg(id.as_str())
                .ignore();
            if !pmid.is_empty() {
                pipe.cmd("HDEL")
                    .arg(&self.global.messages)
                    .arg(&pmid)
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.conn())
                .await
                .map_err(store_err)?;
        }
        Ok(if status == "more" {
            Step::More(next)
        } else {
            Step::Done
        })
    }

    pub(super) async fn erase_history_impl(&self, recipient_id: &str) -> StoreResult<u64> {
        let history = keys::history(&self.prefix, recipient_id);
        let (n, _, _): (u64, i64, i64) = redis::pipe()
            .cmd("ZCARD")
            .arg(&history)
            .cmd("UNLINK")
            .arg(&history)
            .cmd("ZREM")
            .arg(&self.global.history_due)
            .arg(recipient_id)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(n)
    }

    pub(super) async fn keep_erasure_impl(
        &self,
        id: &RunId,
        recipient_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        redis::cmd("HSETNX")
            .arg(&self.global.erasures)
            .arg(format!("{id}\n{recipient_id}"))
            .arg(micros(now))
            .query_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn kept_erasures_impl(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<(RunId, String)>> {
        // Few at any time: one per erased recipient and run still going.
        let kept: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(&self.global.erasures)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut by_age: Vec<(i64, String)> = kept.into_iter().map(|(k, at)| (at, k)).collect();
        by_age.sort();
        by_age
            .into_iter()
            .take(limit)
            .map(|(_, field)| {
                let corrupt = || StoreError::Corrupt {
                    key: format!("{} {field}", self.global.erasures),
                    problem: "not `run_id\\nrecipient_id`".to_owned(),
                };
                let (run, recipient) = field.split_once('\n').ok_or_else(corrupt)?;
                Ok((run.parse().map_err(|_| corrupt())?, recipient.to_owned()))
            })
            .collect()
    }

    pub(super) async fn drop_erasure_impl(
        &self,
        id: &RunId,
        recipient_id: &str,
    ) -> StoreResult<()> {
        redis::cmd("HDEL")
            .arg(&self.global.erasures)
            .arg(format!("{id}\n{recipient_id}"))
            .query_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

/// A run id read from an index.
fn id_of(key: &str, id: &str) -> StoreResult<RunId> {
    id.parse()
        .map_err(|e: crate::runs::model::BadRunId| StoreError::Corrupt {
            key: key.to_owned(),
            problem: e.to_string(),
        })
}
