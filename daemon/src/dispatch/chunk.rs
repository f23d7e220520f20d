//! One claimed chunk: batches out, verdicts in, outcomes recorded per
//! batch, the lease renewed meanwhile. A pause, a cancel, a lost lease or a
//! shutdown stops it at the next batch boundary, never inside a batch.

use super::RunContext;
use super::results::{self, Suppression, Verdict};
use crate::engine::Engine;
use crate::runs::{Outcome, RunId, RunState};
use crate::store::{ClaimedChunk, FrozenRecipient, RecipientOutcome, StoreResult, SuppressionList};
use herald_plugin_api::{Batch, Message, WIRE_VERSION};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How often a worker re-reads the run's state between batches.
const STATE_CHECK: Duration = Duration::from_millis(250);

/// A recipient still to send, with its tries so far.
struct Pending {
    recipient: FrozenRecipient,
    attempt: u32,
    not_before: Instant,
}

/// Why a chunk worker stops before the chunk is done.
enum Stop {
    /// Paused, shutting down: give the chunk back.
    Release,
    /// The lease was taken by another instance: leave it alone.
    LeaseLost,
    /// Cancelled: the rest of the recipients get `cancelled`.
    Cancel,
}

/// Sends one claimed chunk to the end, or to the first reason to stop;
/// returns whether the worker should claim another.
pub(super) async fn process(
    engine: &Engine,
    context: &RunContext,
    claimed: ClaimedChunk,
) -> StoreResult<bool> {
    let run_id = &context.run.id;
    let number = claimed.number;
    let now = Instant::now();
    let mut queue: VecDeque<Pending> = claimed
        .recipients
        .into_iter()
        .map(|recipient| Pending {
            recipient,
            attempt: 0,
            not_before: now,
        })
        .collect();
    if claimed.cancelled {
        return cancel_rest(engine, context, number, queue).await;
    }

    // The lease is renewed beside the sending, in the same task: a task of
    // its own per chunk cost a spawn and an abort for every one-recipient run.
    let lost = AtomicBool::new(false);
    let result = tokio::select! {
        result = send_all(engine, context, number, &mut queue, &lost) => result,
        never = renew_lease(engine, run_id, number, &lost) => match never {},
    };
    match result? {
        Ending::Completed(more) => Ok(more),
        Ending::Stopped(Stop::Release) => {
            debug!(delivery_id = %context.run.delivery_id, run_id = %run_id, chunk = number, left = queue.len(), "Chunk released.");
            // Paused or stopping: no other chunk is for this worker.
            engine
                .store
                .release_chunk(run_id, number, &engine.owner)
                .await
                .map(|()| false)
        }
        Ending::Stopped(Stop::LeaseLost) => {
            warn!(delivery_id = %context.run.delivery_id, run_id = %run_id, chunk = number, "Lease lost: another instance took the chunk over.");
            Ok(true)
        }
        Ending::Stopped(Stop::Cancel) => cancel_rest(engine, context, number, queue).await,
    }
}

/// How sending a chunk ended.
enum Ending {
    /// Every recipient has its outcome and the chunk is complete; whether
    /// the run may have another chunk to claim now.
    Completed(bool),
    /// A reason to stop came up first.
    Stopped(Stop),
}

