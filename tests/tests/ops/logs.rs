//! Logs: JSON lines with `--log-format json` where every line about a run
//! carries `delivery_id` and `run_id`, messages written as sentences, and
//! the human format when stderr is not asked for JSON.

use crate::support::{Herald, add_delivery, embedded_config, files_starting, wait_for};
use serde_json::Value;
use std::time::Duration;

#[test]
fn every_json_line_about_a_run_names_its_delivery_and_run() {
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "json-logs", 500, 1000);
    let mut herald = Herald::start(
        dir.path(),
        &embedded_config(),
        &["--log-format", "json"],
        &[],
    );
    herald.wait_ready();
    let outbox = dir.path().join("var/outbox");
    wait_for(Duration::from_secs(30), "the run to send", || {
        files_starting(&outbox, "json-logs%40once") == 500
    });
    herald.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(herald.stop().success());

    let log = herald.log();
    let mut about_runs = 0;
    for (number, line) in log.lines().enumerate() {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", number + 1));
        let message = event["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(|c: char| c.is_uppercase()) && message.ends_with('.'),
            "line {}: the message is not a capitalised sentence: {line}",
            number + 1
        );
        if line.contains("json-logs@once") {
            about_runs += 1;
            let delivery = event["delivery_id"].as_str();
            let run = event["run_id"].as_str();
            assert!(
                delivery.is_some() && run.is_some(),
                "line {} is about a run but lacks delivery_id or run_id: {line}",
                number + 1
            );
            assert!(run.unwrap().starts_with(&format!("{}@", delivery.unwrap())));
        }
    }
    println!(
        "{} JSON lines, {about_runs} about runs",
        log.lines().count()
    );
    assert!(about_runs >= 4, "too few lines about runs:\n{log}");
}

#[test]
fn text_format_is_the_default_and_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "plain", 3, 100);
    let mut herald = Herald::start(dir.path(), &embedded_config(), &[], &[]);
    herald.wait_ready();
    assert!(herald.stop().success());
    let log = herald.log();
    let first = log.lines().next().expect("at least one line");
    assert!(!first.starts_with('{'), "{log}");
    assert!(log.contains("Herald is running."), "{log}");
    // No terminal: no colour escapes in a file or the journal.
    assert!(!log.contains('\u{1b}'), "{log}");
}
