//! Running Herald as a service: the systemd unit, sd_notify and the
//! watchdog, `/metrics` and health, JSON logs, and the README quickstart.
//! Every test drives the built `herald` binary as a separate process
//! (`cargo build --workspace` first when running this binary alone).

mod logs;
mod metrics;
mod notify;
mod quickstart;
mod signals;
mod support;
mod unit;
