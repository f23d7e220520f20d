//! The daemon configuration file (daemon.md, "Configuration file"): the
//! serde types, their defaults and the checks serde cannot express.

use super::duration::HumanDuration;
use crate::runs::Role;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration. Keys marked (R) are reloaded on SIGHUP.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// (R) The folder of delivery files, watched live.
    pub deliveries_dir: PathBuf,
    /// (R) Extra folders audience files may come from.
    pub audience_roots: Vec<PathBuf>,
    /// Where runs, outcomes and KPIs are kept.
    pub store: StoreConfig,
    /// The HTTP hook.
    pub http: HttpConfig,
    /// Channel plugins to load.
    pub plugins: Vec<PluginEntry>,
    /// How runs are sent.
    pub sending: SendingConfig,
    /// KPI timers.
    pub kpi: KpiConfig,
    /// (R) Quarantine rules.
    pub quarantine: QuarantineConfig,
    /// (R) Notifications when a run waits for a confirmer.
    pub confirmations: ConfirmationsConfig,
    /// (R) How long personal data is kept.
    pub retention: RetentionConfig,
    /// (R) Users of the HTTP hook.
    pub users: Vec<User>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            deliveries_dir: PathBuf::from("deliveries"),
            audience_roots: Vec::new(),
            store: StoreConfig::default(),
            http: HttpConfig::default(),
            plugins: Vec::new(),
            sending: SendingConfig::default(),
            kpi: KpiConfig::default(),
            quarantine: QuarantineConfig::default(),
            confirmations: ConfirmationsConfig::default(),
            retention: RetentionConfig::default(),
            users: Vec::new(),
        }
    }
}

/// Which store backend, and how to reach it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (default, one instance) or `redis` (several instances).
    pub kind: StoreKind,
    /// Embedded only: the database file.
    pub path: PathBuf,
    /// Redis only: `redis://` or `rediss://` (TLS) URL.
    pub url: Option<String>,
    /// Redis only: seed nodes of a Redis Cluster, instead of `url`.
    pub cluster_nodes: Vec<String>,
    /// Redis only: Sentinel addresses, with `master_name`, instead of `url`.
    pub sentinels: Vec<String>,
    /// Redis only: the Sentinel master name.
    pub master_name: String,
    /// Redis only: prefix of every key, so deployments can share one Redis.
    pub key_prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            path: PathBuf::from("var/herald.db"),
            url: None,
            cluster_nodes: Vec::new(),
            sentinels: Vec::new(),
            master_name: "herald".to_owned(),
            key_prefix: "herald".to_owned(),
        }
    }
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// One file (redb), one daemon instance.
    Embedded,
    /// Redis, shared by several instances.
    Redis,
}

/// The HTTP listeners.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The API, the confirm page, `/metrics` and health.
    pub listen: SocketAddr,
    /// Tracking and unsubscribe only, for the internet; without it they are served on `listen`.
    pub public_listen: Option<SocketAddr>,
    /// Base of tracking and unsubscribe links; default `http://` and the
    /// listener serving them (`public_listen`, else `listen`).
    pub public_url: Option<String>,
    /// HMAC key file for signed links; without it the store keeps a generated key.
    pub secret_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8425)),
            public_listen: None,
            public_url: None,
            secret_file: None,
        }
    }
}

/// One channel plugin to load.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The shared library.
    pub path: PathBuf,
    /// Handed to the plugin as JSON. String values of keys named `dir` or
    /// ending in `_dir` or `_file` are paths, resolved like every path here.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// How runs are sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendingConfig {
    /// Recipients handed to a plugin in one call.
    pub batch_size: u32,
    /// Recipients claimed by one instance at a time.
    pub chunk_size: u32,
    /// A crashed instance's chunk is taken over after this.
    pub lease: HumanDuration,
    /// Transient failures retried this many times, with backoff and jitter.
    pub retries: u32,
    /// A batch call that has not returned by then is abandoned.
    pub plugin_timeout: HumanDuration,
    /// SIGTERM: time to finish batches in flight.
    pub shutdown_grace: HumanDuration,
}

impl Default for SendingConfig {
    fn default() -> Self {
        SendingConfig {
            batch_size: 50,
            chunk_size: 1000,
            lease: HumanDuration::secs(30),
            retries: 3,
            plugin_timeout: HumanDuration::secs(60),
            shutdown_grace: HumanDuration::secs(20),
        }
    }
}

/// KPI timers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KpiConfig {
    /// Publish KPI snapshots and buffered tracking counts on this timer.
    pub flush_interval: HumanDuration,
    /// Recompute open and click figures on this timer.
    pub rates_interval: HumanDuration,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            flush_interval: HumanDuration::secs(10),
            rates_interval: HumanDuration::secs(3600),
        }
    }
}

/// Quarantine rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Soft bounces before an address is quarantined.
    pub soft_threshold: u32,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig { soft_threshold: 5 }
    }
}

/// Notifications to confirmers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmationsConfig {
    /// POSTed (JSON) when a run becomes pending.
    pub webhook: Option<String>,
}

/// How long personal data is kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Frozen audiences, outcomes and previews of finished runs are purged after this.
    pub runs: HumanDuration,
    /// Profile history entries older than this are purged.
    pub history: HumanDuration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            runs: HumanDuration::secs(90 * 86_400),
            history: HumanDuration::secs(365 * 86_400),
        }
    }
}

/// A user of the HTTP hook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Shown in `confirmed_by`, `cancelled_by` and logs.
    pub name: String,
    /// Hex SHA-256 of the bearer token (`herald hash-token` prints it).
    pub token_sha256: String,
    /// What the user may do.
    pub roles: Vec<Role>,
}
