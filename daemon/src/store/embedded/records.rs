//! Per-recipient records: outcomes and their counters, provider message
//! ids, history, tracking, and the recount that rebuilds counters.

use super::tables::{
    Db, HISTORY, HISTORY_BY_TIME, MESSAGES, OUTCOMES, RunRecord, TRACKING, Tx, Txn, from_json,
    to_json, us,
};
use crate::runs::{Outcome, RunId};
use crate::store::{
    Counters, HistoryEntry, Page, RecipientOutcome, StoreError, StoreResult, TrackingKind,
};
use redb::ReadableTable;

/// The tracking kind as stored.
fn kind_code(kind: TrackingKind) -> u8 {
    match kind {
        TrackingKind::Open => 0,
        TrackingKind::Click => 1,
        TrackingKind::Unsubscribe => 2,
    }
}

/// Moves the counter of `outcome` by `delta` (excluded has none here:
/// exclusions are counted by `finish_preparation`).
fn count(counters: &mut Counters, outcome: Outcome, delta: i64) {
    let slot = match outcome {
        Outcome::Delivered => &mut counters.delivered,
        Outcome::Bounced => &mut counters.bounced,
        Outcome::Failed => &mut counters.failed,
        Outcome::Cancelled => &mut counters.cancelled,
        Outcome::Excluded => return,
    };
    *slot = slot.saturating_add_signed(delta);
}

impl Tx<'_> {
    /// A run that must exist for a per-recipient write.
    fn existing_run(&self, id: &RunId) -> StoreResult<RunRecord> {
        self.get_run(id.as_str())?.ok_or_else(|| {
            StoreError::Other(format!(
                "no run `{id}` in the store to record per-recipient data for"
            ))
        })
    }

    /// Records new outcomes, moves the counters, appends the history and
    /// indexes provider message ids; recipients with an outcome keep it.
    pub fn record_outcomes(&self, id: &RunId, outcomes: &[RecipientOutcome]) -> StoreResult<()> {
        let mut rec = self.existing_run(id)?;
        let state = rec.run.state;
        {
            // The hot path of sending: each table is opened once per batch.
            let mut table = self.txn.open_table(OUTCOMES).db()?;
            let mut history = self.txn.open_table(HISTORY).db()?;
            let mut by_time = self.txn.open_table(HISTORY_BY_TIME).db()?;
            let mut messages = self.txn.open_table(MESSAGES).db()?;
            for o in outcomes {
                let key = (id.as_str(), o.recipient_id.as_str());
                if table.get(key).db()?.is_some() {
                    continue;
                }
                table.insert(key, to_json(o)?.as_slice()).db()?;
                count(&mut rec.run.counters, o.outcome, 1);
                let entry = HistoryEntry {
                    run_id: id.clone(),
                    delivery_id: rec.run.delivery_id.clone(),
                    channel: rec.run.channel.clone(),
                    outcome: o.outcome,
                    provider_message_id: o.provider_message_id.clone(),
                    at: o.at,
                };
                let history_key = (o.recipient_id.as_str(), -us(o.at), id.as_str());
                history
                    .insert(history_key, to_json(&entry)?.as_slice())
                    .db()?;
                by_time
                    .insert((us(o.at), o.recipient_id.as_str(), id.as_str()), ())
                    .db()?;
                if let Some(pmid) = &o.provider_message_id {
                    let target = to_json(&(id, &o.recipient_id))?;
                    messages.insert(pmid.as_str(), target.as_slice()).db()?;
                }
            }
        }
        self.put_run(&rec, Some(state))
    }

    /// Writes a recipient's history entry for a run.
    fn put_history(&self, recipient: &str, entry: &HistoryEntry) -> StoreResult<()> {
        let key = (recipient, -us(entry.at), entry.run_id.as_str());
        self.txn
            .open_table(HISTORY)
            .db()?
            .insert(key, to_json(entry)?.as_slice())
            .db()?;
        Ok(())
    }

    /// Turns `delivered` into `bounced` or `failed`, moving one count and
    /// the history; anything else leaves the record as it is.
    pub fn amend_outcome(
        &self,
        id: &RunId,
        recipient: &str,
        to: Outcome,
        detail: &str,
    ) -> StoreResult<Option<RecipientOutcome>> {
        let Some(mut o) = self.outcome(id, recipient)? else {
            return Ok(None);
        };
        if o.outcome != Outcome::Delivered || !matches!(to, Outcome::Bounced | Outcome::Failed) {
            return Ok(Some(o));
        }
        let mut rec = self.existing_run(id)?;
        count(&mut rec.run.counters, Outcome::Delivered, -1);
        count(&mut rec.run.counters, to, 1);
        self.put_run(&rec, Some(rec.run.state))?;
        o.outcome = to;
        o.detail = Some(detail.to_owned());
        self.txn
            .open_table(OUTCOMES)
            .db()?
            .insert((id.as_str(), recipient), to_json(&o)?.as_slice())
            .db()?;
        // The history entry keeps its instant (its key): only the outcome changes.
        let entry = HistoryEntry {
            run_id: id.clone(),
            delivery_id: rec.run.delivery_id.clone(),
            channel: rec.run.channel.clone(),
            outcome: to,
            provider_message_id: o.provider_message_id.clone(),
            at: o.at,
        };
        self.put_history(recipient, &entry)?;
        Ok(Some(o))
    }

    /// Records unique tracking events (a click or an unsubscribe implies an
    /// open) and moves the counters by the new ones.
    pub fn record_tracking(
        &self,
        id: &RunId,
        events: &[(String, TrackingKind)],
    ) -> StoreResult<()> {
        let mut rec = self.existing_run(id)?;
        {
            let mut table = self.txn.open_table(TRACKING).db()?;
            let outcomes = self.txn.open_table(OUTCOMES).db()?;
            for (recipient, kind) in events {
                // Once rows were purged or erased, an erased recipient is
                // not written back: only those with an outcome count.
                if rec.run.outcomes_purged
                    && outcomes
                        .get((id.as_str(), recipient.as_str()))
                        .db()?
                        .is_none()
                {
                    continue;
                }
                // A click or an unsubscribe implies an open (kpis.md:
                // `opened` counts any tracked action).
                let kinds: &[TrackingKind] = match kind {
                    TrackingKind::Click => &[TrackingKind::Click, TrackingKind::Open],
                    TrackingKind::Unsubscribe => &[TrackingKind::Unsubscribe, TrackingKind::Open],
                    TrackingKind::Open => &[TrackingKind::Open],
                };
                for k in kinds {
                    if table
                        .insert((id.as_str(), recipient.as_str(), kind_code(*k)), ())
                        .db()?
                        .is_none()
                    {
                        let c = &mut rec.run.counters;
                        match k {
                            TrackingKind::Open => c.opened += 1,
                            TrackingKind::Click => c.clicked += 1,
                            TrackingKind::Unsubscribe => c.unsubscribed += 1,
                        }
                    }
                }
            }
        }
        self.put_run(&rec, Some(rec.run.state))
    }

    /// Rebuilds the outcome and tracking counters from the records.
    pub fn recount(&self, id: &RunId) -> StoreResult<Counters> {
        let mut rec = self.existing_run(id)?;
        if rec.run.outcomes_purged {
            return Ok(rec.run.counters);
        }
        let c = &mut rec.run.counters;
        (c.delivered, c.bounced, c.failed, c.cancelled) = (0, 0, 0, 0);
        (c.opened, c.clicked, c.unsubscribed) = (0, 0, 0);
        {
            let table = self.txn.open_table(OUTCOMES).db()?;
            for entry in table.range((id.as_str(), "")..).db()? {
                let (k, v) = entry.db()?;
                if k.value().0 != id.as_str() {
                    break;
                }
                let o: RecipientOutcome = from_json(v.value(), &format!("outcomes/{id}"))?;
                count(c, o.outcome, 1);
            }
        }
        {
            let table = self.txn.open_table(TRACKING).db()?;
            for entry in table.range((id.as_str(), "", 0u8)..).db()? {
                let (k, _) = entry.db()?;
                let (run, _, kind) = k.value();
                if run != id.as_str() {
                    break;
                }
                match kind {
                    0 => c.opened += 1,
                    1 => c.clicked += 1,
                    _ => c.unsubscribed += 1,
                }
            }
        }
        let counters = c.clone();
        self.put_run(&rec, Some(rec.run.state))?;
        Ok(counters)
    }
}

