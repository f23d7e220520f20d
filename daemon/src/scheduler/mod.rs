//! The loop that sleeps until the next due instant, creates runs for the
//! occurrences that have come, and hands due runs to the lifecycle.
//!
//! It wakes at the sooner of the next occurrence to prepare and the store's
//! agenda, or when something changes (a delivery file, a confirmation
//! here or in another instance, local work finishing); it never polls in
//! a tight loop. It also feeds the systemd watchdog, so a stuck loop gets
//! the process restarted while a loop patiently waiting out a store
//! outage does not.

pub mod plan;

use crate::definitions::Delivery;
use crate::dispatch::Dispatcher;
use crate::engine::{Deliveries, Engine};
use crate::ops::{Readiness, Watchdog};
use crate::runs::{self, Busy, RunId};
use crate::store::{Creation, NewRun, Run, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use plan::Occurrence;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The longest the loop sleeps without looking at the store: a safety net
/// for a wake-up lost while Redis reconnected, not the way work is found.
const SAFETY_NET: Duration = Duration::from_secs(5);

/// Most runs in hand at once, and so taken from the agenda per pass: a
/// burst of one-recipient runs waits mostly on round trips (each run a
/// chain of store calls), so more runs in flight can be more throughput
/// (benches/README.md, P4 (b) session 4: up to 1.5 times at 20,000 runs,
/// none on a loaded machine). Bounded because each run in hand holds a
/// task, and its sent batch until the outcomes are recorded (gathered
/// with other runs': a crash would send those again).
const DUE_PER_PASS: usize = 1024;

/// Due runs taken from the store in one call (`Store::take_due_many`):
/// a burst's first runs start sending while the rest are taken.
const TAKEN_AT_ONCE: usize = 64;

/// How long the loop lets wake-ups gather before a pass.
const COALESCE: Duration = Duration::from_millis(2);

/// Runs created at once when many occurrences share an instant: enough
/// to fill the store connection's pipeline (and to let the gathered
/// agenda writes of a wave share calls), few enough to keep a pass short.
const CREATIONS_AT_ONCE: usize = 256;

/// Occurrences created before the runs taken among them are started, so
/// that a burst's first runs are sent while the rest are created.
const CREATION_SLICE: usize = 4 * CREATIONS_AT_ONCE;

/// Runs taken at creation that may wait here for room (each holds its
/// preparation lease meanwhile); past this, runs are created for the
/// agenda instead, where any instance may take them.
const TAKEN_BACKLOG: usize = 32 * DUE_PER_PASS;

/// How long a stop may spend giving back runs taken at creation.
const RELEASE_WITHIN: Duration = Duration::from_secs(5);

/// The scheduler of one daemon instance.
pub struct Scheduler {
    engine: Arc<Engine>,
    dispatcher: Arc<Dispatcher>,
    busy: Busy,
    readiness: Readiness,
    watchdog: Watchdog,
    /// Next occurrence to create per delivery, ordered by preparation instant.
    queue: BTreeSet<(DateTime<Utc>, String)>,
    /// The planned occurrence per delivery.
    planned: HashMap<String, Occurrence>,
    /// The definition hash each delivery was last planned from.
    hashes: HashMap<String, String>,
    /// The deliveries the plan was made from.
    known: Deliveries,
    /// Runs created here with their preparation taken until the instant
    /// beside them, waiting for room.
    taken: VecDeque<(Box<Run>, DateTime<Utc>)>,
}

impl Scheduler {
    /// A scheduler over the engine's deliveries and store.
    pub fn new(
        engine: Arc<Engine>,
        dispatcher: Arc<Dispatcher>,
        readiness: Readiness,
        watchdog: Watchdog,
    ) -> Self {
        Scheduler {
            busy: Busy::new(engine.wake.clone()),
            engine,
            dispatcher,
            readiness,
            watchdog,
            queue: BTreeSet::new(),
            planned: HashMap::new(),
            hashes: HashMap::new(),
            known: Deliveries::default(),
            taken: VecDeque::new(),
        }
    }

    /// Runs until the engine stops.
    pub async fn run(mut self) {
        let mut deliveries = self.engine.deliveries.clone();
        let mut backoff = Duration::from_millis(200);
        let mut replan = true;
        loop {
            self.watchdog.ping();
            let changes = self.engine.store.changes();
            let store_changed = changes.notified();
            let wake = self.engine.wake.clone();
            let woken = wake.notified();
            tokio::pin!(store_changed, woken);
            store_changed.as_mut().enable();
            woken.as_mut().enable();

            let pass = async {
                if replan {
                    let current = deliveries.borrow_and_update().clone();
                    self.replan(current).await?;
                }
                self.pass().await
            };
            let sleep = match pass.await {
                Ok(sleep) => {
                    replan = false;
                    backoff = Duration::from_millis(200);
                    self.readiness.set_store(true);
                    sleep
                }
                Err(error) => {
                    metrics::counter!("herald_store_errors_total").increment(1);
                    self.readiness.set_store(false);
                    let sleep = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    // The wait logged is the one the loop keeps (below);
                    // only a WatchdogSec under 10 s would shorten it more.
                    let retry_in = sleep.min(SAFETY_NET);
                    warn!(%error, ?retry_in, "Store unavailable; the scheduler will retry.");
                    sleep
                }
            };
            // A slow pass (a store timing out) must not starve the watchdog.
            self.watchdog.ping();
            if self.engine.stopping.is_cancelled() {
                break;
            }
            let sleep = sleep.min(SAFETY_NET).min(self.watchdog.period());
            let nudged = tokio::select! {
                () = self.engine.stopping.cancelled() => break,
                () = tokio::time::sleep(sleep) => false,
                () = &mut store_changed => true,
                () = &mut woken => true,
                changed = deliveries.changed() => {
                    if changed.is_err() { break; }
                    replan = true;
                    false
                }
            };
            if nudged {
                // Thousands of runs finishing or changing at once would
                // otherwise cost a pass (two store calls) each.
                tokio::time::sleep(COALESCE).await;
            }
        }
        self.release_taken().await;
        debug!("Scheduler stopped.");
    }

    /// Stopping: gives back the runs taken at creation that were not
    /// started, so the other instances prepare them now rather than when
    /// their leases run out.
    async fn release_taken(&mut self) {
        let taken = std::mem::take(&mut self.taken);
        if taken.is_empty() {
            return;
        }
        let (store, owner) = (&self.engine.store, &self.engine.owner);
        let now = self.engine.clock.now();
        let released = futures_util::stream::iter(taken)
            .map(|(run, _)| async move { store.release_preparation(&run.id, owner, now).await })
            .buffer_unordered(CREATIONS_AT_ONCE)
            .filter(|result| std::future::ready(result.is_ok()))
            .count();
        match tokio::time::timeout(RELEASE_WITHIN, released).await {
            Ok(n) => info!(
                released = n,
                "Gave back the runs created here that were not prepared yet."
            ),
            // A store outage: their leases run out instead.
            Err(_) => {
                warn!(within = ?RELEASE_WITHIN, "Could not give back every run created here before stopping; the others take them when their preparation leases end.")
            }
        }
    }

    /// One pass: create the runs whose time has come, advance due runs;
    /// returns how long to sleep.
    async fn pass(&mut self) -> StoreResult<Duration> {
        let now = self.engine.clock.now();
        self.start_taken();
        self.fire_due(now).await?;
        if self.engine.stopping.is_cancelled() {
            // Runs taken now would only be released again.
            return Ok(SAFETY_NET);
        }

        let room = DUE_PER_PASS.saturating_sub(self.busy.len());
        let due = match room {
            // Full: a run leaving the hand wakes the loop.
            0 => Vec::new(),
            room => self.engine.store.due_runs(now, room).await?,
        };
        let mut all_busy = room == 0 || !due.is_empty();
        let mut in_hand = Vec::new();
        for run_id in due {
            if let Some(guard) = self.busy.try_take(&run_id) {
                all_busy = false;
                in_hand.push((run_id, guard));
            }
        }
        let mut in_hand = in_hand.into_iter().peekable();
        while in_hand.peek().is_some() {
            let group: Vec<_> = in_hand.by_ref().take(TAKEN_AT_ONCE).collect();
            let engine = self.engine.clone();
            let dispatcher = self.dispatcher.clone();
            self.engine.tasks.spawn(async move {
                runs::advance(&engine, &dispatcher, group).await;
            });
        }

        let next_run = self.queue.first().map(|(at, _)| *at);
        let next_agenda = self.engine.store.next_due().await?;
        let now = self.engine.clock.now();
        let agenda_sleep = match next_agenda {
            // Everything due is already being worked on here: its end wakes us.
            Some(at) if at <= now && all_busy => SAFETY_NET,
            Some(at) => self.engine.clock.until(at),
            None => SAFETY_NET,
        };
        let plan_sleep = next_run.map_or(SAFETY_NET, |at| self.engine.clock.until(at));
        Ok(agenda_sleep.min(plan_sleep))
    }

    /// Creates the runs of every occurrence whose preparation time has
    /// come. A store error must not lose an occurrence: it goes back in
    /// the queue and is retried once the store answers (creation is
    /// idempotent, so a half-done attempt is safe).
    async fn fire_due(&mut self, now: DateTime<Utc>) -> StoreResult<()> {
        let mut on_time = Vec::new();
        while let Some((at, id)) = self.queue.first().cloned() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            let Some(occurrence) = self.planned.remove(&id) else {
                continue;
            };
            if !self.fell_behind(&id, &occurrence, now) {
                on_time.push((id, occurrence));
            } else if let Err(error) = self.catch_up(&id, occurrence.clone(), now).await {
                self.enqueue(&id, occurrence);
                for (id, occurrence) in on_time {
                    self.enqueue(&id, occurrence);
                }
                return Err(error);
            }
        }
        self.create(on_time).await
    }

    /// Whether the loop fell behind a delivery (a store outage, a
    /// suspended host) so that occurrences after this one are due too.
    fn fell_behind(&self, delivery_id: &str, occurrence: &Occurrence, now: DateTime<Utc>) -> bool {
        occurrence.moves_cursor
            && self.known.get(delivery_id).is_some_and(|delivery| {
                delivery
                    .schedule()
                    .next_after(occurrence.instant)
                    .is_some_and(|next| next <= now)
            })
    }

    /// Handles the occurrences missed by a delivery the loop fell behind
    /// by its `catch_up`, as after a stop.
    async fn catch_up(
        &mut self,
        delivery_id: &str,
        occurrence: Occurrence,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let Some(delivery) = self.known.get(delivery_id).cloned() else {
            return Ok(());
        };
        // Cron instants are whole seconds: a cursor just before this
        // occurrence makes it the first missed one.
        let cursor = occurrence.instant - chrono::Duration::milliseconds(1);
        let plan = plan::plan(&delivery, Some(cursor), now);
        if let Some(to) = self.apply(delivery_id, plan).await? {
            self.engine.store.advance_cursor(delivery_id, to).await?;
        }
        Ok(())
    }

    /// Creates the runs of occurrences, many at once (ten thousand
    /// deliveries may share an instant), then moves their cursors in one
    /// store call and plans each delivery's next occurrence. On a store
    /// error every occurrence goes back in the queue. Runs are created
    /// with their preparation taken while the backlog has room, and each
    /// slice's are started as soon as it is created.
    async fn create(&mut self, due: Vec<(String, Occurrence)>) -> StoreResult<()> {
        let lease_until = self.engine.lease_until();
        let mut failure = None;
        let mut moves = Vec::new();
        let mut next = Vec::new();
        let mut created_here = Vec::new();
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            let slice: Vec<_> = due.by_ref().take(CREATION_SLICE).collect();
            for (delivery_id, occurrence, delivery, created) in
                self.create_slice(slice, lease_until).await
            {
                let Some(delivery) = delivery else { continue };
                match created {
                    Ok(created) => {
                        if created != Creation::Existed {
                            info!(delivery_id, run_id = %occurrence.run_id, scheduled_for = %occurrence.instant, "Run created.");
                            metrics::counter!("herald_runs_created_total").increment(1);
                        }
                        // Prepared whatever becomes of the cursors: a run
                        // exists once created, and its occurrence's retried
                        // creation is a no-op.
                        if let Creation::Taken(run) = created {
                            self.taken.push_back((run, lease_until));
                        }
                        if occurrence.moves_cursor {
                            moves.push((delivery_id.clone(), occurrence.instant));
                            if let Some(upcoming) = next_occurrence(&delivery, occurrence.instant) {
                                next.push((delivery_id.clone(), upcoming));
                            }
                        }
                        created_here.push((delivery_id, occurrence));
                    }
                    Err(error) => {
                        self.enqueue(&delivery_id, occurrence);
                        failure.get_or_insert(error);
                    }
                }
            }
            // Sending the first runs of a burst overlaps creating the rest.
            self.start_taken();
        }
        let stored = match failure {
            Some(error) => Err(error),
            None => self.engine.store.advance_cursors(&moves).await,
        };
        if let Err(error) = stored {
            // Cursors not stored: the created runs' occurrences stay
            // planned, and their creation is retried (a no-op).
            for (delivery_id, occurrence) in created_here {
                self.enqueue(&delivery_id, occurrence);
            }
            return Err(error);
        }
        for (delivery_id, upcoming) in next {
            self.enqueue(&delivery_id, upcoming);
        }
        Ok(())
    }

    /// Creates the runs of some occurrences concurrently, taking their
    /// preparation while the backlog of taken runs has room.
    async fn create_slice(
        &self,
        slice: Vec<(String, Occurrence)>,
        lease_until: DateTime<Utc>,
    ) -> Vec<(
        String,
        Occurrence,
        Option<Arc<Delivery>>,
        StoreResult<Creation>,
    )> {
        let store = &self.engine.store;
        let now = self.engine.clock.now();
        let owner = &self.engine.owner;
        let room = TAKEN_BACKLOG.saturating_sub(self.taken.len());
        futures_util::stream::iter(slice.into_iter().enumerate())
            .map(|(i, (id, occurrence))| {
                let delivery = self.known.get(&id).cloned();
                async move {
                    let created = match &delivery {
                        Some(delivery) => match new_run(delivery, &occurrence, now) {
                            Ok(run) if i < room => {
                                store.create_and_take(&run, owner, lease_until).await
                            }
                            Ok(run) => store.create_run(&run).await.map(|created| {
                                if created {
                                    Creation::Created
                                } else {
                                    Creation::Existed
                                }
                            }),
                            Err(error) => Err(error),
                        },
                        // Removed since it was planned: nothing to create.
                        None => Ok(Creation::Existed),
                    };
                    (id, occurrence, delivery, created)
                }
            })
            .buffer_unordered(CREATIONS_AT_ONCE)
            .collect()
            .await
    }

    /// Starts preparing runs taken at creation while fewer than a pass's
    /// worth are in hand, so a burst is worked on a wave at a time; none
    /// once stopping. One already in hand here (a retried creation) is
    /// left to its worker.
    fn start_taken(&mut self) {
        if self.engine.stopping.is_cancelled() {
            // A run started now would be prepared only to be released at
            // once; given back, another instance prepares it straight away.
            return;
        }
        // A run whose lease has (nearly) run out while it waited is left to
        // the agenda: another instance may be preparing it by then.
        let half_lease =
            chrono::Duration::from_std(self.engine.settings.lease / 2).unwrap_or_default();
        let now = self.engine.clock.now() + half_lease;
        while self.busy.len() < DUE_PER_PASS {
            let Some((run, held_until)) = self.taken.pop_front() else {
                break;
            };
            if held_until <= now {
                continue;
            }
            let Some(guard) = self.busy.try_take(&run.id) else {
                continue;
            };
            let engine = self.engine.clone();
            let dispatcher = self.dispatcher.clone();
            self.engine.tasks.spawn(async move {
                runs::prepare_taken(&engine, &dispatcher, &run, guard).await;
            });
        }
    }

    /// Plans every delivery that is new or changed; forgets removed ones
    /// and cancels their runs that have not started sending.
    async fn replan(&mut self, current: Deliveries) -> StoreResult<()> {
        let now = self.engine.clock.now();
        let previous = std::mem::replace(&mut self.known, current.clone());
        for delivery_id in previous.keys().filter(|id| !current.contains_key(*id)) {
            self.forget(delivery_id);
            self.hashes.remove(delivery_id);
            runs::cancel_removed(&self.engine, delivery_id).await?;
        }
        let changed: Vec<(String, String)> = current
            .iter()
            .map(|(id, delivery)| (id.clone(), delivery.definition_hash()))
            .filter(|(id, hash)| self.hashes.get(id) != Some(hash))
            .collect();
        // A start plans every delivery: one store call reads their cursors
        // and one writes the moved ones, not one each (10,000 files).
        let ids: Vec<String> = changed.iter().map(|(id, _)| id.clone()).collect();
        let cursors = self.engine.store.cursors(&ids).await?;
        let mut moves = Vec::new();
        for ((id, _), cursor) in changed.iter().zip(cursors) {
            let Some(delivery) = current.get(id) else {
                continue;
            };
            let plan = plan::plan(delivery, cursor, now);
            self.forget(id);
            if let Some(to) = self.apply(id, plan).await? {
                moves.push((id.clone(), to));
            }
        }
        self.engine.store.advance_cursors(&moves).await?;
        // Only now is the plan stored: a failed pass replans these again.
        self.hashes.extend(changed);
        Ok(())
    }

    /// Carries out a delivery's plan: the catch-up run, then the next
    /// occurrence in the queue; returns the cursor to store when the plan
    /// moves it without a run (first sight, or occurrences skipped).
    /// Cursors only move forward, so storing it after other writes of
    /// this pass is safe.
    async fn apply(
        &mut self,
        delivery_id: &str,
        plan: plan::Plan,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let mut cursor = None;
        if let Some(catch_up) = plan.catch_up {
            let run_id = catch_up.run_id.clone();
            self.create(vec![(delivery_id.to_owned(), catch_up)])
                .await?;
            info!(delivery_id, %run_id, "Caught up a missed occurrence.");
        } else {
            cursor = plan.cursor;
        }
        if let Some(upcoming) = plan.upcoming {
            self.enqueue(delivery_id, upcoming);
        }
        Ok(cursor)
    }

    fn enqueue(&mut self, delivery_id: &str, occurrence: Occurrence) {
        self.forget(delivery_id);
        self.queue
            .insert((occurrence.prepare_at, delivery_id.to_owned()));
        self.planned.insert(delivery_id.to_owned(), occurrence);
    }

    fn forget(&mut self, delivery_id: &str) {
        if let Some(occurrence) = self.planned.remove(delivery_id) {
            self.queue
                .remove(&(occurrence.prepare_at, delivery_id.to_owned()));
        }
    }
}