/// Sends until every recipient of chunk `number` has its outcome and the
/// chunk is complete, or a reason to stop comes up.
async fn send_all(
    engine: &Engine,
    context: &RunContext,
    number: u32,
    queue: &mut VecDeque<Pending>,
    lost: &AtomicBool,
) -> StoreResult<Ending> {
    let mut checked = Instant::now();
    while !queue.is_empty() {
        if lost.load(Ordering::Relaxed) {
            return Ok(Ending::Stopped(Stop::LeaseLost));
        }
        if engine.stopping.is_cancelled() {
            return Ok(Ending::Stopped(Stop::Release));
        }
        if checked.elapsed() >= STATE_CHECK {
            checked = Instant::now();
            if let Some(stop) = stop_for_state(engine, &context.run.id).await? {
                return Ok(Ending::Stopped(stop));
            }
        }
        let size = batch_size(engine.settings.batch_size, context.run.throttle_per_second);
        let batch = take_ready(queue, size);
        if batch.is_empty() {
            let wait = queue
                .iter()
                .map(|p| p.not_before)
                .min()
                .map_or(Duration::ZERO, |t| {
                    t.saturating_duration_since(Instant::now())
                });
            tokio::select! {
                () = tokio::time::sleep(wait.min(STATE_CHECK)) => {}
                () = engine.stopping.cancelled() => {}
            }
            continue;
        }
        if let Some(stop) = wait_for_throttle(engine, context, batch.len()).await? {
            // Not handed to the plugin: the batch goes back with the rest,
            // to be released or cancelled with it.
            for pending in batch.into_iter().rev() {
                queue.push_front(pending);
            }
            return Ok(Ending::Stopped(stop));
        }
        // The batch holds every recipient left: if none needs another try,
        // its outcomes complete the chunk in the same store call.
        let last = queue.is_empty().then_some(number);
        match send_batch(engine, context, batch, last).await? {
            Sent::Completed(more) => return Ok(Ending::Completed(more)),
            Sent::Retry(retries) => queue.extend(retries),
        }
    }
    // Nothing was left to send (a reclaimed chunk whose recipients all had
    // outcomes already).
    let now = engine.clock.now();
    let more = engine
        .store
        .complete_chunk(&context.run.id, number, &engine.owner, now)
        .await?;
    Ok(Ending::Completed(more))
}

/// The recipients of one batch: `batch_size`, but under a throttle no more
/// than one second's worth, so that a batch waits about a second for its
/// turn, not `batch_size / rate` seconds during which a pause or a cancel
/// could not hold it back, and the messages go out spread, not in a burst.
fn batch_size(batch_size: usize, throttle_per_second: Option<f64>) -> usize {
    match throttle_per_second {
        Some(rate) if rate.is_finite() && rate > 0.0 => {
            (rate.floor() as usize).clamp(1, batch_size.max(1))
        }
        _ => batch_size.max(1),
    }
}

/// Waits until the delivery's throttle lets `n` more messages through,
/// watching the run meanwhile: a pause, a cancel or a shutdown that comes
/// during the wait is returned, and the batch is not sent.
async fn wait_for_throttle(
    engine: &Engine,
    context: &RunContext,
    n: usize,
) -> StoreResult<Option<Stop>> {
    let run = &context.run;
    let Some(rate) = run.throttle_per_second else {
        return Ok(None);
    };
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let wait = engine
        .store
        .throttle(&run.delivery_id, rate, n, engine.clock.now())
        .await?;
    let until = Instant::now() + wait;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::select! {
            () = tokio::time::sleep(left.min(STATE_CHECK)) => {}
            () = engine.stopping.cancelled() => return Ok(Some(Stop::Release)),
        }
        if let Some(stop) = stop_for_state(engine, &run.id).await? {
            return Ok(Some(stop));
        }
    }
}

/// Reads the run's state: none while it is sending, else why to stop
/// (cancelled: cancel the rest; paused, gone or any other: give it back).
async fn stop_for_state(engine: &Engine, run: &RunId) -> StoreResult<Option<Stop>> {
    Ok(match engine.store.run(run).await?.map(|r| r.state) {
        Some(RunState::Sending) => None,
        Some(RunState::Cancelled) => Some(Stop::Cancel),
        _ => Some(Stop::Release),
    })
}

/// What sending a batch left to do.
enum Sent {
    /// The batch was the chunk's last and completed it; whether the run may
    /// have another chunk to claim now.
    Completed(bool),
    /// The recipients to try again (none, when the chunk goes on).
    Retry(Vec<Pending>),
}

/// Up to `size` recipients whose retry delay has passed.
fn take_ready(queue: &mut VecDeque<Pending>, size: usize) -> Vec<Pending> {
    let now = Instant::now();
    let mut batch = Vec::with_capacity(size.min(queue.len()));
    let mut waiting = VecDeque::new();
    while let Some(pending) = queue.pop_front() {
        if batch.len() < size && pending.not_before <= now {
            batch.push(pending);
        } else {
            waiting.push_back(pending);
        }
        if batch.len() == size {
            break;
        }
    }
    waiting.append(queue);
    *queue = waiting;
    batch
}

