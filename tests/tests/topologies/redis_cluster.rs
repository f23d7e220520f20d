//! G1, G3 and G4 on a 3-master Redis Cluster with two daemon instances.

use crate::{Bed, run_through_a_fault};
use chrono::{DurationRound, TimeDelta, Utc};
use herald::runs::{RunId, RunState};
use herald::store::redis::RedisTopology;
use herald::store::{RunFilter, Store};
use herald_test_support::RedisCluster;
use std::time::{Duration, Instant};

const DELIVERIES: usize = 12;
const RECIPIENTS: usize = 20;

/// Every run the store lists, following the pages.
fn all_runs(bed: &Bed) -> Vec<herald::store::Run> {
    let filter = RunFilter {
        state: None,
        delivery_id: None,
    };
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = bed
            .rt
            .block_on(bed.store.list_runs(&filter, cursor.as_deref(), 100))
            .expect("the store lists runs");
        runs.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return runs,
        }
    }
}

#[test]
fn g1_deliveries_due_at_one_instant_run_once_each_on_a_cluster_with_two_instances() {
    let cluster = RedisCluster::start();
    let bed = Bed::on(RedisTopology::Cluster(cluster.nodes()));
    let daemons = [
        bed.start("a", crate::PLUGIN, crate::SENDING),
        bed.start("b", crate::PLUGIN, crate::SENDING),
    ];
    // Chosen once both instances are up, so a slow start cannot eat it.
    let at = (Utc::now() + TimeDelta::seconds(6))
        .duration_trunc(TimeDelta::seconds(1))
        .expect("a whole second");
    bed.audience("few.csv", RECIPIENTS, |i| format!("a{i}"));
    for i in 0..DELIVERIES {
        bed.delivery(
            &format!("g1-{i:02}"),
            "few.csv",
            &format!("schedule:\n  at: \"{}\"\n", at.to_rfc3339()),
        );
    }
    let ids: Vec<RunId> = (0..DELIVERIES)
        .map(|i| RunId::at(&format!("g1-{i:02}"), at))
        .collect();
    let started = Instant::now();
    for id in &ids {
        bed.wait_state(id, &[RunState::Sent], Duration::from_secs(40));
    }
    println!(
        "G1 on the cluster: {DELIVERIES} runs sent {:?} after the wait began",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));

    let runs = all_runs(&bed);
    let created: usize = daemons
        .iter()
        .map(|d| d.log().matches("Run created.").count())
        .sum();
    let (mut lost, mut duplicates, mut received) = (0, 0, 0);
    for id in &ids {
        let tally = bed.tally(id, RECIPIENTS);
        lost += tally.lost;
        duplicates += tally.duplicates;
        received += tally.received;
    }
    println!(
        "G1 on the cluster: {} runs listed (expected {DELIVERIES}), {created} 'Run created.' log lines, {received} messages (expected {}), {duplicates} duplicates, {lost} lost; keys per node {:?}",
        runs.len(),
        DELIVERIES * RECIPIENTS,
        cluster.keys_per_node()
    );
    assert_eq!(runs.len(), DELIVERIES, "one run per occurrence");
    assert_eq!(created, DELIVERIES, "each run created once");
    assert_eq!(lost, 0);
    assert_eq!(duplicates, 0);
    assert_eq!(received, (DELIVERIES * RECIPIENTS) as u64);
    for run in &runs {
        assert_eq!(run.counters.delivered, RECIPIENTS as u64, "{}", run.id);
    }
}

#[test]
fn g3_g4_a_killed_instance_on_a_cluster_loses_no_recipient() {
    let cluster = RedisCluster::start();
    let bed = Bed::on(RedisTopology::Cluster(cluster.nodes()));
    // G4: at most the killed instance's batches in flight.
    let bound = crate::BATCH * crate::CONCURRENCY;
    let (tally, _daemons) = run_through_a_fault(&bed, 4000, &["a", "b"], bound, |daemons| {
        daemons[0].kill();
        println!("killed instance a (SIGKILL)");
    });
    println!(
        "G3/G4 on the cluster: {} received, {} duplicates (bound {bound}); keys per node {:?}",
        tally.received,
        tally.duplicates,
        cluster.keys_per_node()
    );
    assert!(
        cluster.keys_per_node().iter().filter(|n| **n > 0).count() >= 2,
        "the run's and the global keys live on different masters"
    );
}
