//! Sending: claim chunks of sending runs under a lease, render each
//! recipient from the run's definition snapshot, hand batches to the
//! channel plugin, retry transient failures, and record every outcome
//! before the chunk is acknowledged.

mod chunk;
pub mod results;

use crate::definitions::{Delivery, Renderer};
use crate::engine::Engine;
use crate::plugin_host::ChannelSender;
use crate::runs::{BusyGuard, RunId};
use crate::store::{ClaimedChunk, SendingRun, StoreResult};
use futures_util::FutureExt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info_span, warn};

/// Sends the chunks of sending runs; one per daemon instance.
#[derive(Clone)]
pub struct Dispatcher {
    engine: Arc<Engine>,
}

/// A run's definition snapshot, read and with its templates compiled.
pub struct Snapshot {
    /// The delivery as the run was created from it.
    pub delivery: Arc<Delivery>,
    /// Its templates, compiled.
    pub renderer: Renderer,
}

/// What every chunk of one run needs, built once per run and instance.
pub(crate) struct RunContext {
    pub run: SendingRun,
    pub renderer: Renderer,
    pub sender: ChannelSender,
    /// Whether this instance has handed the run's first message to the plugin.
    pub first_sent: AtomicBool,
    /// E-mail only: the links' signer and what the delivery tracks.
    pub tracking: Option<(Arc<crate::tracking::Tracking>, crate::definitions::Tracking)>,
}

impl Dispatcher {
    /// A dispatcher for the engine.
    pub fn new(engine: Arc<Engine>) -> Self {
        Dispatcher { engine }
    }

    /// Works on a sending (or cancelled) run, as just read from the store
    /// (with its definition snapshot when already in hand), until it has
    /// no chunk left to claim here: as many chunk workers as the channel's
    /// plugin wants concurrent calls, or as chunks are left if fewer. The
    /// guard keeps the run in hand until then. A chunk `claimed` for this
    /// instance already is its first worker's first.
    pub async fn dispatch(
        &self,
        run: SendingRun,
        snapshot: Option<Snapshot>,
        mut claimed: Option<ClaimedChunk>,
        _guard: BusyGuard,
    ) {
        let id = run.id.clone();
        let left = run.chunks_left.max(1) as usize;
        let context = match self.context(run, snapshot).await {
            Ok(Some(context)) => Arc::new(context),
            Ok(None) => return,
            Err(error) => {
                warn!(delivery_id = id.delivery_id(), run_id = %id, %error, "Could not load the run to send it.");
                return;
            }
        };
        let workers = context.sender.concurrency().clamp(1, left);
        // Lines logged below the workers without the ids of their own (the
        // plugin host's, about a batch) take them from this span.
        let span = info_span!("run", delivery_id = %id.delivery_id(), run_id = %id);
        if workers == 1 {
            // One worker (most runs: one chunk, or a plugin that takes one
            // call at a time) works in this task: a task of its own cost a
            // spawn and a wake-up per one-recipient run.
            let worker = work(&self.engine, &context, claimed).instrument(span);
            match std::panic::AssertUnwindSafe(worker).catch_unwind().await {
                Ok(ended) => report(&id, ended),
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|m| m.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    panicked(&id, &message);
                }
            }
            return;
        }
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let engine = self.engine.clone();
            let context = context.clone();
            let first = claimed.take();
            set.spawn(async move { work(&engine, &context, first).await }.instrument(span.clone()));
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(ended) => report(&id, ended),
                Err(error) => panicked(&id, &error.to_string()),
            }
        }
    }

    async fn context(
        &self,
        run: SendingRun,
        snapshot: Option<Snapshot>,
    ) -> StoreResult<Option<RunContext>> {
        let store = &self.engine.store;
        let id = &run.id;
        let now = self.engine.clock.now();
        let fail = |reason: String| async move {
            warn!(delivery_id = id.delivery_id(), run_id = %id, %reason, "Run failed: it cannot be sent.");
            store.fail_run(id, &reason, now).await.map(|_| None)
        };
        let Snapshot { delivery, renderer } = match snapshot {
            Some(snapshot) => snapshot,
            None => {
                let delivery = match crate::runs::prepare::load_snapshot(
                    &self.engine,
                    id,
                    &run.definition_hash,
                )
                .await?
                {
                    None => return Ok(None),
                    Some(Ok(delivery)) => delivery,
                    Some(Err(reason)) => return fail(reason).await,
                };
                match Renderer::new(&delivery) {
                    Ok(renderer) => Snapshot { delivery, renderer },
                    Err(e) => return fail(e.to_string()).await,
                }
            }
        };
        let Some(sender) = self.engine.plugins.sender(delivery.channel()) else {
            return fail(format!(
                "channel `{}` is not served by any loaded plugin",
                delivery.channel()
            ))
            .await;
        };
        let tracking = (delivery.channel() == "email")
            .then(|| self.engine.tracking.clone())
            .flatten()
            .map(|t| (t, delivery.tracking()));
        if let Some((tracking, _)) = &tracking {
            // A daemon started while the store was down gets the links' key
            // here; without it no e-mail is sent (the run waits, as for any
            // store error).
            tracking.load_key().await?;
        }
        Ok(Some(RunContext {
            run,
            renderer,
            sender,
            first_sent: AtomicBool::new(false),
            tracking,
        }))
    }
}

/// Logs how a chunk worker of run `id` ended.
fn report(id: &RunId, ended: StoreResult<()>) {
    match ended {
        Ok(()) => {
            debug!(delivery_id = id.delivery_id(), run_id = %id, "No chunk left to claim here.")
        }
        Err(error) => {
            metrics::counter!("herald_store_errors_total").increment(1);
            warn!(delivery_id = id.delivery_id(), run_id = %id, %error, "A chunk worker stopped on a store error; the chunk will be reclaimed.");
        }
    }
}

/// Logs a chunk worker of run `id` that panicked (its chunk is reclaimed
/// once its lease ends).
fn panicked(id: &RunId, error: &str) {
    warn!(delivery_id = id.delivery_id(), run_id = %id, error, "A chunk worker panicked.");
}

/// Sends the chunk claimed already, if any, then claims and sends chunks
/// of one run until none is left or the engine stops.
async fn work(
    engine: &Engine,
    context: &RunContext,
    first: Option<ClaimedChunk>,
) -> StoreResult<()> {
    let id = &context.run.id;
    if let Some(claimed) = first {
        if !chunk::process(engine, context, claimed).await? {
            return Ok(());
        }
    }
    while !engine.stopping.is_cancelled() {
        let now = engine.clock.now();
        let claimed = engine
            .store
            .claim_chunk(id, &engine.owner, engine.lease_until(), now)
            .await?;
        let Some(claimed) = claimed else {
            break;
        };
        if !chunk::process(engine, context, claimed).await? {
            break;
        }
    }
    Ok(())
}
