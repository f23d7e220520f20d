//! Redis past one server, on loopback: a 3-master Redis Cluster and a
//! master with one replica watched by three Sentinels. Every process is
//! killed and every folder removed on drop.

use crate::RedisServer;
use crate::redis_server::{free_port, ping};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cluster or a Sentinel set may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `redis-cli -p <port> <args>` and returns what it printed.
///
/// # Panics
///
/// When `redis-cli` is missing.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `redis-cli` ({e}); install it (Debian: `apt-get install redis-tools`)"
            )
        });
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `within`.
fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// A Redis Cluster of three masters (no replicas) on free loopback ports,
/// each node persisting with `appendonly yes` into its own folder.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// The cluster [`RedisCluster::shared`] hands out, killed when the process exits.
static SHARED: Mutex<Option<Arc<RedisCluster>>> = Mutex::new(None);

impl RedisCluster {
    /// Starts three nodes, joins them with `redis-cli --cluster create` and
    /// waits until every node reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When `redis-server` or `redis-cli` is missing, or the cluster does
    /// not form within 30 s.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let cluster = RedisCluster { nodes };
        let addresses = cluster.nodes();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-cli` ({e}); install it (Debian: `apt-get install redis-tools`)")
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        wait_until(FORM_TIMEOUT, "cluster_state:ok on every node", || {
            cluster
                .nodes
                .iter()
                .all(|n| redis_cli(n.port(), &["cluster", "info"]).contains("cluster_state:ok"))
        });
        cluster
    }

    /// One cluster for the whole test process, started on first use and
    /// killed when the process exits; tests keep apart by key prefix.
    pub fn shared() -> Arc<RedisCluster> {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cluster) = shared.as_ref() {
            return cluster.clone();
        }
        let cluster = Arc::new(RedisCluster::start());
        *shared = Some(cluster.clone());
        extern "C" fn stop_shared() {
            if let Ok(mut shared) = SHARED.lock() {
                shared.take();
            }
        }
        // SAFETY: registers a plain function; it only drops the cluster.
        unsafe { libc::atexit(stop_shared) };
        cluster
    }

    /// `127.0.0.1:<port>` of every node, for `store.cluster_nodes`.
    pub fn nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect()
    }

    /// The node servers, to stop, kill or freeze one.
    pub fn servers(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Keys held by each node (`DBSIZE`), to show that work spread out.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| redis_cli(n.port(), &["dbsize"]).trim().parse().unwrap_or(0))
            .collect()
    }
}

/// The master name [`RedisSentinelSet`] monitors.
pub const MASTER_NAME: &str = "herald";

/// One master, one replica and three Sentinels (quorum 2, a master is
/// down after 1 s of silence), on free loopback ports.
pub struct RedisSentinelSet {
    master: RedisServer,
    replica: RedisServer,
    sentinels: Vec<Sentinel>,
}

/// A `redis-server --sentinel` process, killed on drop.
struct Sentinel {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisSentinelSet {
    /// Starts the master, the replica (waiting until it is in sync) and the
    /// Sentinels (waiting until each sees the replica and the two others).
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing or the set does not form within 30 s.
    pub fn start() -> RedisSentinelSet {
        let master = RedisServer::start();
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
        wait_until(FORM_TIMEOUT, "the replica's link to the master", || {
            redis_cli(replica.port(), &["info", "replication"]).contains("master_link_status:up")
        });
        let sentinels: Vec<Sentinel> = (0..3).map(|_| spawn_sentinel(master.port())).collect();
        let set = RedisSentinelSet {
            master,
            replica,
            sentinels,
        };
        wait_until(FORM_TIMEOUT, "Sentinels that see each other", || {
            set.sentinels.iter().all(|s| {
                let info = redis_cli(s.port, &["sentinel", "master", MASTER_NAME]);
                let field = |name: &str| {
                    let mut lines = info.lines();
                    lines.find(|l| l.trim() == name)?;
                    lines.next().map(|v| v.trim().to_owned())
                };
                field("num-slaves").as_deref() == Some("1")
                    && field("num-other-sentinels").as_deref() == Some("2")
            })
        });
        set
    }

    /// `127.0.0.1:<port>` of every Sentinel, for `store.sentinels`.
    pub fn sentinels(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The port of the master the set started with.
    pub fn master_port(&self) -> u16 {
        self.master.port()
    }

    /// The port of the replica the set started with.
    pub fn replica_port(&self) -> u16 {
        self.replica.port()
    }

    /// The master's port according to the first Sentinel that answers.
    pub fn current_master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let reply = redis_cli(
                s.port,
                &["sentinel", "get-master-addr-by-name", MASTER_NAME],
            );
            reply.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// Kills the master (SIGKILL), like a lost host.
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// Asks Sentinel for a graceful failover (`SENTINEL FAILOVER`): the
    /// master stays up but is demoted to a replica of the promoted one.
    pub fn failover(&self) -> Duration {
        let reply = redis_cli(
            self.sentinels[0].port,
            &["sentinel", "failover", MASTER_NAME],
        );
        assert_eq!(reply.trim(), "OK", "SENTINEL FAILOVER: {reply}");
        self.wait_promotion()
    }

    /// Waits until the Sentinels name the replica as master and it says so
    /// itself; returns how long that took.
    ///
    /// # Panics
    ///
    /// When no promotion happens within 30 s.
    pub fn wait_promotion(&self) -> Duration {
        wait_until(FORM_TIMEOUT, "the promotion of the replica", || {
            self.current_master_port() == Some(self.replica.port())
                && redis_cli(self.replica.port(), &["role"]).starts_with("master")
        })
    }
}

/// Starts a Sentinel watching the master on `master_port`.
fn spawn_sentinel(master_port: u16) -> Sentinel {
    let dir = tempfile::Builder::new()
        .prefix("herald-sentinel-")
        .tempdir()
        .expect("cannot create a temporary folder for a Sentinel");
    let port = free_port();
    // Sentinel rewrites its config file, so each has its own.
    let config = dir.path().join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = dir.path().display()
        ),
    )
    .expect("cannot write a Sentinel config");
    let child = Command::new("redis-server")
        .arg(&config)
        .args(["--sentinel", "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start `redis-server --sentinel` ({e}); install redis-server")
        });
    let sentinel = Sentinel {
        child,
        port,
        _dir: dir,
    };
    wait_until(Duration::from_secs(10), "a Sentinel answering PING", || {
        ping(port)
    });
    sentinel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_forms_and_spreads_tagged_keys_over_its_masters() {
        let cluster = RedisCluster::start();
        let nodes = cluster.nodes();
        assert_eq!(nodes.len(), 3);
        let port: u16 = nodes[0].rsplit(':').next().unwrap().parse().unwrap();
        for i in 0..30 {
            // Right after forming, a node may still answer CLUSTERDOWN for a
            // moment while the slot map spreads: retry for a while.
            let key = format!("{{t{i}}}:k");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut out = redis_cli(port, &["-c", "set", &key, "v"]);
            while out.trim() != "OK" && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
                out = redis_cli(port, &["-c", "set", &key, "v"]);
            }
            assert_eq!(out.trim(), "OK", "{out}");
        }
        let per_node = cluster.keys_per_node();
        assert_eq!(per_node.iter().sum::<u64>(), 30);
        assert!(per_node.iter().all(|n| *n > 0), "{per_node:?}");
    }

    #[test]
    fn sentinels_promote_the_replica_when_the_master_dies() {
        let mut set = RedisSentinelSet::start();
        assert_eq!(set.current_master_port(), Some(set.master_port()));
        set.kill_master();
        let took = set.wait_promotion();
        println!("promotion took {took:?}");
        assert_eq!(set.current_master_port(), Some(set.replica_port()));
    }
}
