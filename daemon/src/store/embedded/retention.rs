//! Retention and erasure in one transaction per bounded step: purging a
//! finished run, trimming old history, erasing one recipient, and the
//! erasures kept for runs that have not finished. History entries are
//! their own records here, so they outlive a purged run by themselves.

use super::tables::{
    CHUNK_STATES, CHUNKS, Db, ERASURES, HISTORY, HISTORY_BY_TIME, MESSAGES, OUTCOMES, RUNS,
    RunRecord, TRACKING, Tx, Txn, from_json, to_json, us,
};
use crate::runs::RunId;
use crate::store::{HistoryEntry, RecipientOutcome, Step, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use redb::ReadableTable;

/// Whether a run has ended for good (a cancelled run still handing out
/// its chunks as `cancelled` has no `finished_at` yet).
fn ended(rec: &RunRecord) -> bool {
    rec.run.state.is_final() && rec.run.finished_at.is_some()
}

impl Tx<'_> {
    /// One purge step: at most `limit` outcomes, tracking records and
    /// chunks, in that order; the last step marks the run purged.
    pub fn purge_run(&self, id: &RunId, limit: usize) -> StoreResult<Step> {
        let Some(mut rec) = self.get_run(id.as_str())? else {
            return Ok(Step::Done);
        };
        if !ended(&rec) {
            return Ok(Step::NotFinished);
        }
        let limit = limit.max(1);
        let mut removed = 0;
        {
            let mut outcomes = self.txn.open_table(OUTCOMES).db()?;
            let mut messages = self.txn.open_table(MESSAGES).db()?;
            let mut batch = Vec::new();
            for entry in outcomes.range((id.as_str(), "")..).db()?.take(limit) {
                let (k, v) = entry.db()?;
                if k.value().0 != id.as_str() {
                    break;
                }
                let o: RecipientOutcome = from_json(v.value(), &format!("outcomes/{id}"))?;
                batch.push((k.value().1.to_owned(), o));
            }
            let mut history = self.txn.open_table(HISTORY).db()?;
            for (recipient, o) in &batch {
                outcomes.remove((id.as_str(), recipient.as_str())).db()?;
                if let Some(pmid) = &o.provider_message_id {
                    messages.remove(pmid.as_str()).db()?;
                    // The provider id goes with the run's rows; the entry stays.
                    let key = (recipient.as_str(), -us(o.at), id.as_str());
                    let entry = history.get(key).db()?.map(|v| v.value().to_vec());
                    if let Some(bytes) = entry {
                        let mut entry: HistoryEntry =
                            from_json(&bytes, &format!("history/{recipient}"))?;
                        entry.provider_message_id = None;
                        history.insert(key, to_json(&entry)?.as_slice()).db()?;
                    }
                }
            }
            removed += batch.len();
        }
        if removed < limit {
            let mut tracking = self.txn.open_table(TRACKING).db()?;
            let mut batch = Vec::new();
            for entry in tracking
                .range((id.as_str(), "", 0u8)..)
                .db()?
                .take(limit - removed)
            {
                let (k, _) = entry.db()?;
                let (run, recipient, kind) = k.value();
                if run != id.as_str() {
                    break;
                }
                batch.push((recipient.to_owned(), kind));
            }
            for (recipient, kind) in &batch {
                tracking
                    .remove((id.as_str(), recipient.as_str(), *kind))
                    .db()?;
            }
            removed += batch.len();
        }
        if removed < limit {
            let mut chunks = self.txn.open_table(CHUNKS).db()?;
            let mut states = self.txn.open_table(CHUNK_STATES).db()?;
            let mut batch = Vec::new();
            for entry in chunks
                .range((id.as_str(), 0u32)..=(id.as_str(), u32::MAX))
                .db()?
                .take(limit - removed)
            {
                batch.push(entry.db()?.0.value().1);
            }
            for n in &batch {
                chunks.remove((id.as_str(), *n)).db()?;
                states.remove((id.as_str(), *n)).db()?;
            }
            removed += batch.len();
        }
        let more = removed >= limit;
        rec.run.outcomes_purged = true;
        rec.run.preview = None;
        rec.purged = !more;
        self.put_run(&rec, Some(rec.run.state))?;
        Ok(if more { Step::More(0) } else { Step::Done })
    }

    /// Removes at most `limit` history entries recorded before `before`.
    pub fn purge_history(&self, before: DateTime<Utc>, limit: usize) -> StoreResult<u64> {
        let mut by_time = self.txn.open_table(HISTORY_BY_TIME).db()?;
        let mut history = self.txn.open_table(HISTORY).db()?;
        let mut old = Vec::new();
        for entry in by_time
            .range((i64::MIN, "", "")..(us(before), "", ""))
            .db()?
            .take(limit.max(1))
        {
            let (k, _) = entry.db()?;
            let (at, recipient, run) = k.value();
            old.push((at, recipient.to_owned(), run.to_owned()));
        }
        for (at, recipient, run) in &old {
            by_time
                .remove((*at, recipient.as_str(), run.as_str()))
                .db()?;
            history
                .remove((recipient.as_str(), -*at, run.as_str()))
                .db()?;
        }
        Ok(old.len() as u64)
    }

    /// One erasure step in a finished run (see the trait).
    pub fn erase_from_run(
        &self,
        id: &RunId,
        recipient: &str,
        from_chunk: u32,
        max_chunks: u32,
    ) -> StoreResult<Step> {
        let Some(mut rec) = self.get_run(id.as_str())? else {
            return Ok(Step::Done);
        };
        if !ended(&rec) {
            return Ok(Step::NotFinished);
        }
        let mut touched = false;
        if from_chunk == 0 {
            let found = self
                .txn
                .open_table(OUTCOMES)
                .db()?
                .remove((id.as_str(), recipient))
                .db()?
                .map(|v| from_json::<RecipientOutcome>(v.value(), &format!("outcomes/{id}")))
                .transpose()?;
            if let Some(o) = found {
                touched = true;
                if let Some(pmid) = &o.provider_message_id {
                    self.txn
                        .open_table(MESSAGES)
                        .db()?
                        .remove(pmid.as_str())
                        .db()?;
                }
                let at = us(o.at);
                self.txn
                    .open_table(HISTORY)
                    .db()?
                    .remove((recipient, -at, id.as_str()))
                    .db()?;
                self.txn
                    .open_table(HISTORY_BY_TIME)
                    .db()?
                    .remove((at, recipient, id.as_str()))
                    .db()?;
            }
            // The preview was rendered from the recipient's data: it goes too.
            if rec
                .run
                .preview
                .as_ref()
                .is_some_and(|p| p.recipient_id == recipient)
            {
                rec.run.preview = None;
                touched = true;
            }
            let mut tracking = self.txn.open_table(TRACKING).db()?;
            for kind in 0..3u8 {
                touched |= tracking
                    .remove((id.as_str(), recipient, kind))
                    .db()?
                    .is_some();
            }
        }
        let stop = rec
            .run
            .chunks
            .min(from_chunk.saturating_add(max_chunks.max(1)));
        for n in from_chunk..stop {
            let mut rows = self.chunk_recipients(id, n)?;
            let before = rows.len();
            rows.retain(|r| r.id != recipient);
            if rows.len() != before {
                touched = true;
                self.txn
                    .open_table(CHUNKS)
                    .db()?
                    .insert((id.as_str(), n), to_json(&rows)?.as_slice())
                    .db()?;
            }
        }
        if touched {
            rec.run.outcomes_purged = true;
            self.put_run(&rec, Some(rec.run.state))?;
        }
        Ok(if stop < rec.run.chunks {
            Step::More(stop)
        } else {
            Step::Done
        })
    }

    /// Deletes a recipient's whole history.
    pub fn erase_history(&self, recipient: &str) -> StoreResult<u64> {
        let mut history = self.txn.open_table(HISTORY).db()?;
        let mut entries = Vec::new();
        for entry in history.range((recipient, i64::MIN, "")..).db()? {
            let (k, _) = entry.db()?;
            let (who, rev, run) = k.value();
            if who != recipient {
                break;
            }
            entries.push((rev, run.to_owned()));
        }
        let mut by_time = self.txn.open_table(HISTORY_BY_TIME).db()?;
        for (rev, run) in &entries {
            history.remove((recipient, *rev, run.as_str())).db()?;
            by_time.remove((-*rev, recipient, run.as_str())).db()?;
        }
        Ok(entries.len() as u64)
    }

    /// Keeps an erasure for a run not finished (the first request's instant stays).
    pub fn keep_erasure(&self, id: &RunId, recipient: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut table = self.txn.open_table(ERASURES).db()?;
        if table.get((id.as_str(), recipient)).db()?.is_none() {
            table.insert((id.as_str(), recipient), us(now)).db()?;
        }
        Ok(())
    }

    /// Forgets a kept erasure.
    pub fn drop_erasure(&self, id: &RunId, recipient: &str) -> StoreResult<()> {
        self.txn
            .open_table(ERASURES)
            .db()?
            .remove((id.as_str(), recipient))
            .db()?;
        Ok(())
    }
}

