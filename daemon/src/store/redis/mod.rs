//! The Redis backend: several daemon instances share one Redis (a managed
//! one, a Redis Cluster, or a Sentinel-watched master) and split the work;
//! `connection` hides which topology it is.
//!
//! Every multi-key state change is one Lua script under `lua/`, touching
//! keys of one hash slot (`README.md` in this folder lists every key).
//! Because the agenda is global while a run's keys are per run, a run
//! script returns the run's new agenda instant with a sequence number and
//! the store applies it right after with `agenda_apply.lua`; operations
//! that may make a run due sooner first lower its agenda entry to `now`,
//! so a crash between the two leaves an early entry (the engine re-checks
//! the run and the next operation corrects it), never a missing one.

mod batcher;
mod codec;
mod connection;
mod creation;
mod finishing;
mod gather;
mod indexer;
mod keys;
mod lists;
mod outcomes;
mod recording;
mod retention;
mod runs;
mod scripts;
mod sending;
mod store_impl;
mod suppressions;
mod take;
#[cfg(test)]
mod tests;

use crate::store::{StoreError, StoreResult};
use batcher::Batcher;
pub use connection::RedisTopology;
use connection::{RedisConn, Subscriber};
use gather::Gather;
use keys::GlobalKeys;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long connecting and each command may take before the store reports
/// itself unavailable (the engine retries with backoff).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where the Redis store lives (filled from `store.*` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://host:port/db`, or `rediss://` for TLS.
    pub url: String,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
}

/// The Redis implementation of [`Store`](crate::store::Store). Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
    prefix: String,
    global: Arc<GlobalKeys>,
    /// Agenda instants and announcements, gathered across runs.
    gather: Gather,
    /// Run scripts gathered across runs (one server only).
    batched: Option<Batched>,
    /// Small runs' suppression lookups, gathered (the lists are global
    /// keys, one slot: on a cluster too).
    suppressed: Batcher<Vec<String>, Vec<Option<crate::store::SuppressionList>>>,
    /// Writes queued outcomes into their recipients' history.
    indexer: Arc<indexer::Indexer>,
    changes: Arc<Notify>,
    _listener: Arc<Listener>,
    /// Tests keep their private redis-server alive as long as the store.
    #[cfg(test)]
    guard: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl RedisStore {
    /// Connects lazily (a Redis that is down at start is retried on every
    /// call, so the daemon starts and reports not-ready) and starts the
    /// listener that wakes the scheduler on other instances' changes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Other`] for a malformed URL or an empty prefix.
    pub async fn connect(cfg: RedisSettings) -> StoreResult<RedisStore> {
        RedisStore::connect_topology(RedisTopology::Single(cfg.url), cfg.key_prefix).await
    }

    /// Like [`connect`](Self::connect), on any topology: one server, a
    /// Redis Cluster or a Sentinel-managed master.
    ///
    /// # Errors
    ///
    /// [`StoreError::Other`] for a malformed address or an empty prefix.
    pub async fn connect_topology(
        topology: RedisTopology,
        key_prefix: String,
    ) -> StoreResult<RedisStore> {
        if key_prefix.is_empty() || key_prefix.contains(['{', '}']) {
            return Err(StoreError::Other(format!(
                "`store.key_prefix` = `{key_prefix}` is not usable: give a non-empty prefix without braces, such as `herald`"
            )));
        }
        let (conn, subscriber) = connection::open(&topology).map_err(StoreError::Other)?;
        let global = Arc::new(GlobalKeys::new(&key_prefix));
        let changes = Arc::new(Notify::new());
        let task = tokio::spawn(listen(subscriber, global.changes.clone(), changes.clone()));
        let gather = Gather::start(conn.clone(), global.clone());
        // A cluster call reaches one slot, and each run has its own.
        let batched = (!conn.is_cluster()).then(|| Batched::start(&conn, &key_prefix, &global));
        let suppressed = suppressions::looker(conn.clone(), global.clone());
        let indexer = Arc::new(indexer::Indexer::start(
            conn.clone(),
            key_prefix.clone(),
            global.clone(),
        ));
        Ok(RedisStore {
            conn,
            prefix: key_prefix,
            global,
            gather,
            batched,
            suppressed,
            indexer,
            changes,
            _listener: Arc::new(Listener(task)),
            #[cfg(test)]
            guard: None,
        })
    }

    /// Whether Redis persists with an append-only file. `true` when CONFIG
    /// is not permitted (managed services), so only a known "no" warns.
    pub async fn appendonly_enabled(&self) -> StoreResult<bool> {
        Ok(self
            .config_get("appendonly")
            .await?
            .is_none_or(|v| v != "no"))
    }

    /// Whether Redis keeps every key when full (`maxmemory-policy
    /// noeviction`); an evicting policy would drop runs or outcomes. `true`
    /// when CONFIG is not permitted, so only a known other policy warns.
    pub async fn noeviction(&self) -> StoreResult<bool> {
        Ok(self
            .config_get("maxmemory-policy")
            .await?
            .is_none_or(|v| v == "noeviction"))
    }

    /// Loads every script into Redis's script cache (on every master of a
    /// cluster), so the first calls after a start find them there instead
    /// of each meeting `NOSCRIPT` and loading them again.
    pub async fn load_scripts(&self) -> StoreResult<()> {
        let loads = scripts::all().map(|script| {
            let mut conn = self.conn();
            async move { script.load_async(&mut conn).await }
        });
        futures_util::future::try_join_all(loads)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// `CONFIG GET name` (on one node of a cluster), or `None` when the
    /// server does not permit CONFIG.
    async fn config_get(&self, name: &str) -> StoreResult<Option<String>> {
        let reply: Result<Vec<String>, redis::RedisError> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut self.conn())
            .await;
        match reply {
            Ok(pair) => Ok(pair.into_iter().nth(1)),
            Err(e) if is_unavailable(&e) => Err(unavailable(e)),
            Err(_) => Ok(None),
        }
    }

    /// A handle on the shared connection.
    fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Tells this instance's scheduler and the other instances' that a run
    /// may be due sooner (the others soon after: see `gather`).
    fn announce(&self) {
        self.changes.notify_waiters();
        self.gather.announce();
    }
}

