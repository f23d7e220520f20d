//! Transient failures are retried with backoff up to `sending.retries`;
//! a plugin that panics, hangs or answers garbage costs only its batch (G6).

use crate::cluster::Cluster;
use herald::runs::{RunId, RunState};
use herald_test_support::Daemon;
use std::time::Duration;

const SENDING: &str = "  batch_size: 20\n  chunk_size: 200\n  lease: 3s\n  retries: 2\n  plugin_timeout: 2s\n  shutdown_grace: 5s";

#[test]
fn messages_answered_retry_twice_are_delivered_once_on_the_third_try() {
    let cluster = Cluster::new();
    let run = RunId::once("flaky");
    cluster.audience("flaky.csv", 1_000, |i| format!("a{i}"));
    cluster.delivery("flaky", "flaky.csv", "");
    let daemon = cluster.start("a", r#""concurrency": 4, "retry_first": 2"#, SENDING);
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(60));
    let tally = cluster.tally(&run, 1_000);
    assert_eq!(tally.outcomes.get("delivered"), Some(&1_000));
    assert_eq!(tally.received, 1_000);
    assert_eq!(tally.duplicates, 0);
    cluster.assert_counters_match_recount(&run);
    drop(daemon);
}

#[test]
fn a_message_that_always_retries_fails_after_the_configured_retries() {
    let cluster = Cluster::new();
    let run = RunId::once("stubborn");
    // One row in 100 is always answered `retry`.
    cluster.audience("stubborn.csv", 1_000, |i| {
        if i % 100 == 0 {
            format!("always-retry-{i}")
        } else {
            format!("a{i}")
        }
    });
    cluster.delivery("stubborn", "stubborn.csv", "");
    let _daemon = cluster.start("a", r#""concurrency": 4"#, SENDING);
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(60));
    let tally = cluster.tally(&run, 1_000);
    assert_eq!(tally.outcomes.get("failed"), Some(&10));
    assert_eq!(tally.outcomes.get("delivered"), Some(&990));
    assert_eq!(tally.received, 990);
    let failed = cluster
        .rt
        .block_on(herald::store::Store::outcome(&cluster.store, &run, "r0"))
        .expect("the store answers")
        .expect("r0 has an outcome");
    println!("r0: {failed:?}");
    cluster.assert_counters_match_recount(&run);
}

#[test]
fn panicking_and_hanging_batches_cost_only_their_batches_and_the_daemon_goes_on() {
    let cluster = Cluster::new();
    let run = RunId::once("faulty");
    // Row 100 panics its batch, row 500 hangs its batch.
    cluster.audience("faulty.csv", 1_000, |i| match i {
        100 => "panic".into(),
        500 => "hang".into(),
        _ => format!("a{i}"),
    });
    cluster.delivery("faulty", "faulty.csv", "");
    let mut daemon = cluster.start("a", r#""concurrency": 8"#, SENDING);
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(90));
    let tally = cluster.tally(&run, 1_000);
    assert_eq!(tally.lost, 0);
    let failed = tally.outcomes.get("failed").copied().unwrap_or(0);
    let delivered = tally.outcomes.get("delivered").copied().unwrap_or(0);
    assert_eq!(failed + delivered, 1_000);
    // The two bad rows fail; a batch mate fails only when it kept meeting
    // a bad row in every try: at most (retries + 1) batches per bad row.
    let bound = 2 * 3 * 20;
    assert!(
        (2..=bound).contains(&failed),
        "{failed} failed, expected the 2 bad rows and at most {bound} in all"
    );
    for bad in ["r100", "r500"] {
        let o = cluster
            .rt
            .block_on(herald::store::Store::outcome(&cluster.store, &run, bad))
            .expect("the store answers")
            .expect("the bad row has an outcome");
        println!("{bad}: {:?} {:?}", o.outcome, o.detail);
        assert_eq!(o.outcome.as_str(), "failed");
    }
    assert_eq!(
        tally.received, delivered,
        "the sink saw exactly the delivered"
    );
    cluster.assert_counters_match_recount(&run);
    assert!(daemon.is_running(), "the daemon died:\n{}", daemon.log());

    // The daemon goes on: a new delivery is sent in full.
    let next = RunId::once("after");
    cluster.audience("after.csv", 100, |i| format!("b{i}"));
    cluster.delivery("after", "after.csv", "");
    cluster.wait_state(&next, &[RunState::Sent], Duration::from_secs(60));
    assert_eq!(
        cluster.tally(&next, 100).outcomes.get("delivered"),
        Some(&100)
    );
}

