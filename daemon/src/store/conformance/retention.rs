//! Retention and erasure: bounded purges of finished runs, history past
//! its retention, profile erasure now and when a run finishes. Time moves
//! on a fake clock and reaches the store only through `now` arguments.

use super::fixtures::*;
use crate::clock::Clock;
use crate::retention::{Policy, erase_profile, sweep};
use crate::runs::{Outcome, RunId, RunState};
use crate::store::*;
use chrono::Duration as Span;

/// 90 days for runs, 365 for history (the defaults of daemon.md).
fn policy() -> Policy {
    Policy {
        runs: Span::days(90),
        history: Span::days(365),
    }
}

/// Sends every recipient of the run's single chunk (`delivered` at
/// `t(2)`), with a click by the first; the run ends `sent` at `t(2)`.
async fn send_all(store: &SharedStore, id: &RunId) -> Vec<String> {
    let claimed = store
        .claim_chunk(id, "a", t(60), t(1))
        .await
        .unwrap()
        .expect("a chunk to claim");
    let ids: Vec<String> = claimed.recipients.iter().map(|r| r.id.clone()).collect();
    let outs: Vec<_> = ids.iter().map(|r| delivered(r, t(2))).collect();
    store.record_outcomes(id, &outs).await.unwrap();
    store
        .record_tracking(id, &[(ids[0].clone(), TrackingKind::Click)])
        .await
        .unwrap();
    store
        .complete_chunk(id, claimed.number, "a", t(2))
        .await
        .unwrap();
    assert_eq!(state_of(store, id).await, RunState::Sent);
    ids
}

/// A finished run keeps its rows until `retention.runs` has passed since
/// it ended; then the pass purges outcomes, provider ids, tracking and
/// preview, keeps the counters and the history, and marks the run. Runs
/// not finished are left alone.
pub async fn retention_purges_finished_runs_once_their_time_has_passed(store: SharedStore) {
    let sent = sending_run(&store, "digest", &[3]).await;
    let ids = send_all(&store, &sent).await;
    let going = run_in(&store, "weekly", RunState::Pending).await;
    let before = store.run(&sent).await.unwrap().unwrap();
    let clock = Clock::fake(t(2) + Span::days(90) - Span::seconds(1));

    assert_eq!(
        sweep(&store, clock.now(), &policy())
            .await
            .unwrap()
            .runs_purged,
        0
    );
    assert!(store.outcome(&sent, &ids[0]).await.unwrap().is_some());

    clock.advance(Span::seconds(1));
    assert_eq!(
        store
            .runs_to_purge(clock.now() - Span::days(90), 10)
            .await
            .unwrap(),
        vec![sent.clone()]
    );
    let swept = sweep(&store, clock.now(), &policy()).await.unwrap();
    assert_eq!(swept.runs_purged, 1);
    let after = store.run(&sent).await.unwrap().unwrap();
    assert!(after.outcomes_purged);
    assert_eq!(after.preview, None);
    assert_eq!(after.counters, before.counters);
    assert_eq!(store.recount(&sent).await.unwrap(), before.counters);
    for r in &ids {
        assert!(store.outcome(&sent, r).await.unwrap().is_none(), "{r}");
        assert!(
            store
                .find_message(&format!("pm-{r}"))
                .await
                .unwrap()
                .is_none()
        );
    }
    // History outlives the run's rows until its own retention.
    let history = store.history(&ids[0], None, 10).await.unwrap().items;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].run_id, sent);
    assert_eq!(history[0].outcome, Outcome::Delivered);
    assert_eq!(history[0].channel, "email");
    // The provider id goes with the run's rows (and its index).
    assert_eq!(history[0].provider_message_id, None);
    assert_eq!(history[0].at, t(2));
    // Purged runs are not found again; the unfinished run kept everything.
    assert!(
        store
            .runs_to_purge(clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sweep(&store, clock.now(), &policy())
            .await
            .unwrap()
            .runs_purged,
        0
    );
    let pending = store.run(&going).await.unwrap().unwrap();
    assert!(!pending.outcomes_purged);
    assert!(pending.preview.is_some());
}

