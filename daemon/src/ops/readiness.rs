//! What `/readyz` reports: the store answers, the deliveries are loaded,
//! and no plugin is unhealthy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flags, set by the parts that know.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<Flags>,
}

#[derive(Debug, Default)]
struct Flags {
    store_ok: AtomicBool,
    deliveries_loaded: AtomicBool,
}

impl Readiness {
    /// Records whether the store answered last time it was asked.
    pub fn set_store(&self, ok: bool) {
        self.inner.store_ok.store(ok, Ordering::Relaxed);
    }

    /// Records that the deliveries folder has been loaded once.
    pub fn set_deliveries_loaded(&self) {
        self.inner.deliveries_loaded.store(true, Ordering::Relaxed);
    }

    /// `None` when ready, else the reason.
    pub fn problem(&self) -> Option<&'static str> {
        if !self.inner.deliveries_loaded.load(Ordering::Relaxed) {
            Some("the deliveries are not loaded yet")
        } else if !self.inner.store_ok.load(Ordering::Relaxed) {
            Some("the store does not answer")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_once_the_deliveries_are_loaded_and_the_store_answered() {
        let readiness = Readiness::default();
        assert_eq!(
            readiness.problem(),
            Some("the deliveries are not loaded yet")
        );
        readiness.set_deliveries_loaded();
        assert_eq!(readiness.problem(), Some("the store does not answer"));
        readiness.set_store(true);
        assert_eq!(readiness.problem(), None);
        readiness.set_store(false);
        assert_eq!(readiness.problem(), Some("the store does not answer"));
    }
}