/// Renders, sends one batch and records its final outcomes;
/// returns the recipients to try again. When the batch is chunk `last`'s
/// last and none needs another try, the recording completes the chunk.
async fn send_batch(
    engine: &Engine,
    context: &RunContext,
    batch: Vec<Pending>,
    last: Option<u32>,
) -> StoreResult<Sent> {
    let run = &context.run;
    let now = engine.clock.now();
    let mut finals = Vec::new();
    let mut suppressions = Vec::new();
    let mut resets = Vec::new();
    let mut messages = Vec::with_capacity(batch.len());
    let mut sent = Vec::with_capacity(batch.len());
    for pending in batch {
        match render(context, &pending.recipient) {
            Ok(message) => {
                messages.push(message);
                sent.push(pending);
            }
            Err(detail) => finals.push(outcome(
                &pending.recipient,
                Outcome::Failed,
                None,
                Some(detail),
                now,
            )),
        }
    }

    let mut retries = Vec::new();
    if !messages.is_empty() {
        note_first_send(engine, context);
        let verdicts: Vec<Verdict> = match context
            .sender
            .send_sharing(
                &Batch {
                    version: WIRE_VERSION,
                    messages,
                },
                engine.settings.batch_size,
            )
            .await
        {
            Ok(statuses) => statuses
                .into_iter()
                .zip(&sent)
                .map(|(status, p)| results::verdict(status, p.attempt, engine.settings.retries))
                .collect(),
            Err(error) => {
                let verdicts: Vec<Verdict> = sent
                    .iter()
                    .map(|p| {
                        results::retry_or_give_up(
                            error.to_string(),
                            None,
                            p.attempt,
                            engine.settings.retries,
                        )
                    })
                    .collect();
                // Say what happens to them: with `retries: 0` or tries used
                // up they fail, they are not retried.
                let retried = verdicts
                    .iter()
                    .filter(|v| matches!(v, Verdict::Retry { .. }))
                    .count();
                let failed = verdicts.len() - retried;
                warn!(delivery_id = %run.delivery_id, run_id = %run.id, %error, retried, failed, "Batch failed as a whole: messages with tries left will be retried, the others fail.");
                verdicts
            }
        };
        let now = engine.clock.now();
        for (pending, verdict) in sent.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Final {
                    outcome: o,
                    provider_message_id,
                    detail,
                    suppression,
                } => {
                    let address = pending.recipient.address.clone();
                    match suppression {
                        Suppression::None => {}
                        Suppression::ResetSoftBounces => resets.push(address),
                        effect => suppressions.push((address, effect)),
                    }
                    finals.push(outcome(
                        &pending.recipient,
                        o,
                        provider_message_id,
                        detail,
                        now,
                    ));
                }
                Verdict::Retry { after, .. } => {
                    retries.push(Pending {
                        not_before: results::retry_at(Instant::now(), pending.attempt, after),
                        attempt: pending.attempt + 1,
                        recipient: pending.recipient,
                    });
                }
            }
        }
    }
    // Resetting soft-bounce counts is idempotent, so it rides along with
    // the outcomes (one round trip for both); counting a bounce is not, so
    // it waits until the outcomes are safe and a resent batch is not
    // counted twice.
    let store = &engine.store;
    let completed = match last.filter(|_| retries.is_empty()) {
        Some(number) => {
            let now = engine.clock.now();
            let (owner, id) = (&engine.owner, &run.id);
            Some(
                store
                    .record_last(id, number, owner, &finals, &resets, now)
                    .await?,
            )
        }
        None if finals.is_empty() => None,
        None => {
            store.record_sent(&run.id, &finals, &resets).await?;
            None
        }
    };
    count_messages(&run.channel, &finals);
    apply_suppressions(engine, suppressions).await?;
    Ok(match completed {
        Some(more) => Sent::Completed(more),
        None => Sent::Retry(retries),
    })
}

/// Adds a batch's outcomes to `herald_messages_total`: one registry
/// lookup per outcome kind, not per message.
fn count_messages(channel: &str, finals: &[RecipientOutcome]) {
    let mut counts: Vec<(Outcome, u64)> = Vec::new();
    for o in finals {
        match counts.iter_mut().find(|(kind, _)| *kind == o.outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.outcome, 1)),
        }
    }
    for (outcome, n) in counts {
        metrics::counter!("herald_messages_total", "channel" => channel.to_owned(), "outcome" => outcome.as_str())
            .increment(n);
    }
}

