//! sd_notify: `READY=1`, `RELOADING=1`, `STOPPING=1`, and `WATCHDOG=1` at
//! half the watchdog interval. Without `NOTIFY_SOCKET` every call is a no-op.

use sd_notify::NotifyState;
use std::time::{Duration, Instant};
use tracing::debug;

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        debug!(%error, "sd_notify failed.");
    }
}

/// The deliveries are loaded and the listener is up.
pub fn notify_ready() {
    send(&[NotifyState::Ready]);
}

/// A reload (SIGHUP) starts; `notify_ready` ends it.
pub fn notify_reloading() {
    send(&[NotifyState::Reloading]);
}

/// Shutdown starts.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping]);
}

/// Feeds the systemd watchdog from the loop that must not get stuck.
#[derive(Debug)]
pub struct Watchdog {
    period: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC`; pings at half of it.
    pub fn from_env() -> Self {
        let period = sd_notify::watchdog_enabled().map(|interval| interval / 2);
        Watchdog {
            period,
            last: Instant::now() - Duration::from_secs(3600),
        }
    }

    /// How long the loop may sleep before the next ping is due.
    pub fn period(&self) -> Duration {
        match self.period {
            Some(period) => period
                .saturating_sub(self.last.elapsed())
                .max(Duration::from_millis(10)),
            None => Duration::MAX,
        }
    }

    /// Sends `WATCHDOG=1` when half the interval has passed since the last one.
    pub fn ping(&mut self) {
        if let Some(period) = self.period {
            if self.last.elapsed() >= period.mul_f64(0.9) {
                send(&[NotifyState::Watchdog]);
                self.last = Instant::now();
            }
        }
    }
}
