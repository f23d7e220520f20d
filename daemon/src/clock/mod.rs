//! One source of time for the engine, so tests can fake it (DST cases,
//! expiry, leases) without waiting.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// Where the engine reads the current instant.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's wall clock.
    System,
    /// A clock that moves only when a test moves it.
    Fake(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A fake clock starting at `start`.
    pub fn fake(start: DateTime<Utc>) -> Self {
        Clock::Fake(Arc::new(Mutex::new(start)))
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fake(at) => *at.lock().expect("fake clock poisoned"),
        }
    }

    /// Moves a fake clock forward (no effect on the system clock).
    pub fn advance(&self, by: chrono::Duration) {
        if let Clock::Fake(at) = self {
            let mut at = at.lock().expect("fake clock poisoned");
            *at += by;
        }
    }

    /// Sets a fake clock (no effect on the system clock).
    pub fn set(&self, to: DateTime<Utc>) {
        if let Clock::Fake(at) = self {
            *at.lock().expect("fake clock poisoned") = to;
        }
    }

    /// How long to sleep until `instant` (zero when it has passed).
    pub fn until(&self, instant: DateTime<Utc>) -> std::time::Duration {
        (instant - self.now()).to_std().unwrap_or_default()
    }
}
