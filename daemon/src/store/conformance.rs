//! The conformance suite every [`Store`] backend passes, so the embedded
//! and the Redis backends cannot drift apart.
//!
//! Each behaviour is one `pub async fn` taking a fresh, empty
//! [`SharedStore`]; [`conformance_tests!`] expands to one `#[tokio::test]`
//! per behaviour inside a module named after the backend, so a failure
//! names both. Instants are fixed (never the system clock), so the suite
//! also checks that backends take time from the `now` arguments.
//!
//! Where the contract leaves an instant free (a run "due now" may be
//! recorded at any instant not after the operation's `now`), the tests
//! assert only what the contract fixes.

use super::*;
use crate::runs::{ExclusionReason, Outcome, RunId, RunState};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// Expands to one `#[tokio::test]` per behaviour of the suite, in a module
/// named `$backend`; `$make` is an `async fn() -> SharedStore` giving a
/// fresh, empty store each time.
macro_rules! conformance_tests {
    ($backend:ident, $make:path) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::store::conformance::conformance_tests!(@each $make;
                ping_answers,
                create_run_is_idempotent,
                concurrent_creates_of_one_run_create_it_once,
                a_new_run_is_preparing_and_due_now,
                unknown_runs_read_as_none_and_actions_as_not_found,
                schedule_cursors_move_forward_only,
                preparation_lease_excludes_other_owners_and_delays_the_run,
                preparation_cannot_be_claimed_once_the_run_left_preparing,
                finishing_preparation_with_confirm_makes_the_run_pending_until_its_deadline,
                finishing_preparation_before_the_instant_schedules_the_run,
                finishing_preparation_at_the_instant_starts_sending,
                finishing_preparation_of_a_cancelled_run_leaves_it_cancelled,
                a_run_without_chunks_is_sent_as_soon_as_it_starts_sending,
                actions_follow_the_state_action_table,
                confirm_before_the_instant_schedules_and_records_the_confirmer,
                confirm_after_the_instant_starts_sending,
                concurrent_confirms_of_one_run_succeed_once,
                cancel_records_who_when_why_and_takes_the_run_off_the_agenda,
                a_run_cancelled_before_sending_records_no_outcome,
                expire_only_once_the_confirm_deadline_has_passed,
                start_sending_only_once_the_instant_has_come,
                fail_run_stops_any_run_that_is_not_final,
                pause_stops_claims_and_resume_makes_the_run_due,
                chunks_are_claimed_lowest_first_each_by_one_owner,
                a_fully_leased_run_is_due_when_the_first_lease_expires,
                an_expired_lease_is_reclaimed_with_only_unfinished_recipients,
                renewing_a_lease_fails_once_another_owner_took_it,
                a_stale_owner_cannot_complete_a_chunk,
                completing_every_chunk_sends_the_run,
                a_released_chunk_is_claimable_at_once,
                a_run_cancelled_while_sending_hands_out_its_chunks_as_cancelled,
                outcomes_are_set_once_and_counted_once,
                excluded_outcomes_are_recorded_but_not_counted,
                history_lists_outcomes_newest_first_in_pages,
                provider_message_ids_find_their_recipient,
                amending_a_delivered_outcome_moves_one_count,
                amending_an_unknown_recipient_gives_none,
                tracking_is_unique_per_recipient_and_a_click_implies_an_open,
                recount_rebuilds_counters_from_the_records,
                throttle_allows_a_seconds_burst_then_spaces_messages,
                throttles_of_different_deliveries_are_independent,
                suppress_is_idempotent_and_the_denylist_wins,
                suppressions_are_listed_by_address_in_pages,
                soft_bounces_quarantine_at_the_threshold_until_reset,
                runs_are_listed_newest_first_with_filters_and_pages,
                due_runs_come_soonest_first_up_to_the_limit,
                runs_are_counted_by_state,
                changes_are_notified_when_a_run_becomes_due_sooner,
            );
        }
    };
    (@each $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::store::conformance::$name($make().await).await;
            }
        )+
    };
}
pub(crate) use conformance_tests;

// ----- fixtures -----

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
                fields: BTreeMap::from([("name".to_owned(), format!("R{i}"))]),
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

/// The run's counters.
pub async fn counters(store: &SharedStore, id: &RunId) -> Counters {
    store
        .run(id)
        .await
        .unwrap()
        .expect("the run exists")
        .counters
}

// ----- health, creation, cursors -----

/// `ping` answers on a working store.
pub async fn ping_answers(store: SharedStore) {
    store.ping().await.unwrap();
}

/// A second create with the same id is a no-op returning false.
pub async fn create_run_is_idempotent(store: SharedStore) {
    let run = new_run("digest", 3600, true);
    assert!(store.create_run(&run).await.unwrap());
    done(
        store
            .cancel(&run.id, Some("ann"), CancelReason::Cancelled, t(1))
            .await,
    );
    let mut again = run.clone();
    again.definition = r#"{"id":"other"}"#.to_owned();
    assert!(!store.create_run(&again).await.unwrap());
    assert_eq!(state_of(&store, &run.id).await, RunState::Cancelled);
    assert_eq!(
        store.definition(&run.id).await.unwrap().as_deref(),
        Some(run.definition.as_str())
    );
}

/// Many instances creating the same occurrence at once create one run (G1).
pub async fn concurrent_creates_of_one_run_create_it_once(store: SharedStore) {
    let run = new_run("digest", 3600, false);
    let creates = (0..8).map(|_| {
        let (store, run) = (store.clone(), run.clone());
        tokio::spawn(async move { store.create_run(&run).await.unwrap() })
    });
    let mut created = 0;
    for c in creates {
        created += c.await.unwrap() as usize;
    }
    assert_eq!(created, 1);
}

