//! P2: e-mail throughput into Postfix's `smtp-sink` on loopback, against
//! Postfix's own `smtp-source -d` sending the same number and size of
//! messages at the same concurrency into the same sink; target ≥ 0.8 ×
//! `smtp-source`'s rate.
//!
//! `p2_smtp [N=20000] [SIZE=1000] [C=4]`, with `SMTP_SINK` and
//! `SMTP_SOURCE` naming the two Postfix programs (benches/peers.sh unpacks
//! them). Starts one `smtp-sink -c` and reads its running counter, so both
//! sides are timed the same way, by the sink: from the first message it
//! accepts to the N-th. Herald's side is a release `herald run` on a
//! private `redis-server` with the `herald_email` plugin (`pool_size: C`,
//! so the host calls it C at a time) and one delivery of N recipients
//! whose text is SIZE bytes, due a few seconds after the daemon is ready.
//! Prints the two figures as rows of the peers table.

#[path = "../common.rs"]
mod common;

use common::{Launched, built, lag_ms, machine};
use herald_test_support::RedisServer;
use std::io::{BufWriter, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `smtp-sink` and the instants at which its message counter moved.
struct Sink {
    child: Child,
    port: u16,
    /// (when, messages so far), one entry per counter update.
    counts: Arc<Mutex<Vec<(Instant, u64)>>>,
}

impl Sink {
    fn start(program: &str) -> Sink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(program);
        command.arg("-c");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // smtp-sink refuses to keep root privileges.
            command.args(["-u", "nobody"]);
        }
        let mut child = command
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}; run benches/peers.sh"));
        let counts = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let seen = Arc::clone(&counts);
        // `-c` rewrites one line ("sess=.. quit=.. mesg=N\r") after each
        // message, unbuffered, so reading it live times every acceptance.
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            let mut line = Vec::new();
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                for &b in &buf[..n] {
                    if b != b'\r' {
                        line.push(b);
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line);
                    if let Some(count) = text
                        .split_once("mesg=")
                        .and_then(|(_, n)| n.trim().parse().ok())
                    {
                        seen.lock().unwrap().push((now, count));
                    }
                    line.clear();
                }
            }
        });
        let sink = Sink {
            child,
            port,
            counts,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "smtp-sink does not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sink
    }

    /// Messages accepted so far.
    fn total(&self) -> u64 {
        self.counts.lock().unwrap().last().map_or(0, |c| c.1)
    }

    /// Waits until `n` more messages than `base` are accepted; returns the
    /// time from the first of them to the last.
    fn time_next(&self, base: u64, n: u64, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            {
                let counts = self.counts.lock().unwrap();
                if counts.last().is_some_and(|c| c.1 >= base + n) {
                    let first = counts.iter().find(|c| c.1 > base).expect("a first").0;
                    let last = counts.iter().find(|c| c.1 >= base + n).expect("a last").0;
                    return last - first;
                }
            }
            assert!(
                started.elapsed() < limit,
                "the sink accepted {} of {n} messages in {limit:?}",
                self.total() - base
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A text of `size` bytes in 72-character lines, escaped for a YAML
/// double-quoted string.
fn text(size: usize) -> String {
    let mut out = String::new();
    for i in 0..size {
        out.push_str(if i % 73 == 72 { "\\n" } else { "x" });
    }
    out
}

fn main() {
    let mut args = common::Args::new();
    let n = args.next(20_000, "N");
    let size = args.next(1000, "SIZE") as usize;
    let concurrency = args.next(4, "C");
    let program = |var: &str| {
        std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} must name Postfix's program; benches/peers.sh sets it")
        })
    };
    let sink = Sink::start(&program("SMTP_SINK"));
    println!(
        "P2 on {}: {n} messages of {size} bytes, concurrency {concurrency}",
        machine()
    );

    let status = Command::new(program("SMTP_SOURCE"))
        .args(["-d", "-s", &concurrency.to_string(), "-m", &n.to_string()])
        .args(["-l", &size.to_string(), "-f", "bench@peers.example"])
        .args([
            "-t",
            "rcpt@peers.example",
            &format!("127.0.0.1:{}", sink.port),
        ])
        .status()
        .expect("smtp-source runs");
    assert!(status.success(), "smtp-source failed: {status}");
    let postfix = sink.time_next(0, n, Duration::from_secs(60));
    let postfix_rate = n as f64 / postfix.as_secs_f64();
    println!("smtp-source -d: {n} in {postfix:.2?} = {postfix_rate:.0} msg/s");

    let (herald, lag) = herald_run(&sink, n, size, concurrency);
    let herald_rate = n as f64 / herald.as_secs_f64();
    println!(
        "herald_email: {n} in {herald:.2?} = {herald_rate:.0} msg/s (first message handed to the plugin {lag} ms after the due instant)"
    );
    let ratio = herald_rate / postfix_rate;
    let verdict = if ratio >= 0.8 { "met" } else { "**missed**" };
    let workload = format!("{n} msgs × {size} B, concurrency {concurrency}");
    println!("| P2 | Postfix smtp-source -d | {workload} | {postfix_rate:.0} msg/s | | | |");
    println!(
        "| P2 | Herald, herald_email (pool_size {concurrency}) | {workload} | {herald_rate:.0} msg/s | | | {ratio:.2} × smtp-source (target ≥ 0.8): {verdict} |"
    );
}

/// Sends `n` messages through a release daemon into `sink`; returns the
/// sink's time for them and the run's schedule lag.
fn herald_run(sink: &Sink, n: u64, size: usize, concurrency: u64) -> (Duration, u64) {
    let work = tempfile::Builder::new()
        .prefix("herald-p2-")
        .tempdir()
        .unwrap();
    let deliveries = work.path().join("deliveries");
    std::fs::create_dir_all(&deliveries).unwrap();
    let mut audience = BufWriter::new(std::fs::File::create(deliveries.join("p2.csv")).unwrap());
    writeln!(audience, "id,email").unwrap();
    for i in 0..n {
        writeln!(audience, "r{i},r{i}@peers.example").unwrap();
    }
    audience.flush().unwrap();
    drop(audience);
    let redis = RedisServer::start();
    let config = format!(
        "deliveries_dir: deliveries\nstore: {{ kind: redis, url: \"{}\", key_prefix: p2 }}\nhttp: {{ listen: \"{{listen}}\" }}\nplugins:\n  - path: {}\n    config: {{ smtp_url: \"smtp://127.0.0.1:{}\", pool_size: {concurrency}, helo_name: herald.peers.example }}\n",
        redis.url(),
        built("libherald_email.so").display(),
        sink.port
    );
    let (daemon, _) = Launched::start(work.path(), &config);
    // Due shortly after now, so loading and preparing the audience happen
    // before the first message and the sink times sending alone.
    let due = chrono::Utc::now() + chrono::Duration::seconds(3);
    let yaml = format!(
        "id: p2\nchannel: email\naudience:\n  file: p2.csv\ncontent:\n  from: \"Bench <bench@peers.example>\"\n  subject: \"P2\"\n  text: \"{}\"\nschedule:\n  at: \"{}\"\n",
        text(size),
        due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    std::fs::write(deliveries.join("p2.yaml"), yaml).unwrap();
    let base = sink.total();
    let elapsed = sink.time_next(base, n, Duration::from_secs(600));
    let lag = daemon.log_text().lines().find_map(lag_ms).unwrap_or(0);
    daemon.stop();
    (elapsed, lag)
}
