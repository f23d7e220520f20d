//! The redb tables of the embedded store and the typed accessors every
//! operation shares. Ordered tables stand in for Redis's sorted sets: the
//! agenda is keyed by `(instant_us, run_id)` with a reverse map per run.
//! Instants are stored as microseconds since the epoch.

use crate::runs::{RunId, RunState};
use crate::store::{FrozenRecipient, Run, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Run records (JSON [`RunRecord`]) by run id.
pub(super) const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
/// Definition snapshots by run id.
pub(super) const DEFINITIONS: TableDefinition<&str, &str> = TableDefinition::new("definitions");
/// Runs ordered newest `scheduled_for` first: `(-scheduled_us, run_id)`.
pub(super) const RUN_ORDER: TableDefinition<(i64, &str), ()> = TableDefinition::new("run_order");
/// How many runs are in each state, by state name.
pub(super) const STATE_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("state_counts");
/// The agenda: `(due_us, run_id)`.
pub(super) const AGENDA: TableDefinition<(i64, &str), ()> = TableDefinition::new("agenda");
/// The agenda instant of each run on it.
pub(super) const AGENDA_BY_RUN: TableDefinition<&str, i64> = TableDefinition::new("agenda_by_run");
/// Chunk recipients (JSON), by `(run_id, chunk)`; written once.
pub(super) const CHUNKS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("chunks");
/// Chunk leases and completion (JSON [`ChunkState`]), kept apart from the
/// recipients so scanning a run's chunks stays cheap.
pub(super) const CHUNK_STATES: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("chunk_states");
/// Recipient outcomes (JSON), by `(run_id, recipient_id)`.
pub(super) const OUTCOMES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("outcomes");
/// `(run_id, recipient_id)` (JSON) by provider message id.
pub(super) const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
/// History entries (JSON) by `(recipient_id, -at_us, run_id)`: newest first.
pub(super) const HISTORY: TableDefinition<(&str, i64, &str), &[u8]> =
    TableDefinition::new("history");
/// The history by age, `(at_us, recipient_id, run_id)`, so retention
/// finds old entries without scanning every recipient.
pub(super) const HISTORY_BY_TIME: TableDefinition<(i64, &str, &str), ()> =
    TableDefinition::new("history_by_time");
/// Erasures kept until their run finishes: `(run_id, recipient_id)` →
/// when asked (µs).
pub(super) const ERASURES: TableDefinition<(&str, &str), i64> = TableDefinition::new("erasures");
/// Unique tracking events: `(run_id, recipient_id, kind)`.
pub(super) const TRACKING: TableDefinition<(&str, &str, u8), ()> = TableDefinition::new("tracking");
/// Schedule cursors by delivery id.
pub(super) const CURSORS: TableDefinition<&str, i64> = TableDefinition::new("cursors");
/// Theoretical arrival time (GCRA) of each delivery's throttle.
pub(super) const THROTTLES: TableDefinition<&str, i64> = TableDefinition::new("throttles");
/// Suppressions (JSON [`SuppressionRecord`]) by `(list, address)`.
pub(super) const SUPPRESSIONS: TableDefinition<(u8, &str), &[u8]> =
    TableDefinition::new("suppressions");
/// Soft bounces counted per address.
/// Secret name → bytes, written once (the tracking links' HMAC key).
pub(super) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
pub(super) const SOFT_BOUNCES: TableDefinition<&str, u32> = TableDefinition::new("soft_bounces");

/// A run with what only the store needs: the preparation lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RunRecord {
    /// The run as the API shows it.
    pub run: Run,
    /// Who prepares it.
    pub prep_owner: Option<String>,
    /// Until when.
    pub prep_lease_until: Option<DateTime<Utc>>,
    /// Retention purged its per-recipient rows (erasure alone does not set it).
    #[serde(default)]
    pub purged: bool,
}

/// The lease and completion of one chunk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ChunkState {
    /// Its holder, while claimed.
    pub owner: Option<String>,
    /// Until when the holder has it.
    pub lease_until: Option<DateTime<Utc>>,
    /// When it was claimed: a released chunk is due from then.
    pub leased_at: Option<DateTime<Utc>>,
    /// Every recipient has an outcome.
    pub done: bool,
}

impl ChunkState {
    /// Nobody holds it, or the holder's lease expired.
    pub fn claimable(&self, now: DateTime<Utc>) -> bool {
        !self.done && (self.owner.is_none() || self.lease_until.is_none_or(|l| now > l))
    }
}

/// One suppression entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SuppressionRecord {
    /// Why.
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// Microseconds since the epoch.
pub(super) fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant of [`us`].
pub(super) fn from_us(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The first instant after `t` the store can tell apart: leases end
/// after their last instant (`now > lease_until`), so that is when the
/// run is due again.
pub(super) fn just_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t + chrono::Duration::microseconds(1)
}

/// Turns redb errors into store errors.
pub(super) trait Db<T> {
    /// The result with a redb error turned into [`StoreError::Other`].
    fn db(self) -> StoreResult<T>;
}

impl<T, E: Into<redb::Error>> Db<T> for Result<T, E> {
    fn db(self) -> StoreResult<T> {
        self.map_err(|e| StoreError::Other(format!("embedded store: {}", e.into())))
    }
}

/// Serializes a record.
pub(super) fn to_json<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Other(format!("cannot encode a record: {e}")))
}

/// Deserializes a record found at `key`.
pub(super) fn from_json<T: DeserializeOwned>(bytes: &[u8], key: &str) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        problem: e.to_string(),
    })
}

