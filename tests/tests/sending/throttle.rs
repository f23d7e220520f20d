//! `throttle` holds across instances: two daemons together send at the
//! delivery's rate, not twice it.

use crate::cluster::{Cluster, SENDING};
use herald::runs::{RunId, RunState};
use std::time::{Duration, Instant};

#[test]
fn two_instances_together_send_at_the_throttled_rate() {
    let cluster = Cluster::new();
    let run = RunId::once("slow");
    // 1 s of burst (50) then 250 more at 50/s: about 5 s.
    let total = 300;
    cluster.audience("slow.csv", total, |i| format!("a{i}"));
    cluster.delivery("slow", "slow.csv", "throttle: 50/s\n");
    let sending = SENDING
        .replace("batch_size: 50", "batch_size: 10")
        .replace("chunk_size: 500", "chunk_size: 50");
    let _a = cluster.start("a", r#""concurrency": 2"#, &sending);
    let _b = cluster.start("b", r#""concurrency": 2"#, &sending);
    cluster.wait_received(60, Duration::from_secs(60));
    let (from, start) = (cluster.received_total(), Instant::now());
    cluster.wait_state(&run, &[RunState::Sent], Duration::from_secs(60));
    let elapsed = start.elapsed().as_secs_f64();
    let rate = (total as u64 - from) as f64 / elapsed;
    let mut per_instance: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(cluster.sink()).expect("the sink folder") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a log");
        per_instance.push(text.lines().count() as u64);
    }
    println!(
        "{} messages after the first {from} in {elapsed:.2} s: {rate:.1}/s overall; per instance {per_instance:?}",
        total as u64 - from
    );
    assert_eq!(per_instance.len(), 2, "both instances sent");
    assert!(per_instance.iter().all(|&n| n > 0), "both instances sent");
    assert!(
        (40.0..=60.0).contains(&rate),
        "{rate:.1}/s overall, expected about 50/s"
    );
    let tally = cluster.tally(&run, total);
    assert_eq!(tally.outcomes.get("delivered"), Some(&(total as u64)));
    cluster.assert_counters_match_recount(&run);
}
