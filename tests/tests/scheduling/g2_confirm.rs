//! G2: a run that asks for confirmation sends nothing before it is
//! confirmed, and a confirmed run nothing before its scheduled instant.

use crate::{Fixture, email_delivery, in_seconds, wait_for};
use chrono::Utc;
use herald::runs::{RunId, RunState};
use herald::store::{Store, Transition};
use herald_test_support::SmtpSink;
use std::time::{Duration, SystemTime};

#[test]
fn a_confirmed_run_sends_nothing_before_confirmation_nor_before_its_instant() {
    let f = Fixture::start();
    let sink = SmtpSink::start();
    // The daemon starts (and the binaries build, when a test runs alone)
    // before any instant is chosen, so a slow start cannot eat the time
    // between the confirmation and the instant; the live folder picks the
    // files up.
    let daemon = f.daemon("herald", &f.config(&sink.email_plugin()));
    let at = in_seconds(20);
    f.write_delivery(
        "approve.yaml",
        &email_delivery(
            "approve",
            20,
            &format!(
                "  at: \"{}\"\n  confirm: true\n  prepare_ahead: 1h\n",
                at.to_rfc3339()
            ),
        ),
    );
    let ignored_at = in_seconds(2);
    f.write_delivery(
        "ignored.yaml",
        &email_delivery(
            "ignored",
            5,
            &format!(
                "  at: \"{}\"\n  confirm: true\n  confirm_deadline: 2s\n",
                ignored_at.to_rfc3339()
            ),
        ),
    );
    let id = format!("approve@{}", at.format("%Y%m%dT%H%M%SZ"));
    wait_for(Duration::from_secs(5), || {
        f.probe
            .run(&id)
            .is_some_and(|r| r.state == RunState::Pending)
    })
    .expect("the run was not prepared into pending within 5 s");
    let pending = f.probe.run(&id).unwrap();
    assert_eq!(pending.counters.to_send(), 20);
    assert!(pending.preview.is_some(), "confirmers see a preview");

    // Over a scheduler safety-net tick (5 s) and the other run's expiry:
    // still pending, nothing sent.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(f.probe.run(&id).unwrap().state, RunState::Pending);
    assert_eq!(sink.total(), 0, "sent before confirmation");

    let run_id: RunId = id.parse().unwrap();
    let confirmed = f
        .probe
        .block_on(f.probe.store().confirm(&run_id, "alice", Utc::now()))
        .unwrap();
    let confirmed_at = Utc::now();
    assert!(
        confirmed_at < at - chrono::Duration::seconds(2),
        "the test confirmed too late to show the wait"
    );
    match confirmed {
        Transition::Done(run) => assert_eq!(run.state, RunState::Scheduled),
        other => panic!("confirm gave {other:?}"),
    }

    // Confirmed ahead of its instant: it waits for it.
    while Utc::now() < at - chrono::Duration::milliseconds(300) {
        assert_eq!(sink.total(), 0, "a confirmed run sent before its instant");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(f.probe.run(&id).unwrap().state, RunState::Scheduled);
    let sent = wait_for(Duration::from_secs(10), || sink.total() == 20)
        .expect("the confirmed run did not send its 20 messages within 10 s of its instant");
    let first = sink.first_arrival().unwrap();
    let lag = first.duration_since(SystemTime::from(at));
    wait_for(Duration::from_secs(3), || {
        f.probe.run(&id).unwrap().state == RunState::Sent
    })
    .expect("the run did not end sent");

    let ignored_id = format!("ignored@{}", ignored_at.format("%Y%m%dT%H%M%SZ"));
    let ignored = f.probe.run(&ignored_id).unwrap();
    assert_eq!(
        ignored.state,
        RunState::Expired,
        "unconfirmed past its deadline"
    );
    let leaked = sink
        .per_address()
        .keys()
        .filter(|a| a.starts_with("ignored-"))
        .count();
    assert_eq!(leaked, 0, "messages of the unconfirmed run");
    println!(
        "G2: 0 messages while pending (6 s), 0 between the confirmation ({}s ahead) and the instant, 20 after (first {lag:?} after the instant, all within {sent:?}); the unconfirmed run expired with 0 messages",
        (at - confirmed_at).num_seconds()
    );
    assert!(lag.is_ok(), "the first message came before the instant");
    drop(daemon);
}