/// The occurrence after `instant`, planned `prepare_ahead` before it.
fn next_occurrence(
    delivery: &crate::definitions::Delivery,
    instant: DateTime<Utc>,
) -> Option<Occurrence> {
    let next = delivery.schedule().next_after(instant)?;
    let ahead = chrono::Duration::from_std(delivery.schedule().prepare_ahead()).unwrap_or_default();
    Some(Occurrence {
        run_id: RunId::at(delivery.id(), next),
        instant: next,
        prepare_at: next - ahead,
        moves_cursor: true,
    })
}

/// The run record of an occurrence, carrying the definition snapshot.
fn new_run(
    delivery: &crate::definitions::Delivery,
    occurrence: &Occurrence,
    now: DateTime<Utc>,
) -> StoreResult<NewRun> {
    let definition = serde_json::to_string(delivery).map_err(|e| {
        StoreError::Other(format!("cannot snapshot delivery {}: {e}", delivery.id()))
    })?;
    let schedule = delivery.schedule();
    Ok(NewRun {
        id: occurrence.run_id.clone(),
        delivery_id: delivery.id().to_owned(),
        channel: delivery.channel().to_owned(),
        scheduled_for: occurrence.instant,
        confirm_deadline: schedule.confirm_deadline_for(occurrence.instant),
        confirm_required: schedule.confirm(),
        aggregation_period: schedule.aggregation_period(occurrence.instant),
        definition,
        definition_hash: delivery.definition_hash(),
        throttle_per_second: delivery.throttle().map(|t| t.per_second()),
        created_at: now,
    })
}
