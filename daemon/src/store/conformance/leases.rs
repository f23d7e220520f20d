//! Chunks and their leases: claim, renew, complete, release, cancel while sending.

use super::fixtures::*;
use crate::runs::{Outcome, RunState};
use crate::store::*;

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

/// Owners claiming at the same instant each get a different chunk, and
/// never more chunks than the run has (G4).
pub async fn concurrent_claims_never_hand_one_chunk_to_two_owners(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1, 1, 1]).await;
    let claims = (0..6).map(|i| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            let owner = format!("owner-{i}");
            store
                .claim_chunk(&id, &owner, t(60), t(1))
                .await
                .unwrap()
                .map(|c| c.number)
        })
    });
    let mut numbers = Vec::new();
    for c in claims {
        numbers.extend(c.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, [0, 1, 2]);
}

/// A paused run that is cancelled hands out its unfinished chunks marked
/// `cancelled`, so its unsent recipients get their outcome too.
pub async fn a_run_cancelled_while_paused_hands_out_its_chunks_as_cancelled(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2]).await;
    done(store.pause(&id, "ann", t(1)).await);
    let run = done(
        store
            .cancel(&id, Some("ann"), CancelReason::Cancelled, t(2))
            .await,
    );
    assert_eq!((run.state, run.finished_at), (RunState::Cancelled, None));
    assert!(is_due(&store, &id, t(2)).await);
    let claimed = store
        .claim_chunk(&id, "a", t(60), t(3))
        .await
        .unwrap()
        .unwrap();
    assert!(claimed.cancelled);
    assert_eq!(claimed.recipients.len(), 2);
    let outs: Vec<_> = claimed
        .recipients
        .iter()
        .map(|r| outcome(&r.id, Outcome::Cancelled, t(4)))
        .collect();
    store.record_outcomes(&id, &outs).await.unwrap();
    store.complete_chunk(&id, 0, "a", t(4)).await.unwrap();
    let run = store.run(&id).await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.finished_at),
        (RunState::Cancelled, Some(t(4)))
    );
    assert_eq!((run.counters.cancelled, run.counters.remaining()), (2, 0));
    assert!(!is_due(&store, &id, t(100_000)).await);
}
