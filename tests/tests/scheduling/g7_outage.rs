//! G7: Redis going away for 10 s, during a run and while runs are due,
//! does not stop the daemon; `/readyz` says 503 meanwhile and 200 after,
//! work resumes, runs due meanwhile fire late per `catch_up`, nothing is lost.

use crate::live_folder::outbox_delivery;
use crate::{Fixture, get, in_seconds, log_count, wait_for};
use chrono::{DateTime, Utc};
use herald::runs::RunState;
use std::time::Duration;

const LONG: usize = 3000;
const EVERY_2S: &str = "  cron: \"*/2 * * * * *\"\n";

/// Runs of `delivery` whose instant falls strictly inside `(from, to)`.
fn runs_between(f: &Fixture, delivery: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
    f.probe
        .runs(Some(delivery))
        .iter()
        .filter(|r| r.scheduled_for > from && r.scheduled_for < to)
        .count()
}

#[test]
fn a_ten_second_redis_outage_delays_work_and_loses_nothing() {
    let mut f = Fixture::start();
    // Thousands of inline rows pass YAML's node budget: a CSV audience.
    let mut csv = String::from("id,name\n");
    for i in 0..LONG {
        csv.push_str(&format!("r{i},N{i}\n"));
    }
    std::fs::write(f.deliveries().join("long.csv"), csv).unwrap();
    f.write_delivery(
        "long.yaml",
        "channel: outbox\naudience: { file: long.csv }\ncontent: { body: \"long {{ name }}\" }\nthrottle: 300/s\n",
    );
    f.write_delivery(
        "latest.yaml",
        &outbox_delivery(1, "latest", &format!("{EVERY_2S}  catch_up: latest\n")),
    );
    f.write_delivery(
        "skip.yaml",
        &outbox_delivery(1, "skip", &format!("{EVERY_2S}  catch_up: skip\n")),
    );
    let mut daemon = f.daemon("herald", &f.config(""));
    let sending = wait_for(Duration::from_secs(10), || {
        f.probe
            .run("long@once")
            .is_some_and(|r| r.state == RunState::Sending)
            && f.outbox_files("long@once").len() >= 300
    });
    assert!(
        sending.is_some(),
        "the long run was not sending within 10 s: {:?}",
        f.probe.run("long@once")
    );
    let due_at = in_seconds(4);
    f.write_delivery(
        "due.yaml",
        &outbox_delivery(2, "due", &format!("  at: \"{}\"\n", due_at.to_rfc3339())),
    );
    std::thread::sleep(Duration::from_millis(800));

    let sent_before = f.outbox_files("long@once").len();
    f.redis.stop();
    let stopped_at = Utc::now();
    let not_ready = wait_for(Duration::from_secs(8), || {
        get(&f.probe, &format!("{}/readyz", daemon.url())).is_some_and(|(s, _)| s == 503)
    });
    std::thread::sleep(
        (stopped_at + chrono::Duration::seconds(10) - Utc::now())
            .to_std()
            .unwrap_or_default(),
    );
    assert!(
        daemon.is_running(),
        "the daemon exited while Redis was down"
    );
    let (status_during, body_during) =
        get(&f.probe, &format!("{}/readyz", daemon.url())).expect("/readyz answers");
    f.redis.restart();
    let restarted_at = Utc::now();
    let ready_again = wait_for(Duration::from_secs(15), || {
        get(&f.probe, &format!("{}/readyz", daemon.url())).is_some_and(|(s, _)| s == 200)
    });

    let finished = wait_for(Duration::from_secs(30), || {
        f.probe
            .run("long@once")
            .is_some_and(|r| r.state == RunState::Sent)
    });
    let due_id = format!("due@{}", due_at.format("%Y%m%dT%H%M%SZ"));
    let due_sent = wait_for(Duration::from_secs(5), || {
        f.probe
            .run(&due_id)
            .is_some_and(|r| r.state == RunState::Sent)
    });
    // The cron deliveries carry on after the outage.
    let resumed_from = Utc::now() + chrono::Duration::seconds(1);
    let resumed = wait_for(Duration::from_secs(6), || {
        ["latest", "skip"].iter().all(|d| {
            f.probe
                .runs(Some(d))
                .iter()
                .any(|r| r.scheduled_for > resumed_from && r.state == RunState::Sent)
        })
    });

    let long_run = f.probe.run("long@once").unwrap();
    let outage_end = restarted_at;
    let window_start = stopped_at + chrono::Duration::milliseconds(500);
    let latest_in_outage = runs_between(&f, "latest", window_start, outage_end);
    let skip_in_outage = runs_between(&f, "skip", window_start, outage_end);
    let caught_up = log_count(f.dir.path(), &["herald"], "Caught up a missed occurrence.");
    println!(
        "G7: readyz 503 within {not_ready:?} of the stop ({status_during} {body_during:?} at 10 s), 200 {ready_again:?} after the restart; long run {sent_before} sent before the stop, {} delivered of {LONG} in the end ({} outcomes lost), finished {finished:?} after readiness; one-shot due in the outage sent late: {}; cron runs in the outage window: catch_up latest {latest_in_outage}, skip {skip_in_outage} (5 occurrences missed); catch-up log lines {caught_up}",
        long_run.counters.delivered,
        LONG as u64 - long_run.counters.sent(),
        due_sent.is_some(),
    );
    assert!(
        not_ready.is_some(),
        "/readyz did not say 503 while Redis was down"
    );
    assert_eq!(status_during, 503);
    assert!(ready_again.is_some(), "/readyz did not come back to 200");
    assert!(daemon.is_running());
    assert!(
        finished.is_some(),
        "the run interrupted by the outage did not finish"
    );
    assert_eq!(long_run.counters.delivered, LONG as u64, "nothing lost");
    assert_eq!(f.outbox_files("long@once").len(), LONG);
    assert!(
        due_sent.is_some(),
        "the one-shot due during the outage did not fire"
    );
    assert_eq!(f.outbox_files(&due_id).len(), 2);
    assert!(
        latest_in_outage <= 1,
        "catch_up latest fired {latest_in_outage} missed runs"
    );
    assert!(caught_up >= 1, "no catch-up of the missed cron occurrences");
    assert_eq!(skip_in_outage, 0, "catch_up skip fired missed runs");
    assert!(resumed.is_some(), "the cron deliveries did not resume");
    daemon.stop();
}

/// A Redis that is down when the daemon starts is checked once it
/// answers: settings that put runs and outcomes at risk are still named.
#[test]
fn a_redis_down_at_start_up_gets_its_settings_checked_once_it_answers() {
    let mut f = Fixture::start();
    let mut redis = herald_test_support::RedisServer::start_with(&[
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    redis.stop();
    let config = f.config("").replace(&f.redis.url(), &redis.url());
    f.redis.stop();
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        redis.restart();
        redis
    });
    let daemon = f.daemon("herald", &config);
    let _redis = back.join().unwrap();
    let warned = wait_for(Duration::from_secs(10), || {
        let log = daemon.log();
        log.contains("appendonly no") && log.contains("maxmemory-policy is not noeviction")
    });
    assert!(
        warned.is_some(),
        "no warning about the settings of a Redis that came up late:\n{}",
        daemon.log()
    );
}