/// A new run is `preparing`, carries what it was created with, and is due.
pub async fn a_new_run_is_preparing_and_due_now(store: SharedStore) {
    let new = new_run("digest", 3600, true);
    store.create_run(&new).await.unwrap();
    let run = store.run(&new.id).await.unwrap().unwrap();
    assert_eq!(run.state, RunState::Preparing);
    assert_eq!(
        (
            run.delivery_id.as_str(),
            run.channel.as_str(),
            run.scheduled_for,
            run.confirm_deadline
        ),
        ("digest", "email", new.scheduled_for, new.confirm_deadline)
    );
    assert!(run.confirm_required);
    assert_eq!(run.definition_hash, new.definition_hash);
    assert_eq!(run.created_at, new.created_at);
    assert_eq!(run.counters, Counters::default());
    assert_eq!((run.chunks, run.chunks_done), (0, 0));
    assert!(is_due(&store, &new.id, t(0)).await);
    assert!(store.next_due().await.unwrap().unwrap() <= t(0));
}

/// Reads of an unknown run give `None`; actions on it `NotFound`.
pub async fn unknown_runs_read_as_none_and_actions_as_not_found(store: SharedStore) {
    let id = RunId::once("ghost");
    assert!(store.run(&id).await.unwrap().is_none());
    assert!(store.definition(&id).await.unwrap().is_none());
    assert_eq!(
        store.confirm(&id, "ann", t(0)).await.unwrap(),
        Transition::NotFound
    );
    assert_eq!(
        store
            .cancel(&id, None, CancelReason::DeliveryRemoved, t(0))
            .await
            .unwrap(),
        Transition::NotFound
    );
    assert_eq!(
        store.pause(&id, "ann", t(0)).await.unwrap(),
        Transition::NotFound
    );
    assert_eq!(
        store.resume(&id, "ann", t(0)).await.unwrap(),
        Transition::NotFound
    );
    assert_eq!(store.expire(&id, t(0)).await.unwrap(), Transition::NotFound);
    assert_eq!(
        store.start_sending(&id, t(0)).await.unwrap(),
        Transition::NotFound
    );
    assert_eq!(
        store.fail_run(&id, "x", t(0)).await.unwrap(),
        Transition::NotFound
    );
    assert!(store.next_due().await.unwrap().is_none());
    assert!(store.outcome(&id, "r").await.unwrap().is_none());
}

/// Schedule cursors start empty and never move backward.
pub async fn schedule_cursors_move_forward_only(store: SharedStore) {
    assert_eq!(store.cursor("digest").await.unwrap(), None);
    store.advance_cursor("digest", t(100)).await.unwrap();
    store.advance_cursor("digest", t(50)).await.unwrap();
    assert_eq!(store.cursor("digest").await.unwrap(), Some(t(100)));
    store.advance_cursor("digest", t(200)).await.unwrap();
    assert_eq!(store.cursor("digest").await.unwrap(), Some(t(200)));
    assert_eq!(store.cursor("other").await.unwrap(), None);
}

// ----- preparation -----

