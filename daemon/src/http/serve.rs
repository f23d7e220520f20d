//! [`serve`]: the accept loop of both listeners. It replaces `axum::serve`,
//! which sets no timer on its connections, so a client that opens a
//! connection and sends its headers slowly (or never) would hold it open
//! forever. Here hyper closes a connection whose request headers have not
//! all arrived within [`Timeouts::header`]; the router's layers time out
//! slow bodies and slow handlers ([`super::router_with`]).
//!
//! Plain HTTP/1.1 only: browsers speak nothing else without TLS, the CLI
//! and provider webhooks use it, and it is the protocol whose header
//! reading hyper can time out.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// How long the HTTP layer waits for a slow client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the moment the server reads a request (or waits for the next
    /// one on a kept-alive connection) to its last header byte; past it
    /// the connection is closed.
    pub header: Duration,
    /// Time allowed to receive a request body; past it the answer is `408`.
    pub body: Duration,
    /// Time allowed for the whole request; past it the answer is `408`.
    /// Generous, because a proof waits for the plugin.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(15),
            request: Duration::from_secs(120),
        }
    }
}

/// Time allowed, after `shutdown`, for requests in flight to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (at most [`DRAIN`]) and closes idle connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait instead of spinning.
                warn!(%error, "Accepting an HTTP connection failed; retrying in 100 ms.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and resets by clients land here: theirs to fix.
                debug!(%error, "HTTP connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(drain = ?DRAIN, "HTTP connections still open after the drain time; closing them.");
    }
}
