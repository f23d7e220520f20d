//! sd_notify: `READY=1`, `RELOADING=1`, `STOPPING=1`, and `WATCHDOG=1` at
//! half the watchdog interval. Without `NOTIFY_SOCKET` every call is a no-op,
//! so the same binary runs under systemd, in a terminal and in tests.

use sd_notify::NotifyState;
use std::time::{Duration, Instant};
use tracing::debug;

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        // Debug only: a missing or full notify socket must never stop the daemon.
        debug!(%error, "sd_notify failed.");
    }
}

/// The deliveries are loaded and the listener is up (also: a reload ended).
pub fn notify_ready() {
    send(&[NotifyState::Ready]);
}

/// A reload (SIGHUP) starts; `notify_ready` ends it.
pub fn notify_reloading() {
    // systemd 253+ wants MONOTONIC_USEC beside RELOADING=1 to match the
    // reload to its request; older managers ignore the extra line.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown starts.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping]);
}

/// Feeds the systemd watchdog from the loop that must not get stuck.
#[derive(Debug)]
pub struct Watchdog {
    period: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC` (and `WATCHDOG_PID` when set); pings at half of it.
    pub fn from_env() -> Self {
        Watchdog::with_interval(sd_notify::watchdog_enabled())
    }

    /// A watchdog for a given interval; `None` disables it.
    pub fn with_interval(interval: Option<Duration>) -> Self {
        Watchdog {
            period: interval.map(|interval| interval / 2),
            last: None,
        }
    }

    /// How long the loop may sleep before the next ping is due
    /// (`Duration::MAX` without a watchdog).
    pub fn period(&self) -> Duration {
        match (self.period, self.last) {
            (Some(period), Some(last)) => period
                .saturating_sub(last.elapsed())
                .max(Duration::from_millis(10)),
            (Some(_), None) => Duration::from_millis(10),
            (None, _) => Duration::MAX,
        }
    }

    /// Sends `WATCHDOG=1` when (nearly) half the interval has passed since
    /// the last one. Returns whether it sent one.
    pub fn ping(&mut self) -> bool {
        let Some(period) = self.period else {
            return false;
        };
        // 90 %: a loop woken a few milliseconds early must not skip a ping
        // and then sleep a whole period more.
        if self
            .last
            .is_some_and(|last| last.elapsed() < period.mul_f64(0.9))
        {
            return false;
        }
        send(&[NotifyState::Watchdog]);
        self.last = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_interval_the_watchdog_never_pings_nor_limits_sleep() {
        let mut watchdog = Watchdog::with_interval(None);
        assert!(!watchdog.ping());
        assert_eq!(watchdog.period(), Duration::MAX);
    }

    #[test]
    fn first_ping_is_immediate_then_waits_half_the_interval() {
        let mut watchdog = Watchdog::with_interval(Some(Duration::from_secs(2)));
        assert!(watchdog.ping());
        assert!(!watchdog.ping(), "a second ping right away is skipped");
        let sleep = watchdog.period();
        assert!(
            sleep <= Duration::from_secs(1) && sleep > Duration::from_millis(900),
            "the loop may sleep at most half the interval, got {sleep:?}"
        );
    }

    #[test]
    fn ping_is_due_again_after_nine_tenths_of_the_period() {
        let mut watchdog = Watchdog::with_interval(Some(Duration::from_millis(200)));
        assert!(watchdog.ping());
        std::thread::sleep(Duration::from_millis(95));
        assert!(watchdog.ping());
    }
}
