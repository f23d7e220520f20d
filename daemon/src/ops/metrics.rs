//! The Prometheus recorder and the metrics every deployment gets.

use crate::runs::Outcome;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder once per process; later calls return the same handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder (tests running several daemons in one process) is harmless.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "herald_messages_total",
        "Messages by channel and final outcome."
    );
    describe_gauge!("herald_runs", "Runs by state.");
    describe_gauge!("herald_deliveries_loaded", "Delivery files loaded.");
    describe_gauge!("herald_delivery_file_errors", "Delivery files with errors.");
    describe_histogram!(
        "herald_plugin_batch_seconds",
        "Time of one plugin batch call."
    );
    describe_histogram!(
        "herald_schedule_lag_seconds",
        "Due instant to first message handed to the plugin."
    );
    describe_counter!("herald_store_errors_total", "Store operations that failed.");
    describe_counter!(
        "herald_plugin_abandoned_calls",
        "Plugin calls abandoned after the timeout."
    );
    describe_counter!(
        "herald_runs_created_total",
        "Runs created by this instance."
    );
}

/// Registers the counters that only move on trouble at zero, so a scrape
/// shows them (and alerts can use `rate()`) before the first error, and
/// the message counter and both histograms for every channel served, so a
/// daemon that has sent nothing yet still lists every metric it promises.
pub fn register_zeroes<'a>(
    plugins: impl IntoIterator<Item = &'a str>,
    channels: impl IntoIterator<Item = &'a str>,
) {
    metrics::counter!("herald_store_errors_total").increment(0);
    for plugin in plugins {
        metrics::counter!("herald_plugin_abandoned_calls", "plugin" => plugin.to_owned())
            .increment(0);
    }
    for channel in channels {
        for outcome in Outcome::ALL {
            metrics::counter!("herald_messages_total", "channel" => channel.to_owned(), "outcome" => outcome.as_str())
                .increment(0);
        }
        // A histogram with no observation yet is listed with zero counts.
        let _ = metrics::histogram!("herald_plugin_batch_seconds", "channel" => channel.to_owned());
    }
    let _ = metrics::histogram!("herald_schedule_lag_seconds");
}
