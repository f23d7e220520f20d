//! P4: N jobs due at one instant through a no-op worker, BullMQ against
//! Herald on the same private `redis-server`; target Herald's throughput
//! ≥ 2 × BullMQ's with a lag p99 no worse.
//!
//! `p4_burst [N=20000] [BULLMQ_CONCURRENCY=100] [LEAD_S=30]`, with
//! `BULLMQ_SCRIPT` naming `bullmq_burst.mjs` beside a `node_modules` holding
//! bullmq (benches/peers.sh sets it up). Three measurements, back to back:
//! - BullMQ: N delayed jobs due at one instant, one worker (the script
//!   prints its own figures);
//! - Herald (a): one delivery of N recipients due at one instant;
//! - Herald (b): N one-recipient deliveries due at one instant, written
//!   before the daemon starts and due LEAD_S seconds after they are written;
//!   each run is created and prepared at the instant (`prepare_ahead` 0s);
//! - Herald (b, ahead): the same with `prepare_ahead: LEAD_S`, so the runs
//!   exist, prepared, before the instant, as BullMQ's delayed jobs do.
//!
//! `P4_CASES` (default `bullmq,a,b,ahead`) picks the measurements to make, so
//! one of them can be repeated alone while profiling. `P4_PLUGIN_DELAY_MS`
//! (default 0) makes each plugin call take that long, like a provider's
//! API, and `P4_PLUGIN_CONCURRENCY` (default 4) sets how many calls the
//! channel takes at once: with both, case (b) shows what sharing plugin
//! calls between one-recipient runs is worth (benches/README.md, P4).
//!
//! Herald runs release `herald run` with the `herald_test_count` plugin (a
//! no-op channel that appends each accepted message id to a file, one
//! write per batch). A message's lag is the instant its id reaches that
//! file minus the due instant, read by polling the file every millisecond.
//! The throughput is N over the time from the due instant to the last run
//! recorded as finished (the store's agenda empty: every outcome recorded
//! and every run done), as BullMQ's counts completed jobs, not started ones.

#[path = "../common.rs"]
mod common;

use common::{Launched, built, machine, quantile};
use herald_test_support::RedisServer;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Throughput and lag figures of one measurement.
#[derive(Clone, Copy)]
struct Figures {
    throughput: f64,
    p50: i64,
    p99: i64,
}

fn main() {
    let mut args = common::Args::new();
    let n = args.next(20_000, "N");
    let concurrency = args.next(100, "BULLMQ_CONCURRENCY");
    let lead = args.next(30, "LEAD_S");
    println!("P4 on {}: {n} jobs due at one instant", machine());
    let cases = std::env::var("P4_CASES").unwrap_or_else(|_| "bullmq,a,b,ahead".into());
    let wanted = |case: &str| cases.split(',').any(|c| c.trim() == case);
    let redis = RedisServer::start();

    let skipped = Figures {
        throughput: f64::NAN,
        p50: 0,
        p99: 0,
    };
    let bullmq = if wanted("bullmq") {
        let script = std::env::var("BULLMQ_SCRIPT")
            .expect("BULLMQ_SCRIPT must name bullmq_burst.mjs; benches/peers.sh sets it");
        bullmq(&script, redis.port(), n, concurrency)
    } else {
        skipped
    };
    let one = if wanted("a") {
        flush(redis.port());
        herald_one_delivery(&redis, n)
    } else {
        skipped
    };
    let many = if wanted("b") {
        flush(redis.port());
        herald_many_deliveries(&redis, n, lead, Preparation::AtTheInstant)
    } else {
        skipped
    };
    let ahead = if wanted("ahead") {
        flush(redis.port());
        herald_many_deliveries(&redis, n, lead, Preparation::Ahead)
    } else {
        skipped
    };

    let row = |system: &str, f: &Figures, verdict: &str| {
        println!(
            "| P4 | {system} | {n} due at one instant | {:.0} /s | {} ms | {} ms | {verdict} |",
            f.throughput, f.p50, f.p99
        );
    };
    let verdict = |f: &Figures| {
        let ratio = f.throughput / bullmq.throughput;
        let met = ratio >= 2.0 && f.p99 <= bullmq.p99;
        format!(
            "{ratio:.2} × BullMQ, p99 {} (target ≥ 2×, p99 ≤ BullMQ's): {}",
            if f.p99 <= bullmq.p99 {
                "no worse"
            } else {
                "worse"
            },
            if met { "met" } else { "**missed**" }
        )
    };
    row(
        &format!("BullMQ 6, worker concurrency {concurrency}"),
        &bullmq,
        "",
    );
    row(
        "Herald (a), 1 delivery × N recipients",
        &one,
        &verdict(&one),
    );
    row(
        "Herald (b), N deliveries × 1 recipient",
        &many,
        &verdict(&many),
    );
    row(
        "Herald (b), the same prepared ahead",
        &ahead,
        &verdict(&ahead),
    );
}