/// The preparation lease is exclusive until it expires, and the run is due
/// again when it does, so a dead preparer is replaced.
pub async fn preparation_lease_excludes_other_owners_and_delays_the_run(store: SharedStore) {
    let run = new_run("digest", 3600, true);
    store.create_run(&run).await.unwrap();
    assert!(
        store
            .claim_preparation(&run.id, "a", t(60), t(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_preparation(&run.id, "b", t(70), t(10))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_preparation(&run.id, "a", t(90), t(30))
            .await
            .unwrap(),
        "the holder renews"
    );
    assert!(!is_due(&store, &run.id, t(60)).await);
    assert!(is_due(&store, &run.id, t(91)).await);
    assert!(
        store
            .claim_preparation(&run.id, "b", t(160), t(91))
            .await
            .unwrap()
    );
    assert!(!is_due(&store, &run.id, t(100)).await);
}

/// Only a `preparing` run can be claimed for preparation.
pub async fn preparation_cannot_be_claimed_once_the_run_left_preparing(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Pending).await;
    assert!(
        !store
            .claim_preparation(&id, "a", t(60), t(0))
            .await
            .unwrap()
    );
    let id = run_in(&store, "gone", RunState::Cancelled).await;
    assert!(
        !store
            .claim_preparation(&id, "a", t(60), t(0))
            .await
            .unwrap()
    );
}

/// With confirmation asked, preparation ends in `pending`, due at the
/// confirm deadline, with the counts and the preview recorded.
pub async fn finishing_preparation_with_confirm_makes_the_run_pending_until_its_deadline(
    store: SharedStore,
) {
    let new = new_run("digest", 3600, true);
    store.create_run(&new).await.unwrap();
    let run = done(prepare(&store, &new, &[3, 2], t(5)).await);
    assert_eq!(run.state, RunState::Pending);
    assert_eq!(run.chunks, 2);
    assert_eq!(run.counters.targeted, 6);
    assert_eq!(
        run.counters.excluded_by_reason,
        BTreeMap::from([(ExclusionReason::Duplicate, 1)])
    );
    assert_eq!(run.counters.to_send(), 5);
    assert_eq!(
        run.preview.as_ref().unwrap().recipient_id,
        rid("digest", 0, 0)
    );
    assert_eq!(store.run(&new.id).await.unwrap().unwrap(), run);
    assert!(!is_due(&store, &new.id, t(1799)).await);
    assert!(is_due(&store, &new.id, t(1800)).await);
    assert!(
        store
            .claim_chunk(&new.id, "a", t(60), t(10))
            .await
            .unwrap()
            .is_none(),
        "nothing is sent while pending"
    );
}

/// Without confirmation and before its instant, the run is `scheduled`,
/// due at its instant.
pub async fn finishing_preparation_before_the_instant_schedules_the_run(store: SharedStore) {
    let new = new_run("digest", 3600, false);
    store.create_run(&new).await.unwrap();
    let run = done(prepare(&store, &new, &[2], t(5)).await);
    assert_eq!(run.state, RunState::Scheduled);
    assert!(run.started_at.is_none());
    assert!(!is_due(&store, &new.id, t(3599)).await);
    assert!(is_due(&store, &new.id, t(3600)).await);
    assert_eq!(store.next_due().await.unwrap(), Some(t(3600)));
}

/// Without confirmation and at or after its instant, the run sends at once.
pub async fn finishing_preparation_at_the_instant_starts_sending(store: SharedStore) {
    let new = new_run("digest", 0, false);
    store.create_run(&new).await.unwrap();
    let run = done(prepare(&store, &new, &[2], t(5)).await);
    assert_eq!(run.state, RunState::Sending);
    assert_eq!(run.started_at, Some(t(5)));
    assert!(is_due(&store, &new.id, t(5)).await);
}

/// A run cancelled during preparation stays cancelled when it finishes.
pub async fn finishing_preparation_of_a_cancelled_run_leaves_it_cancelled(store: SharedStore) {
    let new = new_run("digest", 0, false);
    store.create_run(&new).await.unwrap();
    assert!(
        store
            .claim_preparation(&new.id, "prep", t(60), t(0))
            .await
            .unwrap()
    );
    store
        .put_chunk(&new.id, &chunk("digest", 0, 2))
        .await
        .unwrap();
    done(
        store
            .cancel(&new.id, None, CancelReason::DeliveryRemoved, t(1))
            .await,
    );
    let prepared = Prepared {
        targeted: 2,
        excluded_by_reason: BTreeMap::new(),
        chunks: 1,
        preview: None,
    };
    let result = store
        .finish_preparation(&new.id, "prep", &prepared, t(2))
        .await
        .unwrap();
    assert_eq!(result, Transition::Conflict(RunState::Cancelled));
    assert_eq!(state_of(&store, &new.id).await, RunState::Cancelled);
    assert!(!is_due(&store, &new.id, t(100)).await);
    assert!(
        store
            .claim_chunk(&new.id, "a", t(60), t(3))
            .await
            .unwrap()
            .is_none()
    );
}

/// A run whose every row was excluded has no chunk and is `sent` at once.
pub async fn a_run_without_chunks_is_sent_as_soon_as_it_starts_sending(store: SharedStore) {
    let now_run = new_run("now", 0, false);
    store.create_run(&now_run).await.unwrap();
    let run = done(prepare(&store, &now_run, &[], t(1)).await);
    assert_eq!(run.state, RunState::Sent);
    assert_eq!(run.finished_at, Some(t(1)));
    assert!(!is_due(&store, &now_run.id, t(100)).await);

    let later = new_run("later", 3600, false);
    store.create_run(&later).await.unwrap();
    assert_eq!(
        done(prepare(&store, &later, &[], t(1)).await).state,
        RunState::Scheduled
    );
    let run = done(store.start_sending(&later.id, t(3600)).await);
    assert_eq!(run.state, RunState::Sent);
    assert_eq!(run.finished_at, Some(t(3600)));
    assert!(store.next_due().await.unwrap().is_none());
}

// ----- actions -----

/// Confirm, cancel, pause and resume in every state give the spec's table
/// (README, "What each action does in each state"); a conflict carries the
/// current state and changes nothing.
pub async fn actions_follow_the_state_action_table(store: SharedStore) {
    use RunState::*;
    let now = t(10);
    for state in RunState::ALL.iter().copied() {
        for action in ["confirm", "cancel", "pause", "resume"] {
            let delivery = format!("{}-{action}", state.as_str());
            let id = run_in(&store, &delivery, state).await;
            let result = match action {
                "confirm" => store.confirm(&id, "ann", now).await,
                "cancel" => {
                    store
                        .cancel(&id, Some("ann"), CancelReason::Cancelled, now)
                        .await
                }
                "pause" => store.pause(&id, "ann", now).await,
                _ => store.resume(&id, "ann", now).await,
            }
            .unwrap();
            let expected = match (action, state) {
                ("confirm", Pending) => Some(Scheduled),
                ("cancel", s) if !s.is_final() => Some(Cancelled),
                ("pause", Sending) => Some(Paused),
                ("resume", Paused) => Some(Sending),
                _ => None,
            };
            match expected {
                Some(to) => assert_eq!(done(Ok(result)).state, to, "{action} from {state}"),
                None => {
                    assert_eq!(result, Transition::Conflict(state), "{action} from {state}");
                    assert_eq!(
                        state_of(&store, &id).await,
                        state,
                        "{action} from {state} changed nothing"
                    );
                }
            }
        }
    }
}

/// A confirm ahead of the instant schedules the run for its instant (G2).
pub async fn confirm_before_the_instant_schedules_and_records_the_confirmer(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Pending).await;
    let run = done(store.confirm(&id, "ann", t(100)).await);
    assert_eq!(run.state, RunState::Scheduled);
    assert_eq!(
        (run.confirmed_by.as_deref(), run.confirmed_at),
        (Some("ann"), Some(t(100)))
    );
    assert!(!is_due(&store, &id, t(3599)).await);
    assert!(
        store
            .claim_chunk(&id, "a", t(200), t(101))
            .await
            .unwrap()
            .is_none()
    );
    assert!(is_due(&store, &id, t(3600)).await);
    let run = done(store.start_sending(&id, t(3600)).await);
    assert_eq!(
        (run.state, run.started_at),
        (RunState::Sending, Some(t(3600)))
    );
}

/// A confirm after the instant sends at once.
pub async fn confirm_after_the_instant_starts_sending(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Pending).await;
    let run = done(store.confirm(&id, "ann", t(3700)).await);
    assert_eq!(
        (run.state, run.started_at),
        (RunState::Sending, Some(t(3700)))
    );
    assert!(is_due(&store, &id, t(3700)).await);
    assert!(
        store
            .claim_chunk(&id, "a", t(3800), t(3700))
            .await
            .unwrap()
            .is_some()
    );
}

/// Two confirmers at once: exactly one succeeds.
pub async fn concurrent_confirms_of_one_run_succeed_once(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Pending).await;
    let (a, b) = tokio::join!(
        store.confirm(&id, "ann", t(10)),
        store.confirm(&id, "bob", t(10))
    );
    let results = [a.unwrap(), b.unwrap()];
    let wins = results
        .iter()
        .filter(|r| matches!(r, Transition::Done(_)))
        .count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(
        results.contains(&Transition::Conflict(RunState::Scheduled)),
        "{results:?}"
    );
}

