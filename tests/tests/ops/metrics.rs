//! `/metrics`, `/healthz` and `/readyz` scraped while a run sends.

use crate::support::{
    Herald, add_delivery, add_misbehave_delivery, embedded_config, files_starting,
    misbehave_config, wait_for,
};
use std::time::Duration;

/// The metrics http-api.md names, as they appear in the Prometheus text.
const REQUIRED: [&str; 8] = [
    "herald_messages_total{",
    "herald_runs{",
    "herald_deliveries_loaded ",
    "herald_delivery_file_errors ",
    "herald_plugin_batch_seconds_bucket{",
    "herald_schedule_lag_seconds_bucket{",
    "herald_store_errors_total ",
    "herald_plugin_abandoned_calls{",
];

/// The type http-api.md gives each of them (`# TYPE` lines).
const TYPES: [(&str, &str); 8] = [
    ("herald_messages_total", "counter"),
    ("herald_runs", "gauge"),
    ("herald_deliveries_loaded", "gauge"),
    ("herald_delivery_file_errors", "gauge"),
    ("herald_plugin_batch_seconds", "histogram"),
    ("herald_schedule_lag_seconds", "histogram"),
    ("herald_store_errors_total", "counter"),
    ("herald_plugin_abandoned_calls", "counter"),
];

/// Every run state, each a `herald_runs{state}` series at every scrape.
const STATES: [&str; 9] = [
    "preparing",
    "pending",
    "scheduled",
    "sending",
    "paused",
    "sent",
    "expired",
    "cancelled",
    "failed",
];

/// The metric names, types and labels of http-api.md, in one scrape.
fn assert_names_types_and_labels(text: &str) {
    for name in REQUIRED {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    for (name, kind) in TYPES {
        let line = format!("# TYPE {name} {kind}");
        assert!(
            text.lines().any(|l| l == line),
            "`{line}` missing from /metrics:\n{text}"
        );
    }
    // {channel,outcome} on every message sample.
    let messages: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("herald_messages_total{"))
        .collect();
    assert!(messages.iter().any(|l| l.contains("channel=\"email\"")));
    for line in messages {
        assert!(
            line.contains("channel=\"") && line.contains("outcome=\""),
            "{line}"
        );
    }
    for state in STATES {
        let series = format!("herald_runs{{state=\"{state}\"}} ");
        assert!(text.contains(&series), "{series} missing:\n{text}");
    }
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// The sum of the sample lines starting with `prefix` (all outcomes, say).
fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A daemon that has sent nothing yet already lists every metric
/// http-api.md promises, the per-channel ones at zero for each channel.
#[test]
fn an_idle_daemon_lists_every_required_metric() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deliveries")).unwrap();
    let mut herald = Herald::start(dir.path(), &embedded_config(), &[], &[]);
    herald.wait_ready();
    let (status, text) = herald.get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert_names_types_and_labels(&text);
    assert_eq!(
        sample(
            &text,
            "herald_messages_total{channel=\"email\",outcome=\"delivered\"} "
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "herald_schedule_lag_seconds_count "),
        Some(0.0)
    );
    assert!(herald.stop().success());
}

