//! Outcomes, feedback, tracking, recount, history and suppressions.

use super::*;
use crate::store::{SuppressionList, TrackingKind};

#[tokio::test]
async fn outcomes_are_set_once_and_counted_once_with_history_and_message_ids() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    prepare(&f.store, &run, 1, 3, t(100)).await;
    let s = &f.store;
    let batch = [
        outcome("r0", Outcome::Delivered, t(101)),
        outcome("r1", Outcome::Bounced, t(101)),
        outcome("r2", Outcome::Failed, t(101)),
    ];
    s.record_outcomes(&run.id, &batch).await.unwrap();
    s.record_outcomes(&run.id, &[outcome("r0", Outcome::Failed, t(102))])
        .await
        .unwrap();
    let counters = s.run(&run.id).await.unwrap().unwrap().counters;
    assert_eq!(
        (counters.delivered, counters.bounced, counters.failed),
        (1, 1, 1)
    );
    assert_eq!(s.outcome(&run.id, "r0").await.unwrap().unwrap(), batch[0]);
    assert_eq!(
        s.find_message("pm-r0").await.unwrap(),
        Some((run.id.clone(), "r0".to_owned()))
    );
    let history = s.history("r0", None, 10).await.unwrap();
    assert_eq!(history.items.len(), 1);
    assert_eq!(history.items[0].outcome, Outcome::Delivered);
    assert_eq!(history.items[0].channel, "email");
    assert_eq!(
        history.items[0].provider_message_id.as_deref(),
        Some("pm-r0")
    );
}

/// Provider ids ride in the outcomes' pipeline, not in their script: a
/// batch recorded again (after a crash or a reclaim) puts back a lost one
/// and counts nothing twice, and a script cache emptied under the store (a
/// Redis restarted without it) is loaded again.
#[tokio::test]
async fn a_batch_recorded_again_restores_message_ids_and_survives_a_script_flush() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    prepare(&f.store, &run, 1, 2, t(100)).await;
    let s = &f.store;
    let batch = [outcome("r0", Outcome::Delivered, t(101))];
    s.record_outcomes(&run.id, &batch).await.unwrap();
    let _: i64 = raw(s, redis::cmd("HDEL").arg(&s.global.messages).arg("pm-r0")).await;
    let _: String = raw(s, redis::cmd("SCRIPT").arg("FLUSH")).await;

    let again = [outcome("r0", Outcome::Delivered, t(105))];
    s.record_outcomes(&run.id, &again).await.unwrap();
    s.record_outcomes(&run.id, &[outcome("r1", Outcome::Failed, t(106))])
        .await
        .unwrap();
    let counters = s.run(&run.id).await.unwrap().unwrap().counters;
    assert_eq!((counters.delivered, counters.failed), (1, 1));
    let entries = s.history("r0", None, 10).await.unwrap().items;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].at, t(101), "the first record's instant");
    assert_eq!(
        s.find_message("pm-r0").await.unwrap(),
        Some((run.id.clone(), "r0".to_owned()))
    );
    assert_eq!(s.history("r1", None, 10).await.unwrap().items.len(), 1);
}

/// The members of a recipient's history key, read raw.
async fn indexed(s: &RedisStore, recipient: &str) -> Vec<String> {
    raw(
        s,
        redis::cmd("ZRANGE")
            .arg(super::super::keys::history(&s.prefix, recipient))
            .arg(0)
            .arg(-1),
    )
    .await
}

/// Waits (up to 10 s) until no run has outcomes queued for the history.
async fn until_indexed(s: &RedisStore) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let pending: i64 = raw(s, redis::cmd("ZCARD").arg(&s.global.history_pending)).await;
        if pending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "history still queued after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A run of one chunk of `size` recipients, sending, with `batch` recorded.
async fn run_with_recorded(s: &RedisStore, size: usize, batch: &[RecipientOutcome]) -> NewRun {
    let run = new_run("weekly", false);
    prepare(s, &run, 1, size, t(100)).await;
    s.record_outcomes(&run.id, batch).await.unwrap();
    run
}

