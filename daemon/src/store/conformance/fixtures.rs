//! Fixtures: fixed instants, runs brought into each state, outcomes.

use crate::runs::{ExclusionReason, Outcome, RunId, RunState};
use crate::store::*;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::BTreeMap;

/// The suite's fixed "today": 7 Dec 2026 08:00 UTC, plus `secs`.
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap() + Span::seconds(secs)
}

/// A run of `delivery` scheduled at `t(scheduled)`, created at `t(0)`,
/// with its confirm deadline half-way.
pub fn new_run(delivery: &str, scheduled: i64, confirm_required: bool) -> NewRun {
    let scheduled_for = t(scheduled);
    NewRun {
        id: RunId::at(delivery, scheduled_for),
        delivery_id: delivery.to_owned(),
        channel: "email".to_owned(),
        scheduled_for,
        confirm_deadline: t(scheduled / 2),
        confirm_required,
        aggregation_period: None,
        definition: format!(r#"{{"id":"{delivery}"}}"#),
        definition_hash: "sha256:00".to_owned(),
        throttle_per_second: None,
        created_at: t(0),
    }
}

/// The id of recipient `i` of chunk `c` of a run of `delivery`.
pub fn rid(delivery: &str, c: u32, i: usize) -> String {
    format!("{delivery}-{c}-{i}")
}

/// Chunk `c` of a run of `delivery` with `n` recipients.
pub fn chunk(delivery: &str, c: u32, n: usize) -> Chunk {
    Chunk {
        number: c,
        recipients: (0..n)
            .map(|i| FrozenRecipient {
                id: rid(delivery, c, i),
                address: format!("{}@example.test", rid(delivery, c, i)),
                fields: std::sync::Arc::new(BTreeMap::from([("name".to_owned(), format!("R{i}"))])),
            })
            .collect(),
    }
}

/// Writes the chunks (sizes in `sizes`) and finishes preparation at `now`.
pub async fn prepare(
    store: &SharedStore,
    run: &NewRun,
    sizes: &[usize],
    now: DateTime<Utc>,
) -> StoreResult<Transition> {
    assert!(
        store
            .claim_preparation(&run.id, "prep", now + Span::seconds(60), now)
            .await
            .unwrap()
    );
    for (c, n) in sizes.iter().enumerate() {
        store
            .put_chunk(&run.id, &chunk(&run.delivery_id, c as u32, *n))
            .await
            .unwrap();
    }
    let prepared = Prepared {
        targeted: sizes.iter().sum::<usize>() as u64 + 1,
        excluded_by_reason: BTreeMap::from([(ExclusionReason::Duplicate, 1)]),
        chunks: sizes.len() as u32,
        preview: Some(Preview {
            recipient_id: rid(&run.delivery_id, 0, 0),
            content: BTreeMap::from([("subject".to_owned(), "Hello R0".to_owned())]),
        }),
    };
    store
        .finish_preparation(&run.id, "prep", &prepared, now)
        .await
}

/// A run of `delivery` that is sending since `t(0)` with chunks of `sizes`.
pub async fn sending_run(store: &SharedStore, delivery: &str, sizes: &[usize]) -> RunId {
    let run = new_run(delivery, 0, false);
    assert!(store.create_run(&run).await.unwrap());
    let state = done(prepare(store, &run, sizes, t(0)).await).state;
    assert_eq!(state, RunState::Sending);
    run.id
}

/// A pending run of `delivery` scheduled at `t(3600)` whose confirm
/// deadline is `t(deadline)`, which may be after its instant as in a
/// delivery's `confirm_deadline: 6h`.
pub async fn pending_until(store: &SharedStore, delivery: &str, deadline: i64) -> RunId {
    let mut run = new_run(delivery, 3600, true);
    run.confirm_deadline = t(deadline);
    assert!(store.create_run(&run).await.unwrap());
    assert_eq!(
        done(prepare(store, &run, &[2], t(0)).await).state,
        RunState::Pending
    );
    run.id
}

/// A run of `delivery` brought into `state` (scheduled at `t(3600)`, or
/// `t(0)` for the sending states).
pub async fn run_in(store: &SharedStore, delivery: &str, state: RunState) -> RunId {
    let pending = new_run(delivery, 3600, true);
    let create = |run: NewRun| async move {
        assert!(store.create_run(&run).await.unwrap());
        run
    };
    let id = match state {
        RunState::Preparing => create(pending).await.id,
        RunState::Pending | RunState::Expired => {
            let run = create(pending).await;
            done(prepare(store, &run, &[2], t(0)).await);
            if state == RunState::Expired {
                done(store.expire(&run.id, t(1800)).await);
            }
            run.id
        }
        RunState::Scheduled => {
            let run = create(new_run(delivery, 3600, false)).await;
            done(prepare(store, &run, &[2], t(0)).await);
            run.id
        }
        RunState::Sending | RunState::Paused | RunState::Sent => {
            let id = sending_run(store, delivery, &[2]).await;
            if state == RunState::Paused {
                done(store.pause(&id, "ann", t(1)).await);
            }
            if state == RunState::Sent {
                let claimed = store
                    .claim_chunk(&id, "a", t(60), t(1))
                    .await
                    .unwrap()
                    .unwrap();
                let outs: Vec<_> = claimed
                    .recipients
                    .iter()
                    .map(|r| delivered(&r.id, t(2)))
                    .collect();
                store.record_outcomes(&id, &outs).await.unwrap();
                store
                    .complete_chunk(&id, claimed.number, "a", t(2))
                    .await
                    .unwrap();
            }
            id
        }
        RunState::Cancelled => {
            let run = create(pending).await;
            done(
                store
                    .cancel(&run.id, Some("ann"), CancelReason::Cancelled, t(1))
                    .await,
            );
            run.id
        }
        RunState::Failed => {
            let run = create(pending).await;
            done(store.fail_run(&run.id, "audience unreadable", t(1)).await);
            run.id
        }
    };
    assert_eq!(state_of(store, &id).await, state, "fixture for {state}");
    id
}

/// A `delivered` outcome of recipient `id` with a provider message id.
pub fn delivered(id: &str, at: DateTime<Utc>) -> RecipientOutcome {
    outcome(id, Outcome::Delivered, at)
}

/// An outcome of recipient `id`.
pub fn outcome(id: &str, outcome: Outcome, at: DateTime<Utc>) -> RecipientOutcome {
    RecipientOutcome {
        recipient_id: id.to_owned(),
        address: format!("{id}@example.test"),
        outcome,
        reason: (outcome == Outcome::Excluded).then_some(ExclusionReason::Denylisted),
        provider_message_id: (outcome == Outcome::Delivered).then(|| format!("pm-{id}")),
        detail: matches!(outcome, Outcome::Bounced | Outcome::Failed)
            .then(|| "550 no such user".to_owned()),
        at,
    }
}

/// The run of a `Done` transition; panics with the transition or the
/// error otherwise.
pub fn done(transition: StoreResult<Transition>) -> Run {
    match transition.expect("the store answers") {
        Transition::Done(run) => *run,
        other => panic!("expected Done, got {other:?}"),
    }
}

/// The state a run is in now.
pub async fn state_of(store: &SharedStore, id: &RunId) -> RunState {
    store.run(id).await.unwrap().expect("the run exists").state
}

/// Whether the run is among those due at `now`.
pub async fn is_due(store: &SharedStore, id: &RunId, now: DateTime<Utc>) -> bool {
    store.due_runs(now, 1000).await.unwrap().contains(id)
}

/// Whether run `id` comes to be not due at `now` within 2 s: a run just
/// started by `take_due` leaves the agenda's due runs only once the store
/// has applied its new instant, which its caller does not wait for.
pub async fn comes_off_due(store: &SharedStore, id: &RunId, now: DateTime<Utc>) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while is_due(store, id, now).await {
        if std::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    true
}

/// The run's counters.
pub async fn counters(store: &SharedStore, id: &RunId) -> Counters {
    store
        .run(id)
        .await
        .unwrap()
        .expect("the run exists")
        .counters
}
