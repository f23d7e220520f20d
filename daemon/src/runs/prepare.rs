//! Preparation: read the audience as a stream, apply the exclusions with
//! their reasons, freeze the recipients into chunks, render a preview, and
//! move the run on (pending, scheduled or sending).
//!
//! Preparation is idempotent: a preparer that dies leaves the run in
//! `preparing` under an expiring lease, and the next one starts over
//! (chunks are overwritten, exclusion outcomes are set-if-absent).

use super::{ExclusionReason, Outcome, RunId};
use crate::definitions::{Audience, AudienceRow, Delivery, Renderer, normalise_address};
use crate::dispatch::Snapshot;
use crate::engine::Engine;
use crate::store::{
    Chunk, ClaimedChunk, FrozenRecipient, Prepared, Preview, RecipientOutcome, Run, StoreResult,
    Transition,
};
use herald_plugin_api::ChannelInfo;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Rows read from the audience per message on the reader's channel.
const ROWS_PER_READ: usize = 1000;

/// Chunks written to the store at once while the next rows are frozen:
/// serialising and storing a chunk then overlaps with classifying the
/// next one instead of following it (P1's preparation phase).
const CHUNK_WRITES_IN_FLIGHT: usize = 4;

/// A run this instance has just prepared, with the definition it was
/// prepared from, so sending it at once needs no second read.
pub struct Ready {
    /// The run as preparation left it: pending, scheduled or sending.
    pub run: Run,
    /// Its definition snapshot, compiled.
    pub snapshot: Snapshot,
    /// The chunk claimed for this instance as the run went on to sending.
    pub claimed: Option<ClaimedChunk>,
}

/// Prepares a `preparing` run whose preparation this instance has just
/// taken; `None` when it was not prepared here or failed.
pub async fn prepare(engine: &Engine, run: &Run) -> StoreResult<Option<Ready>> {
    let store = &engine.store;
    let snapshot = load_snapshot(engine, &run.id, &run.definition_hash)
        .await?
        .unwrap_or_else(|| Err("the run has no definition snapshot in the store".to_owned()));
    let delivery = match snapshot {
        Ok(delivery) => delivery,
        Err(reason) => return fail(engine, run, &reason).await,
    };
    if engine.plugins.sender(delivery.channel()).is_none() {
        let reason = format!(
            "channel `{}` is not served by any loaded plugin; add a plugin for it to `plugins` in the config",
            delivery.channel()
        );
        return fail(engine, run, &reason).await;
    }
    let channel = delivery.channel_info().clone();
    let renderer = match Renderer::new(&delivery) {
        Ok(renderer) => renderer,
        Err(error) => return fail(engine, run, &error.to_string()).await,
    };

    let mut freezer = Freezer::new(engine, run, channel, &renderer);
    if let Audience::Inline { recipients } = delivery.audience() {
        // Already in memory: no reader thread to hop to and back.
        for batch in recipients.chunks(ROWS_PER_READ) {
            freezer.add(batch.to_vec()).await?;
        }
    } else {
        let mut rows = read_audience(&delivery, &run.id);
        while let Some(batch) = rows.recv().await {
            match batch {
                Ok(batch) => freezer.add(batch).await?,
                Err(reason) => return fail(engine, run, &reason).await,
            }
        }
    }
    let (prepared, last) = freezer.finish().await?;
    let to_send = prepared.targeted - prepared.excluded_by_reason.values().sum::<u64>();
    let now = engine.clock.now();
    // The last chunk, the end of preparation and (due now) the first claim
    // in one store call: most runs have a single chunk.
    let (Transition::Done(after), claimed) = store
        .finish_and_claim(
            run,
            &engine.owner,
            &prepared,
            last.as_ref(),
            engine.lease_until(),
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    info!(delivery_id = %run.delivery_id, run_id = %run.id, targeted = prepared.targeted, to_send, state = %after.state, "Run prepared.");
    crate::http::webhook::announce_pending(engine, &after);
    Ok(Some(Ready {
        run: *after,
        snapshot: Snapshot { delivery, renderer },
        claimed,
    }))
}

/// The definition run `id` was created from, whose hash is
/// `definition_hash`: the loaded delivery when it has that hash (the
/// snapshot would read back as it, but for the file's path, which only
/// listings show), else the snapshot. `None`: the store has no snapshot;
/// `Err` says why it cannot be read.
pub async fn load_snapshot(
    engine: &Engine,
    id: &RunId,
    definition_hash: &str,
) -> StoreResult<Option<Result<Arc<Delivery>, String>>> {
    let loaded = engine
        .deliveries
        .borrow()
        .get(id.delivery_id())
        .filter(|d| d.definition_hash() == definition_hash)
        .cloned();
    if let Some(delivery) = loaded {
        return Ok(Some(Ok(delivery)));
    }
    let Some(definition) = engine.store.definition(id).await? else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_str(&definition)
            .map(Arc::new)
            .map_err(|e| format!("the definition snapshot cannot be read: {e}")),
    ))
}

