//! Calling an instance off the async workers: a fixed set of dedicated
//! threads per instance (as many as it asks for), a queue in front of them
//! that wakes one per call, and the bookkeeping of calls abandoned after
//! `plugin_timeout`. A thread whose calls are short runs the next one on
//! its caller's CPU (see `affinity`).

use super::affinity;
use super::error::{LoadError, SendError};
use super::library::{Instance, RawReply};
use super::queue::{Queue, Worker};
use herald_plugin_api::{Batch, SendStatus};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Abandoned calls still running at which the plugin is unhealthy.
pub const UNHEALTHY_OUTSTANDING: u64 = 3;
/// Abandoned calls within [`RECENT_WINDOW`] at which the plugin is unhealthy,
/// even if they have since returned.
pub const UNHEALTHY_RECENT: usize = 5;
/// The window for [`UNHEALTHY_RECENT`].
pub const RECENT_WINDOW: Duration = Duration::from_secs(600);

// Life of one call; the worker and the caller race on it with
// compare-exchange so exactly one of them decides what an overrun means.
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const ABANDONED: u8 = 3;

/// One queued call.
struct Job {
    batch: Vec<u8>,
    call: Arc<Call>,
    reply: oneshot::Sender<RawReply>,
    /// The caller's span (the run's), for what the worker logs about the call.
    span: tracing::Span,
}

/// What the caller and the worker share about one call.
struct Call {
    state: AtomicU8,
    /// The worker thread that took it, to free its CPU affinity if the
    /// call is abandoned.
    worker: AtomicI32,
}

/// The health counters of one instance.
#[derive(Debug)]
pub(super) struct Health {
    pub(super) path: PathBuf,
    pub(super) name: String,
    outstanding: AtomicU64,
    total: AtomicU64,
    recent: Mutex<VecDeque<Instant>>,
}

impl Health {
    fn abandoned(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        self.total.fetch_add(1, Ordering::AcqRel);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.push_back(Instant::now());
        if recent.len() > UNHEALTHY_RECENT {
            recent.pop_front();
        }
        metrics::counter!("herald_plugin_abandoned_calls", "plugin" => self.name.clone())
            .increment(1);
    }

    fn returned_late(&self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    pub(super) fn report(&self) -> PluginHealth {
        let outstanding = self.outstanding.load(Ordering::Acquire);
        let recent = {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent
                .iter()
                .filter(|at| at.elapsed() < RECENT_WINDOW)
                .count()
        };
        PluginHealth {
            path: self.path.clone(),
            name: self.name.clone(),
            abandoned_total: self.total.load(Ordering::Acquire),
            abandoned_outstanding: outstanding,
            healthy: outstanding < UNHEALTHY_OUTSTANDING && recent < UNHEALTHY_RECENT,
        }
    }
}

/// The health of one loaded plugin instance, for `/readyz` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginHealth {
    /// The library's path.
    pub path: PathBuf,
    /// The plugin's name.
    pub name: String,
    /// Calls abandoned since start.
    pub abandoned_total: u64,
    /// Abandoned calls that have not returned yet.
    pub abandoned_outstanding: u64,
    /// False once [`UNHEALTHY_OUTSTANDING`] abandoned calls are still
    /// running, or [`UNHEALTHY_RECENT`] were abandoned within [`RECENT_WINDOW`].
    pub healthy: bool,
}

