//! G1: one run per (delivery, scheduled instant), whatever the number of
//! daemon instances and restarts; counted at a real SMTP sink.

use crate::{Fixture, email_delivery, in_seconds, log_count, wait_for};
use herald::runs::RunState;
use herald_test_support::SmtpSink;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const DELIVERIES: usize = 50;
const RECIPIENTS: usize = 20;

/// Sleeps until `instant` (returns at once when it has passed).
fn sleep_until(instant: chrono::DateTime<chrono::Utc>) {
    if let Ok(wait) = (instant - chrono::Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
}

#[test]
fn fifty_deliveries_due_at_once_on_three_instances_with_restarts_run_once_each() {
    let f = Fixture::start();
    let sink = SmtpSink::start();
    let config = f.config(&sink.email_plugin());
    let at = in_seconds(14);
    for i in 0..DELIVERIES {
        f.write_delivery(
            &format!("g1-{i:02}.yaml"),
            &email_delivery(
                &format!("d{i}"),
                RECIPIENTS,
                &format!("  at: \"{}\"\n", at.to_rfc3339()),
            ),
        );
    }
    let mut a = f.daemon("a", &config);
    let mut b = f.daemon("b", &config);
    let mut c = f.daemon("c", &config);

    // Restarts around the instant: A well before it, B across it, C while
    // the runs are sending. Clean stops (SIGTERM) allow no duplicate (G4).
    sleep_until(at - chrono::Duration::seconds(4));
    a.stop();
    let _a2 = f.daemon("a2", &config);
    sleep_until(at - chrono::Duration::seconds(1));
    b.stop();
    sleep_until(at + chrono::Duration::milliseconds(300));
    let _b2 = f.daemon("b2", &config);
    c.stop();
    let _c2 = f.daemon("c2", &config);

    let done = wait_for(Duration::from_secs(40), || {
        let runs = f.probe.runs(None);
        runs.len() == DELIVERIES && runs.iter().all(|r| r.state == RunState::Sent)
    });
    // A late duplicate would arrive after the runs are marked sent.
    std::thread::sleep(Duration::from_secs(1));
    let runs = f.probe.runs(None);
    let per_address = sink.per_address();
    let duplicates: usize = per_address.values().map(|n| n.saturating_sub(1)).sum();
    let created_logged = log_count(
        f.dir.path(),
        &["a", "b", "c", "a2", "b2", "c2"],
        "Run created.",
    );
    let first = sink.first_arrival();
    println!(
        "G1: {} runs (expected {DELIVERIES}), {} 'Run created.' log lines, {} messages to {} addresses (expected {}), {duplicates} duplicates, {} lost, first message {:?} after the instant, all sent within {done:?}",
        runs.len(),
        created_logged,
        sink.total(),
        per_address.len(),
        DELIVERIES * RECIPIENTS,
        DELIVERIES * RECIPIENTS - per_address.len(),
        first.and_then(|t| t.duration_since(SystemTime::from(at)).ok()),
    );
    let names = ["a", "b", "c", "a2", "b2", "c2"];
    let lease_lost = log_count(f.dir.path(), &names, "Lease lost");
    let renew_failed = log_count(f.dir.path(), &names, "Could not renew the lease.");
    let grace_out = log_count(f.dir.path(), &names, "Shutdown grace ran out");
    println!(
        "G1 leases: {lease_lost} lost, {renew_failed} renewals failed; {grace_out} shutdowns past their grace"
    );
    assert!(done.is_some(), "not every run was sent within 40 s");
    let ids: BTreeSet<String> = runs.iter().map(|r| r.id.to_string()).collect();
    let expected: BTreeSet<String> = (0..DELIVERIES)
        .map(|i| format!("g1-{i:02}@{}", at.format("%Y%m%dT%H%M%SZ")))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(created_logged, DELIVERIES, "each run created once");
    for run in &runs {
        assert_eq!(run.counters.delivered, RECIPIENTS as u64, "{}", run.id);
    }
    assert_eq!(per_address.len(), DELIVERIES * RECIPIENTS, "nobody lost");
    assert_eq!(duplicates, 0, "duplicates: {per_address:?}");
    assert!(
        first.is_some_and(|t| t >= SystemTime::from(at)),
        "a message arrived before the instant"
    );
}
