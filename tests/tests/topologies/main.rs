//! Herald past one Redis (issue 13): the store conformance suite already
//! runs on a Redis Cluster (daemon unit tests); here the real daemons run
//! the guarantees on a 3-master Redis Cluster (G1; G3 and G4 with a
//! `kill -9`) and follow a Sentinel failover in the middle of a run.
//! Each test prints its figures. Run `cargo build --workspace` first when
//! running this binary alone: it drives the built daemon and plugins.

#[path = "../sending/cluster.rs"]
#[allow(dead_code)]
mod bed;
mod redis_cluster;
mod sentinel;

use bed::Cluster as Bed;
use herald::runs::{RunId, RunState};
use herald_test_support::Daemon;
use std::time::{Duration, Instant};

/// `sending` keys of every test: small batches and chunks, a short lease.
const SENDING: &str = "  batch_size: 50\n  chunk_size: 250\n  lease: 3s\n  retries: 3\n  plugin_timeout: 5s\n  shutdown_grace: 10s";
/// Recipients per batch (`SENDING`).
const BATCH: u64 = 50;
/// Batches the `count` plugin runs at once (`PLUGIN`).
const CONCURRENCY: u64 = 2;
/// Each batch takes 80 ms at the provider, so a run of a few thousand
/// recipients lasts seconds and an instance always has batches in flight.
const PLUGIN: &str = r#""concurrency": 2, "batch_delay_ms": 80"#;

/// Starts a run of `n` recipients on `daemons` instances, waits until a
/// quarter of it reached the sink, applies `fault`, then waits for the run
/// to be sent and checks G3 (nobody lost, counters right) and that
/// duplicates stay within `bound`. Returns the tally and the daemons.
fn run_through_a_fault(
    bed: &Bed,
    n: usize,
    daemons: &[&str],
    bound: u64,
    fault: impl FnOnce(&mut [Daemon]),
) -> (bed::Tally, Vec<Daemon>) {
    bed.audience("crowd.csv", n, |i| format!("a{i}"));
    bed.delivery("crowd", "crowd.csv", "");
    let run = RunId::once("crowd");
    let mut running: Vec<_> = daemons
        .iter()
        .map(|name| bed.start(name, PLUGIN, SENDING))
        .collect();
    bed.wait_received(n as u64 / 4, Duration::from_secs(40));
    let before = bed.received_total();
    let started = Instant::now();
    fault(&mut running);
    println!("fault applied after {before} of {n} messages");
    bed.wait_state(&run, &[RunState::Sent], Duration::from_secs(50));
    println!("run sent {:?} after the fault", started.elapsed());
    // A late duplicate would arrive after the run is marked sent.
    std::thread::sleep(Duration::from_millis(500));
    let tally = bed.tally(&run, n);
    assert_eq!(tally.lost, 0, "recipients without an outcome (G3)");
    assert_eq!(tally.outcomes.get("delivered"), Some(&(n as u64)));
    assert_eq!(
        tally.received - tally.duplicates,
        n as u64,
        "every recipient reached the sink"
    );
    assert!(
        tally.duplicates <= bound,
        "{} duplicates, more than the bound {bound}",
        tally.duplicates,
    );
    let counters = bed.assert_counters_match_recount(&run);
    assert_eq!(counters.delivered, n as u64);
    for daemon in &running {
        assert!(
            !daemon.log().contains("panicked"),
            "a daemon panicked:\n{}",
            daemon.log()
        );
    }
    (tally, running)
}
