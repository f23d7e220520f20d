//! Listings and the small keyed records: run lists, the agenda reads,
//! state counts, schedule cursors, throttles and suppressions.

use super::tables::{
    AGENDA, CURSORS, DEFINITIONS, Db, RUN_ORDER, SECRETS, SOFT_BOUNCES, STATE_COUNTS, SUPPRESSIONS,
    SuppressionRecord, THROTTLES, Tx, Txn, from_json, from_us, to_json, us,
};
use crate::runs::{RunId, RunState};
use crate::store::{Page, Run, RunFilter, StoreError, StoreResult, Suppression, SuppressionList};
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use std::ops::Bound;
use std::time::Duration;

/// The list as stored; the denylist sorts first because it wins.
fn list_code(list: SuppressionList) -> u8 {
    match list {
        SuppressionList::Denylist => 0,
        SuppressionList::Quarantine => 1,
    }
}

/// An error for a cursor that did not come from a previous page.
pub(super) fn bad_cursor(cursor: &str) -> StoreError {
    StoreError::BadCursor {
        cursor: cursor.to_owned(),
    }
}

impl Tx<'_> {
    /// The secret under `name`, set to `candidate` when there is none.
    pub fn shared_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let mut table = self.txn.open_table(SECRETS).db()?;
        if let Some(kept) = table.get(name).db()? {
            return Ok(kept.value().to_vec());
        }
        table.insert(name, candidate).db()?;
        Ok(candidate.to_vec())
    }

    /// Moves a cursor forward, never backward.
    pub fn advance_cursor(&self, delivery: &str, to: DateTime<Utc>) -> StoreResult<()> {
        let mut table = self.txn.open_table(CURSORS).db()?;
        let current = table.get(delivery).db()?.map(|v| v.value());
        if current.is_none_or(|c| c < us(to)) {
            table.insert(delivery, us(to)).db()?;
        }
        Ok(())
    }

    /// GCRA with a burst of one second's worth: the wait before `n` more
    /// messages at `per_second`.
    pub fn throttle(
        &self,
        delivery: &str,
        per_second: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration> {
        if per_second <= 0.0 || !per_second.is_finite() {
            return Ok(Duration::ZERO);
        }
        const BURST_US: i64 = 1_000_000;
        let mut table = self.txn.open_table(THROTTLES).db()?;
        let tat = table
            .get(delivery)
            .db()?
            .map_or(i64::MIN, |v| v.value())
            .max(us(now));
        let new_tat = tat + (f64::from(n) * 1e6 / per_second).round() as i64;
        table.insert(delivery, new_tat).db()?;
        let wait = (new_tat - BURST_US - us(now)).max(0);
        Ok(Duration::from_micros(wait as u64))
    }

    /// Puts an address on a list, keeping an existing entry as it is;
    /// `true` when it was not on it.
    pub fn suppress(
        &self,
        list: SuppressionList,
        address: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if self.suppression(list, address)?.is_some() {
            return Ok(false);
        }
        let rec = SuppressionRecord {
            reason: reason.to_owned(),
            since: now,
        };
        self.txn
            .open_table(SUPPRESSIONS)
            .db()?
            .insert((list_code(list), address), to_json(&rec)?.as_slice())
            .db()?;
        Ok(true)
    }

    /// Lifts an entry; lifting a quarantine also forgets the soft bounces.
    pub fn unsuppress(&self, list: SuppressionList, address: &str) -> StoreResult<bool> {
        let removed = self
            .txn
            .open_table(SUPPRESSIONS)
            .db()?
            .remove((list_code(list), address))
            .db()?
            .is_some();
        if removed && list == SuppressionList::Quarantine {
            self.txn
                .open_table(SOFT_BOUNCES)
                .db()?
                .remove(address)
                .db()?;
        }
        Ok(removed)
    }

    /// Counts a soft bounce; `true` when it quarantined the address.
    pub fn soft_bounce(
        &self,
        address: &str,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let count = {
            let mut table = self.txn.open_table(SOFT_BOUNCES).db()?;
            let n = table.get(address).db()?.map_or(0, |v| v.value()) + 1;
            table.insert(address, n).db()?;
            n
        };
        if count < threshold {
            return Ok(false);
        }
        self.suppress(SuppressionList::Quarantine, address, "soft_bounces", now)
    }

    /// Forgets the soft bounces of these addresses.
    pub fn reset_soft_bounces(&self, addresses: &[String]) -> StoreResult<()> {
        let mut table = self.txn.open_table(SOFT_BOUNCES).db()?;
        for a in addresses {
            table.remove(a.as_str()).db()?;
        }
        Ok(())
    }
}

