//! A test bed: one private Redis (or any Redis topology, see
//! [`Cluster::on`]), a deliveries folder, a sink folder the `count` plugin
//! logs accepted message ids into, and daemons started on it.

use herald::runs::{RunId, RunState};
use herald::store::Store;
use herald::store::redis::{RedisStore, RedisTopology};
use herald_test_support::{Daemon, RedisServer};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Redis, folders and a store handle shared by the daemons of one test.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// The private Redis of [`Cluster::new`]; `None` on another topology.
    pub redis: Option<RedisServer>,
    pub rt: tokio::runtime::Runtime,
    pub store: RedisStore,
    /// The daemons' `store:` block, as indented YAML lines.
    store_block: String,
}

/// What the sink and the store say about one run.
#[derive(Debug, Default)]
pub struct Tally {
    /// Recipients per recorded outcome (`delivered`, `cancelled`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Recipients with no outcome at all.
    pub lost: u64,
    /// Messages the sink received, all recipients together.
    pub received: u64,
    /// Messages received beyond the first for the same recipient.
    pub duplicates: u64,
}

impl Cluster {
    /// A fresh Redis and empty `deliveries/` and `sink/` folders.
    pub fn new() -> Cluster {
        let redis = RedisServer::start();
        let mut cluster = Cluster::on(RedisTopology::Single(redis.url()));
        cluster.redis = Some(redis);
        cluster
    }

    /// Empty folders, with daemons and the test's store on `topology`
    /// (which the caller keeps running).
    pub fn on(topology: RedisTopology) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("herald-sending-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("deliveries")).expect("deliveries folder");
        std::fs::create_dir_all(dir.path().join("sink")).expect("sink folder");
        let list = |items: &[String]| format!("[{}]", items.join(", "));
        let address = match &topology {
            RedisTopology::Single(url) => format!("url: {url}"),
            RedisTopology::Cluster(nodes) => format!("cluster_nodes: {}", list(nodes)),
            RedisTopology::Sentinel {
                sentinels,
                master_name,
            } => format!(
                "sentinels: {}\n  master_name: {master_name}",
                list(sentinels)
            ),
        };
        let store_block = format!("  kind: redis\n  {address}\n  key_prefix: herald");
        let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let store = rt
            .block_on(RedisStore::connect_topology(topology, "herald".into()))
            .expect("the test connects to its Redis");
        Cluster {
            dir,
            redis: None,
            rt,
            store,
            store_block,
        }
    }

    /// The daemons' `store:` block, as indented YAML lines.
    pub fn store_block(&self) -> &str {
        &self.store_block
    }

    /// The folder the `count` plugin logs into.
    pub fn sink(&self) -> PathBuf {
        self.dir.path().join("sink")
    }

    /// Writes a CSV audience of `n` rows (`id,address,name`), where
    /// `address(i)` picks what the `count` plugin does with row `i`.
    pub fn audience(&self, name: &str, n: usize, address: impl Fn(usize) -> String) {
        let mut csv = String::from("id,address,name\n");
        for i in 0..n {
            csv.push_str(&format!("r{i},{},Name {i}\n", address(i)));
        }
        std::fs::write(self.dir.path().join("deliveries").join(name), csv)
            .expect("the audience is written");
    }

    /// Writes a one-shot delivery on the `count` channel reading `audience`.
    pub fn delivery(&self, id: &str, audience: &str, extra: &str) {
        let yaml = format!(
            "id: {id}\nchannel: count\naudience:\n  file: {audience}\ncontent:\n  body: \"Hello {{{{ name }}}}\"\n{extra}"
        );
        std::fs::write(
            self.dir
                .path()
                .join("deliveries")
                .join(format!("{id}.yaml")),
            yaml,
        )
        .expect("the delivery is written");
    }

