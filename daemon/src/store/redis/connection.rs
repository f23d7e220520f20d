//! How the store reaches Redis: one server, a Redis Cluster, or the master
//! a set of Sentinels names. [`RedisConn`] hides which, so every store
//! operation runs unchanged on each topology.
//!
//! - One server: the crate's `ConnectionManager` (reconnects by itself).
//! - Cluster: the crate's async cluster client, created on first use so a
//!   cluster that is down at start is retried like a single server. A
//!   pipeline of reads spanning several slots (listing runs, history
//!   pages) is split per slot, since the cluster client refuses one
//!   pipeline across slots; transactions are never split.
//! - Sentinel: a multiplexed connection to the master Sentinel names,
//!   dropped when it fails or answers READONLY (a demoted master), so the
//!   next command asks Sentinel again and follows the promoted replica.

use super::TIMEOUT;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Arg, AsyncConnectionConfig, Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, Value,
};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Where the Redis store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One Redis, or a managed service: `redis://host:port/db`, `rediss://` for TLS.
    Single(String),
    /// A Redis Cluster, found through any of these seed nodes (`host:port` or URLs).
    Cluster(Vec<String>),
    /// The master `master_name` that these Sentinels (`host:port` or URLs) name.
    Sentinel {
        /// Sentinel addresses.
        sentinels: Vec<String>,
        /// The name the Sentinels monitor the master under.
        master_name: String,
    },
}

/// A cheap-to-clone connection to whichever topology is configured.
#[derive(Clone)]
pub(super) enum RedisConn {
    /// One server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(Arc<LazyCluster>),
    /// A Sentinel-managed master.
    Sentinel(Arc<SentinelMaster>),
}

impl RedisConn {
    /// Whether keys of different slots live on different servers, so one
    /// script may only reach the keys of one slot.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

/// What the change listener subscribes through.
pub(super) enum Subscriber {
    /// The one server.
    Single(Box<Client>),
    /// The seed nodes, tried in turn: a classic PUBLISH reaches every node
    /// of a cluster, so any one of them hears every change.
    Cluster(Vec<Client>, usize),
    /// The current master.
    Sentinel(Arc<SentinelMaster>),
}

/// Opens `topology` lazily: nothing is contacted until the first command.
pub(super) fn open(topology: &RedisTopology) -> Result<(RedisConn, Subscriber), String> {
    match topology {
        RedisTopology::Single(url) => {
            let client = Client::open(url.as_str()).map_err(|e| {
                format!(
                    "`store.url` = `{}` is not a Redis URL ({e}); expected `redis://host:port/db` or `rediss://...`",
                    super::redact(url)
                )
            })?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(std::time::Duration::from_millis(500));
            let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
                .map_err(|e| format!("redis: {e}"))?;
            Ok((
                RedisConn::Single(conn),
                Subscriber::Single(Box::new(client)),
            ))
        }
        RedisTopology::Cluster(nodes) => {
            let infos = addresses("store.cluster_nodes", nodes)?;
            let seeds = infos
                .iter()
                .map(|info| Client::open(info.clone()))
                .collect::<RedisResult<Vec<_>>>()
                .map_err(|e| format!("`store.cluster_nodes`: {e}"))?;
            let client = ClusterClient::builder(infos)
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT)
                .retries(3)
                .build()
                .map_err(|e| format!("`store.cluster_nodes`: {e}"))?;
            let cluster = Arc::new(LazyCluster {
                client,
                conn: OnceCell::new(),
            });
            Ok((RedisConn::Cluster(cluster), Subscriber::Cluster(seeds, 0)))
        }
        RedisTopology::Sentinel {
            sentinels,
            master_name,
        } => {
            let infos = addresses("store.sentinels", sentinels)?;
            // The master is reached like the Sentinels: same TLS choice and
            // credentials (database, user, password) as the first address.
            let first = &infos[0];
            let mut node = SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(first.redis_settings().clone());
            if matches!(first.addr(), redis::ConnectionAddr::TcpTls { .. }) {
                node = node.set_tls_mode(redis::TlsMode::Secure);
            }
            let client =
                SentinelClient::build(infos, master_name, Some(node), SentinelServerType::Master)
                    .map_err(|e| format!("`store.sentinels`: {e}"))?;
            let master = Arc::new(SentinelMaster {
                sentinel: tokio::sync::Mutex::new(client),
                current: Mutex::new(None),
            });
            Ok((
                RedisConn::Sentinel(master.clone()),
                Subscriber::Sentinel(master),
            ))
        }
    }
}