/// Cancel records its author, instant and reason; the run leaves the agenda.
pub async fn cancel_records_who_when_why_and_takes_the_run_off_the_agenda(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Pending).await;
    let run = done(
        store
            .cancel(&id, Some("ann"), CancelReason::Cancelled, t(20))
            .await,
    );
    assert_eq!(run.state, RunState::Cancelled);
    assert_eq!(run.cancelled_by.as_deref(), Some("ann"));
    assert_eq!(run.cancelled_at, Some(t(20)));
    assert_eq!(run.cancel_reason, Some(CancelReason::Cancelled));
    assert_eq!(run.finished_at, Some(t(20)));
    assert!(!is_due(&store, &id, t(100_000)).await);

    let id = run_in(&store, "removed", RunState::Scheduled).await;
    let run = done(
        store
            .cancel(&id, None, CancelReason::DeliveryRemoved, t(30))
            .await,
    );
    assert_eq!(
        (run.cancelled_by, run.cancel_reason),
        (None, Some(CancelReason::DeliveryRemoved))
    );
    assert!(store.next_due().await.unwrap().is_none());
}

/// A run cancelled before sending hands out no chunk and records no
/// outcome; its `to_send` stays as prepared.
pub async fn a_run_cancelled_before_sending_records_no_outcome(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Scheduled).await;
    let before = counters(&store, &id).await;
    done(
        store
            .cancel(&id, Some("ann"), CancelReason::Cancelled, t(10))
            .await,
    );
    assert!(
        store
            .claim_chunk(&id, "a", t(5000), t(3600))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(counters(&store, &id).await, before);
    assert_eq!(before.to_send(), 2);
    assert!(
        store
            .outcome(&id, &rid("digest", 0, 0))
            .await
            .unwrap()
            .is_none()
    );
}

/// `expire` applies only to a pending run past its confirm deadline.
pub async fn expire_only_once_the_confirm_deadline_has_passed(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Pending).await;
    assert_eq!(
        store.expire(&id, t(1799)).await.unwrap(),
        Transition::Conflict(RunState::Pending)
    );
    let run = done(store.expire(&id, t(1800)).await);
    assert_eq!(
        (run.state, run.finished_at),
        (RunState::Expired, Some(t(1800)))
    );
    assert!(!is_due(&store, &id, t(100_000)).await);
    let id = run_in(&store, "sched", RunState::Scheduled).await;
    assert_eq!(
        store.expire(&id, t(5000)).await.unwrap(),
        Transition::Conflict(RunState::Scheduled)
    );
}

/// `start_sending` applies only to a scheduled run whose instant has come.
pub async fn start_sending_only_once_the_instant_has_come(store: SharedStore) {
    let id = run_in(&store, "digest", RunState::Scheduled).await;
    assert_eq!(
        store.start_sending(&id, t(3599)).await.unwrap(),
        Transition::Conflict(RunState::Scheduled)
    );
    let run = done(store.start_sending(&id, t(3600)).await);
    assert_eq!(
        (run.state, run.started_at),
        (RunState::Sending, Some(t(3600)))
    );
    assert_eq!(
        store.start_sending(&id, t(3601)).await.unwrap(),
        Transition::Conflict(RunState::Sending)
    );
    let id = run_in(&store, "pend", RunState::Pending).await;
    assert_eq!(
        store.start_sending(&id, t(5000)).await.unwrap(),
        Transition::Conflict(RunState::Pending)
    );
}

/// `fail_run` stops any run that is not final, with its reason.
pub async fn fail_run_stops_any_run_that_is_not_final(store: SharedStore) {
    for state in RunState::ALL.iter().copied() {
        let id = run_in(&store, &format!("f-{}", state.as_str()), state).await;
        let result = store
            .fail_run(&id, "audience unreadable", t(10))
            .await
            .unwrap();
        if state.is_final() {
            assert_eq!(result, Transition::Conflict(state));
        } else {
            let run = done(Ok(result));
            assert_eq!(run.state, RunState::Failed);
            assert_eq!(run.failure.as_deref(), Some("audience unreadable"));
            assert_eq!(run.finished_at, Some(t(10)));
            assert!(
                !is_due(&store, &id, t(100_000)).await,
                "failed from {state}"
            );
        }
    }
}

/// Pausing stops claims and takes the run off the agenda; resuming makes
/// it due again and claims resume.
pub async fn pause_stops_claims_and_resume_makes_the_run_due(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2, 2]).await;
    let run = done(store.pause(&id, "ann", t(5)).await);
    assert_eq!(
        (run.paused_by.as_deref(), run.paused_at),
        (Some("ann"), Some(t(5)))
    );
    assert!(!is_due(&store, &id, t(100)).await);
    assert!(
        store
            .claim_chunk(&id, "a", t(100), t(6))
            .await
            .unwrap()
            .is_none()
    );
    let run = done(store.resume(&id, "bob", t(7)).await);
    assert_eq!(
        (run.resumed_by.as_deref(), run.resumed_at),
        (Some("bob"), Some(t(7)))
    );
    assert!(is_due(&store, &id, t(7)).await);
    assert_eq!(
        store
            .claim_chunk(&id, "a", t(100), t(8))
            .await
            .unwrap()
            .unwrap()
            .number,
        0
    );
}

// ----- chunks and leases -----

/// Each chunk goes to one owner, lowest number first; a claimed chunk
/// carries its recipients.
pub async fn chunks_are_claimed_lowest_first_each_by_one_owner(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2, 3, 1]).await;
    let a = store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    let b = store
        .claim_chunk(&id, "b", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.number, b.number), (0, 1));
    assert_eq!(a.recipients, chunk("digest", 0, 2).recipients);
    assert_eq!(b.recipients.len(), 3);
    assert!(!a.cancelled);
    let c = store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.number, 2);
    assert!(
        store
            .claim_chunk(&id, "c", t(60), t(2))
            .await
            .unwrap()
            .is_none()
    );
}

/// With every chunk leased, the run is due when the earliest lease ends.
pub async fn a_fully_leased_run_is_due_when_the_first_lease_expires(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1, 1]).await;
    assert!(is_due(&store, &id, t(1)).await);
    store
        .claim_chunk(&id, "a", t(90), t(1))
        .await
        .unwrap()
        .unwrap();
    assert!(
        is_due(&store, &id, t(1)).await,
        "chunk 1 is still claimable"
    );
    store
        .claim_chunk(&id, "b", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!is_due(&store, &id, t(59)).await);
    assert!(is_due(&store, &id, t(61)).await);
    let next = store.next_due().await.unwrap().unwrap();
    assert!(next >= t(60) && next <= t(61), "next due {next}");
}

