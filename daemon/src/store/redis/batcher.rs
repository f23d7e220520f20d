//! Calls that many runs make at once, gathered (group commit): every
//! request waiting when a call goes out rides in it, and each caller waits
//! for its own reply. Thousands of one-recipient runs due at one instant
//! each create a run, end its preparation and record its last batch; one
//! script call per run cost Redis about half of what the script does, and
//! the daemon a round trip each (benches/README.md, P4).
//!
//! Run scripts are gathered only on one Redis server (or a Sentinel
//! master), where every slot lives: on a Redis Cluster each run's keys
//! have a slot of their own, and the store calls such scripts once per
//! run. Calls on the global `{P}` keys alone (suppression lookups) are
//! gathered on any topology.

use super::connection::RedisConn;
use super::gather::copy;
use super::store_err;
use crate::store::{StoreError, StoreResult};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Whether a call carries its requests for the first time, or one
/// request again, alone, after the call it was in failed (the scripts may
/// have run part of that call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// The requests' first call.
    First,
    /// One request again, alone.
    Again,
}

/// A request waiting for a call, and who waits for its reply.
struct Waiting<Q, A> {
    request: Q,
    done: oneshot::Sender<StoreResult<A>>,
}

/// The handle callers give requests to; its task ends with the last handle.
pub(super) struct Batcher<Q, A>(mpsc::UnboundedSender<Waiting<Q, A>>);

impl<Q, A> Clone for Batcher<Q, A> {
    fn clone(&self) -> Self {
        Batcher(self.0.clone())
    }
}

impl<Q: Clone + Send + Sync + 'static, A: Send + 'static> Batcher<Q, A> {
    /// Starts the task that makes `call` with up to `per_call` waiting
    /// requests at a time (so one call never holds Redis long); `call`
    /// returns one reply per request, in order. `what` names the calls in
    /// errors.
    pub(super) fn start<F, Fut>(what: &'static str, per_call: usize, call: F) -> Self
    where
        F: Fn(Arc<[Q]>, Attempt) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<Vec<A>>> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiting<Q, A>>();
        tokio::spawn(async move {
            let mut waiting = Vec::with_capacity(per_call);
            while rx.recv_many(&mut waiting, per_call).await > 0 {
                let (requests, done): (Vec<_>, Vec<_>) =
                    waiting.drain(..).map(|w| (w.request, w.done)).unzip();
                let requests: Arc<[Q]> = requests.into();
                let first = call(requests.clone(), Attempt::First).await;
                let replies = match one_each(what, requests.len(), first) {
                    Ok(replies) => replies.into_iter().map(Ok).collect(),
                    // Not an outage: maybe one request's fault (a corrupt
                    // run's script error stops the whole script). Each is
                    // tried alone, so it fails alone and not its neighbours
                    // in every call it lands in. The scripts are safe to
                    // repeat after a partial run.
                    Err(error)
                        if requests.len() > 1 && !matches!(error, StoreError::Unavailable(_)) =>
                    {
                        let mut replies = Vec::with_capacity(requests.len());
                        for request in requests.iter() {
                            let alone: Arc<[Q]> = Arc::new([request.clone()]);
                            let reply = one_each(what, 1, call(alone, Attempt::Again).await)
                                .map(|mut one| one.pop().expect("one reply, checked"));
                            replies.push(reply);
                        }
                        replies
                    }
                    Err(error) => done.iter().map(|_| Err(copy(&error))).collect(),
                };
                for (done, reply) in done.into_iter().zip(replies) {
                    let _ = done.send(reply);
                }
            }
        });
        Batcher(tx)
    }

    /// Sends `request` with whatever else is waiting; returns its reply.
    pub(super) async fn call(&self, request: Q) -> StoreResult<A> {
        let (done, replied) = oneshot::channel();
        let stopped =
            || StoreError::Unavailable("the store's call gatherer has stopped".to_owned());
        self.0
            .send(Waiting { request, done })
            .map_err(|_| stopped())?;
        replied.await.map_err(|_| stopped())?
    }
}

/// A call's replies, checked to be one per request.
fn one_each<A>(what: &str, asked: usize, replies: StoreResult<Vec<A>>) -> StoreResult<Vec<A>> {
    match replies {
        Ok(replies) if replies.len() != asked => Err(StoreError::Corrupt {
            key: format!("{what} reply"),
            problem: format!("not one reply for each of {asked} runs"),
        }),
        other => other,
    }
}

/// Sends a pipeline that runs `script` in one round trip. A Redis
/// restarted without its script cache answers `NOSCRIPT`: the script is
/// loaded and the pipeline sent again, so every command in it must be
/// safe to repeat (the script did not run).
pub(super) async fn query_with_script<T: redis::FromRedisValue>(
    conn: &RedisConn,
    script: &redis::Script,
    pipe: &redis::Pipeline,
) -> StoreResult<T> {
    match pipe.query_async(&mut conn.clone()).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script
                .load_async(&mut conn.clone())
                .await
                .map_err(store_err)?;
            pipe.query_async(&mut conn.clone()).await.map_err(store_err)
        }
        other => other.map_err(store_err),
    }
}

/// A many-run script's reply split into one reply per run, in order.
pub(super) fn per_run(
    value: redis::Value,
    runs: usize,
    what: &str,
) -> StoreResult<Vec<redis::Value>> {
    match value {
        redis::Value::Array(replies) if replies.len() == runs => Ok(replies),
        _ => Err(StoreError::Corrupt {
            key: format!("{what} reply"),
            problem: format!("not one reply for each of {runs} runs"),
        }),
    }
}
