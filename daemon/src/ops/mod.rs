//! Operations: systemd notifications and watchdog, readiness, metrics, logging.

pub mod logging;
pub mod metrics;
mod readiness;
mod systemd;

pub use readiness::Readiness;
pub use systemd::{Watchdog, notify_ready, notify_reloading, notify_stopping};
