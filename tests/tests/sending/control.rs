//! Pause, resume and cancel while a run is sending, with one instance.

use crate::cluster::{Cluster, SENDING};
use herald::runs::{RunId, RunState};
use herald::store::{CancelReason, Store, Transition};
use std::time::Duration;

const RECIPIENTS: usize = 10_000;
const PLUGIN: &str = r#""concurrency": 2, "batch_delay_ms": 40"#;

#[test]
fn a_paused_run_sends_nothing_until_it_is_resumed_then_finishes_without_duplicates() {
    let cluster = Cluster::new();
    let run = RunId::once("paced");
    cluster.audience("paced.csv", RECIPIENTS, |i| format!("a{i}"));
    cluster.delivery("paced", "paced.csv", "");
    let _daemon = cluster.start("a", PLUGIN, SENDING);
    cluster.wait_received(1_000, Duration::from_secs(60));

    let now = chrono::Utc::now();
    let paused = cluster
        .rt
        .block_on(cluster.store.pause(&run, "tester", now));
    assert!(matches!(paused, Ok(Transition::Done(_))), "{paused:?}");
    // Batches in flight finish (a state check every 250 ms, 40 ms batches).
    std::thread::sleep(Duration::from_secs(1));
    let at_pause = cluster.received_total();
    std::thread::sleep(Duration::from_secs(2));
    let later = cluster.received_total();
    println!("paused at {at_pause} messages; 2 s later {later}");
    assert_eq!(at_pause, later, "a paused run kept sending");
    assert!(later < RECIPIENTS as u64, "the run ended before the pause");
    assert_eq!(cluster.state(&run), Some(RunState::Paused));

    let resumed = cluster
        .rt
        .block_on(cluster.store.resume(&run, "tester", chrono::Utc::now()));
    assert!(matches!(resumed, Ok(Transition::Done(_))), "{resumed:?}");
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(60));
    let tally = cluster.tally(&run, RECIPIENTS);
    assert_eq!(tally.lost, 0);
    assert_eq!(tally.duplicates, 0);
    assert_eq!(tally.outcomes.get("delivered"), Some(&(RECIPIENTS as u64)));
    cluster.assert_counters_match_recount(&run);
}

#[test]
fn cancelling_a_sending_run_gives_every_unsent_recipient_cancelled_and_the_counts_add_up() {
    let cluster = Cluster::new();
    let run = RunId::once("halted");
    // Every 500th row has no address: excluded at preparation.
    cluster.audience("halted.csv", RECIPIENTS, |i| {
        if i % 500 == 7 {
            String::new()
        } else {
            format!("a{i}")
        }
    });
    cluster.delivery("halted", "halted.csv", "");
    let _daemon = cluster.start("a", PLUGIN, SENDING);
    cluster.wait_received(2_000, Duration::from_secs(60));

    let cancelled = cluster.rt.block_on(cluster.store.cancel(
        &run,
        Some("tester"),
        CancelReason::Cancelled,
        chrono::Utc::now(),
    ));
    assert!(
        matches!(cancelled, Ok(Transition::Done(_))),
        "{cancelled:?}"
    );
    // The run is `cancelled` at once; its workers then record the rest.
    let counters = wait_settled(&cluster, &run);
    let tally = cluster.tally(&run, RECIPIENTS);
    println!("counters after cancel: {counters:?}");
    assert_eq!(cluster.state(&run), Some(RunState::Cancelled));
    assert_eq!(tally.lost, 0, "every recipient has an outcome");
    assert_eq!(counters.excluded(), 20);
    assert!(counters.cancelled > 0, "nothing was left to cancel");
    assert!(counters.delivered >= 2_000);
    assert_eq!(
        counters.delivered
            + counters.bounced
            + counters.failed
            + counters.cancelled
            + counters.excluded(),
        counters.targeted,
        "delivered + bounced + failed + cancelled + excluded = targeted"
    );
    assert_eq!(counters.targeted, RECIPIENTS as u64);
    assert_eq!(tally.duplicates, 0);
    assert_eq!(
        tally.received, counters.delivered,
        "the sink saw exactly the delivered"
    );
    cluster.assert_counters_match_recount(&run);
}

/// Waits until every recipient to send has an outcome; returns the counters.
fn wait_settled(cluster: &Cluster, run: &RunId) -> herald::store::Counters {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counters = cluster
            .rt
            .block_on(cluster.store.run(run))
            .expect("the store answers")
            .expect("the run exists")
            .counters;
        if counters.remaining() == 0 {
            return counters;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recipients still without an outcome 30 s after the cancel: {counters:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