/// A lease that expired is reclaimed, and the new holder gets only the
/// recipients without an outcome (G3, G4).
pub async fn an_expired_lease_is_reclaimed_with_only_unfinished_recipients(store: SharedStore) {
    let id = sending_run(&store, "digest", &[3]).await;
    let a = store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    store
        .record_outcomes(&id, &[delivered(&a.recipients[0].id, t(2))])
        .await
        .unwrap();
    assert!(
        store
            .claim_chunk(&id, "b", t(120), t(60))
            .await
            .unwrap()
            .is_none(),
        "not before it expires"
    );
    let b = store
        .claim_chunk(&id, "b", t(120), t(61))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.number, 0);
    let ids: Vec<_> = b.recipients.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, vec![rid("digest", 0, 1), rid("digest", 0, 2)]);
}

/// Renewing works for the holder and fails once another owner took over.
pub async fn renewing_a_lease_fails_once_another_owner_took_it(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1]).await;
    store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    assert!(store.renew_lease(&id, 0, "a", t(120)).await.unwrap());
    assert!(
        store
            .claim_chunk(&id, "b", t(200), t(100))
            .await
            .unwrap()
            .is_none(),
        "the renewal holds"
    );
    store
        .claim_chunk(&id, "b", t(200), t(121))
        .await
        .unwrap()
        .unwrap();
    assert!(!store.renew_lease(&id, 0, "a", t(300)).await.unwrap());
    assert!(store.renew_lease(&id, 0, "b", t(300)).await.unwrap());
}

/// A holder whose lease was taken cannot complete (or release) the chunk.
pub async fn a_stale_owner_cannot_complete_a_chunk(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1]).await;
    store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    store
        .claim_chunk(&id, "b", t(200), t(61))
        .await
        .unwrap()
        .unwrap();
    store.complete_chunk(&id, 0, "a", t(62)).await.unwrap();
    store.release_chunk(&id, 0, "a").await.unwrap();
    let run = store.run(&id).await.unwrap().unwrap();
    assert_eq!((run.state, run.chunks_done), (RunState::Sending, 0));
    assert!(
        store
            .claim_chunk(&id, "c", t(300), t(63))
            .await
            .unwrap()
            .is_none(),
        "b still holds it"
    );
    store.complete_chunk(&id, 0, "b", t(64)).await.unwrap();
    assert_eq!(state_of(&store, &id).await, RunState::Sent);
}

/// The last completed chunk makes the run `sent`; it leaves the agenda.
pub async fn completing_every_chunk_sends_the_run(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1, 1]).await;
    for (owner, at) in [("a", 10), ("b", 20)] {
        let c = store
            .claim_chunk(&id, owner, t(at + 60), t(at))
            .await
            .unwrap()
            .unwrap();
        store
            .record_outcomes(&id, &[delivered(&c.recipients[0].id, t(at))])
            .await
            .unwrap();
        store
            .complete_chunk(&id, c.number, owner, t(at + 1))
            .await
            .unwrap();
    }
    let run = store.run(&id).await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.chunks_done, run.finished_at),
        (RunState::Sent, 2, Some(t(21)))
    );
    assert_eq!((run.counters.delivered, run.counters.remaining()), (2, 0));
    assert!(!is_due(&store, &id, t(100_000)).await);
    assert!(
        store
            .claim_chunk(&id, "a", t(200), t(100))
            .await
            .unwrap()
            .is_none()
    );
}

/// A released chunk (clean shutdown) is claimable at once and due now.
pub async fn a_released_chunk_is_claimable_at_once(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2]).await;
    store
        .claim_chunk(&id, "a", t(600), t(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!is_due(&store, &id, t(2)).await);
    store.release_chunk(&id, 0, "a").await.unwrap();
    assert!(is_due(&store, &id, t(2)).await);
    let b = store
        .claim_chunk(&id, "b", t(600), t(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.number, b.recipients.len()), (0, 2));
}

/// After a cancel while sending, the remaining chunks are handed out
/// marked `cancelled`; their recipients get `cancelled` outcomes and the
/// run keeps its state, with its end recorded.
pub async fn a_run_cancelled_while_sending_hands_out_its_chunks_as_cancelled(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2, 2]).await;
    let first = store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    store
        .record_outcomes(&id, &[delivered(&first.recipients[0].id, t(2))])
        .await
        .unwrap();
    let run = done(
        store
            .cancel(&id, Some("ann"), CancelReason::Cancelled, t(3))
            .await,
    );
    assert_eq!((run.state, run.finished_at), (RunState::Cancelled, None));
    assert!(
        is_due(&store, &id, t(3)).await,
        "its chunks still need their outcomes"
    );
    let second = store
        .claim_chunk(&id, "b", t(60), t(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.number, 1);
    assert!(second.cancelled);
    for c in [&second] {
        let outs: Vec<_> = c
            .recipients
            .iter()
            .map(|r| outcome(&r.id, Outcome::Cancelled, t(5)))
            .collect();
        store.record_outcomes(&id, &outs).await.unwrap();
        store
            .complete_chunk(&id, c.number, "b", t(5))
            .await
            .unwrap();
    }
    // The holder of chunk 0 finishes its batch in flight, then records the rest as cancelled.
    store
        .record_outcomes(
            &id,
            &[outcome(&first.recipients[1].id, Outcome::Cancelled, t(6))],
        )
        .await
        .unwrap();
    store.complete_chunk(&id, 0, "a", t(6)).await.unwrap();
    let run = store.run(&id).await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.finished_at, run.chunks_done),
        (RunState::Cancelled, Some(t(6)), 2)
    );
    assert_eq!(
        (
            run.counters.delivered,
            run.counters.cancelled,
            run.counters.remaining()
        ),
        (1, 3, 0)
    );
    assert!(!is_due(&store, &id, t(100_000)).await);
}