/// Each purge call handles a bounded batch: a three-recipient run purged
/// one recipient at a time takes several calls; an unfinished run is
/// refused untouched.
pub async fn purging_a_run_goes_in_bounded_steps(store: SharedStore) {
    let going = sending_run(&store, "weekly", &[2]).await;
    store
        .record_outcomes(&going, &[delivered(&rid("weekly", 0, 0), t(1))])
        .await
        .unwrap();
    assert_eq!(store.purge_run(&going, 1).await.unwrap(), Step::NotFinished);
    assert!(
        store
            .outcome(&going, &rid("weekly", 0, 0))
            .await
            .unwrap()
            .is_some()
    );

    let sent = sending_run(&store, "digest", &[3]).await;
    let ids = send_all(&store, &sent).await;
    let mut calls = 0;
    let mut before = ids.len();
    loop {
        calls += 1;
        let step = store.purge_run(&sent, 1).await.unwrap();
        let mut after = 0;
        for r in &ids {
            after += usize::from(store.outcome(&sent, r).await.unwrap().is_some());
        }
        assert!(before - after <= 1, "one recipient per call");
        before = after;
        match step {
            Step::More(_) => {}
            Step::Done => break,
            Step::NotFinished => panic!("a sent run is finished"),
        }
        assert!(calls < 20, "the purge does not end");
    }
    assert_eq!(before, 0);
    assert!(
        calls >= 4,
        "one recipient per call, then the audience: {calls} calls"
    );
    assert!(store.run(&sent).await.unwrap().unwrap().outcomes_purged);
}

/// History entries older than `retention.history` go; newer ones stay.
pub async fn history_past_its_retention_goes(store: SharedStore) {
    let first = sending_run(&store, "digest", &[2]).await;
    let later = new_run("digest", 7200, false);
    store.create_run(&later).await.unwrap();
    done(prepare(&store, &later, &[2], t(0)).await);
    let (a, b) = (rid("digest", 0, 0), rid("digest", 0, 1));
    store
        .record_outcomes(&first, &[delivered(&a, t(1)), delivered(&b, t(1))])
        .await
        .unwrap();
    let late = t(1) + Span::days(300);
    store
        .record_outcomes(&later.id, &[delivered(&a, late)])
        .await
        .unwrap();

    let clock = Clock::fake(t(1) + Span::days(365));
    assert_eq!(
        sweep(&store, clock.now(), &policy())
            .await
            .unwrap()
            .history_entries,
        0
    );
    clock.advance(Span::days(1));
    let swept = sweep(&store, clock.now(), &policy()).await.unwrap();
    assert_eq!(swept.history_entries, 2);
    let left = store.history(&a, None, 10).await.unwrap().items;
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].run_id.clone(), left[0].at),
        (later.id.clone(), late)
    );
    assert!(store.history(&b, None, 10).await.unwrap().items.is_empty());
    let cutoff = clock.now() - Span::days(365);
    assert_eq!(store.purge_history(cutoff, 10).await.unwrap(), 0);
    // The entry left is found again once its own time has come.
    clock.advance(Span::days(300));
    assert_eq!(
        sweep(&store, clock.now(), &policy())
            .await
            .unwrap()
            .history_entries,
        1
    );
    assert!(store.history(&a, None, 10).await.unwrap().items.is_empty());
}

