//! End to end tests of scheduling and the run lifecycle against the real
//! `herald` binary and a private `redis-server`: the live deliveries folder,
//! G1 (one run per occurrence across instances and restarts), G2 (nothing
//! sent before a confirmation, nor before the instant) and G7 (Redis going
//! away). Run `cargo build --workspace` first when running this binary
//! alone: it drives the built daemon and plugins.

mod g1_instances;
mod g2_confirm;
mod g7_outage;
mod handover;
mod live_folder;

use herald::runs::RunId;
use herald::store::redis::{RedisSettings, RedisStore};
use herald::store::{Run, RunFilter, Store};
use herald_test_support::{Daemon, RedisServer};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Key prefix of every test config.
const PREFIX: &str = "herald";

/// A temporary folder with a deliveries folder, an outbox folder and a
/// private Redis, plus a store client on that Redis to look at runs.
pub struct Fixture {
    /// Holds the configs, logs, deliveries and outbox.
    pub dir: tempfile::TempDir,
    /// The private Redis.
    pub redis: RedisServer,
    /// Reads the store the daemons write.
    pub probe: Probe,
}

impl Fixture {
    /// A fresh folder and a started Redis.
    pub fn start() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("herald-sched-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("deliveries")).unwrap();
        std::fs::create_dir_all(dir.path().join("outbox")).unwrap();
        let redis = RedisServer::start();
        let probe = Probe::new(&redis.url());
        Fixture { dir, redis, probe }
    }

    /// The deliveries folder.
    pub fn deliveries(&self) -> PathBuf {
        self.dir.path().join("deliveries")
    }

    /// The outbox plugin's folder.
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Writes a delivery file atomically (temp then rename), as deploy
    /// tools do, so no rescan sees half a file.
    pub fn write_delivery(&self, name: &str, yaml: &str) {
        let temp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&temp, yaml).unwrap();
        std::fs::rename(&temp, self.deliveries().join(name)).unwrap();
    }

    /// A config on this Redis with the outbox plugin, short leases, and
    /// `plugins` appended to the plugin list (YAML list items).
    pub fn config(&self, extra_plugins: &str) -> String {
        format!(
            "deliveries_dir: deliveries\n\
             store: {{ kind: redis, url: \"{url}\", key_prefix: {PREFIX} }}\n\
             http: {{ listen: \"{{listen}}\" }}\n\
             plugins:\n  - path: {outbox}\n    config: {{ dir: {dir} }}\n{extra_plugins}\
             sending: {{ lease: 3s, shutdown_grace: 10s, batch_size: 50, chunk_size: 200 }}\n",
            url = self.redis.url(),
            outbox = Daemon::plugin("herald_outbox").display(),
            dir = self.outbox().display(),
        )
    }

    /// Starts a daemon named `name` (its config and log files) on this fixture.
    pub fn daemon(&self, name: &str, config: &str) -> Daemon {
        Daemon::start_named(self.dir.path(), name, config)
    }

    /// Outbox files of a run (one per recipient, overwritten on a resend).
    pub fn outbox_files(&self, run_id: &str) -> Vec<PathBuf> {
        let prefix = outbox_stem(run_id);
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.outbox())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && !n.starts_with('.'))
            })
            .collect();
        files.sort();
        files
    }
}

/// The outbox file stem of a run's messages: `{run_id}/` percent-encoded.
fn outbox_stem(run_id: &str) -> String {
    let mut out = String::new();
    for byte in format!("{run_id}/").bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'.' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A Redis store client of the test's own, on its own runtime.
pub struct Probe {
    runtime: tokio::runtime::Runtime,
    store: RedisStore,
}

impl Probe {
    fn new(url: &str) -> Probe {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = runtime
            .block_on(RedisStore::connect(RedisSettings {
                url: url.to_owned(),
                key_prefix: PREFIX.to_owned(),
            }))
            .unwrap();
        Probe { runtime, store }
    }

    /// Runs a future on the probe's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The store.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    /// A run, if it exists (`None` also while Redis is down).
    pub fn run(&self, id: &str) -> Option<Run> {
        let id: RunId = id.parse().unwrap();
        self.block_on(self.store.run(&id)).ok().flatten()
    }

    /// Every run of a delivery (every run when `None`), oldest first.
    pub fn runs(&self, delivery_id: Option<&str>) -> Vec<Run> {
        let filter = RunFilter {
            state: None,
            delivery_id: delivery_id.map(str::to_owned),
        };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .block_on(self.store.list_runs(&filter, cursor.as_deref(), 500))
                .unwrap();
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        all.sort_by_key(|r| r.scheduled_for);
        all
    }

    /// The definition snapshot of a run.
    pub fn definition(&self, id: &RunId) -> String {
        self.block_on(self.store.definition(id)).unwrap().unwrap()
    }
}

/// Polls `check` every 20 ms until it holds or `within` passes; returns
/// how long it took, or `None` on timeout.
pub fn wait_for(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET url` on the probe's runtime: status and body (`None` when nothing answers).
pub fn get(probe: &Probe, url: &str) -> Option<(u16, String)> {
    probe.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let response = client.get(url).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    })
}

/// `POST url` with a JSON `body` and a bearer `token`, on the probe's
/// runtime: status and body (`None` when nothing answers).
pub fn post_json(probe: &Probe, url: &str, token: &str, body: &str) -> Option<(u16, String)> {
    probe.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let response = client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    })
}

/// The value of an unlabelled metric on a daemon's `/metrics`.
pub fn metric(probe: &Probe, daemon: &Daemon, name: &str) -> Option<f64> {
    let (_, body) = get(probe, &format!("{}/metrics", daemon.url()))?;
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// How many times `needle` appears in the logs of files `dir/{names}.log`.
pub fn log_count(dir: &Path, names: &[&str], needle: &str) -> usize {
    names
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.join(format!("{n}.log")))
                .unwrap_or_default()
                .matches(needle)
                .count()
        })
        .sum()
}

/// An RFC 3339 instant `secs` seconds from now, on a whole second.
pub fn in_seconds(secs: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    (chrono::Utc::now() + TimeDelta::seconds(secs))
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap()
}

/// An email delivery of `n` recipients named `{name}-r{j}@test.example`.
pub fn email_delivery(name: &str, n: usize, schedule: &str) -> String {
    let mut yaml = String::from("channel: email\naudience:\n  recipients:\n");
    for j in 0..n {
        yaml.push_str(&format!(
            "    - {{ id: r{j}, email: \"{name}-r{j}@test.example\" }}\n"
        ));
    }
    yaml.push_str(
        "content:\n  from: \"Shop <news@shop.example>\"\n  subject: \"Hello\"\n  text: \"Hi {{ recipient_id }}\"\n",
    );
    yaml.push_str("tracking: { opens: false, clicks: false }\nschedule:\n");
    yaml.push_str(schedule);
    yaml
}
