//! Per-recipient records: outcomes, history, feedback, tracking, recount.

use super::fixtures::*;
use crate::runs::{ExclusionReason, Outcome};
use crate::store::*;

/// An outcome is set once; a second one for the same recipient is ignored
/// and not counted, also when both come in one call.
pub async fn outcomes_are_set_once_and_counted_once(store: SharedStore) {
    let id = sending_run(&store, "digest", &[5]).await;
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
    store
        .record_outcomes(
            &id,
            &[
                outcome(&r(4), Outcome::Failed, t(3)),
                delivered(&r(4), t(3)),
            ],
        )
        .await
        .unwrap();
    let c = counters(&store, &id).await;
    assert_eq!(
        (c.delivered, c.bounced, c.failed, c.cancelled),
        (2, 1, 2, 0)
    );
    assert_eq!(
        store.outcome(&id, &r(4)).await.unwrap().unwrap().outcome,
        Outcome::Failed
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

/// Tracking counts unique recipients per kind; a click or an unsubscribe
/// implies an open (`opened` counts any tracked action, kpis.md).
pub async fn tracking_is_unique_per_recipient_and_any_action_implies_an_open(store: SharedStore) {
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
    assert_eq!((c.opened, c.clicked, c.unsubscribed), (3, 2, 1));
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

/// Recording a sent batch records its outcomes and resets the soft-bounce
/// counts of the addresses that took a message, and nobody else's.
pub async fn recording_a_sent_batch_resets_the_soft_bounces_of_its_takers(store: SharedStore) {
    let id = sending_run(&store, "digest", &[2]).await;
    let (taker, other) = ("taker@x.test".to_owned(), "other@x.test".to_owned());
    for address in [&taker, &other] {
        assert!(!store.soft_bounce(address, 2, t(1)).await.unwrap());
    }
    store
        .record_sent(
            &id,
            &[delivered(&rid("digest", 0, 0), t(2))],
            std::slice::from_ref(&taker),
        )
        .await
        .unwrap();
    assert_eq!(counters(&store, &id).await.delivered, 1);
    assert!(
        !store.soft_bounce(&taker, 2, t(3)).await.unwrap(),
        "the taker's count started again"
    );
    assert!(
        store.soft_bounce(&other, 2, t(3)).await.unwrap(),
        "the other's count was kept: quarantined at 2"
    );
}
