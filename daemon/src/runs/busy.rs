//! Runs this instance is working on right now, so one instance never
//! prepares or dispatches the same run twice at once.

use super::RunId;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The set of runs in hand; a guard leaves it on drop and wakes the scheduler.
#[derive(Debug, Clone)]
pub struct Busy {
    runs: Arc<Mutex<HashSet<RunId>>>,
    wake: Arc<Notify>,
}

impl Busy {
    /// An empty set that wakes `wake` whenever a run leaves it.
    pub fn new(wake: Arc<Notify>) -> Self {
        Busy {
            runs: Arc::default(),
            wake,
        }
    }

    /// Takes the run, unless it is already in hand.
    pub fn try_take(&self, id: &RunId) -> Option<BusyGuard> {
        let mut runs = self.runs.lock().expect("busy set poisoned");
        runs.insert(id.clone()).then(|| BusyGuard {
            busy: self.clone(),
            id: id.clone(),
        })
    }

    /// How many runs are in hand.
    pub fn len(&self) -> usize {
        self.runs.lock().expect("busy set poisoned").len()
    }

    /// Whether no run is in hand.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Holds a run in the busy set until dropped.
#[derive(Debug)]
pub struct BusyGuard {
    busy: Busy,
    id: RunId,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.busy
            .runs
            .lock()
            .expect("busy set poisoned")
            .remove(&self.id);
        self.busy.wake.notify_waiters();
    }
}
