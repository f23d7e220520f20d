//! Issue 8: the open and click figures are recounted on
//! `kpi.rates_interval`. After a run is sent, tracking records are written
//! straight into Redis (bypassing the counters, as a lost flush or a
//! second writer would) and the stored counters are skewed; with
//! `rates_interval: 1s` the API shows the recounted figures again, without
//! anyone calling `POST .../statistics`.

use crate::{Api, Bed, run_path};
use herald_test_support::{Daemon, RedisServer};
use std::process::Command;
use std::time::{Duration, Instant};

const RECIPIENTS: usize = 20;

/// Runs `redis-cli` against `redis` with `args`; returns its output.
fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs (install redis-tools)");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn the_rates_timer_recounts_open_and_click_figures_that_drifted() {
    let bed = Bed::new();
    let redis = RedisServer::start();
    let mut yaml = String::from("channel: email\naudience:\n  recipients:\n");
    for i in 0..RECIPIENTS {
        yaml.push_str(&format!(
            "    - {{ id: r{i}, email: \"r{i}@test.example\" }}\n"
        ));
    }
    yaml.push_str("content:\n  from: \"Shop <news@shop.example>\"\n  subject: Hi\n  html: \"<p><a href='https://shop.example/'>shop</a></p>\"\n");
    bed.deliver("rated.yaml", yaml);
    let config = bed.config(
        &format!(
            "  kind: redis\n  url: {}\n  key_prefix: herald\n",
            redis.url()
        ),
        &bed.outbox_plugin(),
        "kpi:\n  flush_interval: 1s\n  rates_interval: 1s\n",
    );
    let daemon = Daemon::start(bed.dir.path(), &config);
    let api = Api::new(&daemon);
    let path = run_path("rated@once");
    api.wait(&path, Duration::from_secs(30), |r| r["state"] == "sent");

    // The key layout of daemon/src/store/redis/keys.rs.
    let base = "herald:{herald:rated@once}";
    redis_cli(
        &redis,
        &["SADD", &format!("{base}:opens"), "r1", "r2", "r3"],
    );
    redis_cli(&redis, &["SADD", &format!("{base}:clicks"), "r1"]);
    redis_cli(
        &redis,
        &[
            "HSET",
            &format!("{base}:run"),
            "opened",
            "999",
            "clicked",
            "500",
        ],
    );
    let skewed = Instant::now();
    let seen = api.get(&path)["kpi"].clone();
    println!(
        "rates: right after the skew the API shows opened {} clicked {}",
        seen["opened"], seen["clicked"]
    );

    let run = api.wait(&path, Duration::from_secs(15), |r| {
        r["kpi"]["opened"] == 3 && r["kpi"]["clicked"] == 1
    });
    let kpi = &run["kpi"];
    println!(
        "rates: recounted within {:?}: opened {} clicked {} open_rate {} click_rate {} (delivered {})",
        skewed.elapsed(),
        kpi["opened"],
        kpi["clicked"],
        kpi["open_rate"],
        kpi["click_rate"],
        kpi["delivered"]
    );
    assert_eq!(kpi["delivered"], RECIPIENTS as u64);
    let rate = |v: &serde_json::Value| v.as_f64().expect("a rate");
    assert!(
        (rate(&kpi["open_rate"]) - 3.0 / RECIPIENTS as f64).abs() < 1e-9,
        "{kpi}"
    );
    assert!(
        (rate(&kpi["click_rate"]) - 1.0 / RECIPIENTS as f64).abs() < 1e-9,
        "{kpi}"
    );
    // The delivery's figures follow its run.
    let delivery = api.get("/api/v1/deliveries/rated");
    assert_eq!(delivery["kpi"]["opened"], 3, "{delivery}");
    assert_eq!(delivery["kpi"]["clicked"], 1, "{delivery}");
}
