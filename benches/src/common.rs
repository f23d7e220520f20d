//! What the benchmark programs share: the release binaries beside the
//! running program, a daemon launcher at the production log level, and
//! the machine's description for the README.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program's positional numeric arguments, read in order.
pub struct Args(std::iter::Skip<std::env::Args>);

impl Args {
    /// The arguments after the program name.
    pub fn new() -> Args {
        Args(std::env::args().skip(1))
    }

    /// The next argument, `default` when absent; a non-number panics
    /// naming the argument.
    pub fn next(&mut self, default: u64, name: &str) -> u64 {
        self.0.next().map_or(default, |a| {
            a.parse().unwrap_or_else(|_| panic!("{name}: {a}"))
        })
    }
}

/// A file built beside this program (`herald`, `libherald_outbox.so`).
pub fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the program has a path");
    let path = exe.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release --workspace` first",
        path.display()
    );
    path
}

/// A daemon started at log level `info` (the production default), its
/// stderr in `log`.
pub struct Launched {
    /// The process.
    pub child: Child,
    /// Where its HTTP listener is.
    pub addr: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

impl Launched {
    /// Writes `config` (`{listen}` replaced) to `dir/herald.yaml`, starts
    /// `herald run`, and waits for `/readyz` to answer 200; returns the
    /// daemon and how long it took to be ready.
    pub fn start(dir: &Path, config: &str) -> (Launched, Duration) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let path = dir.join("herald.yaml");
        std::fs::write(&path, config.replace("{listen}", &addr.to_string())).unwrap();
        let log = dir.join("herald.log");
        let started = Instant::now();
        let child = Command::new(built("herald"))
            .args(["run", "--config"])
            .arg(&path)
            .env("HERALD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("herald starts");
        let mut launched = Launched { child, addr, log };
        loop {
            if let Ok(Some(status)) = launched.child.try_wait() {
                panic!("herald exited with {status}:\n{}", launched.log_text());
            }
            if herald_test_support::get_status(addr, "/readyz") == Some(200) {
                return (launched, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "herald not ready in 120 s:\n{}",
                launched.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident set size in MiB (VmRSS of /proc/PID/status).
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Stops it with SIGTERM and waits.
    pub fn stop(mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// `N cores, CPU model` from /proc/cpuinfo.
pub fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {model}")
}

/// The value at quantile `q` (0..=1) of sorted `values`.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank]
}

/// The `lag_ms` field of a log line, if it has one.
pub fn lag_ms(line: &str) -> Option<u64> {
    let rest = &line[line.find("lag_ms")? + "lag_ms".len()..];
    let digits: String = rest
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
