//! The actions of the state × action table and the transitions they make.

use super::fixtures::*;
use crate::runs::RunState;
use crate::store::*;

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

/// A confirm after the instant, before the deadline, sends at once.
pub async fn confirm_after_the_instant_starts_sending(store: SharedStore) {
    let id = pending_until(&store, "digest", 3600 + 6 * 3600).await;
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

/// A confirm at or past the confirm deadline, before any expiry pass came
/// by, expires the run and answers a conflict in `expired`: a pending run
/// nobody confirmed by its deadline becomes `expired` (README, "Life of a
/// run"), whether or not the scheduler has looked yet.
pub async fn a_confirm_past_the_deadline_expires_the_run_and_conflicts(store: SharedStore) {
    let id = pending_until(&store, "digest", 7200).await;
    assert_eq!(
        store.confirm(&id, "ann", t(7200)).await.unwrap(),
        Transition::Conflict(RunState::Expired)
    );
    let run = store.run(&id).await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.finished_at, run.confirmed_by),
        (RunState::Expired, Some(t(7200)), None)
    );
    assert!(!is_due(&store, &id, t(100_000)).await);
    assert!(
        store
            .claim_chunk(&id, "a", t(7300), t(7200))
            .await
            .unwrap()
            .is_none()
    );
    // The expiry pass, when it comes by, finds nothing left to do.
    assert_eq!(
        store.expire(&id, t(7300)).await.unwrap(),
        Transition::Conflict(RunState::Expired)
    );
    // A moment before the deadline, the confirm still counts.
    let id = pending_until(&store, "late", 7200).await;
    let run = done(store.confirm(&id, "ann", t(7199)).await);
    assert_eq!(run.state, RunState::Sending);
}

/// Cancel, pause and resume, like confirm, meet a pending run past its
/// confirm deadline as `expired`: it expires first and the action answers a
/// conflict in `expired`, whether or not the expiry pass has come by.
pub async fn actions_past_the_deadline_expire_a_pending_run_first(store: SharedStore) {
    for action in ["cancel", "pause", "resume"] {
        let id = pending_until(&store, &format!("late-{action}"), 7200).await;
        let result = match action {
            "cancel" => {
                store
                    .cancel(&id, Some("ann"), CancelReason::Cancelled, t(7200))
                    .await
            }
            "pause" => store.pause(&id, "ann", t(7200)).await,
            _ => store.resume(&id, "ann", t(7200)).await,
        };
        assert_eq!(
            result.unwrap(),
            Transition::Conflict(RunState::Expired),
            "{action}"
        );
        let run = store.run(&id).await.unwrap().unwrap();
        assert_eq!(
            (
                run.state,
                run.finished_at,
                run.cancelled_by,
                run.cancel_reason
            ),
            (RunState::Expired, Some(t(7200)), None, None),
            "{action}"
        );
        assert!(!is_due(&store, &id, t(100_000)).await, "{action}");
    }
    // A moment before the deadline, a cancel still counts.
    let id = pending_until(&store, "in-time", 7200).await;
    let run = done(
        store
            .cancel(&id, Some("ann"), CancelReason::Cancelled, t(7199))
            .await,
    );
    assert_eq!(run.state, RunState::Cancelled);
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