/// A redb transaction the reads can run in: a read transaction for the
/// operations that only read (they never wait for a writer), the write
/// transaction of an operation otherwise.
pub(super) trait Txn {
    /// Opens a table for reading.
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> StoreResult<impl ReadableTable<K, V> + '_>;
}

impl Txn for WriteTransaction {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> StoreResult<impl ReadableTable<K, V> + '_> {
        self.open_table(definition).db()
    }
}

impl Txn for ReadTransaction {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> StoreResult<impl ReadableTable<K, V> + '_> {
        self.open_table(definition).db()
    }
}

/// One transaction with the accessors the operations share; writes need
/// the write transaction (the default).
pub(super) struct Tx<'a, T = WriteTransaction> {
    /// The transaction; committed (or dropped) by the caller.
    pub txn: &'a T,
}

impl Tx<'_> {
    /// Opens every table so that later reads find them.
    pub fn create_tables(&self) -> StoreResult<()> {
        self.txn.open_table(RUNS).db()?;
        self.txn.open_table(DEFINITIONS).db()?;
        self.txn.open_table(RUN_ORDER).db()?;
        self.txn.open_table(STATE_COUNTS).db()?;
        self.txn.open_table(AGENDA).db()?;
        self.txn.open_table(AGENDA_BY_RUN).db()?;
        self.txn.open_table(CHUNKS).db()?;
        self.txn.open_table(CHUNK_STATES).db()?;
        self.txn.open_table(OUTCOMES).db()?;
        self.txn.open_table(MESSAGES).db()?;
        self.txn.open_table(HISTORY).db()?;
        self.txn.open_table(HISTORY_BY_TIME).db()?;
        self.txn.open_table(ERASURES).db()?;
        self.txn.open_table(TRACKING).db()?;
        self.txn.open_table(CURSORS).db()?;
        self.txn.open_table(THROTTLES).db()?;
        self.txn.open_table(SUPPRESSIONS).db()?;
        self.txn.open_table(SOFT_BOUNCES).db()?;
        self.txn.open_table(SECRETS).db()?;
        Ok(())
    }

    /// Writes a run record, keeping the state counts right; `before` is
    /// the state it was in (`None` for a new run).
    pub fn put_run(&self, rec: &RunRecord, before: Option<RunState>) -> StoreResult<()> {
        let id = rec.run.id.as_str();
        self.txn
            .open_table(RUNS)
            .db()?
            .insert(id, to_json(rec)?.as_slice())
            .db()?;
        if before != Some(rec.run.state) {
            let mut counts = self.txn.open_table(STATE_COUNTS).db()?;
            if let Some(before) = before {
                let n = counts.get(before.as_str()).db()?.map_or(0, |v| v.value());
                counts.insert(before.as_str(), n.saturating_sub(1)).db()?;
            }
            let state = rec.run.state.as_str();
            let n = counts.get(state).db()?.map_or(0, |v| v.value());
            counts.insert(state, n + 1).db()?;
        }
        Ok(())
    }

    /// Puts the run on the agenda at `at`, or takes it off with `None`.
    pub fn set_agenda(&self, id: &RunId, at: Option<DateTime<Utc>>) -> StoreResult<()> {
        let id = id.as_str();
        let mut by_run = self.txn.open_table(AGENDA_BY_RUN).db()?;
        let mut agenda = self.txn.open_table(AGENDA).db()?;
        let old = by_run.remove(id).db()?.map(|v| v.value());
        if let Some(old) = old {
            agenda.remove((old, id)).db()?;
        }
        if let Some(at) = at {
            agenda.insert((us(at), id), ()).db()?;
            by_run.insert(id, us(at)).db()?;
        }
        Ok(())
    }

    /// Writes the state of one chunk.
    pub fn put_chunk_state(&self, id: &RunId, number: u32, state: &ChunkState) -> StoreResult<()> {
        self.txn
            .open_table(CHUNK_STATES)
            .db()?
            .insert((id.as_str(), number), to_json(state)?.as_slice())
            .db()?;
        Ok(())
    }
}

/// Reads, in a read or a write transaction.
impl<T: Txn> Tx<'_, T> {
    /// A run record by id.
    pub fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let table = self.txn.table(RUNS)?;
        let found = table.get(id).db()?;
        found
            .map(|v| from_json(v.value(), &format!("runs/{id}")))
            .transpose()
    }

    /// The run's agenda instant, if it is on the agenda.
    pub fn agenda_of(&self, id: &RunId) -> StoreResult<Option<DateTime<Utc>>> {
        let by_run = self.txn.table(AGENDA_BY_RUN)?;
        let found = by_run.get(id.as_str()).db()?;
        Ok(found.map(|v| from_us(v.value())))
    }

    /// The states of every chunk of a run, by number.
    pub fn chunk_states(&self, id: &RunId) -> StoreResult<Vec<(u32, ChunkState)>> {
        let table = self.txn.table(CHUNK_STATES)?;
        let mut out = Vec::new();
        for entry in table
            .range((id.as_str(), 0u32)..=(id.as_str(), u32::MAX))
            .db()?
        {
            let (k, v) = entry.db()?;
            let number = k.value().1;
            out.push((
                number,
                from_json(v.value(), &format!("chunk_states/{id}/{number}"))?,
            ));
        }
        Ok(out)
    }

    /// The recipients of one chunk.
    pub fn chunk_recipients(&self, id: &RunId, number: u32) -> StoreResult<Vec<FrozenRecipient>> {
        let table = self.txn.table(CHUNKS)?;
        let found = table.get((id.as_str(), number)).db()?;
        match found {
            Some(v) => from_json(v.value(), &format!("chunks/{id}/{number}")),
            None => Ok(Vec::new()),
        }
    }
}
