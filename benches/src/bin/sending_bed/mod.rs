//! The bed shared by the sending benchmarks (P1, P6, P7): a private Redis
//! (a 3-master Redis Cluster, or the embedded store), a CSV audience, release daemons with the
//! `count` test plugin as a no-op or slow channel, and the time until every
//! recipient has a recorded outcome, read from the daemons' `/metrics`.

#![allow(dead_code)]

use herald_test_support::{Daemon, RedisCluster, RedisServer};
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which store the daemons use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A private `redis-server` (appendonly, as in production).
    Redis,
    /// The embedded redb file (one instance only).
    Embedded,
    /// A private 3-master Redis Cluster on loopback (appendonly).
    RedisCluster,
}

/// Folders, the store and the daemons of one measurement.
pub struct Bed {
    pub dir: tempfile::TempDir,
    pub redis: Option<RedisServer>,
    pub cluster: Option<RedisCluster>,
    pub backend: Backend,
    pub daemons: Vec<Daemon>,
    /// Deliveries dropped so far: each run gets a delivery of its own.
    runs: std::cell::Cell<u32>,
}

impl Bed {
    /// A fresh folder (and Redis, for that backend).
    pub fn new(backend: Backend) -> Bed {
        let dir = tempfile::Builder::new()
            .prefix("herald-bench-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("deliveries")).expect("deliveries folder");
        let redis = (backend == Backend::Redis).then(RedisServer::start);
        let cluster = (backend == Backend::RedisCluster).then(RedisCluster::start);
        Bed {
            dir,
            redis,
            cluster,
            backend,
            daemons: Vec::new(),
            runs: std::cell::Cell::new(0),
        }
    }

    /// Writes the audience (`id,address,name`, `n` rows) under `deliveries/`.
    pub fn audience(&self, n: usize) {
        let file = std::fs::File::create(self.dir.path().join("deliveries/bench.csv"))
            .expect("the audience is created");
        let mut out = BufWriter::new(file);
        writeln!(out, "id,address,name").expect("write");
        for i in 0..n {
            writeln!(out, "r{i},a{i},Name {i}").expect("write");
        }
        out.flush().expect("the audience is written");
    }

    /// Starts a daemon with the `count` plugin configured by `plugin`
    /// (JSON object members) and the `sending` block.
    pub fn start(&mut self, plugin: &str, sending: &str) {
        let name = format!("d{}", self.daemons.len());
        let store = match (&self.redis, &self.cluster) {
            (Some(redis), _) => format!(
                "  kind: redis\n  url: {}\n  key_prefix: herald",
                redis.url()
            ),
            (_, Some(cluster)) => format!(
                "  kind: redis\n  cluster_nodes: [{}]\n  key_prefix: herald",
                cluster.nodes().join(", ")
            ),
            (None, None) => "  kind: embedded\n  path: herald.db".to_owned(),
        };
        let config = format!(
            "deliveries_dir: deliveries\nstore:\n{store}\nhttp:\n  listen: \"{{listen}}\"\nplugins:\n  - path: {}\n    config: {{ \"log\": false, \"address_column\": \"address\", {plugin} }}\nsending:\n{sending}\n",
            Daemon::plugin("herald_test_count").display()
        );
        self.daemons
            .push(Daemon::start_named(self.dir.path(), &name, &config));
    }

    /// Drops the delivery in (every daemon loads it) and returns when
    /// `n` outcomes are recorded across the daemons: the elapsed time.
    pub fn run(&self, n: u64, sample: impl FnMut()) -> Duration {
        self.run_timed(n, sample).total
    }

    /// As [`Bed::run`], also timing the sending phase alone: from the
    /// first recorded outcome (preparation done) to the last.
    pub fn run_timed(&self, n: u64, mut sample: impl FnMut()) -> Timing {
        // A second run on the same bed is a new delivery to the same
        // audience: its recipients have a history already.
        let run = self.runs.replace(self.runs.get() + 1);
        let id = if run == 0 {
            "bench".to_owned()
        } else {
            format!("bench{run}")
        };
        let before: u64 = self.daemons.iter().map(|d| messages_total(&d.url())).sum();
        let cpu_before = self.cpu();
        let yaml = format!(
            "id: {id}\nchannel: count\naudience:\n  file: bench.csv\ncontent:\n  body: \"Hello {{{{ name }}}}\"\n"
        );
        let start = Instant::now();
        std::fs::write(self.dir.path().join(format!("deliveries/{id}.yaml")), yaml)
            .expect("the delivery is written");
        let mut next = Instant::now();
        let mut first_outcome = None;
        loop {
            sample();
            if Instant::now() >= next {
                next = Instant::now() + Duration::from_millis(50);
                let done: u64 = self
                    .daemons
                    .iter()
                    .map(|d| messages_total(&d.url()))
                    .sum::<u64>()
                    - before;
                if done > 0 && first_outcome.is_none() {
                    first_outcome = Some((Instant::now(), done));
                }
                if done >= n {
                    let (first, sent_then) = first_outcome.expect("set above");
                    let cpu_after = self.cpu();
                    return Timing {
                        total: start.elapsed(),
                        sending: first.elapsed(),
                        sending_recipients: n - sent_then,
                        cpu: Cpu {
                            daemons: cpu_after.daemons - cpu_before.daemons,
                            redis: cpu_after.redis - cpu_before.redis,
                        },
                    };
                }
                assert!(
                    start.elapsed() < Duration::from_secs(600),
                    "only {done} of {n} outcomes after 10 minutes"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// CPU time used so far by the daemons and the private Redis.
    fn cpu(&self) -> Cpu {
        let daemons = self
            .daemons
            .iter()
            .filter_map(Daemon::pid)
            .map(cpu_time)
            .sum();
        let redis = self
            .redis
            .as_ref()
            .and_then(RedisServer::pid)
            .map_or(Duration::ZERO, cpu_time);
        Cpu { daemons, redis }
    }

    /// The folder of the bed.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// How long a run took, in all and in its sending phase.
pub struct Timing {
    /// From dropping the delivery in to the last outcome.
    pub total: Duration,
    /// From the first outcome seen (50 ms polls) to the last.
    pub sending: Duration,
    /// The outcomes recorded during `sending`.
    pub sending_recipients: u64,
    /// CPU time the run cost.
    pub cpu: Cpu,
}

/// CPU time (user + system) of the bed's processes.
pub struct Cpu {
    /// All daemons together.
    pub daemons: Duration,
    /// The private `redis-server`, with its reaped children (AOF rewrites);
    /// zero for the embedded store and the cluster.
    pub redis: Duration,
}

impl Cpu {
    /// `daemon µs + Redis µs per recipient` for `n` recipients.
    pub fn per_recipient(&self, n: u64) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        format!(
            "CPU per recipient: daemon {:.1} µs, Redis {:.1} µs",
            us(self.daemons),
            us(self.redis)
        )
    }
}

/// User + system CPU time of a process and its reaped children
/// (`/proc/PID/stat` fields 14 to 17, in clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the rest follows its `)`.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Points the test-support helpers at the daemon and plugins built beside
/// this program (`target/release/`), unless `HERALD_BIN` says otherwise:
/// their default looks one folder up, where test executables live.
pub fn init() {
    if std::env::var_os("HERALD_BIN").is_none() {
        let exe = std::env::current_exe().expect("the benchmark has a path");
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("HERALD_BIN", exe.with_file_name("herald")) };
    }
}

/// Resident set of a process in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of `herald_messages_total` on a daemon's `/metrics`.
fn messages_total(base: &str) -> u64 {
    let addr = base.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return 0;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.lines()
        .filter(|l| l.starts_with("herald_messages_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The machine, for the report: cores and CPU model.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// The `n`-th command-line argument as a number (`--flags` not counted),
/// or `default`.
pub fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Whether `--flag` is among the command-line arguments.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
