//! P1: end-to-end recipients per second of one run (CSV read, exclusions,
//! rendering one variable, plugin call, outcome recording, KPIs) through a
//! no-op channel, with the Redis backend and, beside it, the embedded one.
//!
//! `p1_throughput [RECIPIENTS] [BATCH_SIZE] [--cluster | --redis-only]`
//! (defaults 200000, 50). With `--cluster`: one Redis against a 3-master
//! Redis Cluster on the same machine, instead of Redis against the
//! embedded store; with `--redis-only`: one Redis alone. With `--repeat`
//! a second delivery to the same audience follows on the same store (its
//! recipients have a history already, as for a recurring newsletter). With `P1_STATS`
//! set it also prints the private Redis's `INFO commandstats` after the
//! run, and with `P1_LOG` set the daemons' logs (where the time went).

#[path = "sending_bed/mod.rs"]
mod bed;

use bed::{Backend, Bed};

fn main() {
    bed::init();
    let n = bed::arg(1, 200_000);
    let batch = bed::arg(2, 50);
    let sending =
        format!("  batch_size: {batch}\n  chunk_size: 1000\n  lease: 30s\n  plugin_timeout: 60s");
    println!(
        "P1 on {}: {n} recipients, batch_size {batch}",
        bed::machine()
    );
    let backends: &[Backend] = if bed::flag("--cluster") {
        &[Backend::Redis, Backend::RedisCluster]
    } else if bed::flag("--redis-only") {
        &[Backend::Redis]
    } else {
        &[Backend::Redis, Backend::Embedded]
    };
    for &backend in backends {
        let mut bed = Bed::new(backend);
        bed.audience(n as usize);
        bed.start(r#""concurrency": 4"#, &sending);
        let runs = if bed::flag("--repeat") { 2 } else { 1 };
        for run in 1..=runs {
            let timing = bed.run_timed(n, || {});
            let elapsed = timing.total;
            println!(
                "P1 {backend:?}{}: {n} recipients in {:.2} s = {:.0} recipients/s ({}; first outcome after {:.2} s)",
                if run > 1 { " (repeat send)" } else { "" },
                elapsed.as_secs_f64(),
                n as f64 / elapsed.as_secs_f64(),
                timing.cpu.per_recipient(n),
                (timing.total - timing.sending).as_secs_f64()
            );
            if let Some(redis) = &bed.redis {
                println!(
                    "P1 {backend:?}: the recipients' history indexed {:.2} s after the last outcome",
                    history_indexed(redis.port()).as_secs_f64()
                );
            }
        }
        if let (Some(_), Some(redis)) = (std::env::var_os("P1_STATS"), bed.redis.as_ref()) {
            let out = std::process::Command::new("redis-cli")
                .args(["-p", &redis.port().to_string(), "info", "commandstats"])
                .output()
                .unwrap();
            println!("{}", String::from_utf8_lossy(&out.stdout));
        }
        if std::env::var_os("P1_LOG").is_some() {
            for d in &bed.daemons {
                println!("{}", d.log());
            }
        }
    }
}

/// How long until the daemons' history indexer has written every queued
/// outcome into its recipient's history (it works once sending pauses, so
/// P1's figure leaves it out: this says how long it took).
fn history_indexed(port: u16) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &port.to_string(),
                "ZCARD",
                "herald:{herald}:history_pending",
            ])
            .output()
            .expect("redis-cli runs");
        if String::from_utf8_lossy(&out.stdout).trim() == "0" {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(300),
            "history still queued after 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