/// Sends the run's only chunk to the end: the run is `sent`.
async fn finish_sending(s: &RedisStore, run: &RunId) {
    let claimed = s
        .claim_chunk(run, "a", t(300), t(103))
        .await
        .unwrap()
        .unwrap();
    s.complete_chunk(run, claimed.number, "a", t(104))
        .await
        .unwrap();
    assert_eq!(
        s.run(run).await.unwrap().unwrap().state,
        crate::runs::RunState::Sent
    );
}

/// New outcomes are queued in the run's slot and the indexer writes them
/// into each recipient's history key once the run has stopped sending and
/// the instance is quiet; the queue and the pending mark go. Reads see
/// them before and after alike.
#[tokio::test]
async fn the_indexer_moves_queued_outcomes_into_each_recipients_history() {
    let f = fixture().await;
    let s = &f.store;
    let batch = [
        outcome("r0", Outcome::Delivered, t(101)),
        outcome("r1", Outcome::Failed, t(102)),
    ];
    let run = run_with_recorded(s, 3, &batch).await;
    let before = s.history("r1", None, 10).await.unwrap();
    assert_eq!(before.items.len(), 1, "a queued outcome is in the history");

    // Quiet for longer than the indexer waits, but the run still sends.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(indexed(s, "r1").await.is_empty(), "indexed while sending");
    finish_sending(s, &run.id).await;
    until_indexed(s).await;
    assert_eq!(indexed(s, "r0").await, vec![run.id.to_string()]);
    assert_eq!(indexed(s, "r1").await, vec![run.id.to_string()]);
    let k = s.run_keys(&run.id);
    let queue: i64 = raw(s, redis::cmd("EXISTS").arg(&k.unindexed)).await;
    assert_eq!(queue, 0);
    assert_eq!(s.history("r1", None, 10).await.unwrap(), before);
    let due: Option<f64> = raw(s, redis::cmd("ZSCORE").arg(&s.global.history_due).arg("r1")).await;
    assert_eq!(
        due.map(|us| us as i64),
        Some(super::super::codec::micros(t(102)))
    );
}

/// An outcome erased while it waits in the queue is never indexed.
#[tokio::test]
async fn an_outcome_erased_while_queued_is_not_indexed() {
    let f = fixture().await;
    let s = &f.store;
    let batch = [
        outcome("r0", Outcome::Delivered, t(101)),
        outcome("r1", Outcome::Delivered, t(101)),
    ];
    let run = run_with_recorded(s, 2, &batch).await;
    let k = s.run_keys(&run.id);
    let _: i64 = raw(s, redis::cmd("HDEL").arg(&k.outcomes).arg("r0")).await;
    finish_sending(s, &run.id).await;

    until_indexed(s).await;
    assert!(indexed(s, "r0").await.is_empty());
    assert_eq!(indexed(s, "r1").await, vec![run.id.to_string()]);
    assert!(s.history("r0", None, 10).await.unwrap().items.is_empty());
}

/// Takes a run's queued history batches as indexer `owner` the way the
/// indexer does, and writes nothing: a crash or a lost connection right
/// after the take. Returns the recipient ids and instants it got.
async fn take_and_drop(s: &RedisStore, run: &RunId, owner: &str) -> Vec<String> {
    let k = s.run_keys(run);
    let now = Utc::now();
    let taken: Vec<String> = super::super::scripts::TAKE_UNINDEXED
        .key(&k.unindexed)
        .key(&k.outcomes)
        .key(&k.indexing)
        .arg(40)
        .arg(owner)
        .arg(super::super::codec::micros(now))
        .arg(super::super::codec::micros(now + Duration::seconds(30)))
        .invoke_async(&mut s.conn())
        .await
        .unwrap();
    assert_eq!(taken[1], "1", "nothing taken: {taken:?}");
    taken[2..].to_vec()
}