#[test]
fn a_plugin_answering_garbage_fails_its_messages_and_the_daemon_goes_on() {
    let cluster = Cluster::new();
    let garbage = Daemon::plugin("herald_test_raw");
    std::fs::write(
        cluster.path().join("deliveries/junk.yaml"),
        "id: junk\nchannel: raw\naudience:\n  recipients:\n    - { id: j1 }\n    - { id: j2 }\ncontent:\n  body: hi\n",
    )
    .expect("the delivery is written");
    cluster.audience("fine.csv", 200, |i| format!("a{i}"));
    cluster.delivery("fine", "fine.csv", "");
    let config = format!(
        "deliveries_dir: deliveries\nstore:\n{}\nhttp:\n  listen: \"{{listen}}\"\nplugins:\n  - path: {}\n    config: \"garbage\"\n  - path: {}\n    config: {{ \"dir\": \"{}\", \"address_column\": \"address\" }}\nsending:\n{SENDING}\n",
        cluster.store_block(),
        garbage.display(),
        Daemon::plugin("herald_test_count").display(),
        cluster.sink().display(),
    );
    let mut daemon = Daemon::start_named(cluster.path(), "a", &config);
    let junk = RunId::once("junk");
    let fine = RunId::once("fine");
    cluster.wait_state(&junk, &[RunState::Sent], Duration::from_secs(60));
    cluster.wait_state(&fine, &[RunState::Sent], Duration::from_secs(60));
    for id in ["j1", "j2"] {
        let o = cluster
            .rt
            .block_on(herald::store::Store::outcome(&cluster.store, &junk, id))
            .expect("the store answers")
            .expect("the recipient has an outcome");
        println!("{id}: {:?} {:?}", o.outcome, o.detail);
        assert_eq!(o.outcome.as_str(), "failed");
    }
    assert_eq!(
        cluster.tally(&fine, 200).outcomes.get("delivered"),
        Some(&200)
    );
    cluster.assert_counters_match_recount(&junk);
    assert!(daemon.is_running(), "the daemon died:\n{}", daemon.log());
}

/// A row too long to read past ends the CSV read: the run fails naming the
/// file and line, instead of going out to the rows before it as if the
/// audience ended there (the rows after it would be lost unnoticed).
#[test]
fn an_audience_row_too_long_to_read_past_fails_the_run_instead_of_sending_a_part() {
    let cluster = Cluster::new();
    let run = RunId::once("cut");
    let mut csv = String::from("id,address,name\n");
    for i in 0..50 {
        csv.push_str(&format!("r{i},a{i},Name {i}\n"));
    }
    csv.push_str(&format!("r50,a50,{}\n", "x".repeat(1 << 20)));
    for i in 51..100 {
        csv.push_str(&format!("r{i},a{i},Name {i}\n"));
    }
    std::fs::write(cluster.dir.path().join("deliveries/cut.csv"), csv).unwrap();
    cluster.delivery("cut", "cut.csv", "");
    let _daemon = cluster.start("a", r#""concurrency": 4"#, SENDING);
    cluster.wait_state(&run, &[RunState::Failed], Duration::from_secs(60));
    let failed = cluster
        .rt
        .block_on(herald::store::Store::run(&cluster.store, &run))
        .expect("the store answers")
        .expect("the run exists");
    let reason = failed.failure.unwrap_or_default();
    assert!(
        reason.contains("cut.csv:52") && reason.contains("longer than"),
        "{reason}"
    );
    assert_eq!(cluster.received_total(), 0, "nothing went out");
}
