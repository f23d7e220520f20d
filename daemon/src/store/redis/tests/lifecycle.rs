//! Creation, the agenda and the actions of the state table.

use super::*;
use crate::runs::RunState;
use crate::store::{CancelReason, RunFilter};
use std::sync::Arc;

#[tokio::test]
async fn create_run_is_idempotent_and_makes_the_run_due_now() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    assert!(f.store.create_run(&run).await.unwrap());
    assert!(!f.store.create_run(&run).await.unwrap());
    let stored = f.store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(stored.state, RunState::Preparing);
    assert_eq!(stored.scheduled_for, run.scheduled_for);
    assert_eq!(stored.created_at, run.created_at);
    assert_eq!(
        f.store.definition(&run.id).await.unwrap().unwrap(),
        run.definition
    );
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(0)));
    assert_eq!(
        f.store.due_runs(t(0), 10).await.unwrap(),
        vec![run.id.clone()]
    );
    assert!(f.store.due_runs(t(-1), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_creates_from_many_tasks_and_connections_create_once() {
    let f = fixture().await;
    let other = store_on(&f.server).await;
    let run = Arc::new(new_run("weekly", false));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            store.create_run(&run).await.unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.unwrap());
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn a_held_preparation_lease_keeps_others_out_until_it_expires() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    f.store.create_run(&run).await.unwrap();
    assert!(
        f.store
            .claim_preparation(&run.id, "a", t(30), t(0))
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .claim_preparation(&run.id, "b", t(40), t(10))
            .await
            .unwrap()
    );
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(30)));
    assert!(
        f.store
            .claim_preparation(&run.id, "a", t(60), t(20))
            .await
            .unwrap()
    );
    assert!(
        f.store
            .claim_preparation(&run.id, "b", t(90), t(61))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_confirmed_run_waits_for_its_instant_then_sends() {
    let f = fixture().await;
    let run = new_run("weekly", true);
    let pending = done(prepare(&f.store, &run, 1, 2, t(1)).await);
    assert_eq!(pending.state, RunState::Pending);
    assert_eq!(pending.counters.targeted, 2);
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(50)));
    let confirmed = done(f.store.confirm(&run.id, "ann", t(10)).await.unwrap());
    assert_eq!(confirmed.state, RunState::Scheduled);
    assert_eq!(confirmed.confirmed_by.as_deref(), Some("ann"));
    assert_eq!(confirmed.confirmed_at, Some(t(10)));
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(100)));
    assert_eq!(
        f.store.start_sending(&run.id, t(99)).await.unwrap(),
        Transition::Conflict(RunState::Scheduled)
    );
    let sending = done(f.store.start_sending(&run.id, t(100)).await.unwrap());
    assert_eq!(sending.state, RunState::Sending);
    assert_eq!(sending.started_at, Some(t(100)));
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(100)));
}

#[tokio::test]
async fn confirming_after_the_instant_sends_at_once() {
    let f = fixture().await;
    let mut run = new_run("weekly", true);
    run.confirm_deadline = t(200);
    prepare(&f.store, &run, 1, 1, t(1)).await;
    let sending = done(f.store.confirm(&run.id, "ann", t(150)).await.unwrap());
    assert_eq!(sending.state, RunState::Sending);
    assert_eq!(sending.started_at, Some(t(150)));
}

#[tokio::test]
async fn two_concurrent_confirms_give_exactly_one_done() {
    let f = fixture().await;
    let run = new_run("weekly", true);
    prepare(&f.store, &run, 1, 1, t(1)).await;
    let (a, b) = tokio::join!(
        f.store.confirm(&run.id, "ann", t(10)),
        f.store.confirm(&run.id, "bob", t(10))
    );
    let results = [a.unwrap(), b.unwrap()];
    let dones = results
        .iter()
        .filter(|r| matches!(r, Transition::Done(_)))
        .count();
    assert_eq!(dones, 1, "{results:?}");
    assert!(results.contains(&Transition::Conflict(RunState::Scheduled)));
}

#[tokio::test]
async fn actions_outside_the_state_table_conflict_with_the_current_state() {
    let f = fixture().await;
    let run = new_run("weekly", true);
    prepare(&f.store, &run, 1, 1, t(1)).await;
    let s = &f.store;
    assert_eq!(
        s.pause(&run.id, "a", t(2)).await.unwrap(),
        Transition::Conflict(RunState::Pending)
    );
    assert_eq!(
        s.resume(&run.id, "a", t(2)).await.unwrap(),
        Transition::Conflict(RunState::Pending)
    );
    assert_eq!(
        s.expire(&run.id, t(49)).await.unwrap(),
        Transition::Conflict(RunState::Pending)
    );
    let unknown = RunId::once("nobody");
    assert_eq!(
        s.confirm(&unknown, "a", t(2)).await.unwrap(),
        Transition::NotFound
    );
    assert_eq!(
        s.cancel(&unknown, None, CancelReason::Cancelled, t(2))
            .await
            .unwrap(),
        Transition::NotFound
    );
    assert_eq!(
        s.next_due().await.unwrap(),
        Some(t(50)),
        "failed actions keep the agenda"
    );
}