// ----- outcomes, history, feedback -----

/// An outcome is set once; a second one for the same recipient is ignored
/// and not counted.
pub async fn outcomes_are_set_once_and_counted_once(store: SharedStore) {
    let id = sending_run(&store, "digest", &[4]).await;
    let r = |i| rid("digest", 0, i);
    store
        .record_outcomes(
            &id,
            &[
                delivered(&r(0), t(1)),
                outcome(&r(1), Outcome::Bounced, t(1)),
                outcome(&r(2), Outcome::Failed, t(1)),
            ],
        )
        .await
        .unwrap();
    store
        .record_outcomes(
            &id,
            &[
                outcome(&r(0), Outcome::Failed, t(2)),
                delivered(&r(3), t(2)),
            ],
        )
        .await
        .unwrap();
    let c = counters(&store, &id).await;
    assert_eq!(
        (c.delivered, c.bounced, c.failed, c.cancelled),
        (2, 1, 1, 0)
    );
    assert_eq!(
        store.outcome(&id, &r(0)).await.unwrap().unwrap(),
        delivered(&r(0), t(1))
    );
    assert_eq!(
        store
            .outcome(&id, &r(1))
            .await
            .unwrap()
            .unwrap()
            .detail
            .as_deref(),
        Some("550 no such user")
    );
    assert!(store.outcome(&id, "nobody").await.unwrap().is_none());
}

/// `excluded` outcomes are recorded (and in the history) but move no
/// counter: exclusions are counted by `finish_preparation`.
pub async fn excluded_outcomes_are_recorded_but_not_counted(store: SharedStore) {
    let new = new_run("digest", 3600, true);
    store.create_run(&new).await.unwrap();
    store
        .record_outcomes(&new.id, &[outcome("dup", Outcome::Excluded, t(0))])
        .await
        .unwrap();
    let run = done(prepare(&store, &new, &[1], t(1)).await);
    assert_eq!(run.counters.excluded(), 1);
    assert_eq!(run.counters.sent() + run.counters.cancelled, 0);
    let recorded = store.outcome(&new.id, "dup").await.unwrap().unwrap();
    assert_eq!(
        (recorded.outcome, recorded.reason),
        (Outcome::Excluded, Some(ExclusionReason::Denylisted))
    );
    let history = store.history("dup", None, 10).await.unwrap();
    assert_eq!(history.items.len(), 1);
    assert_eq!(history.items[0].outcome, Outcome::Excluded);
}

/// A recipient's history lists its outcomes across runs, newest first, in
/// pages.
pub async fn history_lists_outcomes_newest_first_in_pages(store: SharedStore) {
    let mut ids = Vec::new();
    for (n, d) in ["a", "b", "c"].iter().enumerate() {
        let id = sending_run(&store, d, &[1]).await;
        store
            .record_outcomes(&id, &[delivered("alice", t(10 * (n as i64 + 1)))])
            .await
            .unwrap();
        ids.push(id);
    }
    let first = store.history("alice", None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.items[0].run_id, ids[2]);
    assert_eq!(first.items[1].run_id, ids[1]);
    let entry = &first.items[0];
    assert_eq!(
        (entry.delivery_id.as_str(), entry.channel.as_str()),
        ("c", "email")
    );
    assert_eq!(
        (
            entry.outcome,
            entry.provider_message_id.as_deref(),
            entry.at
        ),
        (Outcome::Delivered, Some("pm-alice"), t(30))
    );
    let second = store
        .history("alice", first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].run_id, ids[0]);
    assert_eq!(second.next_cursor, None);
    assert!(
        store
            .history("bob", None, 2)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Provider message ids of `delivered` outcomes lead back to the run and
/// recipient (feedback).
pub async fn provider_message_ids_find_their_recipient(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1]).await;
    store
        .record_outcomes(&id, &[delivered("alice", t(1))])
        .await
        .unwrap();
    assert_eq!(
        store.find_message("pm-alice").await.unwrap(),
        Some((id, "alice".to_owned()))
    );
    assert_eq!(store.find_message("pm-unknown").await.unwrap(), None);
}

/// Later feedback turns `delivered` into `bounced` or `failed`, moving one
/// count, and the history follows.
pub async fn amending_a_delivered_outcome_moves_one_count(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2]).await;
    store
        .record_outcomes(&id, &[delivered("alice", t(1)), delivered("bob", t(1))])
        .await
        .unwrap();
    let amended = store
        .amend_outcome(&id, "alice", Outcome::Bounced, "hard: 550", t(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (amended.outcome, amended.detail.as_deref()),
        (Outcome::Bounced, Some("hard: 550"))
    );
    assert_eq!(amended.address, "alice@example.test");
    store
        .amend_outcome(&id, "bob", Outcome::Failed, "rejected", t(5))
        .await
        .unwrap()
        .unwrap();
    let c = counters(&store, &id).await;
    assert_eq!((c.delivered, c.bounced, c.failed), (0, 1, 1));
    assert_eq!(
        store.outcome(&id, "alice").await.unwrap().unwrap().outcome,
        Outcome::Bounced
    );
    assert_eq!(
        store.history("alice", None, 5).await.unwrap().items[0].outcome,
        Outcome::Bounced
    );
    // A second bounce report for the same message moves nothing.
    let again = store
        .amend_outcome(&id, "alice", Outcome::Bounced, "hard: 550", t(6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.outcome, Outcome::Bounced);
    assert_eq!(counters(&store, &id).await, c);
}

/// Amending a recipient without an outcome gives `None` and moves nothing.
pub async fn amending_an_unknown_recipient_gives_none(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1]).await;
    assert!(
        store
            .amend_outcome(&id, "nobody", Outcome::Bounced, "x", t(5))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(counters(&store, &id).await.bounced, 0);
}

