//! Calling an instance off the async workers: a fixed set of dedicated
//! threads per instance (as many as it asks for), a queue in front of them
//! that wakes one per call, and the bookkeeping of calls abandoned after
//! `plugin_timeout`. A thread whose calls are short runs the next one on
//! its caller's CPU (see `affinity`). Batches that wait while every thread
//! is busy go out together in one call, as far as their callers allow
//! (see `merge`).

use super::affinity;
use super::error::{LoadError, SendError};
use super::library::{Instance, RawReply};
use super::merge;
use super::queue::{Queue, Worker};
use herald_plugin_api::{Batch, SendStatus};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// One queued batch.
struct Job {
    batch: Vec<u8>,
    /// Its messages.
    count: usize,
    /// The most messages its caller lets one call hold, this batch's and
    /// other batches' together.
    limit: usize,
    call: Arc<Call>,
    reply: oneshot::Sender<RawReply>,
    /// The caller's span (the run's), for what the worker logs about the call.
    span: tracing::Span,
}

/// What the caller and the worker share about one batch.
struct Call {
    state: AtomicU8,
    /// The worker thread that took it, to free its CPU affinity if the
    /// call is abandoned.
    worker: AtomicI32,
    /// The plugin call it went out in, shared with the batches merged
    /// into it; set before the batch is `RUNNING`.
    plugin_call: OnceLock<Arc<PluginCall>>,
}

/// One call into the plugin, which one or more batches went out in: an
/// overrun is counted once per plugin call, however many callers abandon it.
struct PluginCall {
    state: AtomicU8,
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

    /// Runs one batch, in one plugin call with other waiting batches of at
    /// most `limit` messages in all, and checks its results against it.
    pub(super) async fn send(
        &self,
        channel: &str,
        batch: &Batch,
        limit: usize,
    ) -> Result<Vec<SendStatus>, SendError> {
        let started = Instant::now();
        let bytes = super::encode::encode_batch(batch);
        let (reply, mut replied) = oneshot::channel();
        let call = Arc::new(Call {
            state: AtomicU8::new(QUEUED),
            worker: AtomicI32::new(0),
            plugin_call: OnceLock::new(),
        });
        let job = Job {
            batch: bytes,
            count: batch.messages.len(),
            limit,
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
            // The first caller to give up on a plugin call counts it.
            let counted = call.plugin_call.get().is_some_and(|c| {
                c.state
                    .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            });
            if counted {
                self.health.abandoned();
            }
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

/// A worker thread: takes batches off the queue, as many at a time as
/// their callers allow in one call, until the pool goes away.
fn work(instance: &Instance, queue: &Queue<Job>, health: &Health) {
    let me = Worker::current();
    let joins = |taken: &[Job], next: &Job| {
        let limit = taken.iter().chain([next]).map(|j| j.limit).min();
        let count: usize = taken.iter().chain([next]).map(|j| j.count).sum();
        count <= limit.unwrap_or(0)
    };
    while let Some(group) = queue.next_group(&me, joins) {
        let plugin_call = Arc::new(PluginCall {
            state: AtomicU8::new(RUNNING),
        });
        // Before the batches run, so that a caller abandoning one sees it.
        let group: Vec<Job> = group
            .into_iter()
            .filter(|job| {
                job.call.worker.store(me.pin.thread_id(), Ordering::Release);
                let _ = job.call.plugin_call.set(plugin_call.clone());
                // Its caller may have given up while it waited: the
                // plugin never sees it.
                job.call
                    .state
                    .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            })
            .collect();
        if group.is_empty() {
            continue;
        }
        let started = Instant::now();
        let replies = call(instance, &group);
        me.pin.after_call(started.elapsed());
        if plugin_call
            .state
            .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            health.returned_late();
            let _run = group[0].span.enter();
            tracing::info!(plugin = health.name, "An abandoned plugin call returned.");
        }
        for (job, raw) in group.into_iter().zip(replies) {
            if job
                .call
                .state
                .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let _ = job.reply.send(raw);
            }
        }
    }
}

/// Calls the plugin once for `group`'s batches and gives each its reply:
/// its own part of the results, or the whole reply when that cannot be cut.
fn call(instance: &Instance, group: &[Job]) -> Vec<RawReply> {
    if let [job] = group {
        return vec![instance.send_batch(&job.batch)];
    }
    let batches: Vec<&[u8]> = group.iter().map(|job| job.batch.as_slice()).collect();
    let Some(merged) = merge::merge(&batches) else {
        // Not the host's own encoding (cannot happen): one call each.
        return batches.iter().map(|b| instance.send_batch(b)).collect();
    };
    let reply = instance.send_batch(&merged);
    let counts: Vec<usize> = group.iter().map(|job| job.count).collect();
    merge::split(&reply, &counts).unwrap_or_else(|| vec![reply; group.len()])
}
