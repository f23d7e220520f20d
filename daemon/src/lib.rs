//! # Herald
//!
//! A scheduler daemon that sends marketing and notification messages:
//! marketers drop YAML delivery files in a folder, Herald prepares one run
//! per occurrence, waits for a confirmer where the delivery asks, and sends
//! through dynamically loaded channel plugins while it counts the KPIs.
//!
//! ## Layout
//!
//! A delivery flows through the modules in this order:
//!
//! - [`definitions`]: delivery files, parsed and validated into [`definitions::Delivery`].
//! - [`scheduler`]: sleeps until the next due instant and creates runs.
//! - [`runs`]: the run lifecycle: prepare, confirm, cancel, pause, expire.
//! - [`store`]: the [`store::Store`] trait and its Redis and embedded backends.
//! - [`dispatch`]: claims chunks, renders, batches, retries, throttles.
//! - [`plugin_host`]: loads channel plugins and calls them off the async workers.
//! - [`kpi`]: counters, rates, recount.
//! - [`tracking`]: signed links, open and click tracking.
//! - [`retention`]: the data lifecycle: purging old runs and history, erasing profiles.
//! - [`http`]: the API for confirmers, the confirm page, tracking routes.
//! - [`ops`]: sd_notify, signals, metrics, logging.
//! - [`config`]: the daemon's own configuration file.
//! - [`cli`]: one module per `herald` subcommand.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod definitions;
pub mod dispatch;
pub mod engine;
pub mod http;
pub mod kpi;
pub mod ops;
pub mod plugin_host;
pub mod retention;
pub mod runs;
pub mod scheduler;
pub mod store;
pub mod tracking;
