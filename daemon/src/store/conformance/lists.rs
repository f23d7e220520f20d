//! Throttles, suppressions, listings, state counts and wake-ups.

use super::fixtures::*;
use crate::runs::RunState;
use crate::store::*;
use std::collections::BTreeMap;
use std::time::Duration;

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

/// Lookups made at once, small and large, each get the answer for their
/// own addresses, in order (a backend may gather them into one call).
pub async fn concurrent_lookups_each_get_their_own_answer(store: SharedStore) {
    let address = |i: usize| format!("r{i}@x.test");
    for i in (0..300).filter(|i| i % 3 == 1) {
        store
            .suppress(
                SuppressionList::Quarantine,
                &address(i),
                "hard_bounce",
                t(1),
            )
            .await
            .unwrap();
    }
    for i in (0..300).filter(|i| i % 5 == 2) {
        store
            .suppress(SuppressionList::Denylist, &address(i), "unsubscribed", t(1))
            .await
            .unwrap();
    }
    let expected = |i: usize| match (i % 5 == 2, i % 3 == 1) {
        (true, _) => Some(SuppressionList::Denylist),
        (false, true) => Some(SuppressionList::Quarantine),
        _ => None,
    };
    // One- and two-address lookups (a small run's), and a 200-address one.
    let mut lookups: Vec<Vec<usize>> = (0..100).map(|i| vec![i]).collect();
    lookups.extend((0..50).map(|i| vec![100 + 2 * i, 101 + 2 * i]));
    lookups.push((100..300).rev().collect());
    let answers = futures_util::future::join_all(lookups.iter().map(|ids| {
        let store = store.clone();
        let addresses: Vec<String> = ids.iter().map(|&i| address(i)).collect();
        async move { store.suppressed(&addresses).await.unwrap() }
    }))
    .await;
    for (ids, answer) in lookups.iter().zip(answers) {
        let wanted: Vec<_> = ids.iter().map(|&i| expected(i)).collect();
        assert_eq!(answer, wanted, "lookup of {ids:?}");
    }
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
    // A delivery without runs (a removed file whose first run was not
    // due yet) lists nothing rather than failing.
    let of_none = RunFilter {
        state: None,
        delivery_id: Some("never-ran".to_owned()),
    };
    let listed = store.list_runs(&of_none, None, 10).await.unwrap();
    assert!(listed.items.is_empty() && listed.next_cursor.is_none());
}

/// A cursor that no page gave is refused as [`StoreError::BadCursor`], for
/// runs and for a history alike, so the API can answer the caller's
/// mistake with `400` rather than a store failure with `500`.
pub async fn a_cursor_no_page_gave_is_refused_as_a_bad_cursor(store: SharedStore) {
    let run = new_run("a", 100, true);
    store.create_run(&run).await.unwrap();
    let all = RunFilter::default();
    for cursor in ["garbage", "abc|def", "abc:def"] {
        let runs = store.list_runs(&all, Some(cursor), 10).await;
        let history = store.history("alice", Some(cursor), 10).await;
        for (what, result) in [("runs", runs.map(|_| ())), ("history", history.map(|_| ()))] {
            assert!(
                matches!(&result, Err(StoreError::BadCursor { cursor: c }) if c == cursor),
                "{what} with {cursor:?}: {result:?}"
            );
        }
    }
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
    let mut run = new_run("digest", 3600, true);
    run.confirm_deadline = t(7200);
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

/// The first candidate becomes the secret; later candidates (another
/// instance starting) get the kept one, and names are independent.
pub async fn a_shared_secret_is_set_once_and_then_kept(store: SharedStore) {
    let first = store
        .shared_secret("links", b"first\x00\xff")
        .await
        .unwrap();
    assert_eq!(first, b"first\x00\xff");
    let again = store.shared_secret("links", b"second").await.unwrap();
    assert_eq!(again, first);
    let other = store.shared_secret("other", b"third").await.unwrap();
    assert_eq!(other, b"third");
}

/// Instances starting together agree on one secret.
pub async fn concurrent_shared_secret_candidates_agree_on_one(store: SharedStore) {
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.shared_secret("links", &[i; 32]).await.unwrap() })
        })
        .collect();
    let mut kept = Vec::new();
    for task in tasks {
        kept.push(task.await.unwrap());
    }
    assert!(kept.iter().all(|k| k == &kept[0]), "{kept:?}");
}