async fn fail(engine: &Engine, run: &Run, reason: &str) -> StoreResult<Option<Ready>> {
    warn!(delivery_id = %run.delivery_id, run_id = %run.id, reason, "Run failed during preparation.");
    engine
        .store
        .fail_run(&run.id, reason, engine.clock.now())
        .await?;
    Ok(None)
}

/// Streams the audience from a blocking reader thread, a batch at a time,
/// so a million-row CSV never sits in memory whole.
fn read_audience(
    delivery: &Delivery,
    run_id: &RunId,
) -> mpsc::Receiver<Result<Vec<AudienceRow>, String>> {
    let (tx, rx) = mpsc::channel(2);
    let audience = delivery.audience().clone();
    let run_id = run_id.clone();
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(ROWS_PER_READ);
        for row in audience.rows() {
            match row {
                Ok(row) => batch.push(row),
                // A malformed row is not a recipient; the rest still is.
                Err(error) if error.is_row_error() => {
                    warn!(delivery_id = run_id.delivery_id(), run_id = %run_id, %error, "Audience row skipped.");
                }
                Err(error) => {
                    let _ = tx.blocking_send(Err(error.to_string()));
                    return;
                }
            }
            if batch.len() == ROWS_PER_READ {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(ROWS_PER_READ));
                if tx.blocking_send(Ok(full)).is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
    });
    rx
}

/// A batch of rows classified, waiting for its suppression lookup.
struct Classified {
    candidates: Vec<FrozenRecipient>,
    /// Rows left out already (duplicates, bad or missing addresses).
    excluded: Vec<RecipientOutcome>,
    lookup: tokio::task::JoinHandle<StoreResult<Vec<Option<crate::store::SuppressionList>>>>,
    /// When the batch was classified: the instant of its exclusions.
    at: chrono::DateTime<chrono::Utc>,
}

/// Accumulates recipients into chunks and counts exclusions.
struct Freezer<'a> {
    engine: &'a Engine,
    run: &'a Run,
    channel: ChannelInfo,
    renderer: &'a Renderer,
    /// Hashes of the ids seen: 8 bytes per row instead of the id itself
    /// (already hashed, so the set does not hash them again).
    seen: HashSet<u64, BuildHasherDefault<Prehashed>>,
    hasher: std::hash::RandomState,
    targeted: u64,
    excluded: BTreeMap<ExclusionReason, u64>,
    pending: Vec<FrozenRecipient>,
    /// The last batch classified, its suppression lookup on its way
    /// while the next batch is classified.
    looking_up: Option<Classified>,
    /// Chunks being written; preparation fails if any write does.
    writes: JoinSet<StoreResult<()>>,
    chunks: u32,
    preview: Option<Preview>,
    /// When the preparation lease was last taken or renewed.
    claimed: std::time::Instant,
}

impl<'a> Freezer<'a> {
    fn new(engine: &'a Engine, run: &'a Run, channel: ChannelInfo, renderer: &'a Renderer) -> Self {
        Freezer {
            engine,
            run,
            channel,
            renderer,
            seen: HashSet::default(),
            hasher: std::hash::RandomState::new(),
            targeted: 0,
            excluded: BTreeMap::new(),
            pending: Vec::new(),
            looking_up: None,
            writes: JoinSet::new(),
            chunks: 0,
            preview: None,
            claimed: std::time::Instant::now(),
        }
    }

    /// Classifies a batch of rows and starts looking up their addresses in
    /// the suppression lists; settles the batch before it meanwhile.
    async fn add(&mut self, rows: Vec<AudienceRow>) -> StoreResult<()> {
        let now = self.engine.clock.now();
        let mut excluded = Vec::new();
        let mut candidates = Vec::with_capacity(rows.len());
        for row in rows {
            self.targeted += 1;
            match self.classify(row) {
                Ok(recipient) => candidates.push(recipient),
                Err((recipient_id, address, reason)) => {
                    excluded.push(exclusion(recipient_id, address, reason, now));
                }
            }
        }
        let addresses: Vec<String> = candidates.iter().map(|r| r.address.clone()).collect();
        let store = self.engine.store.clone();
        let lookup = tokio::spawn(async move { store.suppressed(&addresses).await });
        let classified = Classified {
            candidates,
            excluded,
            lookup,
            at: now,
        };
        match self.looking_up.replace(classified) {
            Some(previous) => self.settle(previous).await,
            None => Ok(()),
        }
    }

