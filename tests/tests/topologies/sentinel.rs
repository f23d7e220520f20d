//! Sentinel: the master dies in the middle of a run; the daemon follows
//! the replica Sentinel promotes and the run finishes.

use crate::{Bed, run_through_a_fault};
use herald::store::redis::RedisTopology;
use herald_test_support::{MASTER_NAME, RedisSentinelSet};

#[test]
fn the_daemon_follows_the_promoted_replica_when_the_master_dies_mid_run() {
    let mut set = RedisSentinelSet::start();
    let bed = Bed::on(RedisTopology::Sentinel {
        sentinels: set.sentinels(),
        master_name: MASTER_NAME.to_owned(),
    });
    let old = set.master_port();
    // The batches in flight when the master died cannot record their
    // outcomes and are sent again once the lease ends (as after `kill -9`),
    // and the replica may miss the last batches' records the master had
    // acknowledged but not yet replicated (asynchronous replication; the
    // README says how WAIT would narrow it): twice G4's bound.
    let bound = 2 * crate::BATCH * crate::CONCURRENCY;
    let (tally, mut daemons) = run_through_a_fault(&bed, 4000, &["a"], bound, |_| {
        set.kill_master();
        let took = set.wait_promotion();
        println!("killed the master (SIGKILL); Sentinel promoted the replica in {took:?}");
    });
    println!(
        "Sentinel failover: {} received, {} duplicates (bound {bound}), master port {old} -> {:?}",
        tally.received,
        tally.duplicates,
        set.current_master_port()
    );
    assert_eq!(set.current_master_port(), Some(set.replica_port()));
    assert!(daemons[0].is_running(), "{}", daemons[0].log());
    assert!(
        daemons[0].log().contains("Lost the Redis master"),
        "the daemon says it went back to Sentinel:\n{}",
        daemons[0].log()
    );
}