/// The rendered message for one recipient, or why it cannot be sent.
fn render(context: &RunContext, recipient: &FrozenRecipient) -> Result<Message, String> {
    let rendered = context
        .renderer
        .render_recipient(&recipient.id, &recipient.fields, context.run.id.as_str())
        .map_err(|e| e.to_string())?;
    let mut message = Message {
        message_id: format!("{}/{}", context.run.id, recipient.id),
        run_id: context.run.id.to_string(),
        recipient_id: recipient.id.clone(),
        channel: context.run.channel.clone(),
        address: recipient.address.clone(),
        content: rendered.content,
        headers: rendered.headers,
        data: rendered.data,
    };
    if let Some((tracking, choice)) = &context.tracking {
        tracking.decorate(&mut message, *choice)?;
    }
    Ok(message)
}

/// Records the schedule lag once per run and instance: from the instant
/// the run was due (its time, or its confirmation if later) to now.
fn note_first_send(engine: &Engine, context: &RunContext) {
    if context.first_sent.swap(true, Ordering::Relaxed) {
        return;
    }
    let run = &context.run;
    let due = run.due;
    let lag = (engine.clock.now() - due).to_std().unwrap_or_default();
    metrics::histogram!("herald_schedule_lag_seconds").record(lag.as_secs_f64());
    info!(delivery_id = %run.delivery_id, run_id = %run.id, lag_ms = lag.as_millis() as u64, "First message of the run handed to the plugin.");
}

async fn apply_suppressions(
    engine: &Engine,
    effects: Vec<(String, Suppression)>,
) -> StoreResult<()> {
    let store = &engine.store;
    let now = engine.clock.now();
    for (address, effect) in effects {
        match effect {
            Suppression::None | Suppression::ResetSoftBounces => {}
            Suppression::Quarantine => {
                store
                    .suppress(SuppressionList::Quarantine, &address, "hard_bounce", now)
                    .await?;
            }
            Suppression::CountSoftBounce => {
                store
                    .soft_bounce(&address, engine.soft_threshold.get(), now)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Gives every recipient left in the chunk the outcome `cancelled`.
async fn cancel_rest(
    engine: &Engine,
    context: &RunContext,
    number: u32,
    queue: VecDeque<Pending>,
) -> StoreResult<bool> {
    let now = engine.clock.now();
    let cancelled: Vec<RecipientOutcome> = queue
        .iter()
        .map(|p| outcome(&p.recipient, Outcome::Cancelled, None, None, now))
        .collect();
    for batch in cancelled.chunks(engine.settings.chunk_size.max(1)) {
        engine.store.record_outcomes(&context.run.id, batch).await?;
    }
    engine
        .store
        .complete_chunk(&context.run.id, number, &engine.owner, now)
        .await
}

fn outcome(
    recipient: &FrozenRecipient,
    outcome: Outcome,
    provider_message_id: Option<String>,
    detail: Option<String>,
    at: chrono::DateTime<chrono::Utc>,
) -> RecipientOutcome {
    RecipientOutcome {
        recipient_id: recipient.id.clone(),
        address: recipient.address.clone(),
        outcome,
        reason: None,
        provider_message_id,
        detail,
        at,
    }
}

/// Renews the chunk's lease every third of its length; flags a lost lease
/// (and then waits, for the sending to see the flag and stop).
async fn renew_lease(
    engine: &Engine,
    run_id: &crate::runs::RunId,
    chunk: u32,
    lost: &AtomicBool,
) -> std::convert::Infallible {
    let lease = engine.settings.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let until = engine.clock.now() + chrono::Duration::from_std(lease).unwrap_or_default();
        match engine
            .store
            .renew_lease(run_id, chunk, &engine.owner, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Relaxed);
                return std::future::pending().await;
            }
            // A store outage: keep trying; the lease may still hold.
            Err(error) => {
                warn!(delivery_id = run_id.delivery_id(), run_id = %run_id, chunk, %error, "Could not renew the lease.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batch_size;

    #[test]
    fn a_throttled_batch_holds_at_most_one_seconds_worth() {
        assert_eq!(batch_size(50, None), 50);
        assert_eq!(batch_size(50, Some(2.0)), 2);
        assert_eq!(batch_size(50, Some(8.5)), 8);
        assert_eq!(batch_size(10, Some(50.0)), 10);
        // Slower than one a second: one message at a time.
        assert_eq!(batch_size(50, Some(0.1)), 1);
        assert_eq!(batch_size(50, Some(0.0)), 50);
    }
}
