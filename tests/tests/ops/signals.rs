//! Signals (daemon.md): SIGTERM stops the daemon with exit 0 within
//! `sending.shutdown_grace`, even when a batch in flight never returns.

use crate::support::{Herald, add_misbehave_delivery, misbehave_config, wait_for};
use std::time::{Duration, Instant};

#[test]
fn sigterm_exits_0_within_the_grace_while_a_batch_hangs() {
    let dir = tempfile::tempdir().unwrap();
    // One batch that sleeps a minute, far past the grace; the plugin
    // timeout is longer still, so the call is in flight at SIGTERM.
    add_misbehave_delivery(dir.path(), "stuck", &["sleep:60000"]);
    let config = misbehave_config("  plugin_timeout: 120s\n", 1)
        .replace("shutdown_grace: 10s", "shutdown_grace: 3s");
    let mut herald = Herald::start(dir.path(), &config, &[], &[]);
    herald.wait_ready();
    wait_for(Duration::from_secs(30), "the batch to be in flight", || {
        herald
            .log()
            .contains("First message of the run handed to the plugin.")
    });
    let stopping = Instant::now();
    herald.signal("TERM");
    let status = loop {
        if let Some(status) = herald.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "herald did not stop:\n{}",
            herald.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = stopping.elapsed();
    println!("stopped in {took:?}");
    assert_eq!(status.code(), Some(0), "{}", herald.log());
    assert!(
        took <= Duration::from_secs(3),
        "stopped in {took:?}, past the 3 s grace:\n{}",
        herald.log()
    );
}
