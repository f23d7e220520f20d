//! G3 and G4: instances die (SIGKILL) or stop (SIGTERM) in the middle of a
//! 20,000-recipient run; the survivors finish it, no recipient is lost and
//! the sink sees duplicates only within the killed instance's batches in
//! flight (none after a clean stop).

use crate::cluster::{Cluster, SENDING};
use herald::runs::{RunId, RunState};
use std::time::{Duration, Instant};

const RECIPIENTS: usize = 20_000;
const BATCH: u64 = 50;
const CONCURRENCY: u64 = 2;
/// Each batch takes 40 ms at the provider, so a run lasts seconds, not
/// milliseconds, and an instance always has batches in flight.
const PLUGIN: &str = r#""concurrency": 2, "batch_delay_ms": 40"#;

fn three_instances(cluster: &Cluster) -> Vec<herald_test_support::Daemon> {
    cluster.audience("crowd.csv", RECIPIENTS, |i| format!("a{i}"));
    cluster.delivery("crowd", "crowd.csv", "");
    ["a", "b", "c"]
        .iter()
        .map(|name| cluster.start(name, PLUGIN, SENDING))
        .collect()
}

#[test]
fn a_killed_instance_loses_no_recipient_and_duplicates_only_its_batches_in_flight() {
    let cluster = Cluster::new();
    let run = RunId::once("crowd");
    let mut daemons = three_instances(&cluster);
    cluster.wait_received(RECIPIENTS as u64 / 4, Duration::from_secs(60));
    let before = cluster.received_total();
    daemons[0].kill();
    println!("killed instance a (SIGKILL) after {before} messages");
    let started = Instant::now();
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(90));
    println!("survivors finished in {:?}", started.elapsed());

    let tally = cluster.tally(&run, RECIPIENTS);
    assert_eq!(tally.lost, 0, "recipients without an outcome");
    assert_eq!(tally.outcomes.get("delivered"), Some(&(RECIPIENTS as u64)));
    // Every recipient reached the sink at least once.
    assert_eq!(tally.received - tally.duplicates, RECIPIENTS as u64);
    assert!(
        tally.duplicates <= BATCH * CONCURRENCY,
        "{} duplicates, more than batch_size × concurrency = {}",
        tally.duplicates,
        BATCH * CONCURRENCY
    );
    let counters = cluster.assert_counters_match_recount(&run);
    assert_eq!(counters.delivered, RECIPIENTS as u64);
    for daemon in &mut daemons[1..] {
        assert!(daemon.is_running(), "a survivor died:\n{}", daemon.log());
    }
}

#[test]
fn a_stopped_instance_finishes_its_batches_and_causes_no_duplicate() {
    let cluster = Cluster::new();
    let run = RunId::once("crowd");
    let daemons = three_instances(&cluster);
    cluster.wait_received(RECIPIENTS as u64 / 4, Duration::from_secs(60));
    let pid = daemons[0].pid().expect("instance a runs");
    let stopping = Instant::now();
    daemons[0].signal(libc_sigterm());
    let status = wait_exit(pid, Duration::from_secs(10));
    let stopped_in = stopping.elapsed();
    println!("instance a stopped (SIGTERM) in {stopped_in:?} with {status:?}");
    assert_eq!(status, Some(0), "a clean stop exits 0 within the grace");
    // Released leases: the survivors take the chunks over at once, not
    // after the 3 s lease; the run ends well before a lease would expire
    // twice over.
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(90));

    let tally = cluster.tally(&run, RECIPIENTS);
    assert_eq!(tally.lost, 0, "recipients without an outcome");
    assert_eq!(tally.outcomes.get("delivered"), Some(&(RECIPIENTS as u64)));
    assert_eq!(tally.duplicates, 0, "a clean stop must not send twice");
    assert_eq!(tally.received, RECIPIENTS as u64);
    cluster.assert_counters_match_recount(&run);
    // Its chunk workers move in step (same batch delay), so a stop may
    // fall between two chunks, when it holds none to release: then its
    // workers just end. Either way it says so.
    let log = daemons[0].log();
    assert!(
        log.contains("Chunk released.") || log.contains("No chunk left to claim here."),
        "the stopping instance says it released its chunks or held none:\n{log}"
    );
}

fn libc_sigterm() -> i32 {
    15
}

/// Waits for the process to exit and returns its exit code (`None` when it
/// did not exit in time or was killed by a signal).
fn wait_exit(pid: u32, within: Duration) -> Option<i32> {
    // The Daemon helper owns the Child; poll /proc for the zombie's status
    // instead of reaping it behind the helper's back.
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && stat.split_whitespace().nth(2) == Some("Z")
        {
            let code = stat
                .split_whitespace()
                .nth(51)
                .and_then(|c| c.parse::<i32>().ok())?;
            // exit_code field: (status << 8) for a normal exit.
            return if code & 0x7f == 0 {
                Some((code >> 8) & 0xff)
            } else {
                None
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