/// When case (b)'s runs are created and prepared.
#[derive(Clone, Copy, PartialEq)]
enum Preparation {
    /// At the due instant (`prepare_ahead` 0s, the default).
    AtTheInstant,
    /// Before it (`prepare_ahead` as long as the lead), as BullMQ's jobs
    /// are added before they are due.
    Ahead,
}

/// Runs the BullMQ script and reads its `RESULT` line.
fn bullmq(script: &str, port: u16, n: u64, concurrency: u64) -> Figures {
    let output = Command::new("node")
        .arg(script)
        .args([
            port.to_string(),
            n.to_string(),
            concurrency.to_string(),
            "5000".into(),
        ])
        .output()
        .expect("node runs; Node.js 20 is needed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the BullMQ script failed: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .expect("a RESULT line");
    println!("BullMQ: {line}");
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    Figures {
        throughput: field("throughput"),
        p50: field("p50") as i64,
        p99: field("p99") as i64,
    }
}

/// Empties the Redis between measurements, so each starts alike.
fn flush(port: u16) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis answers");
    stream.write_all(b"FLUSHALL\r\n").unwrap();
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n", "FLUSHALL");
}

/// The daemon's config: the Redis, the counting no-op channel logging to `var/count`.
fn config(work: &Path, redis: &RedisServer) -> String {
    std::fs::create_dir_all(work.join("deliveries")).unwrap();
    std::fs::create_dir_all(work.join("var/count")).unwrap();
    format!(
        "deliveries_dir: deliveries\nstore: {{ kind: redis, url: \"{}\", key_prefix: p4 }}\nhttp: {{ listen: \"{{listen}}\" }}\nplugins:\n  - path: {}\n    config: {{ dir: {}, concurrency: {}, batch_delay_ms: {} }}\nsending:\n  batch_size: 50\n",
        redis.url(),
        built("libherald_test_count.so").display(),
        work.join("var/count").display(),
        knob("P4_PLUGIN_CONCURRENCY", 4),
        knob("P4_PLUGIN_DELAY_MS", 0)
    )
}

/// A number from the environment, or `default`.
fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}"))
    })
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// (a): one delivery of `n` recipients, written once the daemon is ready.
fn herald_one_delivery(redis: &RedisServer, n: u64) -> Figures {
    let work = tempfile::Builder::new()
        .prefix("herald-p4a-")
        .tempdir()
        .unwrap();
    let config = config(work.path(), redis);
    let deliveries = work.path().join("deliveries");
    let mut audience = BufWriter::new(std::fs::File::create(deliveries.join("p4.csv")).unwrap());
    writeln!(audience, "id").unwrap();
    for i in 0..n {
        writeln!(audience, "r{i}").unwrap();
    }
    audience.into_inner().unwrap().sync_all().unwrap();
    let (daemon, _) = Launched::start(work.path(), &config);
    let due = chrono::Utc::now() + chrono::Duration::seconds(5);
    let yaml = format!(
        "id: p4\nchannel: count\naudience:\n  file: p4.csv\ncontent:\n  body: \"Hi {{{{ id }}}}\"\nschedule:\n  at: \"{}\"\n",
        rfc3339(due)
    );
    std::fs::write(deliveries.join("p4.yaml"), yaml).unwrap();
    finish(
        "Herald (a)",
        "recipients",
        daemon,
        (work.path(), redis),
        n,
        due,
    )
}

