//! The history indexer: writes the new outcomes that `record_outcomes.lua`
//! queued in each run's slot (`:unindexed`) into their recipients' history
//! keys, off the sending hot path.
//!
//! A recipient's history key lives in a slot of its own, so writing it
//! costs Redis a command per recipient; done while sending, that was more
//! than half of Redis's work per recipient (benches/README.md, P1). The
//! indexer takes a run once it has stopped sending and this instance has
//! recorded nothing for [`QUIET`], or once it has been queued longer than
//! [`MAX_LAG`] (a long send does not grow its queue without end). History reads merge the queued outcomes, so a
//! reader never sees the lag. Each instance indexes; a queued batch goes
//! to one of them at a time, under a lease, and leaves the run's slot only
//! once written (`take_unindexed.lua`, `done_indexing.lua`): an indexer
//! that crashes or loses Redis between taking and writing loses no entry.
//! That matters beyond reads: erasing a profile finds the runs to erase in
//! the recipient's history.

use super::codec::micros;
use super::connection::RedisConn;
use super::keys::{self, GlobalKeys, RunKeys};
use super::scripts;
use crate::runs::RunId;
use redis::{RedisError, RedisResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Queued batches (of up to `sending.batch_size` outcomes) taken per call.
const BATCHES_PER_CALL: usize = 40;
/// How long the instance must have recorded nothing before it indexes.
const QUIET: Duration = Duration::from_millis(500);
/// A run queued this long is indexed even while outcomes keep coming.
const MAX_LAG: Duration = Duration::from_secs(60);
/// How often the indexer looks for work.
const TICK: Duration = Duration::from_millis(250);
/// Pending runs looked at per tick, oldest first.
const RUNS_PER_TICK: isize = 64;
/// How long batches taken by an indexer are its own: far longer than
/// writing them takes, so that only a crashed or cut-off indexer's are
/// taken over.
const LEASE: Duration = Duration::from_secs(30);

/// What indexing a run's queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Indexed {
    /// What was taken is written; this many batches are still queued
    /// (a batch another indexer took over counts as one).
    Left(u64),
    /// Another indexer holds batches of this run: it stays pending.
    Busy,
}