/// Reads a history cursor `"{-at_us}|{run_id}"`.
fn parse_history_cursor(cursor: &str) -> StoreResult<(i64, String)> {
    let bad = || super::lists::bad_cursor(cursor);
    let (rev, run) = cursor.split_once('|').ok_or_else(bad)?;
    Ok((rev.parse().map_err(|_| bad())?, run.to_owned()))
}

/// Reads, in a read or a write transaction.
impl<T: Txn> Tx<'_, T> {
    /// The recorded outcome of one recipient.
    pub fn outcome(&self, id: &RunId, recipient: &str) -> StoreResult<Option<RecipientOutcome>> {
        let table = self.txn.table(OUTCOMES)?;
        let found = table.get((id.as_str(), recipient)).db()?;
        found
            .map(|v| from_json(v.value(), &format!("outcomes/{id}/{recipient}")))
            .transpose()
    }

    /// The run and recipient of a provider message id.
    pub fn find_message(&self, pmid: &str) -> StoreResult<Option<(RunId, String)>> {
        let table = self.txn.table(MESSAGES)?;
        let found = table.get(pmid).db()?;
        found
            .map(|v| from_json(v.value(), &format!("messages/{pmid}")))
            .transpose()
    }

    /// A recipient's history, newest first; the cursor is the last key seen.
    pub fn history(
        &self,
        recipient: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<HistoryEntry>> {
        let after = match cursor {
            None => None,
            Some(c) => Some(parse_history_cursor(c)?),
        };
        let table = self.txn.table(HISTORY)?;
        let range = match &after {
            None => table.range((recipient, i64::MIN, "")..).db()?,
            Some((rev, run)) => table
                .range::<(&str, i64, &str)>((
                    std::ops::Bound::Excluded((recipient, *rev, run.as_str())),
                    std::ops::Bound::Unbounded,
                ))
                .db()?,
        };
        let mut items = Vec::new();
        let mut next_cursor = None;
        for entry in range {
            let (k, v) = entry.db()?;
            let (who, rev, run) = k.value();
            if who != recipient {
                break;
            }
            if items.len() == limit {
                next_cursor = items
                    .last()
                    .map(|e: &HistoryEntry| format!("{}|{}", -us(e.at), e.run_id));
                break;
            }
            items.push(from_json(
                v.value(),
                &format!("history/{recipient}/{rev}/{run}"),
            )?);
        }
        Ok(Page { items, next_cursor })
    }
}