/// An indexer that took a run's queued outcomes and died before writing
/// them loses none: while its lease lasts the run stays pending (so
/// history reads, and the erasure of a profile, still find the run), and
/// once it ends another indexer writes them.
#[tokio::test]
async fn outcomes_taken_by_an_indexer_that_died_are_indexed_once_its_lease_ends() {
    let f = fixture().await;
    let s = &f.store;
    let batch = [
        outcome("r0", Outcome::Delivered, t(101)),
        outcome("r1", Outcome::Failed, t(102)),
    ];
    let run = run_with_recorded(s, 2, &batch).await;
    assert_eq!(take_and_drop(s, &run.id, "died").await.len(), 4);
    finish_sending(s, &run.id).await;

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        indexed(s, "r0").await.is_empty(),
        "taken over within the lease"
    );
    let pending: i64 = raw(s, redis::cmd("ZCARD").arg(&s.global.history_pending)).await;
    assert_eq!(pending, 1, "the run left the pending index");
    assert_eq!(s.history("r0", None, 10).await.unwrap().items.len(), 1);

    let k = s.run_keys(&run.id);
    let _: i64 = raw(s, redis::cmd("HSET").arg(&k.indexing).arg("until").arg(0)).await;
    until_indexed(s).await;
    assert_eq!(indexed(s, "r0").await, vec![run.id.to_string()]);
    assert_eq!(indexed(s, "r1").await, vec![run.id.to_string()]);
    let held: i64 = raw(s, redis::cmd("EXISTS").arg(&k.indexing)).await;
    assert_eq!(held, 0);
}

/// An indexer whose writes failed (Redis went away after the take) writes
/// the same outcomes on its next pass, without waiting for its lease.
#[tokio::test]
async fn outcomes_an_indexer_failed_to_write_are_written_on_its_next_pass() {
    let f = fixture().await;
    let s = &f.store;
    let batch = [outcome("r0", Outcome::Delivered, t(101))];
    let run = run_with_recorded(s, 1, &batch).await;
    let owner = s.indexer.owner().to_owned();
    assert_eq!(take_and_drop(s, &run.id, &owner).await.len(), 2);
    finish_sending(s, &run.id).await;

    until_indexed(s).await;
    assert_eq!(indexed(s, "r0").await, vec![run.id.to_string()]);
    let held: i64 = raw(s, redis::cmd("EXISTS").arg(&s.run_keys(&run.id).indexing)).await;
    assert_eq!(held, 0);
}