/// The worker threads of one instance and the queue in front of them.
#[derive(Debug)]
pub(super) struct Pool {
    jobs: Arc<Queue<Job>>,
    pub(super) health: Arc<Health>,
    timeout: Duration,
    /// Calls the instance accepts at once (its worker threads).
    pub(super) concurrency: u32,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("bytes", &self.batch.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `concurrency` threads calling `instance`. They stop when the
    /// pool is dropped and the queue drains; the instance is destroyed when
    /// the last of them (abandoned ones included) lets go of it.
    pub(super) fn start(
        instance: Arc<Instance>,
        concurrency: u32,
        timeout: Duration,
    ) -> Result<Self, LoadError> {
        let library = instance.library();
        let health = Arc::new(Health {
            path: library.path().to_path_buf(),
            name: library.name().to_owned(),
            outstanding: AtomicU64::new(0),
            total: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
        });
        let jobs = Arc::new(Queue::new());
        for index in 0..concurrency {
            let (instance, queue, shared) = (instance.clone(), jobs.clone(), health.clone());
            std::thread::Builder::new()
                .name(format!("plugin-{}-{index}", health.name))
                .spawn(move || work(&instance, &queue, &shared))
                .map_err(|source| LoadError::Thread {
                    path: health.path.clone(),
                    source,
                })?;
        }
        Ok(Pool {
            jobs,
            health,
            timeout,
            concurrency,
        })
    }

    /// Runs one batch and checks its results against it.
    pub(super) async fn send(
        &self,
        channel: &str,
        batch: &Batch,
    ) -> Result<Vec<SendStatus>, SendError> {
        let started = Instant::now();
        let bytes = super::encode::encode_batch(batch);
        let (reply, mut replied) = oneshot::channel();
        let call = Arc::new(Call {
            state: AtomicU8::new(QUEUED),
            worker: AtomicI32::new(0),
        });
        let job = Job {
            batch: bytes,
            call: call.clone(),
            reply,
            span: tracing::Span::current(),
        };
        let stopped = || SendError::Stopped {
            channel: channel.to_owned(),
        };
        self.jobs.push(job, affinity::current_cpu());
        let raw = match tokio::time::timeout(self.timeout, &mut replied).await {
            Ok(reply) => reply.map_err(|_| stopped())?,
            Err(_) => self.overrun(channel, &call, replied).await?,
        };
        metrics::histogram!("herald_plugin_batch_seconds", "channel" => channel.to_owned())
            .record(started.elapsed().as_secs_f64());
        super::decode::decode_results(&self.health.name, channel, batch, &raw)
    }

    /// Decides, against the worker, what a call past its timeout means.
    async fn overrun(
        &self,
        channel: &str,
        call: &Call,
        replied: oneshot::Receiver<RawReply>,
    ) -> Result<RawReply, SendError> {
        let plugin = self.health.name.clone();
        let state = &call.state;
        loop {
            let now = state.load(Ordering::Acquire);
            if now == DONE {
                // The worker finished in the instant after the timeout.
                return replied.await.map_err(|_| SendError::Stopped {
                    channel: channel.to_owned(),
                });
            }
            if state
                .compare_exchange(now, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let (channel, timeout) = (channel.to_owned(), self.timeout);
            if now == QUEUED {
                tracing::warn!(%channel, plugin, "No free plugin slot within the timeout; the batch was not sent.");
                return Err(SendError::Saturated {
                    channel,
                    plugin,
                    timeout,
                });
            }
            self.health.abandoned();
            affinity::free_thread(call.worker.load(Ordering::Acquire));
            tracing::warn!(%channel, plugin, ?timeout, "Plugin call abandoned after the timeout.");
            return Err(SendError::Abandoned {
                channel,
                plugin,
                timeout,
            });
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.close();
    }
}

/// A worker thread: takes calls off the queue until the pool goes away.
fn work(instance: &Instance, queue: &Queue<Job>, health: &Health) {
    let me = Worker::current();
    while let Some(job) = queue.next(&me) {
        // Before the call runs, so that a caller abandoning it sees it.
        job.call.worker.store(me.pin.thread_id(), Ordering::Release);
        if job
            .call
            .state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Its caller gave up while it waited: the plugin never sees it.
            continue;
        }
        let started = Instant::now();
        let raw = instance.send_batch(&job.batch);
        me.pin.after_call(started.elapsed());
        if job
            .call
            .state
            .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = job.reply.send(raw);
        } else {
            health.returned_late();
            let _run = job.span.enter();
            tracing::info!(plugin = health.name, "An abandoned plugin call returned.");
        }
    }
}