    /// Applies a batch's suppression lookup, records its exclusions and
    /// writes the chunks it fills.
    async fn settle(&mut self, batch: Classified) -> StoreResult<()> {
        let Classified {
            candidates,
            mut excluded,
            lookup,
            at,
        } = batch;
        let lists = lookup.await.map_err(|error| {
            crate::store::StoreError::Other(format!("a suppression lookup stopped: {error}"))
        })??;
        for (recipient, list) in candidates.into_iter().zip(lists) {
            match list {
                Some(list) => {
                    let reason = match list {
                        crate::store::SuppressionList::Quarantine => ExclusionReason::Quarantined,
                        crate::store::SuppressionList::Denylist => ExclusionReason::Denylisted,
                    };
                    excluded.push(exclusion(recipient.id, recipient.address, reason, at));
                }
                None => self.keep(recipient),
            }
        }
        for outcome in &excluded {
            let reason = outcome.reason.expect("exclusions carry a reason");
            *self.excluded.entry(reason).or_default() += 1;
        }
        // A repeated id is the same recipient as its first row, whose
        // outcome is the one that counts: it is counted, never recorded.
        excluded.retain(|o| o.reason != Some(ExclusionReason::Duplicate));
        if !excluded.is_empty() {
            self.engine
                .store
                .record_outcomes(&self.run.id, &excluded)
                .await?;
        }
        while self.pending.len() >= self.engine.settings.chunk_size {
            let rest = self.pending.split_off(self.engine.settings.chunk_size);
            let full = std::mem::replace(&mut self.pending, rest);
            self.write_chunk(full).await?;
        }
        Ok(())
    }

    /// The recipient to send to, or why the row is left out.
    fn classify(
        &mut self,
        row: AudienceRow,
    ) -> Result<FrozenRecipient, (String, String, ExclusionReason)> {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(row.id.as_bytes());
        if !self.seen.insert(hasher.finish()) {
            return Err((row.id, String::new(), ExclusionReason::Duplicate));
        }
        let address = match &self.channel.address_column {
            None => row.id.clone(),
            Some(column) => {
                let raw = row.fields.get(column).map(|v| v.trim()).unwrap_or("");
                if raw.is_empty() {
                    return Err((row.id, String::new(), ExclusionReason::NoAddress));
                }
                match normalise_address(self.channel.normalise, raw) {
                    Ok(address) => address,
                    Err(_) => {
                        return Err((row.id, raw.to_owned(), ExclusionReason::InvalidAddress));
                    }
                }
            }
        };
        Ok(FrozenRecipient {
            id: row.id,
            address,
            fields: Arc::new(row.fields),
        })
    }

    fn keep(&mut self, recipient: FrozenRecipient) {
        if self.preview.is_none() {
            let rendered = self.renderer.render_recipient(
                &recipient.id,
                &recipient.fields,
                self.run.id.as_str(),
            );
            if let Ok(rendered) = rendered {
                self.preview = Some(Preview {
                    recipient_id: recipient.id.clone(),
                    content: rendered.content,
                });
            }
        }
        self.pending.push(recipient);
    }

    async fn write_chunk(&mut self, recipients: Vec<FrozenRecipient>) -> StoreResult<()> {
        let chunk = Chunk {
            number: self.chunks,
            recipients,
        };
        while self.writes.len() >= CHUNK_WRITES_IN_FLIGHT {
            self.wrote().await?;
        }
        let store = self.engine.store.clone();
        let run_id = self.run.id.clone();
        self.writes
            .spawn(async move { store.put_chunk(&run_id, &chunk).await });
        self.chunks += 1;
        // Keep the preparation lease while a long audience streams in
        // (a third of the lease at a time, like a chunk's).
        let engine = self.engine;
        if self.claimed.elapsed() >= engine.settings.lease / 3 {
            self.claimed = std::time::Instant::now();
            engine
                .store
                .claim_preparation(
                    &self.run.id,
                    &engine.owner,
                    engine.lease_until(),
                    engine.clock.now(),
                )
                .await?;
        }
        Ok(())
    }

    /// Waits for one chunk write to end; its error ends the preparation
    /// (the others are aborted when the set is dropped).
    async fn wrote(&mut self) -> StoreResult<()> {
        match self.writes.join_next().await {
            Some(Ok(written)) => written,
            Some(Err(error)) => Err(crate::store::StoreError::Other(format!(
                "a chunk write stopped: {error}"
            ))),
            None => Ok(()),
        }
    }

    /// The counts, and the last chunk still to write (with them), once
    /// every earlier chunk is written.
    async fn finish(mut self) -> StoreResult<(Prepared, Option<Chunk>)> {
        if let Some(last) = self.looking_up.take() {
            self.settle(last).await?;
        }
        while !self.writes.is_empty() {
            self.wrote().await?;
        }
        let last = (!self.pending.is_empty()).then_some(Chunk {
            number: self.chunks,
            recipients: self.pending,
        });
        let prepared = Prepared {
            targeted: self.targeted,
            excluded_by_reason: self.excluded,
            chunks: self.chunks + u32::from(last.is_some()),
            preview: self.preview,
        };
        Ok((prepared, last))
    }
}

fn exclusion(
    recipient_id: String,
    address: String,
    reason: ExclusionReason,
    at: chrono::DateTime<chrono::Utc>,
) -> RecipientOutcome {
    RecipientOutcome {
        recipient_id,
        address,
        outcome: Outcome::Excluded,
        reason: Some(reason),
        provider_message_id: None,
        detail: None,
        at,
    }
}

/// A hasher for keys that are hashes already: passes the `u64` through.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with it; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