/// (b): `n` one-recipient deliveries, written before the daemon starts,
/// all due `lead` seconds later.
fn herald_many_deliveries(
    redis: &RedisServer,
    n: u64,
    lead: u64,
    preparation: Preparation,
) -> Figures {
    let (case, ahead) = match preparation {
        Preparation::AtTheInstant => ("Herald (b)", String::new()),
        Preparation::Ahead => ("Herald (b, ahead)", format!("  prepare_ahead: {lead}s\n")),
    };
    let work = tempfile::Builder::new()
        .prefix("herald-p4b-")
        .tempdir()
        .unwrap();
    let config = config(work.path(), redis);
    let deliveries = work.path().join("deliveries");
    let due = chrono::Utc::now() + chrono::Duration::seconds(lead as i64);
    for i in 0..n {
        let yaml = format!(
            "channel: count\naudience:\n  recipients:\n    - {{ id: c{i} }}\ncontent:\n  body: \"Hi {{{{ id }}}}\"\nschedule:\n  at: \"{}\"\n{ahead}",
            rfc3339(due)
        );
        std::fs::write(deliveries.join(format!("p4-{i:05}.yaml")), yaml).unwrap();
    }
    let (daemon, ready) = Launched::start(work.path(), &config);
    let spare = (due - chrono::Utc::now()).num_milliseconds();
    println!("{case}: daemon ready in {ready:.1?}, {spare} ms before the due instant");
    if spare < 0 {
        println!("{case}: WARNING the daemon was ready after the due instant; raise LEAD_S");
    }
    finish(case, "deliveries", daemon, (work.path(), redis), n, due)
}

/// Waits for the `n` messages of a Herald measurement, prints its figures
/// and stops the daemon.
fn finish(
    case: &str,
    what: &str,
    daemon: Launched,
    (work, redis): (&Path, &RedisServer),
    n: u64,
    due: chrono::DateTime<chrono::Utc>,
) -> Figures {
    let mut figures = watch(&work.join("var/count"), n, due);
    let finished_ms = wait_finished(redis.port(), due);
    figures.throughput = n as f64 / (finished_ms.max(1) as f64 / 1000.0);
    println!(
        "{case}: {n} {what}, {:.0}/s, lag p50 {} ms, p99 {} ms, every run finished {finished_ms} ms after the instant",
        figures.throughput, figures.p50, figures.p99
    );
    daemon.stop();
    figures
}

/// Waits until the store's agenda (`p4:{p4}:agenda`, the daemon's key
/// prefix being `p4`) is empty: every run recorded as finished. Returns
/// when that was, in ms after `due`.
fn wait_finished(port: u16, due: chrono::DateTime<chrono::Utc>) -> i64 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis answers");
    let started = Instant::now();
    loop {
        stream.write_all(b"ZCARD p4:{p4}:agenda\r\n").unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).unwrap();
            reply.push(byte[0]);
        }
        if reply == b":0\r\n" {
            return (chrono::Utc::now() - due).num_milliseconds();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "runs still on the agenda after 600 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls the count plugin's files under `dir` until `n` ids are in; each
/// id's lag is when it was seen minus `due`. Gives the lags' figures.
fn watch(dir: &Path, n: u64, due: chrono::DateTime<chrono::Utc>) -> Figures {
    let started = Instant::now();
    let mut offsets: std::collections::HashMap<std::path::PathBuf, u64> = Default::default();
    let mut lags: Vec<i64> = Vec::with_capacity(n as usize);
    let mut buf = Vec::new();
    while (lags.len() as u64) < n {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let offset = offsets.entry(path.clone()).or_default();
            let mut file = std::fs::File::open(&path).unwrap();
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*offset)).unwrap();
            buf.clear();
            file.read_to_end(&mut buf).unwrap();
            // Only whole lines: a batch's write may be seen half done.
            let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let lines = buf[..whole].iter().filter(|&&b| b == b'\n').count();
            *offset += whole as u64;
            if lines > 0 {
                let lag = (chrono::Utc::now() - due).num_milliseconds();
                lags.extend(std::iter::repeat_n(lag, lines));
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {n} messages in 600 s",
            lags.len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut sorted: Vec<u64> = lags.iter().map(|&l| l.max(0) as u64).collect();
    sorted.sort_unstable();
    Figures {
        // Counted by the caller, once every run is recorded as finished.
        throughput: f64::NAN,
        p50: quantile(&sorted, 0.5) as i64,
        p99: quantile(&sorted, 0.99) as i64,
    }
}