/// The store's handle on its indexer; dropping the last one stops it.
pub(super) struct Indexer {
    quiet: Arc<Quiet>,
    owner: Arc<str>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When this instance last recorded outcomes.
struct Quiet {
    start: Instant,
    last_ms: AtomicU64,
}

impl Quiet {
    fn since_last(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

impl Indexer {
    /// Starts the indexing task on `conn`.
    pub(super) fn start(conn: RedisConn, prefix: String, global: Arc<GlobalKeys>) -> Indexer {
        let quiet = Arc::new(Quiet {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        // Leases tell indexers apart, not instances: one per store.
        let owner: Arc<str> =
            format!("{}-{:016x}", std::process::id(), rand::random::<u64>()).into();
        let task = tokio::spawn(work(conn, prefix, global, owner.clone(), quiet.clone()));
        Indexer { quiet, owner, task }
    }

    /// The name this store's indexer takes batches under.
    pub(super) fn owner(&self) -> &str {
        &self.owner
    }

    /// Notes that outcomes are being recorded: indexing waits.
    pub(super) fn recorded(&self) {
        let now = self.quiet.start.elapsed().as_millis() as u64;
        self.quiet.last_ms.store(now, Ordering::Relaxed);
    }
}

/// Indexes pending runs that stopped sending while the instance is quiet,
/// and those that waited too long; a full page of pending runs indexed is
/// followed by the next at once (a burst of one-recipient runs leaves
/// thousands).
async fn work(
    conn: RedisConn,
    prefix: String,
    global: Arc<GlobalKeys>,
    owner: Arc<str>,
    quiet: Arc<Quiet>,
) {
    let mut more = false;
    loop {
        if !more {
            tokio::time::sleep(TICK).await;
        }
        more = false;
        let overdue = micros(chrono::Utc::now()) - MAX_LAG.as_micros() as i64;
        let pending: Vec<(String, f64)> = match redis::cmd("ZRANGE")
            .arg(&global.history_pending)
            .arg(0)
            .arg(RUNS_PER_TICK - 1)
            .arg("WITHSCORES")
            .query_async(&mut conn.clone())
            .await
        {
            Ok(pending) => pending,
            Err(_) => continue, // Redis away: the next tick tries again.
        };
        let full = pending.len() == RUNS_PER_TICK as usize;
        for (run, since) in pending {
            if since as i64 > overdue
                && (quiet.since_last() < QUIET || still_sending(&conn, &prefix, &run).await)
            {
                continue;
            }
            loop {
                match index_run(&conn, &prefix, &global, &owner, &run).await {
                    Ok(Indexed::Left(0)) => {
                        more = full;
                        break;
                    }
                    Ok(Indexed::Left(_)) => tokio::task::yield_now().await,
                    Ok(Indexed::Busy) => break,
                    Err(error) => {
                        tracing::debug!(run_id = %run, %error, "Could not index history; will try again.");
                        break;
                    }
                }
            }
        }
    }
}

/// Whether run `run` is still sending (on any instance): its history
/// waits until it stops, so an idle instance does not take Redis from it.
async fn still_sending(conn: &RedisConn, prefix: &str, run: &str) -> bool {
    let Ok(id) = run.parse::<RunId>() else {
        return false;
    };
    let state: Option<String> = redis::cmd("HGET")
        .arg(RunKeys::new(prefix, &id).run)
        .arg("state")
        .query_async(&mut conn.clone())
        .await
        .unwrap_or(None);
    state.as_deref() == Some("sending")
}

/// Writes up to [`BATCHES_PER_CALL`] queued batches of run `run` into
/// their recipients' history as indexer `owner` (first any it took and
/// did not write); says how many batches are left. A run with none left,
/// and none held by an indexer, leaves the pending index.
pub(super) async fn index_run(
    conn: &RedisConn,
    prefix: &str,
    global: &GlobalKeys,
    owner: &str,
    run: &str,
) -> RedisResult<Indexed> {
    let Ok(id) = run.parse::<RunId>() else {
        // Not a run id: nothing can be queued under it.
        redis::cmd("ZREM")
            .arg(&global.history_pending)
            .arg(run)
            .query_async::<i64>(&mut conn.clone())
            .await?;
        return Ok(Indexed::Left(0));
    };
    let k = RunKeys::new(prefix, &id);
    let now = chrono::Utc::now();
    let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let reply: Vec<String> = scripts::TAKE_UNINDEXED
        .key(&k.unindexed)
        .key(&k.outcomes)
        .key(&k.indexing)
        .arg(BATCHES_PER_CALL)
        .arg(owner)
        .arg(micros(now))
        .arg(micros(lease_until))
        .invoke_async(&mut conn.clone())
        .await?;
    let [left, taken, entries @ ..] = reply.as_slice() else {
        return Err(malformed());
    };
    let left: u64 = left.parse().map_err(|_| malformed())?;
    match taken.as_str() {
        "0" => {}
        "1" => write_taken(conn, prefix, global, owner, run, &k, entries).await?,
        "2" => return Ok(Indexed::Busy),
        _ => return Err(malformed()),
    }
    if left == 0 {
        // Unmark, then look again: a batch queued meanwhile was either
        // marked after the unmark, or is seen here and marked again; and
        // batches another indexer took over keep the run pending.
        redis::cmd("ZREM")
            .arg(&global.history_pending)
            .arg(run)
            .query_async::<i64>(&mut conn.clone())
            .await?;
        let (queued, held): (u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(&k.unindexed)
            .cmd("EXISTS")
            .arg(&k.indexing)
            .query_async(&mut conn.clone())
            .await?;
        let still = queued + held;
        if still > 0 {
            redis::cmd("ZADD")
                .arg(&global.history_pending)
                .arg("NX")
                .arg(micros(chrono::Utc::now()))
                .arg(run)
                .query_async::<i64>(&mut conn.clone())
                .await?;
            return Ok(Indexed::Left(still));
        }
    }
    Ok(Indexed::Left(left))
}

/// Writes the entries indexer `owner` took of run `run` into their
/// recipients' history, then lets the batches they came from go (all of
/// them: an entry left out was erased).
async fn write_taken(
    conn: &RedisConn,
    prefix: &str,
    global: &GlobalKeys,
    owner: &str,
    run: &str,
    k: &RunKeys,
    entries: &[String],
) -> RedisResult<()> {
    if !entries.is_empty() {
        let mut pipe = redis::pipe();
        // Retention finds old history through each recipient's oldest entry.
        let mut due = redis::cmd("ZADD");
        due.arg(&global.history_due).arg("LT");
        for pair in entries.chunks(2) {
            let [recipient, us] = pair else {
                return Err(malformed());
            };
            pipe.cmd("ZADD")
                .arg(keys::history(prefix, recipient))
                .arg("NX")
                .arg(us)
                .arg(run)
                .ignore();
            due.arg(us).arg(recipient);
        }
        pipe.add_command(due).ignore();
        pipe.query_async::<()>(&mut conn.clone()).await?;
        forget_erased(conn, prefix, k, run, entries).await?;
    }
    scripts::DONE_INDEXING
        .key(&k.indexing)
        .arg(owner)
        .invoke_async::<i64>(&mut conn.clone())
        .await?;
    Ok(())
}

/// Takes back the entries just written whose outcome went meanwhile. An
/// erasure removes the outcome before the history entry, so an entry this
/// indexer wrote after the erasure looked is found here, and one written
/// before is removed by the erasure itself: none outlives its outcome.
pub(super) async fn forget_erased(
    conn: &RedisConn,
    prefix: &str,
    k: &RunKeys,
    run: &str,
    entries: &[String],
) -> RedisResult<()> {
    let recipients: Vec<&String> = entries.iter().step_by(2).collect();
    let still: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&k.outcomes)
        .arg(&recipients)
        .query_async(&mut conn.clone())
        .await?;
    let mut pipe = redis::pipe();
    let mut any = false;
    for (recipient, record) in recipients.iter().zip(still) {
        if record.is_none() {
            pipe.cmd("ZREM")
                .arg(keys::history(prefix, recipient))
                .arg(run)
                .ignore();
            any = true;
        }
    }
    if any {
        pipe.query_async::<()>(&mut conn.clone()).await?;
    }
    Ok(())
}

fn malformed() -> RedisError {
    RedisError::from((
        redis::ErrorKind::Client,
        "take_unindexed.lua answered something else than {left, taken, id, µs, ...}",
    ))
}
