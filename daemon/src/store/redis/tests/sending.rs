//! Chunks, leases, pause and cancel while sending, the throttle.

use super::*;
use crate::runs::RunState;
use crate::store::CancelReason;

/// A run sending from t(100), with `chunks` chunks of 2 recipients.
async fn sending_run(store: &RedisStore, chunks: u32) -> RunId {
    let run = new_run("weekly", false);
    let sending = done(prepare(store, &run, chunks, 2, t(100)).await);
    assert_eq!(sending.state, RunState::Sending);
    run.id
}

#[tokio::test]
async fn chunks_are_claimed_lowest_first_and_reclaimed_after_their_lease() {
    let f = fixture().await;
    let id = sending_run(&f.store, 3).await;
    let s = &f.store;
    let c0 = s
        .claim_chunk(&id, "a", t(130), t(100))
        .await
        .unwrap()
        .unwrap();
    let c1 = s
        .claim_chunk(&id, "b", t(140), t(100))
        .await
        .unwrap()
        .unwrap();
    let c2 = s
        .claim_chunk(&id, "b", t(150), t(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c0.number, c1.number, c2.number), (0, 1, 2));
    assert_eq!(c0.recipients, recipients(0, 2));
    assert!(!c0.cancelled);
    assert!(
        s.claim_chunk(&id, "c", t(160), t(101))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.next_due().await.unwrap(),
        Some(t(130)),
        "earliest lease expiry"
    );
    // "a" finished one recipient of chunk 0, then died.
    s.record_outcomes(&id, &[outcome("r0", Outcome::Delivered, t(101))])
        .await
        .unwrap();
    assert!(
        s.claim_chunk(&id, "c", t(190), t(130))
            .await
            .unwrap()
            .is_none()
    );
    let again = s
        .claim_chunk(&id, "c", t(190), t(131))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.number, 0);
    assert_eq!(
        again.recipients,
        recipients(1, 1),
        "finished recipients are skipped"
    );
    s.complete_chunk(&id, 0, "a", t(132)).await.unwrap();
    assert!(!s.renew_lease(&id, 0, "a", t(200)).await.unwrap());
    assert!(s.renew_lease(&id, 0, "c", t(200)).await.unwrap());
    assert_eq!(
        s.run(&id).await.unwrap().unwrap().chunks_done,
        0,
        "a stale owner cannot complete"
    );
    for (chunk, owner) in [(0, "c"), (1, "b"), (2, "b")] {
        s.complete_chunk(&id, chunk, owner, t(140)).await.unwrap();
    }
    let sent = s.run(&id).await.unwrap().unwrap();
    assert_eq!(sent.state, RunState::Sent);
    assert_eq!(sent.chunks_done, 3);
    assert_eq!(sent.finished_at, Some(t(140)));
    assert_eq!(s.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn a_released_chunk_is_claimable_at_once() {
    let f = fixture().await;
    let id = sending_run(&f.store, 1).await;
    let s = &f.store;
    s.claim_chunk(&id, "a", t(130), t(100))
        .await
        .unwrap()
        .unwrap();
    s.release_chunk(&id, 0, "a").await.unwrap();
    assert!(s.next_due().await.unwrap().unwrap() <= t(100));
    let again = s
        .claim_chunk(&id, "b", t(130), t(101))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.number, 0);
}

/// Daemons before session 14 kept a lease's owner in a hash beside
/// `:leases`. Such a lease, left by a process that stopped, is reclaimed
/// once it ends, and its owner entry goes, so that a daemon of that
/// version still running learns it lost the chunk.
#[tokio::test]
async fn a_lease_of_the_older_layout_is_reclaimed_when_it_ends() {
    let f = fixture().await;
    let id = sending_run(&f.store, 1).await;
    let s = &f.store;
    let k = s.run_keys(&id);
    let lease_end = t(130).timestamp_micros();
    let _: () = raw(s, redis::cmd("HSET").arg(&k.run).arg("next_chunk").arg(1)).await;
    let _: () = raw(s, redis::cmd("ZADD").arg(&k.leases).arg(lease_end).arg(0)).await;
    let _: () = raw(s, redis::cmd("HSET").arg(&k.owners).arg(0).arg("old")).await;
    assert!(
        s.claim_chunk(&id, "new", t(160), t(129))
            .await
            .unwrap()
            .is_none(),
        "held until its lease ends"
    );
    let again = s
        .claim_chunk(&id, "new", t(160), t(131))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.number, 0);
    let old_owner: Option<String> = raw(s, redis::cmd("HGET").arg(&k.owners).arg(0)).await;
    assert_eq!(old_owner, None);
    let members: Vec<String> = raw(s, redis::cmd("ZRANGE").arg(&k.leases).arg(0).arg(-1)).await;
    assert_eq!(members, vec!["0\u{1f}new".to_owned()]);
    s.complete_chunk(&id, 0, "new", t(140)).await.unwrap();
    assert_eq!(s.run(&id).await.unwrap().unwrap().state, RunState::Sent);
}

