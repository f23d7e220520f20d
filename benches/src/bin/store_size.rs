//! Store size: the Redis memory one run costs per recipient, measured
//! with `INFO memory` (`used_memory`) around a run written through the
//! real store operations (create, chunks, outcomes with provider ids,
//! history), then after retention purged it (what the history keeps).
//!
//! `store_size [RECIPIENTS] [RUNS]` (defaults 100000 and 2), on a private
//! redis-server started by herald-test-support. The first run also pays
//! each recipient's own keys (history, `history_due`); the later ones show
//! the cost per run alone.

use anyhow::{Context, Result};
use chrono::{Duration, TimeZone, Utc};
use herald::runs::{Outcome, RunId};
use herald::store::redis::{RedisSettings, RedisStore};
use herald::store::{Chunk, FrozenRecipient, NewRun, Prepared, RecipientOutcome, Step, Store};
use herald_test_support::RedisServer;
use std::collections::BTreeMap;

/// Recipients per chunk and per outcome batch, as the daemon's defaults.
const CHUNK: usize = 1000;
const BATCH: usize = 500;
/// The key prefix of the bench's store.
const PREFIX: &str = "herald";

#[tokio::main]
async fn main() -> Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (n, runs) = (arg(1, 100_000), arg(2, 2).max(2));
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisSettings {
        url: server.url(),
        key_prefix: PREFIX.to_owned(),
    })
    .await?;
    let mut raw = redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?;

    let base = used_memory(&mut raw).await?;
    let mut ids = Vec::new();
    let mut last = base;
    let mut per_run = Vec::new();
    for r in 0..runs {
        let id = write_run(&store, n, r).await?;
        indexed(&mut raw).await?;
        let now = used_memory(&mut raw).await?;
        per_run.push((now - last) as f64 / n as f64);
        println!(
            "run {r}: +{} bytes, {:.0} bytes per recipient",
            now - last,
            per_run[r]
        );
        last = now;
        ids.push(id);
    }
    breakdown(&mut raw, &ids[0], n).await?;
    let run_cost = per_run[1..].iter().sum::<f64>() / (runs - 1) as f64;
    let recipient_cost = per_run[0] - run_cost;

    while store.purge_run(&ids[0], BATCH).await? != Step::Done {}
    // UNLINK frees in the background: let it finish before measuring.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after_purge = used_memory(&mut raw).await?;
    let archived = run_cost - (last - after_purge) as f64 / n as f64;
    println!("per recipient per run while within retention.runs: {run_cost:.0} bytes");
    println!("per recipient, once (history key, history_due): {recipient_cost:.0} bytes");
    println!(
        "per recipient per run after the run's purge (its history entry): {archived:.0} bytes"
    );

    let (audience, live_runs, history_runs) = (1_000_000f64, 12f64, 48f64);
    let total = audience
        * (recipient_cost + live_runs * run_cost + (history_runs - live_runs) * archived.max(0.0));
    println!(
        "1M recipients, 4 runs a month, retention.runs 90d ({live_runs} runs live), retention.history 365d ({history_runs} runs in history): {:.1} GiB",
        total / f64::from(1 << 30)
    );
    Ok(())
}

/// Writes a run of `n` recipients through the store: created, frozen in
/// chunks, every recipient `delivered` with a provider id, sent.
async fn write_run(store: &RedisStore, n: usize, r: usize) -> Result<RunId> {
    let at = Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap() + Duration::days(7 * r as i64);
    let id = RunId::at("weekly-digest", at);
    let definition = r#"{"id":"weekly-digest","channel":"email"}"#.to_owned();
    store
        .create_run(&NewRun {
            id: id.clone(),
            delivery_id: "weekly-digest".to_owned(),
            channel: "email".to_owned(),
            scheduled_for: at,
            confirm_deadline: at,
            confirm_required: false,
            aggregation_period: None,
            definition,
            definition_hash: "sha256:00".to_owned(),
            throttle_per_second: None,
            created_at: at,
        })
        .await?;
    anyhow::ensure!(
        store
            .claim_preparation(&id, "bench", at + Duration::hours(1), at)
            .await?,
        "cannot claim the preparation of {id}"
    );
    let chunks = n.div_ceil(CHUNK);
    for c in 0..chunks {
        let recipients = (c * CHUNK..n.min((c + 1) * CHUNK))
            .map(|i| FrozenRecipient {
                id: format!("c{i:07}"),
                address: format!("customer{i:07}@example.com"),
                fields: std::sync::Arc::new(BTreeMap::from([
                    ("first_name".to_owned(), format!("Name{i}")),
                    ("city".to_owned(), "Lyon".to_owned()),
                ])),
            })
            .collect();
        store
            .put_chunk(
                &id,
                &Chunk {
                    number: c as u32,
                    recipients,
                },
            )
            .await?;
    }
    let prepared = Prepared {
        targeted: n as u64,
        excluded_by_reason: BTreeMap::new(),
        chunks: chunks as u32,
        preview: None,
    };
    store
        .finish_preparation(&id, "bench", &prepared, at)
        .await?;
    let lease = at + Duration::hours(1);
    while let Some(claimed) = store.claim_chunk(&id, "bench", lease, at).await? {
        for batch in claimed.recipients.chunks(BATCH) {
            let outcomes: Vec<RecipientOutcome> = batch
                .iter()
                .map(|row| RecipientOutcome {
                    recipient_id: row.id.clone(),
                    address: row.address.clone(),
                    outcome: Outcome::Delivered,
                    reason: None,
                    // The shape of an Amazon SES message id (60 characters).
                    provider_message_id: Some(format!(
                        "0102018c{r:08x}-{}-1234-5678-9abc-def012345678-000000",
                        &row.id[1..]
                    )),
                    detail: None,
                    at,
                })
                .collect();
            store.record_outcomes(&id, &outcomes).await?;
        }
        store
            .complete_chunk(&id, claimed.number, "bench", at)
            .await?;
    }
    Ok(id)
}

/// Waits until the store's history indexer has written every queued
/// outcome into its recipient's history (it starts once recording stops).
async fn indexed(raw: &mut redis::aio::MultiplexedConnection) -> Result<()> {
    loop {
        let pending: i64 = redis::cmd("ZCARD")
            .arg("herald:{herald}:history_pending")
            .query_async(raw)
            .await?;
        if pending == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `used_memory` of `INFO memory`.
async fn used_memory(raw: &mut redis::aio::MultiplexedConnection) -> Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(raw).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

/// `MEMORY USAGE` of each kind of key, per recipient.
async fn breakdown(
    raw: &mut redis::aio::MultiplexedConnection,
    id: &RunId,
    n: usize,
) -> Result<()> {
    let run = |suffix: &str| format!("{PREFIX}:{{{PREFIX}:{id}}}:{suffix}");
    let global = |suffix: &str| format!("{PREFIX}:{{{PREFIX}}}:{suffix}");
    let history = format!("{PREFIX}:{{{PREFIX}:h:c0000042}}:history");
    for (what, key, per) in [
        ("chunks (frozen audience)", run("chunks"), n),
        ("chunk_ids", run("chunk_ids"), n),
        ("outcomes", run("outcomes"), n),
        ("messages (provider ids, all runs)", global("messages"), n),
        ("history_due (all recipients)", global("history_due"), n),
        ("one recipient's history", history, 1),
    ] {
        let bytes: Option<i64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(raw)
            .await?;
        println!(
            "  {what}: {:.0} bytes per recipient",
            bytes.unwrap_or(0) as f64 / per as f64
        );
    }
    Ok(())
}
