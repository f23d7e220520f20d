//! P5: loading and validating 10,000 delivery files (target ≤ 2 s), and
//! the daemon's RSS with them loaded (target ≤ 150 MB).
//!
//! `p5_load [N]`: writes N one-recipient delivery files (a mix of
//! recurring crons in several zones and one-shots, none due during the
//! run), then measures the in-process `load_folder` (best and median of
//! 5), `herald validate DIR`, and `herald run` (embedded store, outbox
//! plugin): start to ready, and VmRSS once loaded.

#[path = "../common.rs"]
mod common;

use common::{Launched, built, machine};
use herald::definitions::{ChannelCatalog, ValidationContext, load_folder};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ZONES: [&str; 4] = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"];

fn write_files(dir: &Path, n: usize) {
    for i in 0..n {
        let schedule = if i % 2 == 0 {
            format!(
                "  cron: \"{} {} * * MON-FRI\"\n  timezone: {}\n",
                i % 60,
                8 + i % 10,
                ZONES[i % ZONES.len()]
            )
        } else {
            format!("  at: \"2030-01-01T{:02}:{:02}:00Z\"\n", i % 24, i % 60)
        };
        let yaml = format!(
            "label: Delivery {i}\nchannel: outbox\naudience:\n  recipients:\n    - {{ id: c{i}, name: Ana }}\ncontent:\n  subject: \"Hello {{{{ name }}}}\"\n  body: \"Hi {{{{ name | default('friend') }}}}, this is delivery {i}.\"\nschedule:\n{schedule}"
        );
        let sub = dir.join(format!("team{}", i % 10));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("d{i:05}.yaml")), yaml).unwrap();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |a| a.parse().expect("N is a number"));
    let work = tempfile::Builder::new()
        .prefix("herald-p5-")
        .tempdir()
        .unwrap();
    let deliveries = work.path().join("deliveries");
    write_files(&deliveries, n);
    println!("P5 on {}: {n} delivery files", machine());

    let ctx = ValidationContext {
        deliveries_dir: deliveries.clone(),
        audience_roots: Vec::new(),
        channels: ChannelCatalog::builtin(),
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let loaded = load_folder(&ctx);
        times.push(start.elapsed());
        assert_eq!(
            loaded.deliveries.len(),
            n,
            "errors: {:?}",
            loaded.errors.first()
        );
    }
    times.sort();
    println!(
        "load_folder (in process): best {:?}, median {:?}",
        times[0], times[2]
    );

    let start = Instant::now();
    let status = Command::new(built("herald"))
        .arg("validate")
        .arg(&deliveries)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    println!(
        "herald validate DIR: {:?} (exit {})",
        start.elapsed(),
        status.code().unwrap_or(-1)
    );

    let config = format!(
        "deliveries_dir: deliveries\nstore: {{ kind: embedded, path: var/herald.db }}\nhttp: {{ listen: \"{{listen}}\" }}\nplugins:\n  - path: {}\n    config: {{ dir: var/outbox }}\n",
        built("libherald_outbox.so").display()
    );
    let (daemon, ready) = Launched::start(work.path(), &config);
    let loaded_line = daemon
        .log_text()
        .lines()
        .find(|l| l.contains("Deliveries loaded."))
        .map(str::to_owned)
        .unwrap_or_default();
    let rss_ready = daemon.rss_mib();
    std::thread::sleep(Duration::from_secs(5));
    let rss_settled = daemon.rss_mib();
    println!("herald run: ready after {ready:?}; {loaded_line}");
    println!("herald run RSS: {rss_ready:.1} MiB when ready, {rss_settled:.1} MiB 5 s later");
    daemon.stop();
}