#[tokio::test]
async fn cancelling_before_sending_ends_the_run_and_leaves_the_agenda() {
    let f = fixture().await;
    let run = new_run("weekly", true);
    prepare(&f.store, &run, 1, 1, t(1)).await;
    let cancelled = done(
        f.store
            .cancel(&run.id, Some("ann"), CancelReason::Cancelled, t(5))
            .await
            .unwrap(),
    );
    assert_eq!(cancelled.state, RunState::Cancelled);
    assert_eq!(cancelled.cancelled_by.as_deref(), Some("ann"));
    assert_eq!(cancelled.cancel_reason, Some(CancelReason::Cancelled));
    assert_eq!(cancelled.finished_at, Some(t(5)));
    assert_eq!(f.store.next_due().await.unwrap(), None);
    assert_eq!(
        f.store
            .cancel(&run.id, None, CancelReason::DeliveryRemoved, t(6))
            .await
            .unwrap(),
        Transition::Conflict(RunState::Cancelled)
    );
    assert!(
        f.store
            .claim_chunk(&run.id, "a", t(60), t(7))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_pending_run_expires_at_its_deadline() {
    let f = fixture().await;
    let run = new_run("weekly", true);
    prepare(&f.store, &run, 1, 1, t(1)).await;
    let expired = done(f.store.expire(&run.id, t(50)).await.unwrap());
    assert_eq!(expired.state, RunState::Expired);
    assert_eq!(expired.finished_at, Some(t(50)));
    assert_eq!(f.store.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_run_is_final() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    f.store.create_run(&run).await.unwrap();
    let failed = done(
        f.store
            .fail_run(&run.id, "audience unreadable", t(1))
            .await
            .unwrap(),
    );
    assert_eq!(failed.failure.as_deref(), Some("audience unreadable"));
    assert_eq!(
        f.store.fail_run(&run.id, "again", t(2)).await.unwrap(),
        Transition::Conflict(RunState::Failed)
    );
    assert_eq!(f.store.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_cursors() {
    let f = fixture().await;
    for (i, delivery) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        let mut run = new_run(delivery, false);
        run.scheduled_for = t(i as i64 * 10);
        run.id = RunId::at(delivery, run.scheduled_for);
        f.store.create_run(&run).await.unwrap();
    }
    let e = RunId::at("e", t(40));
    f.store.fail_run(&e, "x", t(1)).await.unwrap();
    let all = RunFilter::default();
    let first = f.store.list_runs(&all, None, 2).await.unwrap();
    let ids: Vec<_> = first.items.iter().map(|r| r.delivery_id.as_str()).collect();
    assert_eq!(ids, ["e", "d"]);
    let second = f
        .store
        .list_runs(&all, first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    let ids: Vec<_> = second
        .items
        .iter()
        .map(|r| r.delivery_id.as_str())
        .collect();
    assert_eq!(ids, ["c", "b"]);
    let last = f
        .store
        .list_runs(&all, second.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_cursor, None);
    let preparing = RunFilter {
        state: Some(RunState::Preparing),
        delivery_id: None,
    };
    assert_eq!(
        f.store
            .list_runs(&preparing, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    let of_b = RunFilter {
        state: None,
        delivery_id: Some("b".to_owned()),
    };
    let page = f.store.list_runs(&of_b, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].delivery_id, "b");
    let counts = f.store.count_by_state().await.unwrap();
    assert!(counts.contains(&(RunState::Preparing, 4)));
    assert!(counts.contains(&(RunState::Failed, 1)));
    assert!(counts.contains(&(RunState::Sent, 0)));
}

#[tokio::test]
async fn schedule_cursors_only_move_forward() {
    let f = fixture().await;
    assert_eq!(f.store.cursor("d").await.unwrap(), None);
    f.store.advance_cursor("d", t(10)).await.unwrap();
    f.store.advance_cursor("d", t(5)).await.unwrap();
    assert_eq!(f.store.cursor("d").await.unwrap(), Some(t(10)));
    f.store.advance_cursor("d", t(20)).await.unwrap();
    assert_eq!(f.store.cursor("d").await.unwrap(), Some(t(20)));
}

#[tokio::test]
async fn an_agenda_update_overtaken_by_a_later_change_is_ignored() {
    let f = fixture().await;
    let id = RunId::once("weekly");
    let apply = |seq: i64, at: i64| {
        let store = f.store.clone();
        let id = id.clone();
        async move {
            super::super::scripts::AGENDA_APPLY
                .key(&store.global.agenda)
                .key(&store.global.agenda_seq)
                .arg(id.as_str())
                .arg(seq)
                .arg(at)
                .invoke_async::<i64>(&mut store.conn())
                .await
                .unwrap()
        }
    };
    assert_eq!(apply(5, 1_000_000).await, 1);
    assert_eq!(apply(4, -1).await, 0, "an older removal must not win");
    let one_second = DateTime::UNIX_EPOCH + Duration::seconds(1);
    assert_eq!(f.store.next_due().await.unwrap(), Some(one_second));
    assert_eq!(
        apply(5, 2_000_000).await,
        1,
        "the same change may be applied again"
    );
    assert_eq!(apply(6, -1).await, 1);
    assert_eq!(f.store.next_due().await.unwrap(), None);
}

/// Many instants in one call, some of one run, leave what applying them
/// one by one in order would.
#[tokio::test]
async fn instants_applied_together_end_as_applied_one_by_one() {
    let f = fixture().await;
    let apply = |instants: Vec<(&'static str, i64, i64)>| {
        let store = f.store.clone();
        async move {
            let mut invocation = super::super::scripts::AGENDA_APPLY.key(&store.global.agenda);
            invocation.key(&store.global.agenda_seq);
            for (id, seq, at) in instants {
                invocation.arg(id).arg(seq).arg(at);
            }
            invocation
                .invoke_async::<i64>(&mut store.conn())
                .await
                .unwrap()
        }
    };
    assert_eq!(apply(vec![("gone", 1, 5_000_000)]).await, 1);
    let applied = apply(vec![
        ("a", 1, 3_000_000),
        ("b", 2, 4_000_000),
        ("a", 3, 1_000_000),
        ("a", 2, 9_000_000), // overtaken by seq 3 in the same call
        ("gone", 2, -1),
        ("b", 1, -1), // older than b's 2
        ("c", 1, -1), // removing what is not there
    ])
    .await;
    assert_eq!(applied, 5);
    let agenda: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(&f.store.global.agenda)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut f.store.conn())
        .await
        .unwrap();
    assert_eq!(
        agenda,
        vec![("a".to_owned(), 1_000_000), ("b".to_owned(), 4_000_000)]
    );
    let seqs: Vec<Option<i64>> = redis::cmd("HMGET")
        .arg(&f.store.global.agenda_seq)
        .arg(&["a", "b", "c", "gone"])
        .query_async(&mut f.store.conn())
        .await
        .unwrap();
    assert_eq!(seqs, vec![Some(3), Some(2), Some(1), Some(2)]);
    assert_eq!(apply(vec![("a", 2, -1)]).await, 0, "seq 3 is applied");
}

#[tokio::test]
async fn a_lost_agenda_apply_leaves_an_early_entry_that_the_next_operation_corrects() {
    let f = fixture().await;
    let run = new_run("weekly", true);
    prepare(&f.store, &run, 1, 1, t(1)).await;
    // As if a confirm crashed after its early agenda entry: the run is
    // still pending, its entry says "now".
    f.store.lower_agenda(&run.id, t(10)).await.unwrap();
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(10)));
    assert_eq!(
        f.store.start_sending(&run.id, t(10)).await.unwrap(),
        Transition::Conflict(RunState::Pending)
    );
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(50)));
}

#[tokio::test]
async fn deployments_with_different_prefixes_share_one_redis_without_seeing_each_other() {
    let f = fixture().await;
    let other = RedisStore::connect(RedisSettings {
        url: f.server.url(),
        key_prefix: "staging".to_owned(),
    })
    .await
    .unwrap();
    let run = new_run("weekly", false);
    assert!(f.store.create_run(&run).await.unwrap());
    assert!(
        other.create_run(&run).await.unwrap(),
        "same id, other deployment"
    );
    other.fail_run(&run.id, "x", t(1)).await.unwrap();
    assert_eq!(
        f.store.run(&run.id).await.unwrap().unwrap().state,
        RunState::Preparing
    );
    assert_eq!(f.store.next_due().await.unwrap(), Some(t(0)));
    assert_eq!(other.next_due().await.unwrap(), None);
}
