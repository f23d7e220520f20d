//! A burst of runs created by one instance that stops before it could
//! start them all: the runs it created with their preparation taken and
//! had not started are given back as it stops, so another instance
//! prepares them at once, not when their preparation leases run out.

use crate::{Fixture, PREFIX, in_seconds, wait_for};
use herald::runs::RunState;
use herald_test_support::Daemon;
use std::time::Duration;

/// More than the runs one instance works on at once (1,024), so that
/// some wait in its backlog of runs taken at creation.
const DELIVERIES: usize = 1_100;

/// A config whose preparation leases outlast the test: only a give-back
/// lets another instance prepare those runs in time. One recipient per
/// plugin call, so that runs waiting for the plugin do not share a call
/// and A's slow provider frees room for one run a second, not fifty.
fn config(f: &Fixture, batch_delay_ms: u64) -> String {
    let count = f.dir.path().join("count");
    std::fs::create_dir_all(&count).unwrap();
    format!(
        "deliveries_dir: deliveries\n\
         store: {{ kind: redis, url: \"{url}\", key_prefix: {PREFIX} }}\n\
         http: {{ listen: \"{{listen}}\" }}\n\
         plugins:\n  - path: {plugin}\n    config: {{ dir: {dir}, concurrency: 1, batch_delay_ms: {batch_delay_ms} }}\n\
         sending: {{ lease: 120s, shutdown_grace: 2s, batch_size: 1 }}\n",
        url = f.redis.url(),
        plugin = Daemon::plugin("herald_test_count").display(),
        dir = count.display(),
    )
}

#[test]
fn runs_created_but_not_started_by_a_stopping_instance_are_prepared_by_another_at_once() {
    let f = Fixture::start();
    let at = in_seconds(10);
    for i in 0..DELIVERIES {
        f.write_delivery(
            &format!("h-{i:04}.yaml"),
            &format!(
                "channel: count\naudience:\n  recipients:\n    - {{ id: h{i} }}\ncontent:\n  body: \"Hi\"\nschedule:\n  at: \"{}\"\n",
                at.to_rfc3339()
            ),
        );
    }
    // A slow provider keeps A's first runs in hand, so the rest wait in
    // its backlog when it is stopped.
    let mut a = f.daemon("a", &config(&f, 1_000));
    let created = wait_for(Duration::from_secs(30), || {
        f.probe.runs(None).len() == DELIVERIES
    });
    assert!(created.is_some(), "A created every run:\n{}", a.log());
    a.stop();
    let waiting: Vec<_> = f
        .probe
        .runs(None)
        .into_iter()
        .filter(|r| r.state == RunState::Preparing)
        .map(|r| r.id)
        .collect();
    assert!(
        !waiting.is_empty() && a.log().contains("Gave back the runs created here"),
        "A stopped with runs it had not started, and gave them back:\n{}",
        a.log()
    );

    let b = f.daemon("b", &config(&f, 0));
    let sent = wait_for(Duration::from_secs(30), || {
        waiting.iter().all(|id| {
            f.probe
                .run(id.as_str())
                .is_some_and(|r| r.state == RunState::Sent)
        })
    });
    assert!(
        sent.is_some(),
        "B sent the {} runs A gave back well before their 120 s leases ended:\n{}",
        waiting.len(),
        b.log()
    );
}