/// The run scripts that many runs call at once, each gathered into calls
/// of many runs (`batcher.rs`): on one server only.
#[derive(Clone)]
struct Batched {
    /// Runs created (`create_run.lua`).
    create: Batcher<creation::Creating, redis::Value>,
    /// Preparations ended (`finish_and_claim.lua`).
    finish: Batcher<finishing::Finishing, redis::Value>,
    /// Chunks' last batches recorded (`record_last.lua`).
    record_last: Batcher<recording::LastBatch, redis::Value>,
}

impl Batched {
    fn start(conn: &RedisConn, prefix: &str, global: &Arc<GlobalKeys>) -> Batched {
        let (conn, prefix, global) = (conn.clone(), prefix.to_owned(), global.clone());
        Batched {
            create: creation::creator(conn.clone(), prefix.clone(), global.clone()),
            finish: finishing::finisher(conn.clone(), prefix.clone(), global.clone()),
            record_last: recording::recorder(conn, prefix, global),
        }
    }
}

/// Ends the pub/sub listener with the last handle on the store.
struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes the local scheduler on every message of the changes channel, and
/// after every (re)subscription since messages may have been missed.
async fn listen(mut subscriber: Subscriber, channel: String, changes: Arc<Notify>) {
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let client = tokio::time::timeout(TIMEOUT * 2, subscriber.client())
                .await
                .map_err(|_| ())?
                .map_err(|_| ())?;
            let mut pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub())
                .await
                .map_err(|_| ())?
                .map_err(|_| ())?;
            pubsub.subscribe(&channel).await.map_err(|_| ())?;
            Ok::<_, ()>(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                changes.notify_waiters();
                let mut messages = pubsub.into_on_message();
                while messages.next().await.is_some() {
                    changes.notify_waiters();
                }
                tracing::debug!("Redis change listener lost its connection; reconnecting.");
            }
            Err(()) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Whether an error means Redis cannot be reached right now.
fn is_unavailable(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind as S};
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown)
                | ErrorKind::Server(S::ReadOnly)
                | ErrorKind::ClusterConnectionNotFound
        )
        || refused_for_want_of_replicas(e)
}

/// Whether `min-replicas-to-write` refused a write (alone or in a
/// pipeline) because too few replicas keep up: an outage to wait out.
fn refused_for_want_of_replicas(e: &redis::RedisError) -> bool {
    e.clone()
        .into_server_errors()
        .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == "NOREPLICAS"))
}

/// A Redis error as a store error.
fn store_err(e: redis::RedisError) -> StoreError {
    if is_unavailable(&e) {
        unavailable(e)
    } else {
        StoreError::Other(format!("redis: {e}"))
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}