#[tokio::test]
async fn a_paused_run_gives_no_chunk_until_resumed() {
    let f = fixture().await;
    let id = sending_run(&f.store, 2).await;
    let s = &f.store;
    let paused = done(s.pause(&id, "ann", t(101)).await.unwrap());
    assert_eq!(paused.paused_by.as_deref(), Some("ann"));
    assert_eq!(s.next_due().await.unwrap(), None);
    assert!(
        s.claim_chunk(&id, "a", t(130), t(102))
            .await
            .unwrap()
            .is_none()
    );
    let resumed = done(s.resume(&id, "bob", t(103)).await.unwrap());
    assert_eq!(resumed.state, RunState::Sending);
    assert_eq!(resumed.resumed_at, Some(t(103)));
    assert_eq!(s.next_due().await.unwrap(), Some(t(103)));
    assert!(
        s.claim_chunk(&id, "a", t(130), t(104))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn cancelling_while_sending_drains_the_unsent_as_cancelled() {
    let f = fixture().await;
    let id = sending_run(&f.store, 2).await;
    let s = &f.store;
    let c0 = s
        .claim_chunk(&id, "a", t(130), t(100))
        .await
        .unwrap()
        .unwrap();
    let outcomes: Vec<_> = c0
        .recipients
        .iter()
        .map(|r| outcome(&r.id, Outcome::Delivered, t(101)))
        .collect();
    s.record_outcomes(&id, &outcomes).await.unwrap();
    s.complete_chunk(&id, 0, "a", t(101)).await.unwrap();
    let cancelled = done(
        s.cancel(&id, Some("ann"), CancelReason::Cancelled, t(102))
            .await
            .unwrap(),
    );
    assert_eq!(cancelled.state, RunState::Cancelled);
    assert_eq!(cancelled.finished_at, None, "still draining");
    assert_eq!(s.next_due().await.unwrap(), Some(t(102)));
    let c1 = s
        .claim_chunk(&id, "a", t(130), t(103))
        .await
        .unwrap()
        .unwrap();
    assert!(c1.cancelled);
    let outcomes: Vec<_> = c1
        .recipients
        .iter()
        .map(|r| outcome(&r.id, Outcome::Cancelled, t(103)))
        .collect();
    s.record_outcomes(&id, &outcomes).await.unwrap();
    s.complete_chunk(&id, 1, "a", t(104)).await.unwrap();
    let end = s.run(&id).await.unwrap().unwrap();
    assert_eq!(end.state, RunState::Cancelled);
    assert_eq!(end.finished_at, Some(t(104)));
    assert_eq!((end.counters.delivered, end.counters.cancelled), (2, 2));
    assert_eq!(s.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn a_run_without_chunks_is_sent_when_it_starts() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    let scheduled = done(prepare(&f.store, &run, 0, 0, t(1)).await);
    assert_eq!(scheduled.state, RunState::Scheduled);
    let sent = done(f.store.start_sending(&run.id, t(100)).await.unwrap());
    assert_eq!(sent.state, RunState::Sent);
    assert_eq!(sent.finished_at, Some(t(100)));
    assert_eq!(f.store.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn the_throttle_allows_a_second_of_burst_then_spaces_messages() {
    let f = fixture().await;
    let s = &f.store;
    let ms = std::time::Duration::from_millis;
    assert_eq!(s.throttle("d", 10.0, 10, t(0)).await.unwrap(), ms(0));
    assert_eq!(s.throttle("d", 10.0, 1, t(0)).await.unwrap(), ms(100));
    assert_eq!(s.throttle("d", 10.0, 2, t(0)).await.unwrap(), ms(300));
    assert_eq!(s.throttle("d", 10.0, 1, t(60)).await.unwrap(), ms(0));
    assert_eq!(s.throttle("other", 10.0, 1, t(0)).await.unwrap(), ms(0));
}