/// Reads, in a read or a write transaction.
impl<T: Txn> Tx<'_, T> {
    /// Finished runs retention has not purged that ended at or before `ended_before`, oldest first.
    pub fn runs_to_purge(
        &self,
        ended_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        let table = self.txn.table(RUNS)?;
        let mut found = Vec::new();
        for entry in table.iter().db()? {
            let (k, v) = entry.db()?;
            let rec: RunRecord = from_json(v.value(), &format!("runs/{}", k.value()))?;
            let end = rec.run.finished_at.filter(|end| *end <= ended_before);
            if let (Some(end), true) = (end, ended(&rec) && !rec.purged) {
                found.push((end, rec.run.id));
            }
        }
        found.sort_by_key(|(end, _)| *end);
        Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    /// Kept erasures, oldest first.
    pub fn kept_erasures(&self, limit: usize) -> StoreResult<Vec<(RunId, String)>> {
        let table = self.txn.table(ERASURES)?;
        let mut kept = Vec::new();
        for entry in table.iter().db()? {
            let (k, at) = entry.db()?;
            let (run, recipient) = k.value();
            let run: RunId = run.parse().map_err(|_| StoreError::Corrupt {
                key: format!("erasures/{run}"),
                problem: "not a run id".to_owned(),
            })?;
            kept.push((at.value(), run, recipient.to_owned()));
        }
        kept.sort_by_key(|(at, _, _)| *at);
        Ok(kept
            .into_iter()
            .take(limit)
            .map(|(_, run, recipient)| (run, recipient))
            .collect())
    }
}