/// Parses `host:port` or `redis[s]://` addresses of config key `key`.
fn addresses(key: &str, list: &[String]) -> Result<Vec<redis::ConnectionInfo>, String> {
    if list.is_empty() {
        return Err(format!("`{key}` is empty: list at least one `host:port`"));
    }
    list.iter()
        .map(|address| {
            let url = if address.contains("://") {
                address.clone()
            } else {
                format!("redis://{address}")
            };
            url.as_str().into_connection_info().map_err(|e| {
                format!(
                    "`{key}` has `{}`, which is not `host:port` nor a Redis URL ({e})",
                    super::redact(address)
                )
            })
        })
        .collect()
}

impl Subscriber {
    /// A client to subscribe with now; a later call after a failure may
    /// give another node (next seed, newly promoted master).
    pub(super) async fn client(&mut self) -> RedisResult<Client> {
        match self {
            Subscriber::Single(client) => Ok((**client).clone()),
            Subscriber::Cluster(seeds, next) => {
                let client = seeds[*next % seeds.len()].clone();
                *next = next.wrapping_add(1);
                Ok(client)
            }
            Subscriber::Sentinel(master) => master.sentinel.lock().await.async_get_client().await,
        }
    }
}

/// A cluster connection made on first use (and retried until it is made).
pub(super) struct LazyCluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

impl LazyCluster {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        self.conn
            .get_or_try_init(|| async {
                tokio::time::timeout(TIMEOUT * 2, self.client.get_async_connection())
                    .await
                    .map_err(|_| timeout_error())?
            })
            .await
            .cloned()
    }
}

/// The master Sentinel names, and the connection to it while it works.
pub(super) struct SentinelMaster {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<MultiplexedConnection>>,
}

impl SentinelMaster {
    /// The connection to the current master, asking Sentinel when there is none.
    async fn get(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let mut sentinel = self.sentinel.lock().await;
        // Another task may have connected while this one waited.
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn = tokio::time::timeout(TIMEOUT * 2, async {
            sentinel
                .async_get_client()
                .await?
                .get_multiplexed_async_connection_with_config(&config)
                .await
        })
        .await
        .map_err(|_| timeout_error())??;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drops the cached connection when `e` says the master is gone or
    /// demoted, so the next command asks Sentinel for the new one.
    fn check<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && needs_new_master(e)
        {
            tracing::info!(
                error = %e,
                "Lost the Redis master; asking Sentinel for the current one on the next command."
            );
            *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        result
    }
}

/// Whether the Sentinel connection must be replaced after `e`.
fn needs_new_master(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind as S};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(S::ReadOnly | S::MasterDown | S::BusyLoading)
        )
}

fn timeout_error() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connecting to Redis timed out",
    ))
}