/// Erasing a profile clears the recipient's rows from finished runs at
/// once (counters stay, runs marked) and their history; a run not
/// finished keeps the request and is cleared by the pass once it ends.
pub async fn erasing_a_profile_clears_finished_runs_now_and_others_when_they_finish(
    store: SharedStore,
) {
    let sent = sending_run(&store, "digest", &[3]).await;
    let ids = send_all(&store, &sent).await;
    let who = ids[0].clone();
    let later = new_run("digest", 7200, false);
    store.create_run(&later).await.unwrap();
    done(prepare(&store, &later, &[3], t(0)).await);
    let before = store.run(&sent).await.unwrap().unwrap().counters;

    let erasure = erase_profile(&store, &who, t(10)).await.unwrap();
    assert_eq!(erasure.runs_erased, vec![sent.clone()]);
    assert_eq!(erasure.runs_pending, vec![later.id.clone()]);
    assert_eq!(erasure.history_entries, 1);
    let run = store.run(&sent).await.unwrap().unwrap();
    assert!(run.outcomes_purged);
    assert_eq!(run.counters, before);
    // The preview was rendered for the erased recipient: it is gone too.
    assert_eq!(who, rid("digest", 0, 0));
    assert_eq!(run.preview, None);
    assert_eq!(store.recount(&sent).await.unwrap(), before);
    assert!(store.outcome(&sent, &who).await.unwrap().is_none());
    assert!(store.outcome(&sent, &ids[1]).await.unwrap().is_some());
    assert!(
        store
            .find_message(&format!("pm-{who}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_message(&format!("pm-{}", ids[1]))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .history(&who, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store.history(&ids[1], None, 10).await.unwrap().items.len(),
        1
    );
    assert_eq!(
        store.kept_erasures(10).await.unwrap(),
        vec![(later.id.clone(), who.clone())]
    );
    // A late click of the erased recipient is not recorded; others still are.
    store
        .record_tracking(
            &sent,
            &[
                (who.clone(), TrackingKind::Click),
                (ids[1].clone(), TrackingKind::Open),
            ],
        )
        .await
        .unwrap();
    let c = store.run(&sent).await.unwrap().unwrap().counters;
    assert_eq!((c.opened, c.clicked), (before.opened + 1, before.clicked));

    // The later run still sends (the request waits for its end), then the
    // pass clears it.
    let clock = Clock::fake(t(7200));
    done(store.start_sending(&later.id, clock.now()).await);
    let claimed = store
        .claim_chunk(&later.id, "a", clock.now() + Span::seconds(60), clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(claimed.recipients.iter().any(|r| r.id == who));
    assert_eq!(
        sweep(&store, clock.now(), &policy())
            .await
            .unwrap()
            .erasures_applied,
        0
    );
    let outs: Vec<_> = claimed
        .recipients
        .iter()
        .map(|r| delivered(&r.id, clock.now()))
        .collect();
    store.record_outcomes(&later.id, &outs).await.unwrap();
    store
        .complete_chunk(&later.id, claimed.number, "a", clock.now())
        .await
        .unwrap();
    assert_eq!(store.history(&who, None, 10).await.unwrap().items.len(), 1);
    clock.advance(Span::seconds(60));
    let swept = sweep(&store, clock.now(), &policy()).await.unwrap();
    assert_eq!(swept.erasures_applied, 1);
    assert!(store.kept_erasures(10).await.unwrap().is_empty());
    assert!(store.outcome(&later.id, &who).await.unwrap().is_none());
    assert!(
        store
            .history(&who, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let later_run = store.run(&later.id).await.unwrap().unwrap();
    assert!(later_run.outcomes_purged);
    assert_eq!(later_run.counters.delivered, 3);
    assert_eq!(later_run.preview, None);
}

/// Erasure steps scan a bounded number of chunks; an unfinished run is
/// refused untouched; a run the recipient is not in stays unmarked; a run
/// that froze them in an audience it never sent is cleared and marked.
pub async fn erasure_steps_are_bounded(store: SharedStore) {
    let going = sending_run(&store, "weekly", &[1, 1]).await;
    assert_eq!(
        store
            .erase_from_run(&going, &rid("weekly", 1, 0), 0, 1)
            .await
            .unwrap(),
        Step::NotFinished
    );
    assert!(!store.run(&going).await.unwrap().unwrap().outcomes_purged);

    let never_sent = new_run("news", 3600, true);
    store.create_run(&never_sent).await.unwrap();
    done(prepare(&store, &never_sent, &[1, 1, 1], t(0)).await);
    done(store.expire(&never_sent.id, t(1800)).await);
    let mut steps = Vec::new();
    let mut from = 0;
    loop {
        match store
            .erase_from_run(&never_sent.id, "nobody", from, 1)
            .await
            .unwrap()
        {
            Step::More(next) => {
                steps.push(next);
                from = next;
            }
            Step::Done => break,
            Step::NotFinished => panic!("an expired run is finished"),
        }
    }
    assert_eq!(steps, vec![1, 2]);
    assert!(
        !store
            .run(&never_sent.id)
            .await
            .unwrap()
            .unwrap()
            .outcomes_purged
    );
    assert_eq!(
        store
            .erase_from_run(&never_sent.id, &rid("news", 2, 0), 2, 5)
            .await
            .unwrap(),
        Step::Done
    );
    assert!(
        store
            .run(&never_sent.id)
            .await
            .unwrap()
            .unwrap()
            .outcomes_purged
    );
}
