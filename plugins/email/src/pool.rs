//! The SMTP connections kept open between sends, each in its own lane: a
//! single-threaded tokio runtime that owns the connection's socket.
//!
//! The host calls the plugin on its own threads, one batch per call. A call
//! takes a lane for the whole batch, so its thread drives its connection's
//! I/O itself: a reply wakes the thread that waits for it, not a runtime
//! worker that then wakes it (two thread hops on every round trip when the
//! connections lived in one shared multi-thread runtime). At most
//! `max_idle` lanes are kept between calls; the host makes at most
//! `pool_size` calls at once, so that is also the number of connections
//! open.
//!
//! A parked connection is reused without a NOOP first: when the server has
//! closed it meanwhile, MAIL finds out before anything is sent, and the
//! message goes over a new connection
//! ([`crate::transaction::Failure::Stale`]). That saves a round trip per
//! message.

use crate::connector::{Connector, Session};
use crate::transaction::{self, Failure};
use lettre::address::Envelope;
use lettre::transport::smtp::response::Response;
use std::sync::Mutex;
use std::time::Duration;

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The TCP connection could not be opened (refused, unreachable, timed out).
    #[error("cannot connect to the SMTP server {server}: {source}")]
    Connect {
        /// `host:port`.
        server: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The SMTP exchange failed: a reply, TLS or the connection mid-way.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The server refused the message in reply to `at`.
    #[error("{source}")]
    Refused {
        /// The command the refusal answered.
        at: crate::transaction::Command,
        /// The reply.
        source: lettre::transport::smtp::Error,
    },
    /// The message needs an SMTP extension the server does not offer.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The exchange did not finish within the timeout.
    #[error("the SMTP server did not finish the exchange within the timeout ({}ms)", .0.as_millis())]
    Timeout(Duration),
    /// The connection holds another message's transaction (never reaches
    /// a result: the message goes over a new connection).
    #[error("the SMTP connection holds another message's transaction")]
    OtherTransaction,
    /// The lane's runtime could not start.
    #[error("cannot start an I/O runtime for an SMTP connection: {0}")]
    Runtime(std::io::Error),
}

/// A runtime and the connection parked on it, if any.
struct Lane {
    // Declared first so the socket is dropped while its runtime still lives.
    conn: Option<Session>,
    runtime: tokio::runtime::Runtime,
}

/// Where to connect, and the lanes parked between calls.
pub struct Pool {
    connector: Connector,
    max_idle: usize,
    idle: Mutex<Vec<Lane>>,
}

impl Pool {
    /// A pool with no connection open yet.
    pub fn new(connector: Connector, max_idle: usize) -> Pool {
        Pool {
            connector,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A lane for the calling thread: a parked one, or a new one when
    /// every parked lane is taken. It goes back to the pool when dropped.
    pub fn lane(&self) -> Result<LaneGuard<'_>, PoolError> {
        let parked = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let lane = match parked {
            Some(lane) => lane,
            None => Lane {
                conn: None,
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(PoolError::Runtime)?,
            },
        };
        Ok(LaneGuard {
            pool: self,
            lane: Some(lane),
        })
    }
}

/// A lane taken from the pool by one call.
pub struct LaneGuard<'a> {
    pool: &'a Pool,
    lane: Option<Lane>,
}

impl LaneGuard<'_> {
    /// Sends one message over the lane's connection, opening one when it
    /// has none or the parked one turns out closed. The whole exchange,
    /// connect included, is bounded by `timeout`: a server that stalls
    /// mid-command would otherwise hold the host's call until it abandons it.
    ///
    /// `next`, the message this lane sends next, lets a pipelining server
    /// have its envelope early (see [`transaction::send`]).
    pub fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        next: Option<(&Envelope, &[u8])>,
        timeout: Duration,
    ) -> Result<Response, PoolError> {
        let lane = self.lane.as_mut().expect("a lane until dropped");
        let parked = lane.conn.take();
        let connector = &self.pool.connector;
        let exchange = exchange(connector, parked, envelope, message, next);
        match lane
            .runtime
            .block_on(async { tokio::time::timeout(timeout, exchange).await })
        {
            Ok((result, conn)) => {
                lane.conn = conn;
                result
            }
            // The connection, dropped mid-exchange, is closed: its state is unknown.
            Err(_) => Err(PoolError::Timeout(timeout)),
        }
    }
}

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        let Some(mut lane) = self.lane.take() else {
            return;
        };
        {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.pool.max_idle {
                idle.push(lane);
                return;
            }
        }
        if let Some(mut conn) = lane.conn.take() {
            lane.runtime.block_on(conn.conn.abort());
        }
    }
}

/// Sends over `parked` when it is still open, else over a new connection;
/// returns the result and the connection to park, if it is still usable.
async fn exchange(
    connector: &Connector,
    parked: Option<Session>,
    envelope: &Envelope,
    message: &[u8],
    next: Option<(&Envelope, &[u8])>,
) -> (Result<Response, PoolError>, Option<Session>) {
    if let Some(mut conn) = parked {
        match transaction::send(&mut conn, envelope, message, next).await {
            // Closed while parked: nothing was sent, try a new connection.
            Err(Failure::Stale(_)) => conn.conn.abort().await,
            result => return settle(conn, result).await,
        }
    }
    let mut conn = match connector.connect().await {
        Ok(conn) => conn,
        Err(error) => return (Err(error), None),
    };
    let result = transaction::send(&mut conn, envelope, message, next).await;
    settle(conn, result).await
}

/// Keeps the connection when the transaction left it usable.
async fn settle(
    mut conn: Session,
    result: Result<Response, Failure>,
) -> (Result<Response, PoolError>, Option<Session>) {
    match result {
        Ok(response) => (Ok(response), Some(conn)),
        Err(Failure::Refused(error)) => (Err(error), Some(conn)),
        Err(Failure::Stale(error) | Failure::Broken(error)) => {
            conn.conn.abort().await;
            (Err(error), None)
        }
    }
}
