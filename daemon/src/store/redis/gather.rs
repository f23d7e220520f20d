//! Writes to the global `{P}` slot that many runs make at once, gathered:
//! the agenda instants that run scripts return, and the announcements
//! that a run may be due sooner.
//!
//! Thousands of one-recipient runs due at one instant each run a handful
//! of run scripts; one `agenda_apply.lua` call per script was a third of
//! Redis's work. Here every instant waiting when a call goes out rides in
//! it (group commit), and the caller still waits until its instant is
//! applied, so a run's operations and the agenda they leave behind follow
//! each other as with one call each. The crash argument is unchanged
//! (`README.md`, "The agenda across slots"): an instant not applied yet
//! leaves the entry the run had before, early when it matters.
//!
//! An instant that only moves a due run's entry later (a run just started
//! is next due when its lease ends) goes out with the next call, and its
//! caller does not wait for it: a run starts sending one agenda call
//! sooner (benches/README.md, P4 session 10).

use super::connection::RedisConn;
use super::keys::GlobalKeys;
use super::{scripts, store_err};
use crate::store::{StoreError, StoreResult};
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

/// Most instants applied per call, so one call never holds Redis long.
const PER_CALL: usize = 512;

/// An instant waiting to be applied, and who waits for it (nobody when
/// deferred).
struct Entry {
    id: String,
    seq: i64,
    at: i64,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
}

/// The handle run scripts give their agenda instants to. Cheap to clone;
/// its tasks end with the last handle.
#[derive(Clone)]
pub(super) struct Gather {
    agenda: mpsc::UnboundedSender<Entry>,
    publish: Arc<Announcer>,
}

/// Wakes the publishing task; dropping the last handle stops it.
struct Announcer(Arc<Notify>, tokio::task::JoinHandle<()>);

impl Drop for Announcer {
    fn drop(&mut self) {
        self.1.abort();
    }
}

impl Gather {
    /// Starts the two tasks that write for every handle.
    pub(super) fn start(conn: RedisConn, global: Arc<GlobalKeys>) -> Gather {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(apply_agenda(conn.clone(), global.clone(), rx));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(publish(conn, global, wake.clone()));
        Gather {
            agenda: tx,
            publish: Arc::new(Announcer(wake, task)),
        }
    }

    /// Applies a run's agenda instant (µs, or -1: none) of sequence `seq`,
    /// with whatever other instants are waiting; returns once applied.
    pub(super) async fn apply(&self, id: &str, seq: i64, at: i64) -> StoreResult<()> {
        let (done, applied) = oneshot::channel();
        let entry = Entry {
            id: id.to_owned(),
            seq,
            at,
            done: Some(done),
        };
        let stopped = || StoreError::Unavailable("the agenda writer has stopped".to_owned());
        self.agenda.send(entry).map_err(|_| stopped())?;
        applied.await.map_err(|_| stopped())?
    }

    /// Applies a run's agenda instant of sequence `seq` with the next call,
    /// without waiting. Only for an instant no earlier than the run's
    /// entry: until it is written, or if it is lost, the entry is early,
    /// never late.
    pub(super) fn defer(&self, id: &str, seq: i64, at: i64) {
        // A stopped writer is a stopped store: the next awaited apply says so.
        let _ = self.agenda.send(Entry {
            id: id.to_owned(),
            seq,
            at,
            done: None,
        });
    }

    /// Publishes "a run may be due sooner" to the other instances soon:
    /// announcements made while one is on its way go out as one. A hint
    /// only (each instance also looks at the agenda every few seconds), so
    /// the caller does not wait for it.
    pub(super) fn announce(&self) {
        self.publish.0.notify_one();
    }
}

/// Applies the waiting instants, as many per call as are waiting.
async fn apply_agenda(
    conn: RedisConn,
    global: Arc<GlobalKeys>,
    mut rx: mpsc::UnboundedReceiver<Entry>,
) {
    let mut batch = Vec::with_capacity(PER_CALL);
    while rx.recv_many(&mut batch, PER_CALL).await > 0 {
        let mut invocation = scripts::AGENDA_APPLY.key(&global.agenda);
        invocation.key(&global.agenda_seq);
        for entry in &batch {
            invocation.arg(&entry.id).arg(entry.seq).arg(entry.at);
        }
        let result = invocation
            .invoke_async::<i64>(&mut conn.clone())
            .await
            .map(|_| ())
            .map_err(store_err);
        if let Err(error) = &result {
            // Deferred instants have nobody to tell: their runs' entries stay early.
            tracing::debug!(%error, "Could not apply agenda instants.");
        }
        for entry in batch.drain(..) {
            if let Some(done) = entry.done {
                let _ = done.send(result.as_ref().map(|_| ()).map_err(copy));
            }
        }
    }
}

/// The same error again, for each caller of a gathered call.
pub(super) fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Other(other.to_string()),
    }
}

/// Publishes once per wake-up; wake-ups during a publish make one more.
async fn publish(conn: RedisConn, global: Arc<GlobalKeys>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let sent = redis::cmd("PUBLISH")
            .arg(&global.changes)
            .arg(1)
            .query_async::<i64>(&mut conn.clone())
            .await;
        if let Err(error) = sent {
            tracing::debug!(%error, "Could not announce a change to the other instances.");
        }
    }
}
