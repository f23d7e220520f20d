//! A chunk that takes longer than its lease to send keeps it: its sender
//! renews the lease while it sends, so another instance never takes the
//! chunk over and sends it again.

use crate::cluster::Cluster;
use herald::runs::{RunId, RunState};
use std::time::Duration;

const RECIPIENTS: usize = 400;
/// Two chunks of 20 batches of 10.
const SENDING: &str = "  batch_size: 10\n  chunk_size: 200\n  lease: 1s\n  retries: 3\n  plugin_timeout: 5s\n  shutdown_grace: 10s";
/// One chunk at a time, 150 ms a batch: 3 s a chunk, three leases long.
const SLOW: &str = r#""concurrency": 1, "batch_delay_ms": 150"#;
/// Done with its chunk at once, then looking for chunks whose lease ran out.
const FAST: &str = r#""concurrency": 1"#;

#[test]
fn a_chunk_sent_for_longer_than_its_lease_is_renewed_and_never_sent_twice() {
    let cluster = Cluster::new();
    cluster.audience("slow.csv", RECIPIENTS, |i| format!("s{i}"));
    cluster.delivery("slow", "slow.csv", "");
    let run = RunId::once("slow");
    let mut daemons = [
        cluster.start("a", SLOW, SENDING),
        cluster.start("b", FAST, SENDING),
    ];
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(60));
    // Had the fast instance taken the slow one's chunk over, the slow one's
    // batch in flight would reach the sink up to a batch after the run
    // ended: give it the time to show up as a duplicate.
    std::thread::sleep(Duration::from_millis(500));

    let tally = cluster.tally(&run, RECIPIENTS);
    assert_eq!(tally.lost, 0, "recipients without an outcome");
    assert_eq!(
        tally.duplicates, 0,
        "a chunk was taken over while its sender still held it"
    );
    assert_eq!(tally.received, RECIPIENTS as u64);
    for daemon in &mut daemons {
        let log = daemon.log();
        assert!(!log.contains("Lease lost"), "no lease may be lost:\n{log}");
        assert!(daemon.is_running(), "an instance died:\n{log}");
    }
}
