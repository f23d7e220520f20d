//! G3 and G4 on the embedded store (issue 6): a daemon on a redb file is
//! killed with SIGKILL in the middle of a run; a daemon restarted on the
//! same file finishes the run. No recipient is left without an outcome,
//! and the `count` sink sees duplicates only within the killed daemon's
//! batches in flight.

use crate::{Bed, csv_audience};
use herald::runs::{RunId, RunState};
use herald::store::Store;
use herald::store::embedded::EmbeddedStore;
use herald_test_support::Daemon;
use std::time::{Duration, Instant};

const RECIPIENTS: usize = 4_000;
const BATCH: u64 = 50;
const CONCURRENCY: u64 = 2;

#[test]
fn a_killed_daemon_on_the_embedded_store_loses_no_outcome_when_restarted_on_its_file() {
    let bed = Bed::new();
    csv_audience(&bed, "crowd.csv", RECIPIENTS);
    bed.deliver(
        "crowd.yaml",
        "channel: count\naudience:\n  file: crowd.csv\ncontent:\n  body: \"Hello {{ name }}\"\n",
    );
    let db = bed.path("herald.db");
    let config = bed.config(
        &format!("  kind: embedded\n  path: {}\n", db.display()),
        // 80 batches of 50, 2 at a time, 60 ms each: the run lasts seconds.
        &bed.count_plugin(r#", "concurrency": 2, "batch_delay_ms": 60"#),
        &format!(
            "sending:\n  batch_size: {BATCH}\n  chunk_size: 500\n  lease: 3s\n  retries: 3\n  plugin_timeout: 5s\n  shutdown_grace: 5s\n"
        ),
    );
    let run = RunId::once("crowd");
    let total = |bed: &Bed| bed.received().values().sum::<u64>();

    let mut first = Daemon::start_named(bed.dir.path(), "first", &config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while total(&bed) < RECIPIENTS as u64 / 3 {
        assert!(
            Instant::now() < deadline,
            "the run did not get a third through within 60 s:\n{}",
            first.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill();
    let at_kill = total(&bed);
    println!("embedded kill -9: killed after {at_kill} of {RECIPIENTS} messages");
    assert!(at_kill < RECIPIENTS as u64, "the run ended before the kill");

    let restarted = Instant::now();
    let mut second = Daemon::start_named(bed.dir.path(), "second", &config);
    let api = crate::Api::new(&second);
    api.wait(
        &crate::run_path(run.as_str()),
        Duration::from_secs(90),
        |r| r["state"] == "sent",
    );
    println!(
        "embedded kill -9: the restarted daemon finished the run in {:?}",
        restarted.elapsed()
    );
    second.stop();

    // The file is free again: read every outcome from it.
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let store = rt
        .block_on(EmbeddedStore::open(&db))
        .expect("the store file opens");
    let record = rt
        .block_on(store.run(&run))
        .expect("the store answers")
        .expect("the run");
    assert_eq!(record.state, RunState::Sent);
    let mut lost = 0;
    let mut delivered = 0;
    for i in 0..RECIPIENTS {
        match rt
            .block_on(store.outcome(&run, &format!("r{i}")))
            .expect("the store answers")
        {
            Some(o) if o.outcome.as_str() == "delivered" => delivered += 1,
            Some(o) => panic!("r{i} ended {:?}: {:?}", o.outcome, o.detail),
            None => lost += 1,
        }
    }
    let received = bed.received();
    let sent: u64 = received.values().sum();
    let duplicates: u64 = received.values().map(|c| c.saturating_sub(1)).sum();
    let recount = rt
        .block_on(store.recount(&run))
        .expect("the store recounts");
    println!(
        "embedded kill -9: runs 1, recipients {RECIPIENTS}, delivered {delivered}, lost {lost}, messages {sent}, duplicates {duplicates} (bound {})",
        BATCH * CONCURRENCY
    );
    assert_eq!(lost, 0, "recipients without an outcome");
    assert_eq!(delivered, RECIPIENTS);
    assert_eq!(
        received.len(),
        RECIPIENTS,
        "every recipient reached the sink"
    );
    assert!(
        duplicates <= BATCH * CONCURRENCY,
        "{duplicates} duplicates, more than batch_size × concurrency = {}",
        BATCH * CONCURRENCY
    );
    assert_eq!(
        record.counters, recount,
        "the counters drifted from the outcomes"
    );
    assert_eq!(recount.delivered, RECIPIENTS as u64);
}