    /// Starts daemon `name` with the `count` plugin configured by
    /// `plugin` (JSON object members, `dir` added) and `sending` keys.
    pub fn start(&self, name: &str, plugin: &str, sending: &str) -> Daemon {
        let sink = self.sink();
        let config = format!(
            r#"deliveries_dir: deliveries
audience_roots: []
store:
{store}
http:
  listen: "{{listen}}"
plugins:
  - path: {plugin_path}
    config: {{ "dir": "{sink}", "address_column": "address", {plugin} }}
sending:
{sending}
kpi:
  flush_interval: 1s
users: []
"#,
            store = self.store_block,
            plugin_path = Daemon::plugin("herald_test_count").display(),
            sink = sink.display(),
        );
        Daemon::start_named(self.dir.path(), name, &config)
    }

    /// The run's state, if it exists.
    pub fn state(&self, run: &RunId) -> Option<RunState> {
        self.rt
            .block_on(self.store.run(run))
            .expect("the store answers")
            .map(|r| r.state)
    }

    /// Waits until the run is in one of `states`; panics after `within`.
    /// A store that does not answer for a moment (a Sentinel failover in
    /// progress) is waited out like a state not reached yet.
    pub fn wait_state(&self, run: &RunId, states: &[RunState], within: Duration) -> RunState {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(run)) = self.rt.block_on(self.store.run(run))
                && states.contains(&run.state)
            {
                return run.state;
            }
            assert!(
                Instant::now() < deadline,
                "run {run} is {:?} after {within:?}, expected one of {states:?}",
                self.state(run)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Messages received so far by the sink, per message id.
    pub fn received(&self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for entry in std::fs::read_dir(self.sink()).expect("the sink folder is readable") {
            let text = std::fs::read_to_string(entry.expect("a sink entry").path())
                .expect("a sink log is readable");
            for line in text.lines() {
                *counts.entry(line.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// How many messages the sink has received, duplicates included.
    pub fn received_total(&self) -> u64 {
        self.received().values().sum()
    }

    /// Waits until the sink has received at least `n` messages.
    pub fn wait_received(&self, n: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.received_total() < n {
            assert!(
                Instant::now() < deadline,
                "the sink received {} messages after {within:?}, expected {n}",
                self.received_total()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads every recipient's outcome of `run` (ids `r0..r{n}`) and the
    /// sink's counts, and prints them.
    pub fn tally(&self, run: &RunId, n: usize) -> Tally {
        let received = self.received();
        let mut tally = Tally::default();
        self.rt.block_on(async {
            for i in 0..n {
                let id = format!("r{i}");
                match self
                    .store
                    .outcome(run, &id)
                    .await
                    .expect("the store answers")
                {
                    Some(o) => {
                        *tally
                            .outcomes
                            .entry(o.outcome.as_str().to_owned())
                            .or_insert(0) += 1
                    }
                    None => tally.lost += 1,
                }
            }
        });
        for (_, count) in received.iter().filter(|(m, _)| m.starts_with(run.as_str())) {
            tally.received += count;
            tally.duplicates += count.saturating_sub(1);
        }
        println!(
            "run {run}: {n} recipients, outcomes {:?}, lost {}, received {}, duplicates {}",
            tally.outcomes, tally.lost, tally.received, tally.duplicates
        );
        tally
    }

    /// Asserts that the run's counters equal a recount from its outcomes.
    pub fn assert_counters_match_recount(&self, run: &RunId) -> herald::store::Counters {
        let before = self
            .rt
            .block_on(self.store.run(run))
            .expect("the store answers")
            .expect("the run exists")
            .counters;
        let recount = self
            .rt
            .block_on(self.store.recount(run))
            .expect("the store recounts");
        println!("run {run}: counters {before:?}");
        assert_eq!(
            before, recount,
            "the counters drifted from the recorded outcomes"
        );
        recount
    }

    /// The daemon's log, for assertion messages.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The `sending` block most tests use: small batches and chunks, short lease.
pub const SENDING: &str = "  batch_size: 50\n  chunk_size: 500\n  lease: 3s\n  retries: 3\n  plugin_timeout: 5s\n  shutdown_grace: 10s";