/// Tracking counts unique recipients per kind; a click implies an open.
pub async fn tracking_is_unique_per_recipient_and_a_click_implies_an_open(store: SharedStore) {
    let id = sending_run(&store, "digest", &[3]).await;
    let ev = |r: &str, k| (r.to_owned(), k);
    store
        .record_tracking(
            &id,
            &[
                ev("a", TrackingKind::Open),
                ev("a", TrackingKind::Open),
                ev("b", TrackingKind::Click),
            ],
        )
        .await
        .unwrap();
    store
        .record_tracking(
            &id,
            &[
                ev("b", TrackingKind::Open),
                ev("a", TrackingKind::Click),
                ev("c", TrackingKind::Unsubscribe),
                ev("c", TrackingKind::Unsubscribe),
            ],
        )
        .await
        .unwrap();
    let c = counters(&store, &id).await;
    assert_eq!((c.opened, c.clicked, c.unsubscribed), (2, 2, 1));
}

/// `recount` rebuilds the outcome and tracking counters from the records,
/// keeping the prepared counts.
pub async fn recount_rebuilds_counters_from_the_records(store: SharedStore) {
    let id = sending_run(&store, "digest", &[4]).await;
    let r = |i| rid("digest", 0, i);
    store
        .record_outcomes(
            &id,
            &[
                delivered(&r(0), t(1)),
                delivered(&r(1), t(1)),
                outcome(&r(2), Outcome::Failed, t(1)),
                outcome(&r(3), Outcome::Cancelled, t(1)),
            ],
        )
        .await
        .unwrap();
    store
        .amend_outcome(&id, &r(1), Outcome::Bounced, "late", t(2))
        .await
        .unwrap();
    store
        .record_tracking(
            &id,
            &[
                (r(0), TrackingKind::Click),
                (r(0), TrackingKind::Unsubscribe),
            ],
        )
        .await
        .unwrap();
    let before = counters(&store, &id).await;
    let recounted = store.recount(&id).await.unwrap();
    assert_eq!(recounted, before);
    assert_eq!(
        (
            recounted.delivered,
            recounted.bounced,
            recounted.failed,
            recounted.cancelled
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (recounted.opened, recounted.clicked, recounted.unsubscribed),
        (1, 1, 1)
    );
    assert_eq!((recounted.targeted, recounted.excluded()), (5, 1));
    assert_eq!(counters(&store, &id).await, recounted);
}

// ----- throttle -----

/// A throttle of N/s lets a burst of N through, then spaces the rest.
pub async fn throttle_allows_a_seconds_burst_then_spaces_messages(store: SharedStore) {
    assert_eq!(
        store.throttle("digest", 10.0, 10, t(0)).await.unwrap(),
        Duration::ZERO
    );
    assert_eq!(
        store.throttle("digest", 10.0, 10, t(0)).await.unwrap(),
        Duration::from_secs(1)
    );
    assert_eq!(
        store.throttle("digest", 10.0, 5, t(1)).await.unwrap(),
        Duration::from_millis(500)
    );
    // After a quiet while the bucket is full again.
    assert_eq!(
        store.throttle("digest", 10.0, 10, t(100)).await.unwrap(),
        Duration::ZERO
    );
    assert_eq!(
        store.throttle("digest", 10.0, 1, t(100)).await.unwrap(),
        Duration::from_millis(100)
    );
}

/// Each delivery has its own throttle.
pub async fn throttles_of_different_deliveries_are_independent(store: SharedStore) {
    assert_eq!(
        store.throttle("a", 2.0, 4, t(0)).await.unwrap(),
        Duration::from_secs(1)
    );
    assert_eq!(
        store.throttle("b", 2.0, 2, t(0)).await.unwrap(),
        Duration::ZERO
    );
}

// ----- suppressions -----

/// Suppressing twice keeps the first entry; the denylist wins over the
/// quarantine; lifting an entry reports whether there was one.
pub async fn suppress_is_idempotent_and_the_denylist_wins(store: SharedStore) {
    let addrs = ["a@x.test", "b@x.test", "c@x.test"].map(String::from);
    store
        .suppress(SuppressionList::Quarantine, &addrs[0], "hard_bounce", t(1))
        .await
        .unwrap();
    store
        .suppress(SuppressionList::Quarantine, &addrs[0], "manual", t(2))
        .await
        .unwrap();
    store
        .suppress(SuppressionList::Quarantine, &addrs[1], "hard_bounce", t(1))
        .await
        .unwrap();
    store
        .suppress(SuppressionList::Denylist, &addrs[1], "unsubscribed", t(3))
        .await
        .unwrap();
    assert_eq!(
        store.suppressed(&addrs).await.unwrap(),
        vec![
            Some(SuppressionList::Quarantine),
            Some(SuppressionList::Denylist),
            None
        ]
    );
    let q = store
        .suppressions(SuppressionList::Quarantine, None, 10)
        .await
        .unwrap();
    assert_eq!(q.items.len(), 2);
    assert_eq!(
        (
            q.items[0].address.as_str(),
            q.items[0].reason.as_str(),
            q.items[0].since
        ),
        ("a@x.test", "hard_bounce", t(1))
    );
    assert!(
        store
            .unsuppress(SuppressionList::Denylist, &addrs[1])
            .await
            .unwrap()
    );
    assert!(
        !store
            .unsuppress(SuppressionList::Denylist, &addrs[1])
            .await
            .unwrap()
    );
    assert_eq!(
        store.suppressed(&addrs[1..2]).await.unwrap(),
        vec![Some(SuppressionList::Quarantine)]
    );
    assert!(store.suppressed(&[]).await.unwrap().is_empty());
}

/// Suppression lists page by address.
pub async fn suppressions_are_listed_by_address_in_pages(store: SharedStore) {
    for a in ["d@x.test", "a@x.test", "c@x.test", "b@x.test"] {
        store
            .suppress(SuppressionList::Denylist, a, "manual", t(1))
            .await
            .unwrap();
    }
    let first = store
        .suppressions(SuppressionList::Denylist, None, 2)
        .await
        .unwrap();
    let second = store
        .suppressions(SuppressionList::Denylist, first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    let listed: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|s| s.address.as_str())
        .collect();
    assert_eq!(listed, ["a@x.test", "b@x.test", "c@x.test", "d@x.test"]);
    assert!(first.next_cursor.is_some());
    assert_eq!(second.next_cursor, None);
    assert!(
        first
            .items
            .iter()
            .all(|s| s.list == SuppressionList::Denylist)
    );
    assert!(
        store
            .suppressions(SuppressionList::Quarantine, None, 2)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Soft bounces quarantine an address at the threshold (once); a
/// successful send resets the count.
pub async fn soft_bounces_quarantine_at_the_threshold_until_reset(store: SharedStore) {
    let a = "a@x.test".to_owned();
    assert!(!store.soft_bounce(&a, 3, t(1)).await.unwrap());
    assert!(!store.soft_bounce(&a, 3, t(2)).await.unwrap());
    store
        .reset_soft_bounces(std::slice::from_ref(&a))
        .await
        .unwrap();
    assert!(!store.soft_bounce(&a, 3, t(3)).await.unwrap());
    assert!(!store.soft_bounce(&a, 3, t(4)).await.unwrap());
    assert_eq!(
        store.suppressed(std::slice::from_ref(&a)).await.unwrap(),
        vec![None]
    );
    assert!(store.soft_bounce(&a, 3, t(5)).await.unwrap());
    assert_eq!(
        store.suppressed(std::slice::from_ref(&a)).await.unwrap(),
        vec![Some(SuppressionList::Quarantine)]
    );
    let entry = &store
        .suppressions(SuppressionList::Quarantine, None, 10)
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        (entry.reason.as_str(), entry.since, entry.soft_bounces),
        ("soft_bounces", t(5), 3)
    );
    assert!(
        !store.soft_bounce(&a, 3, t(6)).await.unwrap(),
        "already quarantined"
    );
}

// ----- listings -----

/// Runs list newest `scheduled_for` first, filtered, in pages.
pub async fn runs_are_listed_newest_first_with_filters_and_pages(store: SharedStore) {
    for (d, at, confirm) in [
        ("a", 100, true),
        ("b", 300, false),
        ("a", 200, true),
        ("c", 400, true),
    ] {
        let run = new_run(d, at, confirm);
        store.create_run(&run).await.unwrap();
        done(prepare(&store, &run, &[1], t(1)).await);
    }
    let first = store
        .list_runs(&RunFilter::default(), None, 2)
        .await
        .unwrap();
    let second = store
        .list_runs(&RunFilter::default(), first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    let order: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|r| r.scheduled_for)
        .collect();
    assert_eq!(order, [t(400), t(300), t(200), t(100)]);
    assert!(first.next_cursor.is_some());
    assert_eq!(second.next_cursor, None);

    let pending = RunFilter {
        state: Some(RunState::Pending),
        delivery_id: None,
    };
    let listed = store.list_runs(&pending, None, 10).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|r| r.scheduled_for)
            .collect::<Vec<_>>(),
        [t(400), t(200), t(100)]
    );
    let of_a = RunFilter {
        state: None,
        delivery_id: Some("a".to_owned()),
    };
    let listed = store.list_runs(&of_a, None, 1).await.unwrap();
    assert_eq!(listed.items[0].scheduled_for, t(200));
    let listed = store
        .list_runs(&of_a, listed.next_cursor.as_deref(), 1)
        .await
        .unwrap();
    assert_eq!(
        (listed.items[0].scheduled_for, listed.next_cursor),
        (t(100), None)
    );
}

