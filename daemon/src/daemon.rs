//! `herald run`: wires the store, the plugins, the deliveries folder, the
//! scheduler, the dispatcher and the HTTP listeners, then runs until told
//! to stop. Tests call [`run`] with their own control handles.

use crate::clock::Clock;
use crate::config::{self, Config, StoreKind};
use crate::definitions::live::{LiveFolder, RescanRequest};
use crate::definitions::{ChannelCatalog, ValidationContext};
use crate::dispatch::Dispatcher;
use crate::engine::{Engine, Settings, SoftThreshold, instance_owner};
use crate::ops::{self, Readiness, Watchdog};
use crate::plugin_host::{PluginHost, PluginSpec};
use crate::scheduler::Scheduler;
use crate::store::{SharedStore, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] crate::plugin_host::LoadError),
    /// The tracking links' key could not be had.
    #[error(transparent)]
    TrackingKey(#[from] crate::tracking::KeyError),
    /// The HTTP listener could not bind.
    #[error("cannot listen on {addr}: {source}; change `http.listen` or stop what holds the port")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// How the outside world steers a running daemon (signals in production).
pub struct Control {
    /// Cancelled to stop (SIGTERM, SIGINT).
    pub shutdown: CancellationToken,
    /// A message asks for a reload (SIGHUP).
    pub reload: mpsc::Receiver<()>,
    /// Where time comes from (fake in tests).
    pub clock: Clock,
}

/// Runs the daemon until `control.shutdown` is cancelled.
pub async fn run(loaded: config::Loaded, mut control: Control) -> Result<(), StartError> {
    let config = loaded.config.clone();
    let metrics = ops::metrics::install();
    let store = open_store(&config).await?;
    let tracking = Arc::new(crate::tracking::Tracking::from_config(&config, &store).await?);
    let plugins = Arc::new(PluginHost::load(
        &plugin_specs(&config),
        config.sending.plugin_timeout.get(),
    )?);

    let plugin_names: Vec<String> = plugins.health().into_iter().map(|p| p.name).collect();
    ops::metrics::register_zeroes(
        plugin_names.iter().map(String::as_str),
        plugins.channels().keys().map(String::as_str),
    );

    let mut folder = LiveFolder::new(validation_context(&config, &plugins));
    let readiness = Readiness::default();
    let folder_watch = folder.start_watch();
    tokio::task::block_in_place(|| folder.rescan());
    readiness.set_deliveries_loaded();

    let stopping = CancellationToken::new();
    let engine = Arc::new(Engine {
        store: store.clone(),
        clock: control.clock.clone(),
        plugins: plugins.clone(),
        settings: Settings::from_config(&config),
        owner: instance_owner(),
        deliveries: folder.deliveries(),
        wake: Arc::default(),
        stopping: stopping.clone(),
        tasks: Default::default(),
        soft_threshold: SoftThreshold::from_config(&config),
        webhook: crate::http::webhook::WebhookSlot::from_config(&config),
        tracking: Some(tracking.clone()),
    });
    let dispatcher = Arc::new(Dispatcher::new(engine.clone()));
    let scheduler = Scheduler::new(
        engine.clone(),
        dispatcher,
        readiness.clone(),
        Watchdog::from_env(),
    );

    let users = crate::http::auth::Users::new(&config.users);
    let state = crate::http::AppState {
        engine: engine.clone(),
        readiness: readiness.clone(),
        deliveries: folder.deliveries(),
        errors: folder.errors(),
        metrics,
        users: users.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.http.listen,
            source,
        })?;
    let public_routes = crate::tracking::public_routes(crate::tracking::routes::PublicState {
        tracking: tracking.clone(),
        store: store.clone(),
        clock: control.clock.clone(),
    });
    let public_listener = match config.http.public_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?,
        ),
        None => None,
    };
    info!(listen = %config.http.listen, public_listen = ?config.http.public_listen, owner = %engine.owner, "Herald is running.");

    let (rescan_tx, rescan_rx) = mpsc::channel(1);
    let watcher = tokio::spawn(folder.watch(folder_watch, rescan_rx, stopping.clone()));
    let scheduler = tokio::spawn(scheduler.run());
    let server_stop = stopping.clone();
    let (retention_tx, retention_rx) =
        watch::channel(crate::retention::Policy::from_config(&config.retention));
    let housekeeping = tokio::spawn(crate::retention::sweep::run(
        store.clone(),
        control.clock.clone(),
        retention_rx,
        stopping.clone(),
    ));
    let timers = tokio::spawn(crate::tracking::timers::run(
        tracking.clone(),
        store.clone(),
        config.kpi.flush_interval.get(),
        config.kpi.rates_interval.get(),
        stopping.clone(),
    ));
    // With a public listener the tracking routes are served there alone;
    // without one they join the API's router.
    let timeouts = crate::http::Timeouts::default();
    let (api_app, public_server) = match public_listener {
        Some(listener) => {
            let stop = stopping.clone();
            let server = tokio::spawn(crate::http::serve(
                listener,
                public_routes,
                timeouts.header,
                async move { stop.cancelled().await },
            ));
            (crate::http::router_with(state, timeouts), Some(server))
        }
        None => (
            crate::http::router_with(state, timeouts).merge(public_routes),
            None,
        ),
    };
    let server = tokio::spawn(crate::http::serve(
        listener,
        api_app,
        timeouts.header,
        async move { server_stop.cancelled().await },
    ));
    ops::notify_ready();

    let reloadable = Reloadable {
        path: &loaded.path,
        running: &config,
        plugins: &plugins,
        rescan: &rescan_tx,
        users: &users,
        engine: &engine,
        retention: &retention_tx,
    };
    loop {
        tokio::select! {
            () = control.shutdown.cancelled() => break,
            Some(()) = control.reload.recv() => {
                ops::notify_reloading();
                reloadable.reload().await;
                ops::notify_ready();
            }
        }
    }

    info!(grace = ?engine.settings.shutdown_grace, "Stopping: finishing the batches in flight.");
    ops::notify_stopping();
    stopping.cancel();
    let drained = tokio::time::timeout(drain_budget(engine.settings.shutdown_grace), async {
        let _ = scheduler.await;
        engine.tasks.close();
        engine.tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        warn!(
            "Shutdown grace ran out with batches still in flight; their chunks will be reclaimed after the lease."
        );
    }
    let _ = watcher.await;
    let _ = server.await;
    if let Some(public_server) = public_server {
        let _ = public_server.await;
    }
    let _ = timers.await;
    let _ = housekeeping.await;
    // The listeners are closed: nothing more can join the buffer.
    tracking.buffer().flush(&store).await;
    info!("Herald stopped.");
    Ok(())
}

