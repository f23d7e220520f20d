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
//! reader never sees the lag. Each instance indexes; `LPOP` hands every
//! queued batch to one of them. A crash between the pop and the writes
//! loses those history entries (their outcomes stay), as a crash between
//! two pipelined writes always could.

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

/// The store's handle on its indexer; dropping the last one stops it.
pub(super) struct Indexer {
    quiet: Arc<Quiet>,
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
        let task = tokio::spawn(work(conn, prefix, global, quiet.clone()));
        Indexer { quiet, task }
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
async fn work(conn: RedisConn, prefix: String, global: Arc<GlobalKeys>, quiet: Arc<Quiet>) {
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
                match index_run(&conn, &prefix, &global, &run).await {
                    Ok(0) => {
                        more = full;
                        break;
                    }
                    Ok(_) => tokio::task::yield_now().await,
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
/// their recipients' history; returns how many batches are left. A run
/// with none left leaves the pending index.
pub(super) async fn index_run(
    conn: &RedisConn,
    prefix: &str,
    global: &GlobalKeys,
    run: &str,
) -> RedisResult<u64> {
    let Ok(id) = run.parse::<RunId>() else {
        // Not a run id: nothing can be queued under it.
        redis::cmd("ZREM")
            .arg(&global.history_pending)
            .arg(run)
            .query_async::<i64>(&mut conn.clone())
            .await?;
        return Ok(0);
    };
    let k = RunKeys::new(prefix, &id);
    let taken: Vec<String> = scripts::TAKE_UNINDEXED
        .key(&k.unindexed)
        .key(&k.outcomes)
        .arg(BATCHES_PER_CALL)
        .invoke_async(&mut conn.clone())
        .await?;
    let (left, entries) = taken.split_first().ok_or_else(malformed)?;
    let left: u64 = left.parse().map_err(|_| malformed())?;
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
        forget_erased(conn, prefix, &k, run, entries).await?;
    }
    if left == 0 {
        // Unmark, then look again: a batch queued meanwhile was either
        // marked after the unmark, or is seen here and marked again.
        redis::cmd("ZREM")
            .arg(&global.history_pending)
            .arg(run)
            .query_async::<i64>(&mut conn.clone())
            .await?;
        let still: u64 = redis::cmd("LLEN")
            .arg(&k.unindexed)
            .query_async(&mut conn.clone())
            .await?;
        if still > 0 {
            redis::cmd("ZADD")
                .arg(&global.history_pending)
                .arg("NX")
                .arg(micros(chrono::Utc::now()))
                .arg(run)
                .query_async::<i64>(&mut conn.clone())
                .await?;
            return Ok(still);
        }
    }
    Ok(left)
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
        "take_unindexed.lua answered something else than {left, id, µs, ...}",
    ))
}