#[test]
fn metrics_scraped_during_a_run_show_every_required_series() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 recipients at 1,000/s: the run sends for about three seconds.
    add_delivery(dir.path(), "spring", 3000, 1000);
    std::fs::write(dir.path().join("deliveries/broken.yaml"), "id: [\n").unwrap();
    let mut herald = Herald::start(dir.path(), &embedded_config(), &[], &[]);
    herald.wait_ready();
    assert_eq!(herald.get("/healthz").unwrap(), (200, "ok".to_owned()));

    let outbox = dir.path().join("var/outbox");
    // Scrape until the first batches are recorded; the run must still be
    // sending then, so the series are those of a run in progress.
    let mut during = String::new();
    wait_for(Duration::from_secs(30), "the first recorded batch", || {
        let (status, text) = herald.get("/metrics").unwrap();
        assert_eq!(status, 200);
        during = text;
        sum(&during, "herald_messages_total{") > 0.0
    });
    let sent_during = files_starting(&outbox, "spring%40once");
    println!("scraped with {sent_during} of 3000 messages written");
    assert!(sent_during < 3000, "the run ended before the scrape");
    assert_names_types_and_labels(&during);
    assert_eq!(sample(&during, "herald_deliveries_loaded "), Some(1.0));
    assert_eq!(sample(&during, "herald_delivery_file_errors "), Some(1.0));
    assert_eq!(sample(&during, "herald_store_errors_total "), Some(0.0));
    assert!(
        during.contains("herald_runs{state=\"sending\"} 1"),
        "the run is sending at the scrape:\n{during}"
    );

    wait_for(Duration::from_secs(60), "all 3,000 messages", || {
        files_starting(&outbox, "spring%40once") == 3000
    });
    let mut after = String::new();
    let counted = (0..200).any(|_| {
        after = herald.get("/metrics").unwrap().1;
        let done = sum(&after, "herald_messages_total{channel=\"email\"") == 3000.0
            && after.contains("herald_runs{state=\"sent\"} 1")
            && after.contains("herald_runs{state=\"sending\"} 0");
        if !done {
            std::thread::sleep(Duration::from_millis(100));
        }
        done
    });
    assert!(
        counted,
        "the run is not counted as sent:\n{after}\n{}",
        herald.log()
    );
    assert_eq!(
        sum(
            &after,
            "herald_messages_total{channel=\"email\",outcome=\"delivered\"}"
        ),
        3000.0,
        "{after}"
    );
    assert!(
        sample(&after, "herald_schedule_lag_seconds_count").is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(herald.stop().success());
}

#[test]
fn readyz_says_why_when_the_store_is_down() {
    let mut redis = herald_test_support::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deliveries")).unwrap();
    let config = format!(
        "deliveries_dir: deliveries\nstore:\n  kind: redis\n  url: {}\n  key_prefix: ops-readyz\nhttp:\n  listen: \"{{listen}}\"\nplugins: []\n",
        redis.url()
    );
    let mut herald = Herald::start(dir.path(), &config, &[], &[]);
    herald.wait_ready();
    let (_, before) = herald.get("/metrics").unwrap();
    assert_eq!(
        sample(&before, "herald_runs{state=\"sent\"} "),
        Some(0.0),
        "{before}"
    );
    redis.stop();
    wait_for(
        Duration::from_secs(20),
        "readyz to report the store",
        || {
            herald
                .get("/readyz")
                .is_some_and(|(code, body)| code == 503 && body.contains("store"))
        },
    );
    assert_eq!(herald.get("/healthz").unwrap().0, 200);
    let (_, metrics) = herald.get("/metrics").unwrap();
    assert!(
        sample(&metrics, "herald_store_errors_total ").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    // Run counts are unknown, not the last ones read.
    assert!(
        sample(&metrics, "herald_runs{state=\"sent\"} ").is_some_and(f64::is_nan),
        "{metrics}"
    );
    assert!(herald.stop().success());
}

#[test]
fn readyz_names_an_unhealthy_plugin_and_recovers_when_its_calls_return() {
    // Three one-recipient chunks, each a call sleeping 6 s against a 1 s
    // timeout: three abandoned calls outstanding make the plugin unhealthy
    // (plugins.md) until they return.
    let dir = tempfile::tempdir().unwrap();
    add_misbehave_delivery(
        dir.path(),
        "stuck",
        &["sleep:6000", "sleep:6001", "sleep:6002"],
    );
    let config = misbehave_config(
        "  batch_size: 1\n  chunk_size: 1\n  retries: 0\n  plugin_timeout: 1s\n",
        3,
    );
    let mut herald = Herald::start(dir.path(), &config, &[], &[]);
    let mut unhealthy = String::new();
    wait_for(
        Duration::from_secs(20),
        "readyz to name the plugin",
        || match herald.get("/readyz") {
            Some((503, body)) if body.starts_with("unhealthy plugins") => {
                unhealthy = body;
                true
            }
            _ => false,
        },
    );
    assert_eq!(unhealthy, "unhealthy plugins: misbehave");
    assert_eq!(herald.get("/healthz").unwrap(), (200, "ok".to_owned()));
    let (_, metrics) = herald.get("/metrics").unwrap();
    assert!(
        sample(
            &metrics,
            "herald_plugin_abandoned_calls{plugin=\"misbehave\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    wait_for(
        Duration::from_secs(20),
        "readyz 200 once the calls returned",
        || herald.get("/readyz") == Some((200, "ready".to_owned())),
    );
    assert!(herald.stop().success(), "{}", herald.log());
}
