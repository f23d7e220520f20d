//! The queue between callers and an instance's worker threads.
//!
//! A thread wake-up is the dearest part of a call to a fast plugin, so
//! the queue wakes exactly one parked worker per call, and none when a
//! worker is still awake. The `Mutex<mpsc::Receiver>` it replaces woke
//! two per call once an instance had two threads: the one receiving,
//! and the next one waiting for the lock, which took it only to wait on
//! the channel in turn. (Workers that spin for the next call before they
//! park were measured too, and cost more CPU than the wake-ups they save:
//! benches/README.md, "Plugin host overhead".)

use super::affinity::Pin;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;

/// A worker thread, as the queue wakes it.
pub(super) struct Worker {
    thread: Thread,
    /// Where it runs: pinned by the caller that wakes it.
    pub(super) pin: Pin,
}

impl Worker {
    /// The calling thread.
    pub(super) fn current() -> Arc<Worker> {
        Arc::new(Worker {
            thread: std::thread::current(),
            pin: Pin::current(),
        })
    }
}

/// Calls waiting for a worker, and the workers waiting for a call.
pub(super) struct Queue<T> {
    state: Mutex<State<T>>,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

struct State<T> {
    jobs: VecDeque<T>,
    /// Workers that found the queue empty and park (or are about to).
    idle: Vec<Arc<Worker>>,
    closed: bool,
}

impl<T> Queue<T> {
    /// An empty queue.
    pub(super) fn new() -> Self {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                idle: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding it, but a poisoned queue still works.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`, from a caller running on `cpu`, and wakes one parked
    /// worker, if any (pinned to `cpu` first when its calls are short): a
    /// worker still awake checks the queue under the lock before it parks.
    pub(super) fn push(&self, job: T, cpu: Option<usize>) {
        let wake = {
            let mut state = self.lock();
            state.jobs.push_back(job);
            state.idle.pop()
        };
        if let Some(worker) = wake {
            worker.pin.follow(cpu);
            worker.thread.unpark();
        }
    }

    /// Lets the workers go once the queue is empty.
    pub(super) fn close(&self) {
        let idle = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        for worker in idle {
            worker.thread.unpark();
        }
    }

    /// The next job for the worker `me` and, behind it, the waiting jobs
    /// that `joins(taken, next)` lets join it in one call (in order, up to
    /// the first it refuses), or `None` once the queue is closed and
    /// empty. Parks while there is none.
    pub(super) fn next_group(
        &self,
        me: &Arc<Worker>,
        mut joins: impl FnMut(&[T], &T) -> bool,
    ) -> Option<Vec<T>> {
        loop {
            {
                let mut state = self.lock();
                let own = state.idle.iter().position(|w| Arc::ptr_eq(w, me));
                if let Some(job) = state.jobs.pop_front() {
                    // A busy worker must not be the one a new call wakes
                    // (it is still listed after a spurious wake-up).
                    if let Some(own) = own {
                        state.idle.swap_remove(own);
                    }
                    let mut group = vec![job];
                    while let Some(next) = state.jobs.front() {
                        if !joins(&group, next) {
                            break;
                        }
                        group.extend(state.jobs.pop_front());
                    }
                    return Some(group);
                }
                if state.closed {
                    return None;
                }
                if own.is_none() {
                    state.idle.push(me.clone());
                }
            }
            // A wake-up before this park is not lost: `unpark` leaves a
            // token. A spurious return loops back and re-checks.
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Every job pushed is taken exactly once, by workers that find the
    /// queue full, empty, or are woken in every order, and they stop once
    /// the queue closes.
    #[test]
    fn every_job_is_taken_once_and_workers_stop_when_closed() {
        let queue = Arc::new(Queue::new());
        let (done, taken) = mpsc::channel();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (queue, done) = (queue.clone(), done.clone());
                std::thread::spawn(move || {
                    let me = Worker::current();
                    while let Some(group) = queue.next_group(&me, |_, _| false) {
                        done.send(group[0]).unwrap();
                    }
                })
            })
            .collect();
        for round in 0..200u32 {
            queue.push(round, None);
            if round % 7 == 0 {
                // Let the workers go idle and park between some calls.
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        queue.close();
        for worker in workers {
            worker.join().unwrap();
        }
        drop(done);
        let mut got: Vec<u32> = taken.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_pushed_while_every_worker_is_parked_is_taken() {
        let queue = Arc::new(Queue::new());
        let worker = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.next_group(&Worker::current(), |_, _| false))
        };
        while queue.lock().idle.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        queue.push(7, None);
        assert_eq!(worker.join().unwrap(), Some(vec![7]));
        assert!(queue.lock().idle.is_empty(), "a busy worker stays idle");
    }

    /// Waiting jobs join the first in order, as far as `joins` lets them.
    #[test]
    fn waiting_jobs_join_the_first_up_to_the_one_refused() {
        let queue = Queue::new();
        for job in [3, 2, 4, 1, 1] {
            queue.push(job, None);
        }
        queue.close();
        let me = Worker::current();
        // Up to five in all: 3 + 2, then 4 + 1, then the last 1.
        let fits = |taken: &[u32], next: &u32| taken.iter().sum::<u32>() + next <= 5;
        let mut groups = Vec::new();
        while let Some(group) = queue.next_group(&me, fits) {
            groups.push(group);
        }
        assert_eq!(groups, vec![vec![3, 2], vec![4, 1], vec![1]]);
    }
}
