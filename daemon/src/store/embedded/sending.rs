//! Chunk leases: claim, renew, complete, release.

use super::tables::{ChunkState, Db, OUTCOMES, Tx};
use crate::runs::{RunId, RunState};
use crate::store::{ClaimedChunk, StoreResult};
use chrono::{DateTime, Utc};
use redb::ReadableTable;

impl Tx<'_> {
    /// Claims the lowest chunk nobody holds (or whose lease expired) of a
    /// sending run, or of a cancelled run that still has unfinished chunks.
    pub fn claim_chunk(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedChunk>> {
        let Some(rec) = self.get_run(id.as_str())? else {
            return Ok(None);
        };
        let cancelled = match rec.run.state {
            RunState::Sending => false,
            RunState::Cancelled
                if rec.run.started_at.is_some() && rec.run.finished_at.is_none() =>
            {
                true
            }
            _ => return Ok(None),
        };
        let states = self.chunk_states(id)?;
        let Some((number, _)) = states.iter().find(|(_, c)| c.claimable(now)) else {
            return Ok(None);
        };
        let state = ChunkState {
            owner: Some(owner.to_owned()),
            lease_until: Some(lease_until),
            leased_at: Some(now),
            done: false,
        };
        self.put_chunk_state(id, *number, &state)?;
        let mut recipients = self.chunk_recipients(id, *number)?;
        {
            let outcomes = self.txn.open_table(OUTCOMES).db()?;
            let mut unfinished = Vec::with_capacity(recipients.len());
            for r in recipients {
                if outcomes.get((id.as_str(), r.id.as_str())).db()?.is_none() {
                    unfinished.push(r);
                }
            }
            recipients = unfinished;
        }
        self.refresh_agenda(&rec, now)?;
        Ok(Some(ClaimedChunk {
            number: *number,
            recipients,
            cancelled,
        }))
    }

    /// The chunk's state when `owner` holds it.
    fn held(&self, id: &RunId, number: u32, owner: &str) -> StoreResult<Option<ChunkState>> {
        let found = self
            .chunk_states(id)?
            .into_iter()
            .find(|(n, _)| *n == number);
        Ok(found
            .map(|(_, c)| c)
            .filter(|c| !c.done && c.owner.as_deref() == Some(owner)))
    }

    /// Extends the holder's lease; `false` when it was lost.
    pub fn renew_lease(
        &self,
        id: &RunId,
        number: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let Some(mut state) = self.held(id, number, owner)? else {
            return Ok(false);
        };
        state.lease_until = Some(lease_until);
        self.put_chunk_state(id, number, &state)?;
        if let (Some(rec), Some(at)) = (self.get_run(id.as_str())?, self.agenda_of(id)?) {
            // A free chunk keeps the run due at its current instant;
            // otherwise the first lease end moves with this renewal.
            self.refresh_agenda(&rec, at)?;
        }
        Ok(true)
    }

    /// Marks the holder's chunk done; the last one ends the run. Returns
    /// whether a chunk of the run is claimable now.
    pub fn complete_chunk(
        &self,
        id: &RunId,
        number: u32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if self.held(id, number, owner)?.is_none() {
            return self.claimable(id, now);
        }
        let done = ChunkState {
            done: true,
            ..Default::default()
        };
        self.put_chunk_state(id, number, &done)?;
        let Some(mut rec) = self.get_run(id.as_str())? else {
            return Ok(false);
        };
        let before = rec.run.state;
        rec.run.chunks_done += 1;
        if rec.run.chunks_done >= rec.run.chunks && rec.run.finished_at.is_none() {
            rec.run.finished_at = Some(now);
            if matches!(before, RunState::Sending | RunState::Paused) {
                rec.run.state = RunState::Sent;
            }
        }
        self.put_run(&rec, Some(before))?;
        self.refresh_agenda(&rec, now)?;
        self.claimable(id, now)
    }

    /// Whether `claim_chunk` would find a chunk of the run now.
    fn claimable(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<bool> {
        let Some(rec) = self.get_run(id.as_str())? else {
            return Ok(false);
        };
        let drains = rec.run.state == RunState::Cancelled
            && rec.run.started_at.is_some()
            && rec.run.finished_at.is_none();
        if rec.run.state != RunState::Sending && !drains {
            return Ok(false);
        }
        Ok(self.chunk_states(id)?.iter().any(|(_, c)| c.claimable(now)))
    }

    /// Gives the holder's chunk back; it is claimable at once.
    pub fn release_chunk(&self, id: &RunId, number: u32, owner: &str) -> StoreResult<bool> {
        let Some(state) = self.held(id, number, owner)? else {
            return Ok(false);
        };
        self.put_chunk_state(id, number, &ChunkState::default())?;
        let Some(rec) = self.get_run(id.as_str())? else {
            return Ok(false);
        };
        // Without a `now` argument, the claim's instant stands for "due
        // at once": it is in the past for every caller.
        let since = state.leased_at.unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        self.refresh_agenda(&rec, since)?;
        Ok(true)
    }
}
