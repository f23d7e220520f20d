//! The handles every part of the engine shares: store, clock, plugins,
//! settings, the loaded deliveries, and this instance's identity.

use crate::clock::Clock;
use crate::config::Config;
use crate::definitions::Delivery;
use crate::plugin_host::PluginHost;
use crate::store::SharedStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The deliveries currently loaded, by id (the last good version of each file).
pub type Deliveries = Arc<BTreeMap<String, Arc<Delivery>>>;

/// The engine's tunables, from `sending` in the config. None of them is
/// reloaded on SIGHUP: they need a restart (daemon.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Recipients handed to a plugin in one call.
    pub batch_size: usize,
    /// Recipients per chunk.
    pub chunk_size: usize,
    /// Chunk and preparation lease.
    pub lease: Duration,
    /// Retries of a transient failure.
    pub retries: u32,
    /// Time to finish batches in flight on SIGTERM.
    pub shutdown_grace: Duration,
}

impl Settings {
    /// The settings a config asks for.
    pub fn from_config(config: &Config) -> Self {
        Settings {
            batch_size: config.sending.batch_size as usize,
            chunk_size: config.sending.chunk_size as usize,
            lease: config.sending.lease.get(),
            retries: config.sending.retries,
            shutdown_grace: config.sending.shutdown_grace.get(),
        }
    }
}

/// `quarantine.soft_threshold`: soft bounces before an address is
/// quarantined. A (R) key, so it is read at each bounce, never copied.
#[derive(Debug)]
pub struct SoftThreshold(AtomicU32);

impl SoftThreshold {
    /// A threshold of `bounces`.
    pub fn new(bounces: u32) -> Self {
        SoftThreshold(AtomicU32::new(bounces))
    }

    /// The threshold a config asks for.
    pub fn from_config(config: &Config) -> Self {
        SoftThreshold::new(config.quarantine.soft_threshold)
    }

    /// The threshold in force.
    pub fn get(&self) -> u32 {
        // A lone value that orders nothing else: Relaxed is enough.
        self.0.load(Ordering::Relaxed)
    }

    /// Takes the threshold of a reloaded config.
    pub fn reload(&self, config: &Config) {
        self.0
            .store(config.quarantine.soft_threshold, Ordering::Relaxed);
    }
}

/// Shared context of the scheduler, the preparers and the dispatcher.
pub struct Engine {
    /// Where everything is kept.
    pub store: SharedStore,
    /// Where time comes from.
    pub clock: Clock,
    /// The loaded channel plugins.
    pub plugins: Arc<PluginHost>,
    /// Tunables.
    pub settings: Settings,
    /// This instance's identity in leases: `hostname:pid:random`.
    pub owner: String,
    /// The loaded deliveries; the scheduler replans when they change.
    pub deliveries: watch::Receiver<Deliveries>,
    /// Wakes the scheduler (a fake clock moved, local work finished).
    pub wake: Arc<Notify>,
    /// Cancelled on shutdown: stop claiming new work.
    pub stopping: CancellationToken,
    /// Preparations and dispatches in flight, awaited on shutdown.
    pub tasks: TaskTracker,
    /// `quarantine.soft_threshold`, reloadable.
    pub soft_threshold: SoftThreshold,
    /// `confirmations.webhook`: told when a run becomes pending; reloadable.
    pub webhook: crate::http::webhook::WebhookSlot,
    /// Signs tracking and unsubscribe links; `None` sends e-mails without them.
    pub tracking: Option<Arc<crate::tracking::Tracking>>,
}

impl Engine {
    /// Takes the (R) keys the engine reads from a config reloaded on SIGHUP.
    pub fn reload(&self, config: &Config) {
        self.soft_threshold.reload(config);
        self.webhook.reload(config);
    }

    /// A lease ending `settings.lease` from now.
    pub fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now() + chrono::Duration::from_std(self.settings.lease).unwrap_or_default()
    }
}

/// `hostname:pid:random`, unique per process start.
pub fn instance_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
