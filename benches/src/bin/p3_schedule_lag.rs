//! P3: schedule lag (due instant to the first message handed to the
//! plugin) with 10,000 loaded deliveries of one recipient each, due at
//! spread instants; target p99 ≤ 50 ms.
//!
//! `p3_schedule_lag [N] [SPACING_MS]`: writes N one-shot outbox
//! deliveries due `SPACING_MS` apart (default 5 ms, so 10,000 span 50 s),
//! starting 20 s after they are written; starts `herald run` on a private
//! `redis-server` (the production backend) at log level `info`; reads
//! each run's `lag_ms` from the log line "First message of the run handed
//! to the plugin." and prints p50, p90, p99 and the maximum.

#[path = "../common.rs"]
mod common;

use common::{Launched, built, lag_ms, machine, quantile};
use herald_test_support::RedisServer;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let spacing: i64 = args.next().map_or(5, |a| a.parse().expect("SPACING_MS"));
    let work = tempfile::Builder::new()
        .prefix("herald-p3-")
        .tempdir()
        .unwrap();
    let deliveries = work.path().join("deliveries");
    std::fs::create_dir_all(&deliveries).unwrap();
    let redis = RedisServer::start();

    let first = chrono::Utc::now() + chrono::Duration::seconds(20);
    for i in 0..n {
        let at = first + chrono::Duration::milliseconds(spacing * i as i64);
        let yaml = format!(
            "channel: outbox\naudience:\n  recipients:\n    - {{ id: c{i}, name: Ana }}\ncontent:\n  body: \"Hi {{{{ name }}}}\"\nschedule:\n  at: \"{}\"\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        std::fs::write(deliveries.join(format!("p3-{i:05}.yaml")), yaml).unwrap();
    }
    let config = format!(
        "deliveries_dir: deliveries\nstore: {{ kind: redis, url: \"{}\", key_prefix: p3 }}\nhttp: {{ listen: \"{{listen}}\" }}\nplugins:\n  - path: {}\n    config: {{ dir: var/outbox }}\n",
        redis.url(),
        built("libherald_outbox.so").display()
    );
    let (daemon, ready) = Launched::start(work.path(), &config);
    let until_first = (first - chrono::Utc::now()).to_std().unwrap_or_default();
    println!(
        "P3 on {}: {n} deliveries due {spacing} ms apart from {first}; daemon ready in {ready:?}, {until_first:?} before the first is due",
        machine()
    );

    let span = Duration::from_millis((spacing * n as i64) as u64);
    let deadline = Instant::now() + until_first + span + Duration::from_secs(60);
    let lags = loop {
        let lags: Vec<u64> = daemon.log_text().lines().filter_map(lag_ms).collect();
        if lags.len() >= n || Instant::now() > deadline {
            break lags;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut sorted = lags.clone();
    sorted.sort_unstable();
    println!(
        "runs measured: {} of {n}; lag p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        sorted.len(),
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.9),
        quantile(&sorted, 0.99),
        sorted.last().copied().unwrap_or(0)
    );
    println!("daemon RSS at the end: {:.1} MiB", daemon.rss_mib());
    daemon.stop();
}
