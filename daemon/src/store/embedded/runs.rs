//! Run creation, preparation and the actions of the state × action table,
//! each run inside the caller's one write transaction.

use super::tables::{DEFINITIONS, Db, RUN_ORDER, RunRecord, Tx, just_after, us};
use crate::runs::{RunId, RunState};
use crate::store::{CancelReason, Chunk, Counters, NewRun, Prepared, Run, StoreResult, Transition};
use chrono::{DateTime, Utc};

/// The outcome of loading a run for an action: the record, or the
/// transition to answer with at once.
type Loaded = Result<RunRecord, Transition>;

impl Tx<'_> {
    /// Creates the run in `preparing`, due at its creation; `false` when it exists.
    pub fn create_run(&self, new: &NewRun) -> StoreResult<bool> {
        if self.get_run(new.id.as_str())?.is_some() {
            return Ok(false);
        }
        let rec = RunRecord {
            run: Run {
                id: new.id.clone(),
                delivery_id: new.delivery_id.clone(),
                channel: new.channel.clone(),
                state: RunState::Preparing,
                scheduled_for: new.scheduled_for,
                confirm_deadline: new.confirm_deadline,
                confirm_required: new.confirm_required,
                aggregation_period: new.aggregation_period.clone(),
                definition_hash: new.definition_hash.clone(),
                throttle_per_second: new.throttle_per_second,
                created_at: new.created_at,
                confirmed_by: None,
                confirmed_at: None,
                cancelled_by: None,
                cancelled_at: None,
                cancel_reason: None,
                paused_by: None,
                paused_at: None,
                resumed_by: None,
                resumed_at: None,
                started_at: None,
                finished_at: None,
                failure: None,
                outcomes_purged: false,
                preview: None,
                chunks: 0,
                chunks_done: 0,
                counters: Counters::default(),
            },
            prep_owner: None,
            prep_lease_until: None,
            purged: false,
        };
        let id = new.id.as_str();
        self.put_run(&rec, None)?;
        self.txn
            .open_table(DEFINITIONS)
            .db()?
            .insert(id, new.definition.as_str())
            .db()?;
        self.txn
            .open_table(RUN_ORDER)
            .db()?
            .insert((-us(new.scheduled_for), id), ())
            .db()?;
        self.set_agenda(&new.id, Some(new.created_at))?;
        Ok(true)
    }

    /// Loads a run for an action: `NotFound`, or a conflict unless `allowed`.
    fn load(&self, id: &RunId, allowed: impl Fn(&Run) -> bool) -> StoreResult<Loaded> {
        Ok(match self.get_run(id.as_str())? {
            None => Err(Transition::NotFound),
            Some(rec) if !allowed(&rec.run) => Err(Transition::Conflict(rec.run.state)),
            Some(rec) => Ok(rec),
        })
    }

    /// Loads a run for a user's action (confirm, cancel, pause, resume):
    /// as [`load`](Self::load), except that a `pending` run at or past its
    /// confirm deadline expires first, as the scheduler's expiry pass would
    /// have made it, and the action meets `expired` (README, "Life of a
    /// run": nobody confirmed it in time).
    fn load_for_action(
        &self,
        id: &RunId,
        now: DateTime<Utc>,
        allowed: impl Fn(&Run) -> bool,
    ) -> StoreResult<Loaded> {
        Ok(match self.get_run(id.as_str())? {
            None => Err(Transition::NotFound),
            Some(rec) if rec.run.state == RunState::Pending && now >= rec.run.confirm_deadline => {
                self.expire_loaded(rec, now)?;
                Err(Transition::Conflict(RunState::Expired))
            }
            Some(rec) if !allowed(&rec.run) => Err(Transition::Conflict(rec.run.state)),
            Some(rec) => Ok(rec),
        })
    }

    /// Saves a changed run, refreshes its agenda and answers `Done`.
    fn save(
        &self,
        rec: RunRecord,
        before: RunState,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        self.put_run(&rec, Some(before))?;
        self.refresh_agenda(&rec, now)?;
        Ok(Transition::Done(Box::new(rec.run)))
    }

    /// Puts the run where its state says on the agenda (store-common.md,
    /// "The agenda"); `now` stands for "due at once".
    pub fn refresh_agenda(&self, rec: &RunRecord, now: DateTime<Utc>) -> StoreResult<()> {
        let run = &rec.run;
        let at = match run.state {
            RunState::Preparing => Some(
                rec.prep_lease_until
                    .filter(|l| *l >= now)
                    .map_or(now, just_after),
            ),
            RunState::Pending => Some(run.confirm_deadline),
            RunState::Scheduled => Some(run.scheduled_for),
            RunState::Sending => self.sending_due(&run.id, now)?,
            RunState::Cancelled if run.started_at.is_some() && run.finished_at.is_none() => {
                self.sending_due(&run.id, now)?
            }
            _ => None,
        };
        self.set_agenda(&run.id, at)
    }

    /// When a sending run needs work: now while a chunk is free, else when
    /// the first lease ends; never once every chunk is done.
    fn sending_due(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        let mut first_lease: Option<DateTime<Utc>> = None;
        for (_, c) in self.chunk_states(id)? {
            if c.done {
                continue;
            }
            match c.lease_until.filter(|_| c.owner.is_some()) {
                None => return Ok(Some(now)),
                Some(l) => first_lease = Some(first_lease.map_or(l, |f| f.min(l))),
            }
        }
        Ok(first_lease.map(just_after))
    }

    /// The run starts sending at `now`; with nothing to send it is sent.
    fn begin_sending(rec: &mut RunRecord, now: DateTime<Utc>) {
        rec.run.started_at = Some(now);
        if rec.run.chunks_done >= rec.run.chunks {
            rec.run.state = RunState::Sent;
            rec.run.finished_at = Some(now);
        } else {
            rec.run.state = RunState::Sending;
        }
    }

    /// Takes or renews the preparation lease.
    pub fn claim_preparation(
        &self,
        id: &RunId,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let Some(mut rec) = self.get_run(id.as_str())? else {
            return Ok(false);
        };
        let held_by_other = rec.prep_owner.as_deref().is_some_and(|o| o != owner)
            && rec.prep_lease_until.is_some_and(|l| now <= l);
        if rec.run.state != RunState::Preparing || held_by_other {
            return Ok(false);
        }
        rec.prep_owner = Some(owner.to_owned());
        rec.prep_lease_until = Some(lease_until);
        self.put_run(&rec, Some(RunState::Preparing))?;
        self.refresh_agenda(&rec, now)?;
        Ok(true)
    }

    /// Writes one chunk of a preparing run. A run past preparation keeps
    /// its chunks: a stale preparer must not reset leases or finished chunks.
    pub fn put_chunk(&self, id: &RunId, chunk: &Chunk) -> StoreResult<()> {
        let preparing = self.get_run(id.as_str())?;
        if preparing.is_none_or(|rec| rec.run.state != RunState::Preparing) {
            return Ok(());
        }
        let key = (id.as_str(), chunk.number);
        let recipients = super::tables::to_json(&chunk.recipients)?;
        self.txn
            .open_table(super::tables::CHUNKS)
            .db()?
            .insert(key, recipients.as_slice())
            .db()?;
        self.put_chunk_state(id, chunk.number, &Default::default())
    }

    /// Records what preparation found and moves the run on.
    pub fn finish_preparation(
        &self,
        id: &RunId,
        owner: &str,
        prepared: &Prepared,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let held_by_other = |rec: &RunRecord| {
            rec.prep_owner.as_deref().is_some_and(|o| o != owner)
                && rec.prep_lease_until.is_some_and(|l| now <= l)
        };
        let mut rec = match self.load(id, |r| r.state == RunState::Preparing)? {
            Ok(rec) if held_by_other(&rec) => return Ok(Transition::Conflict(RunState::Preparing)),
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        let run = &mut rec.run;
        run.counters.targeted = prepared.targeted;
        run.counters.excluded_by_reason = prepared.excluded_by_reason.clone();
        run.chunks = prepared.chunks;
        run.preview = prepared.preview.clone();
        rec.prep_owner = None;
        rec.prep_lease_until = None;
        if rec.run.confirm_required {
            rec.run.state = RunState::Pending;
        } else if now >= rec.run.scheduled_for {
            Self::begin_sending(&mut rec, now);
        } else {
            rec.run.state = RunState::Scheduled;
        }
        self.save(rec, RunState::Preparing, now)
    }

    /// Moves a run that is not final to `failed`.
    pub fn fail_run(
        &self,
        id: &RunId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let mut rec = match self.load(id, |r| !r.state.is_final())? {
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        let before = rec.run.state;
        rec.run.state = RunState::Failed;
        rec.run.failure = Some(reason.to_owned());
        rec.run.finished_at = Some(now);
        self.save(rec, before, now)
    }

    /// `pending` → `scheduled`, or `sending` when its instant has come;
    /// past its confirm deadline → `expired` and a conflict.
    pub fn confirm(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        let mut rec = match self.load_for_action(id, now, |r| r.state == RunState::Pending)? {
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        rec.run.confirmed_by = Some(by.to_owned());
        rec.run.confirmed_at = Some(now);
        if now >= rec.run.scheduled_for {
            Self::begin_sending(&mut rec, now);
        } else {
            rec.run.state = RunState::Scheduled;
        }
        self.save(rec, RunState::Pending, now)
    }

    /// Any state but final → `cancelled`; a run that was sending keeps
    /// its unfinished chunks due for their `cancelled` outcomes.
    pub fn cancel(
        &self,
        id: &RunId,
        by: Option<&str>,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> StoreResult<Transition> {
        let mut rec = match self.load_for_action(id, now, |r| !r.state.is_final())? {
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        let before = rec.run.state;
        let run = &mut rec.run;
        run.state = RunState::Cancelled;
        run.cancelled_by = by.map(str::to_owned);
        run.cancelled_at = Some(now);
        run.cancel_reason = Some(reason);
        if run.started_at.is_none() || run.chunks_done >= run.chunks {
            run.finished_at = Some(now);
        }
        self.save(rec, before, now)
    }

    /// `sending` → `paused`.
    pub fn pause(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        let mut rec = match self.load_for_action(id, now, |r| r.state == RunState::Sending)? {
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        rec.run.state = RunState::Paused;
        rec.run.paused_by = Some(by.to_owned());
        rec.run.paused_at = Some(now);
        self.save(rec, RunState::Sending, now)
    }

    /// `paused` → `sending`.
    pub fn resume(&self, id: &RunId, by: &str, now: DateTime<Utc>) -> StoreResult<Transition> {
        let mut rec = match self.load_for_action(id, now, |r| r.state == RunState::Paused)? {
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        rec.run.state = RunState::Sending;
        rec.run.resumed_by = Some(by.to_owned());
        rec.run.resumed_at = Some(now);
        self.save(rec, RunState::Paused, now)
    }

    /// `pending` past its confirm deadline → `expired`.
    pub fn expire(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition> {
        let due = |r: &Run| r.state == RunState::Pending && now >= r.confirm_deadline;
        match self.load(id, due)? {
            Ok(rec) => self.expire_loaded(rec, now),
            Err(t) => Ok(t),
        }
    }

    /// Expires a pending run already loaded and found past its deadline.
    fn expire_loaded(&self, mut rec: RunRecord, now: DateTime<Utc>) -> StoreResult<Transition> {
        rec.run.state = RunState::Expired;
        rec.run.finished_at = Some(now);
        self.save(rec, RunState::Pending, now)
    }

    /// `scheduled` whose instant has come → `sending`.
    pub fn start_sending(&self, id: &RunId, now: DateTime<Utc>) -> StoreResult<Transition> {
        let due = |r: &Run| r.state == RunState::Scheduled && now >= r.scheduled_for;
        let mut rec = match self.load(id, due)? {
            Ok(rec) => rec,
            Err(t) => return Ok(t),
        };
        Self::begin_sending(&mut rec, now);
        self.save(rec, RunState::Scheduled, now)
    }
}
