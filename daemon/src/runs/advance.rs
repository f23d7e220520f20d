//! What a due run needs next, decided from its state: prepare it, expire
//! it, start sending it, or hand it to the dispatcher.

use super::{BusyGuard, RunId, RunState, prepare};
use crate::dispatch::Dispatcher;
use crate::engine::Engine;
use crate::store::{CancelReason, Due, Run, RunFilter, StoreResult, Transition};
use std::sync::Arc;
use tracing::{info, warn};

/// Advances due runs, taken from the store together (one call for many
/// where the store can); each guard keeps its run in hand until the
/// run's work ends, in a task of its own.
pub async fn advance(
    engine: &Arc<Engine>,
    dispatcher: &Arc<Dispatcher>,
    due: Vec<(RunId, BusyGuard)>,
) {
    let ids: Vec<RunId> = due.iter().map(|(id, _)| id.clone()).collect();
    let now = engine.clock.now();
    let taken = engine
        .store
        .take_due_many(&ids, &engine.owner, engine.lease_until(), now)
        .await;
    for ((id, guard), taken) in due.into_iter().zip(taken) {
        let work = advance_one(engine.clone(), dispatcher.clone(), id, taken, guard);
        engine.tasks.spawn(work);
    }
}

/// Works on one run as taking it found it; a store error leaves it due.
async fn advance_one(
    engine: Arc<Engine>,
    dispatcher: Arc<Dispatcher>,
    id: RunId,
    taken: StoreResult<Option<Due>>,
    guard: BusyGuard,
) {
    let stepped = match taken {
        Ok(taken) => step(&engine, &dispatcher, &id, taken, guard).await,
        Err(error) => Err(error),
    };
    if let Err(error) = stepped {
        metrics::counter!("herald_store_errors_total").increment(1);
        warn!(delivery_id = id.delivery_id(), run_id = %id, %error, "Could not advance the run; it stays due.");
    }
}

/// A due run's next step, from what taking it found.
async fn step(
    engine: &Engine,
    dispatcher: &Dispatcher,
    id: &RunId,
    taken: Option<Due>,
    guard: BusyGuard,
) -> StoreResult<()> {
    let store = &engine.store;
    let now = engine.clock.now();
    // A preparing run's preparation, or a scheduled run's start and first
    // chunk, was taken in the same store call.
    let run = match taken {
        None => return Ok(()),
        Some(Due::Taken(run)) => return prepare_and_send(engine, dispatcher, &run, guard).await,
        Some(Due::Started(run, claimed)) => {
            info!(delivery_id = %run.delivery_id, run_id = %id, "Run started sending.");
            dispatcher.dispatch(*run, None, claimed, guard).await;
            return Ok(());
        }
        Some(Due::Found(run)) => run,
    };
    // Every due run gets its state's operation even when it is not yet
    // time: the operation also rewrites the run's agenda entry, so an entry
    // left early by a crash corrects itself instead of staying due.
    match run.state {
        // Another instance holds its preparation lease.
        RunState::Preparing => Ok(()),
        RunState::Pending => {
            if let Transition::Done(_) = store.expire(id, now).await? {
                info!(delivery_id = %run.delivery_id, run_id = %id, "Run expired: nobody confirmed it before its deadline.");
            }
            Ok(())
        }
        RunState::Scheduled => {
            if let Transition::Done(after) = store.start_sending(id, now).await? {
                info!(delivery_id = %run.delivery_id, run_id = %id, "Run started sending.");
                dispatcher
                    .dispatch((&*after).into(), None, None, guard)
                    .await;
            }
            Ok(())
        }
        RunState::Sending | RunState::Cancelled => {
            dispatcher.dispatch((&*run).into(), None, None, guard).await;
            Ok(())
        }
        RunState::Paused | RunState::Sent | RunState::Expired | RunState::Failed => {
            // Nothing to send; the claim finds nothing and fixes the agenda.
            let until = engine.lease_until();
            store
                .claim_chunk(id, &engine.owner, until, now)
                .await
                .map(|_| ())
        }
    }
}

/// Works on a run whose preparation this instance has just taken (from
/// the agenda, or at its creation): prepares it and, when it is due now,
/// goes straight on to sending it, in hand already, without waiting for
/// the scheduler's next pass.
pub async fn prepare_taken(engine: &Engine, dispatcher: &Dispatcher, run: &Run, guard: BusyGuard) {
    if let Err(error) = prepare_and_send(engine, dispatcher, run, guard).await {
        metrics::counter!("herald_store_errors_total").increment(1);
        warn!(delivery_id = %run.delivery_id, run_id = %run.id, %error, "Could not prepare the run; it is prepared again once its preparation lease ends.");
    }
}

async fn prepare_and_send(
    engine: &Engine,
    dispatcher: &Dispatcher,
    run: &Run,
    guard: BusyGuard,
) -> StoreResult<()> {
    if let Some(ready) = prepare::prepare(engine, run).await?
        && ready.run.state == RunState::Sending
    {
        dispatcher
            .dispatch(
                (&ready.run).into(),
                Some(ready.snapshot),
                ready.claimed,
                guard,
            )
            .await;
    }
    Ok(())
}

/// A delivery file was removed: its runs that have not started sending
/// are cancelled with the reason `delivery_removed`.
pub async fn cancel_removed(engine: &Engine, delivery_id: &str) -> StoreResult<()> {
    for state in [RunState::Preparing, RunState::Pending, RunState::Scheduled] {
        let filter = RunFilter {
            state: Some(state),
            delivery_id: Some(delivery_id.to_owned()),
        };
        let mut cursor = None;
        loop {
            let page = engine
                .store
                .list_runs(&filter, cursor.as_deref(), 500)
                .await?;
            for run in &page.items {
                let now = engine.clock.now();
                let done = engine
                    .store
                    .cancel(&run.id, None, CancelReason::DeliveryRemoved, now)
                    .await?;
                if let Transition::Done(_) = done {
                    info!(delivery_id, run_id = %run.id, "Run cancelled: its delivery file was removed.");
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(())
}