/// Reads, in a read or a write transaction.
impl<T: Txn> Tx<'_, T> {
    /// The definition snapshot of a run.
    pub fn definition(&self, id: &RunId) -> StoreResult<Option<String>> {
        let table = self.txn.table(DEFINITIONS)?;
        let found = table.get(id.as_str()).db()?;
        Ok(found.map(|v| v.value().to_owned()))
    }

    /// Runs, newest `scheduled_for` first (ties by id), filtered, paged.
    pub fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Run>> {
        let after = match cursor {
            None => None,
            Some(c) => {
                let (rev, id) = c.split_once('|').ok_or_else(|| bad_cursor(c))?;
                Some((
                    rev.parse::<i64>().map_err(|_| bad_cursor(c))?,
                    id.to_owned(),
                ))
            }
        };
        let table = self.txn.table(RUN_ORDER)?;
        let range = match &after {
            None => table.range::<(i64, &str)>(..).db()?,
            Some((rev, id)) => table
                .range::<(i64, &str)>((Bound::Excluded((*rev, id.as_str())), Bound::Unbounded))
                .db()?,
        };
        let mut items: Vec<Run> = Vec::new();
        let mut next_cursor = None;
        for entry in range {
            let (k, _) = entry.db()?;
            let Some(rec) = self.get_run(k.value().1)? else {
                continue;
            };
            let run = rec.run;
            if filter.state.is_some_and(|s| s != run.state)
                || filter
                    .delivery_id
                    .as_deref()
                    .is_some_and(|d| d != run.delivery_id)
            {
                continue;
            }
            if items.len() == limit {
                next_cursor = items
                    .last()
                    .map(|last| format!("{}|{}", -us(last.scheduled_for), last.id));
                break;
            }
            items.push(run);
        }
        Ok(Page { items, next_cursor })
    }

    /// Runs due at `now`, soonest first.
    pub fn due_runs(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RunId>> {
        let table = self.txn.table(AGENDA)?;
        let mut out = Vec::new();
        for entry in table.range::<(i64, &str)>(..).db()? {
            let (k, _) = entry.db()?;
            let (at, id) = k.value();
            if at > us(now) || out.len() == limit {
                break;
            }
            out.push(id.parse().map_err(|e| StoreError::Corrupt {
                key: format!("agenda/{id}"),
                problem: format!("{e}"),
            })?);
        }
        Ok(out)
    }

    /// The soonest agenda instant.
    pub fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let table = self.txn.table(AGENDA)?;
        let first = table.first().db()?;
        Ok(first.map(|(k, _)| from_us(k.value().0)))
    }

    /// How many runs are in each state, every state listed.
    pub fn count_by_state(&self) -> StoreResult<Vec<(RunState, u64)>> {
        let table = self.txn.table(STATE_COUNTS)?;
        let mut out = Vec::new();
        for state in RunState::ALL {
            let n = table.get(state.as_str()).db()?.map_or(0, |v| v.value());
            out.push((*state, n));
        }
        Ok(out)
    }

    /// A delivery's schedule cursor.
    pub fn cursor(&self, delivery: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let table = self.txn.table(CURSORS)?;
        let found = table.get(delivery).db()?;
        Ok(found.map(|v| from_us(v.value())))
    }

    /// One suppression entry.
    fn suppression(
        &self,
        list: SuppressionList,
        address: &str,
    ) -> StoreResult<Option<SuppressionRecord>> {
        let table = self.txn.table(SUPPRESSIONS)?;
        let found = table.get((list_code(list), address)).db()?;
        found
            .map(|v| from_json(v.value(), &format!("suppressions/{address}")))
            .transpose()
    }

    /// For each address, the list it is on (denylist wins).
    pub fn suppressed(&self, addresses: &[String]) -> StoreResult<Vec<Option<SuppressionList>>> {
        let mut out = Vec::with_capacity(addresses.len());
        for a in addresses {
            let mut on = None;
            for list in [SuppressionList::Denylist, SuppressionList::Quarantine] {
                if self.suppression(list, a)?.is_some() {
                    on = Some(list);
                    break;
                }
            }
            out.push(on);
        }
        Ok(out)
    }

    /// Entries of a list by address, paged; the cursor is the last address.
    pub fn suppressions(
        &self,
        list: SuppressionList,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Suppression>> {
        let code = list_code(list);
        let mut found = Vec::new();
        {
            let table = self.txn.table(SUPPRESSIONS)?;
            let range = match cursor {
                None => table.range((code, "")..).db()?,
                Some(after) => table
                    .range::<(u8, &str)>((Bound::Excluded((code, after)), Bound::Unbounded))
                    .db()?,
            };
            for entry in range {
                let (k, v) = entry.db()?;
                let (l, address) = k.value();
                if l != code || found.len() > limit {
                    break;
                }
                let rec: SuppressionRecord =
                    from_json(v.value(), &format!("suppressions/{address}"))?;
                found.push((address.to_owned(), rec));
            }
        }
        let next_cursor = (found.len() > limit).then(|| found[limit - 1].0.clone());
        found.truncate(limit);
        let soft = self.txn.table(SOFT_BOUNCES)?;
        let mut items = Vec::with_capacity(found.len());
        for (address, rec) in found {
            let soft_bounces = soft.get(address.as_str()).db()?.map_or(0, |v| v.value());
            items.push(Suppression {
                address,
                list,
                reason: rec.reason,
                since: rec.since,
                soft_bounces,
            });
        }
        Ok(Page { items, next_cursor })
    }
}