/// How long the batches in flight may take at shutdown: the grace less a
/// tenth of it (at most 1 s), kept for closing the listeners and flushing
/// the buffered counts, so the process exits within the grace
/// (daemon.md, Signals) even when a batch never returns.
fn drain_budget(grace: std::time::Duration) -> std::time::Duration {
    grace.saturating_sub((grace / 10).min(std::time::Duration::from_secs(1)))
}

/// What a SIGHUP changes: the holders of the (R) keys, and the config the
/// daemon started with, whose other keys stay in force until a restart.
struct Reloadable<'a> {
    path: &'a std::path::Path,
    running: &'a Config,
    plugins: &'a PluginHost,
    rescan: &'a mpsc::Sender<RescanRequest>,
    users: &'a crate::http::auth::Users,
    engine: &'a Engine,
    retention: &'a watch::Sender<crate::retention::Policy>,
}

impl Reloadable<'_> {
    /// SIGHUP: re-reads the config for its (R) keys, then rescans the
    /// deliveries folder (the reloaded one, with the reloaded roots).
    async fn reload(&self) {
        let path = self.path;
        let context = match config::load(path) {
            Ok(loaded) => {
                let new = &loaded.config;
                self.users.replace(&new.users);
                self.engine.reload(new);
                self.retention
                    .send_replace(crate::retention::Policy::from_config(&new.retention));
                let pending = config::restart_only_changes(self.running, new);
                if !pending.is_empty() {
                    warn!(keys = %pending.join(", "), "Configuration keys changed that need a restart; they keep their running values until then.");
                }
                info!(config = %path.display(), "Configuration reloaded.");
                Some(validation_context(new, self.plugins))
            }
            Err(error) => {
                warn!(%error, "The configuration no longer loads; keeping the old one.");
                None
            }
        };
        let (done, finished) = oneshot::channel();
        if self
            .rescan
            .send(RescanRequest { context, done })
            .await
            .is_ok()
        {
            let _ = finished.await;
        }
    }
}

