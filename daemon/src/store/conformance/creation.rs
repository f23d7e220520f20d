//! Health, run creation, schedule cursors and preparation.

use super::fixtures::*;
use crate::runs::{ExclusionReason, RunId, RunState};
use crate::store::*;
use std::collections::BTreeMap;

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

/// Cursors read and moved in one call, in order, each only forward, even
/// past one Redis command's worth.
pub async fn schedule_cursors_move_in_batches(store: SharedStore) {
    let ids: Vec<String> = (0..2_500).map(|i| format!("d{i}")).collect();
    store.advance_cursor("d1", t(500)).await.unwrap();
    let moves: Vec<(String, _)> = ids.iter().map(|id| (id.clone(), t(100))).collect();
    store.advance_cursors(&moves).await.unwrap();
    store.advance_cursors(&[]).await.unwrap();
    let mut asked = ids.clone();
    asked.push("never".to_owned());
    let cursors = store.cursors(&asked).await.unwrap();
    assert_eq!(cursors.len(), asked.len());
    assert_eq!(cursors[0], Some(t(100)));
    assert_eq!(cursors[1], Some(t(500)), "moved backward");
    assert_eq!(cursors[2_499], Some(t(100)));
    assert_eq!(cursors[2_500], None);
    assert!(store.cursors(&[]).await.unwrap().is_empty());
}

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

/// A chunk written after preparation ended (a stale preparer) changes
/// nothing: leases and finished chunks stay as they are.
pub async fn chunks_cannot_be_rewritten_once_preparation_ended(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2]).await;
    let claimed = store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    store.put_chunk(&id, &chunk("digest", 0, 5)).await.unwrap();
    store.put_chunk(&id, &chunk("digest", 1, 5)).await.unwrap();
    assert!(
        store
            .claim_chunk(&id, "b", t(60), t(2))
            .await
            .unwrap()
            .is_none(),
        "a still holds chunk 0"
    );
    let reclaimed = store
        .claim_chunk(&id, "b", t(120), t(61))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reclaimed.recipients, claimed.recipients);
    store.complete_chunk(&id, 0, "b", t(62)).await.unwrap();
    assert_eq!(state_of(&store, &id).await, RunState::Sent);
}