#[tokio::test]
async fn feedback_turns_delivered_into_bounced_and_moves_the_counters() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    prepare(&f.store, &run, 1, 1, t(100)).await;
    let s = &f.store;
    s.record_outcomes(&run.id, &[outcome("r0", Outcome::Delivered, t(101))])
        .await
        .unwrap();
    let amended = s
        .amend_outcome(&run.id, "r0", Outcome::Bounced, "550 no such user", t(200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(amended.outcome, Outcome::Bounced);
    assert_eq!(amended.detail.as_deref(), Some("550 no such user"));
    assert_eq!(amended.address, "r0@example.com");
    let again = s
        .amend_outcome(&run.id, "r0", Outcome::Failed, "x", t(201))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.outcome,
        Outcome::Bounced,
        "only delivered outcomes change"
    );
    let counters = s.run(&run.id).await.unwrap().unwrap().counters;
    assert_eq!((counters.delivered, counters.bounced), (0, 1));
    assert_eq!(
        s.history("r0", None, 5).await.unwrap().items[0].outcome,
        Outcome::Bounced
    );
    assert_eq!(
        s.amend_outcome(&run.id, "nobody", Outcome::Bounced, "", t(1))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn tracking_is_unique_per_recipient_and_kind_and_any_action_implies_an_open() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    prepare(&f.store, &run, 1, 3, t(100)).await;
    let s = &f.store;
    let events = [
        ("r0".to_owned(), TrackingKind::Open),
        ("r0".to_owned(), TrackingKind::Open),
        ("r1".to_owned(), TrackingKind::Click),
        ("r1".to_owned(), TrackingKind::Click),
        ("r2".to_owned(), TrackingKind::Unsubscribe),
    ];
    s.record_tracking(&run.id, &events).await.unwrap();
    s.record_tracking(&run.id, &events[..1]).await.unwrap();
    let c = s.run(&run.id).await.unwrap().unwrap().counters;
    // r0 opened, r1 clicked, r2 unsubscribed: three opened (kpis.md).
    assert_eq!((c.opened, c.clicked, c.unsubscribed), (3, 1, 1));
}

#[tokio::test]
async fn recount_rebuilds_counters_from_the_records() {
    let f = fixture().await;
    let run = new_run("weekly", false);
    prepare(&f.store, &run, 1, 3, t(100)).await;
    let s = &f.store;
    s.record_outcomes(
        &run.id,
        &[
            outcome("r0", Outcome::Delivered, t(101)),
            outcome("r1", Outcome::Delivered, t(101)),
            outcome("r2", Outcome::Cancelled, t(101)),
        ],
    )
    .await
    .unwrap();
    s.amend_outcome(&run.id, "r1", Outcome::Failed, "gone", t(102))
        .await
        .unwrap();
    s.record_tracking(&run.id, &[("r0".to_owned(), TrackingKind::Click)])
        .await
        .unwrap();
    let key = f.store.run_keys(&run.id).run;
    redis::cmd("HSET")
        .arg(&key)
        .arg("delivered")
        .arg(99)
        .arg("opened")
        .arg(0)
        .query_async::<i64>(&mut f.store.conn())
        .await
        .unwrap();
    let c = s.recount(&run.id).await.unwrap();
    assert_eq!((c.delivered, c.failed, c.cancelled), (1, 1, 1));
    assert_eq!((c.opened, c.clicked, c.targeted), (1, 1, 3));
    assert_eq!(s.run(&run.id).await.unwrap().unwrap().counters, c);
}

#[tokio::test]
async fn history_pages_newest_first() {
    let f = fixture().await;
    let s = &f.store;
    for (i, delivery) in ["a", "b", "c"].iter().enumerate() {
        let run = new_run(delivery, false);
        prepare(s, &run, 1, 1, t(100)).await;
        s.record_outcomes(
            &run.id,
            &[outcome("r0", Outcome::Delivered, t(200 + i as i64))],
        )
        .await
        .unwrap();
    }
    let first = s.history("r0", None, 2).await.unwrap();
    let order: Vec<_> = first.items.iter().map(|h| h.delivery_id.as_str()).collect();
    assert_eq!(order, ["c", "b"]);
    let rest = s
        .history("r0", first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(rest.items[0].delivery_id, "a");
    assert_eq!(rest.next_cursor, None);
}

#[tokio::test]
async fn the_denylist_wins_and_soft_bounces_quarantine_at_the_threshold() {
    let f = fixture().await;
    let s = &f.store;
    let (a, b, c) = ("a@x.org", "b@x.org", "c@x.org");
    s.suppress(SuppressionList::Quarantine, a, "hard_bounce", t(1))
        .await
        .unwrap();
    s.suppress(SuppressionList::Denylist, a, "unsubscribed", t(2))
        .await
        .unwrap();
    s.suppress(SuppressionList::Denylist, a, "complained", t(3))
        .await
        .unwrap();
    let lists = s.suppressed(&[a.into(), b.into()]).await.unwrap();
    assert_eq!(lists, [Some(SuppressionList::Denylist), None]);
    let deny = s
        .suppressions(SuppressionList::Denylist, None, 10)
        .await
        .unwrap();
    assert_eq!(
        deny.items[0].reason, "unsubscribed",
        "the first entry is kept"
    );
    assert_eq!(deny.items[0].since, t(2));
    assert!(!s.soft_bounce(b, 3, t(4)).await.unwrap());
    assert!(!s.soft_bounce(b, 3, t(5)).await.unwrap());
    s.reset_soft_bounces(&[b.into()]).await.unwrap();
    assert!(!s.soft_bounce(b, 3, t(6)).await.unwrap());
    assert!(!s.soft_bounce(b, 3, t(7)).await.unwrap());
    assert!(s.soft_bounce(b, 3, t(8)).await.unwrap());
    assert!(!s.soft_bounce(b, 3, t(9)).await.unwrap());
    s.suppress(SuppressionList::Quarantine, c, "manual", t(9))
        .await
        .unwrap();
    let first = s
        .suppressions(SuppressionList::Quarantine, None, 2)
        .await
        .unwrap();
    let addresses: Vec<_> = first.items.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addresses, [a, b]);
    assert_eq!(first.items[1].reason, "soft_bounces");
    assert_eq!(first.items[1].soft_bounces, 4);
    let rest = s
        .suppressions(SuppressionList::Quarantine, first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    assert!(s.unsuppress(SuppressionList::Denylist, a).await.unwrap());
    assert!(!s.unsuppress(SuppressionList::Denylist, a).await.unwrap());
    assert_eq!(
        s.suppressed(&[a.into()]).await.unwrap(),
        [Some(SuppressionList::Quarantine)]
    );
}

/// An entry the indexer writes after an erasure removed its outcome (the
/// indexer had looked just before) is taken back by the indexer's check
/// after writing; the others stay.
#[tokio::test]
async fn an_entry_written_after_its_outcome_was_erased_is_taken_back() {
    let f = fixture().await;
    let s = &f.store;
    let batch = [
        outcome("r0", Outcome::Delivered, t(101)),
        outcome("r1", Outcome::Delivered, t(101)),
    ];
    let run = run_with_recorded(s, 2, &batch).await;
    finish_sending(s, &run.id).await;
    until_indexed(s).await;
    let k = s.run_keys(&run.id);
    let _: i64 = raw(s, redis::cmd("HDEL").arg(&k.outcomes).arg("r0")).await;

    let us = super::super::codec::micros(t(101)).to_string();
    let written = ["r0".to_owned(), us.clone(), "r1".to_owned(), us];
    super::super::indexer::forget_erased(&s.conn, &s.prefix, &k, run.id.as_str(), &written)
        .await
        .unwrap();
    assert!(indexed(s, "r0").await.is_empty());
    assert_eq!(indexed(s, "r1").await, vec![run.id.to_string()]);
}

/// One `record_last.lua` call with the last batches of several runs, of
/// different sizes, one of a run the store does not have: each run gets
/// its own reply, and only its own outcomes.
#[tokio::test]
async fn last_batches_of_several_runs_in_one_call_each_get_their_reply() {
    use super::super::recording::{LastBatch, record_lasts};
    use crate::runs::RunState;
    use redis::Value;
    let f = fixture().await;
    let mut batches = Vec::new();
    for (name, size) in [("one", 1), ("three", 3), ("gone", 2), ("two", 2)] {
        let run = new_run(name, false);
        if name != "gone" {
            prepare(&f.store, &run, 1, size, t(100)).await;
            let claimed = f
                .store
                .claim_chunk(&run.id, "a", t(160), t(101))
                .await
                .unwrap();
            assert_eq!(claimed.map(|c| c.recipients.len()), Some(size));
        }
        batches.push(LastBatch {
            id: run.id,
            chunk: 0,
            owner: "a".to_owned(),
            outcomes: (0..size)
                .map(|i| outcome(&format!("r{i}"), Outcome::Delivered, t(102)))
                .collect(),
            accepted_by: Vec::new(),
            now: t(102),
        });
    }
    let replies = record_lasts(&f.store.conn(), "herald", &f.store.global, &batches)
        .await
        .unwrap();
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[2], Value::Nil, "no such run");
    for (batch, reply) in batches.iter().zip(replies) {
        if reply == Value::Nil {
            continue;
        }
        let reply = f.store.apply_reply(&batch.id, reply).await.unwrap();
        assert_eq!(reply.int(0).unwrap(), 1, "{}: completed", batch.id);
        assert_eq!(
            reply.int(1).unwrap(),
            batch.outcomes.len() as i64,
            "new outcomes"
        );
        let run = f.store.run(&batch.id).await.unwrap().unwrap();
        assert_eq!(
            (run.state, run.counters.delivered),
            (RunState::Sent, batch.outcomes.len() as u64)
        );
    }
}