/// The plugins of the config, as the host loads them.
pub fn plugin_specs(config: &Config) -> Vec<PluginSpec> {
    config
        .plugins
        .iter()
        .map(|p| PluginSpec {
            path: p.path.clone(),
            config: p.config.clone(),
        })
        .collect()
}

/// What delivery files are checked against: the config's folders and the
/// channels the loaded plugins serve.
pub fn validation_context(config: &Config, plugins: &PluginHost) -> ValidationContext {
    ValidationContext {
        deliveries_dir: config.deliveries_dir.clone(),
        audience_roots: config.audience_roots.clone(),
        channels: ChannelCatalog::from_channels(plugins.channels().values().cloned()),
    }
}

/// Opens the configured store backend.
pub async fn open_store(config: &Config) -> Result<SharedStore, StoreError> {
    match config.store.kind {
        StoreKind::Embedded => {
            if let Some(parent) = config.store.path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Other(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let store = crate::store::embedded::EmbeddedStore::open(&config.store.path).await?;
            Ok(Arc::new(store))
        }
        StoreKind::Redis => {
            use crate::store::redis::{RedisStore, RedisTopology};
            let s = &config.store;
            // `config::check` made sure exactly one of the three is set.
            let topology = if !s.cluster_nodes.is_empty() {
                RedisTopology::Cluster(s.cluster_nodes.clone())
            } else if !s.sentinels.is_empty() {
                RedisTopology::Sentinel {
                    sentinels: s.sentinels.clone(),
                    master_name: s.master_name.clone(),
                }
            } else {
                RedisTopology::Single(s.url.clone().unwrap_or_default())
            };
            let store = RedisStore::connect_topology(topology, s.key_prefix.clone()).await?;
            tokio::spawn(once_redis_answers(store.clone()));
            Ok(Arc::new(store))
        }
    }
}

/// Once Redis answers: loads the store's scripts and warns about Redis
/// settings that put runs and outcomes at risk. A Redis down at start-up
/// is asked again, less and less often, until it answers: its settings
/// matter as much once it is up.
async fn once_redis_answers(store: crate::store::redis::RedisStore) {
    let mut pause = std::time::Duration::from_secs(1);
    let (appendonly, noeviction) = loop {
        match tokio::try_join!(store.appendonly_enabled(), store.noeviction()) {
            Ok(settings) => break settings,
            Err(StoreError::Unavailable(_)) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
            Err(error) => {
                warn!(%error, "Could not read Redis's persistence and eviction settings; check them by hand (see the README's operations section).");
                return;
            }
        }
    };
    // A script not loaded here is loaded on its first use instead.
    if let Err(error) = store.load_scripts().await {
        debug!(%error, "Could not load the store's scripts ahead of their first use.");
    }
    if !appendonly {
        warn!(
            "Redis persistence is off (appendonly no): a Redis restart loses runs and outcomes. Set `appendonly yes` (see the README's deployment section)."
        );
    }
    if !noeviction {
        warn!(
            "Redis may evict keys when full (maxmemory-policy is not noeviction): it would drop runs, leases or outcomes. Set `maxmemory-policy noeviction` (see the README's operations section)."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::drain_budget;
    use std::time::Duration;

    #[test]
    fn the_drain_leaves_part_of_the_grace_for_the_rest_of_the_stop() {
        assert_eq!(
            drain_budget(Duration::from_secs(20)),
            Duration::from_secs(19)
        );
        assert_eq!(
            drain_budget(Duration::from_secs(3)),
            Duration::from_millis(2700)
        );
        assert_eq!(drain_budget(Duration::ZERO), Duration::ZERO);
    }
}