/// Due runs come soonest first, only those due, at most `limit`.
pub async fn due_runs_come_soonest_first_up_to_the_limit(store: SharedStore) {
    let mut ids = Vec::new();
    for (d, at) in [("c", 300), ("a", 100), ("b", 200), ("d", 900)] {
        let run = new_run(d, at, false);
        store.create_run(&run).await.unwrap();
        done(prepare(&store, &run, &[1], t(1)).await);
        ids.push(run.id);
    }
    assert_eq!(
        store.due_runs(t(300), 10).await.unwrap(),
        [ids[1].clone(), ids[2].clone(), ids[0].clone()]
    );
    assert_eq!(
        store.due_runs(t(300), 2).await.unwrap(),
        [ids[1].clone(), ids[2].clone()]
    );
    assert!(store.due_runs(t(99), 10).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(t(100)));
}

/// Runs are counted per state.
pub async fn runs_are_counted_by_state(store: SharedStore) {
    run_in(&store, "p1", RunState::Pending).await;
    run_in(&store, "p2", RunState::Pending).await;
    run_in(&store, "s", RunState::Sending).await;
    run_in(&store, "x", RunState::Cancelled).await;
    let counts: BTreeMap<_, _> = store.count_by_state().await.unwrap().into_iter().collect();
    let count = |s| counts.get(&s).copied().unwrap_or(0);
    assert_eq!(
        (
            count(RunState::Pending),
            count(RunState::Sending),
            count(RunState::Cancelled)
        ),
        (2, 1, 1)
    );
    assert_eq!(counts.values().sum::<u64>(), 4);
}

/// Creating, confirming, resuming, cancelling a sending run and releasing
/// a chunk wake the scheduler.
pub async fn changes_are_notified_when_a_run_becomes_due_sooner(store: SharedStore) {
    async fn wakes<F: std::future::Future>(store: &SharedStore, what: &str, op: F) {
        let notify = store.changes();
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        op.await;
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .unwrap_or_else(|_| panic!("{what} did not notify"));
    }
    let run = new_run("digest", 3600, true);
    wakes(&store, "create", async {
        store.create_run(&run).await.unwrap()
    })
    .await;
    done(prepare(&store, &run, &[1, 1], t(1)).await);
    wakes(&store, "confirm", async {
        done(store.confirm(&run.id, "ann", t(3600)).await)
    })
    .await;
    store
        .claim_chunk(&run.id, "a", t(4000), t(3600))
        .await
        .unwrap()
        .unwrap();
    wakes(&store, "release", async {
        store.release_chunk(&run.id, 0, "a").await.unwrap()
    })
    .await;
    done(store.pause(&run.id, "ann", t(3601)).await);
    wakes(&store, "resume", async {
        done(store.resume(&run.id, "ann", t(3602)).await)
    })
    .await;
    wakes(&store, "cancel", async {
        done(
            store
                .cancel(&run.id, None, CancelReason::Cancelled, t(3603))
                .await,
        )
    })
    .await;
}