impl ConnectionLike for RedisConn {
    // One Redis server hands its own (boxed) future straight through: an
    // async block over all three kinds is as big as the largest (the
    // Sentinel's, 3.5 KB), and every command paid for boxing and copying it.
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(cluster) => {
                Box::pin(async move { cluster.get().await?.req_packed_command(cmd).await })
            }
            RedisConn::Sentinel(master) => Box::pin(async move {
                let result = match master.get().await {
                    Ok(mut conn) => conn.req_packed_command(cmd).await,
                    Err(e) => Err(e),
                };
                master.check(result)
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(cluster) => Box::pin(async move {
                let conn = cluster.get().await?;
                cluster_pipeline(conn, pipeline, offset, count).await
            }),
            RedisConn::Sentinel(master) => Box::pin(async move {
                let result = match master.get().await {
                    Ok(mut conn) => conn.req_packed_commands(pipeline, offset, count).await,
                    Err(e) => Err(e),
                };
                master.check(result)
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(_) => 0,
            RedisConn::Sentinel(master) => master.cached().map_or(0, |c| c.get_db()),
        }
    }
}

/// Runs a pipeline on the cluster: as one when its commands share a slot
/// (or it is a transaction), else as one sub-pipeline per slot, concurrently,
/// with the replies put back in the pipeline's order.
async fn cluster_pipeline(
    mut conn: ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let slots: Vec<Option<Slot>> = pipeline.cmd_iter().map(slot_of).collect();
    let first = slots.iter().flatten().next().copied();
    let one_slot = slots.iter().flatten().all(|s| Some(*s) == first);
    if pipeline.is_transaction() || one_slot {
        return conn.req_packed_commands(pipeline, offset, count).await;
    }
    // Keyless commands ride with the first group.
    let mut groups: Vec<(Option<Slot>, Vec<usize>, Pipeline)> = Vec::new();
    for (index, (cmd, slot)) in pipeline.cmd_iter().zip(&slots).enumerate() {
        let slot = slot.or(first);
        let position = match groups.iter().position(|(s, _, _)| *s == slot) {
            Some(position) => position,
            None => {
                groups.push((slot, Vec::new(), redis::pipe()));
                groups.len() - 1
            }
        };
        let (_, indexes, sub) = &mut groups[position];
        indexes.push(index);
        sub.add_command(cmd.clone());
    }
    let replies = futures_util::future::try_join_all(groups.iter().map(|(_, _, sub)| {
        let mut conn = conn.clone();
        async move { conn.req_packed_commands(sub, 0, sub.len()).await }
    }))
    .await?;
    let mut ordered = vec![Value::Nil; slots.len()];
    for ((_, indexes, _), values) in groups.iter().zip(replies) {
        for (index, value) in indexes.iter().zip(values) {
            ordered[*index] = value;
        }
    }
    Ok(ordered)
}

/// The slot of a command's first key, if it has one: the first argument,
/// or for a script (`EVALSHA sha numkeys key ...`) the first of its keys.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    let mut args = cmd.args_iter();
    let name = match args.next()? {
        Arg::Simple(name) => name.to_ascii_uppercase(),
        _ => return None,
    };
    if matches!(name.as_slice(), b"ECHO" | b"PING") {
        return None;
    }
    if matches!(
        name.as_slice(),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO"
    ) {
        args.next()?;
        let keys = match args.next()? {
            Arg::Simple(n) => std::str::from_utf8(n).ok()?.parse::<usize>().ok()?,
            _ => return None,
        };
        if keys == 0 {
            return None;
        }
    }
    match args.next()? {
        Arg::Simple(key) => Some(Slot::for_key(key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_tag_share_a_slot_and_keyless_commands_have_none() {
        let mut a = redis::cmd("HGET");
        a.arg("herald:{herald:x}:run").arg("state");
        let mut b = redis::cmd("HGETALL");
        b.arg("herald:{herald:x}:outcomes");
        let mut c = redis::cmd("HGET");
        c.arg("herald:{herald:y}:run").arg("state");
        let mut echo = redis::cmd("ECHO");
        echo.arg("");
        assert_eq!(slot_of(&a), slot_of(&b));
        assert_ne!(slot_of(&a), slot_of(&c));
        assert_eq!(slot_of(&echo), None);
        // A script's slot is its first key's, not its sha's.
        let mut script = redis::cmd("EVALSHA");
        script
            .arg("0123abcd")
            .arg(1)
            .arg("herald:{herald:y}:chunks")
            .arg("arg");
        assert_eq!(slot_of(&script), slot_of(&c));
        let mut keyless = redis::cmd("EVALSHA");
        keyless.arg("0123abcd").arg(0).arg("arg");
        assert_eq!(slot_of(&keyless), None);
    }

    #[test]
    fn addresses_accept_host_port_and_urls_and_name_the_key_on_error() {
        let parsed = addresses(
            "store.sentinels",
            &["127.0.0.1:26379".into(), "rediss://h:6380/0".into()],
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert!(matches!(
            parsed[1].addr(),
            redis::ConnectionAddr::TcpTls { .. }
        ));
        let error = addresses("store.cluster_nodes", &["http://nope".into()]).unwrap_err();
        assert!(error.contains("store.cluster_nodes"), "{error}");
        let error = addresses("store.sentinels", &[]).unwrap_err();
        assert!(error.contains("`store.sentinels` is empty"), "{error}");
    }
}
