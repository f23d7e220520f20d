//! A pool of SMTP connections that opens its TCP connections with
//! Nagle's algorithm off.
//!
//! lettre 0.11.23's pooled transport leaves Nagle on and writes a message's
//! end (`\r\n.\r\n`) apart from its body, so the end waited for the
//! server's delayed ACK (40 ms on Linux) on every message: 40 messages/s
//! over four connections into a local sink (benches/README.md, "Peers").
//! lettre's own fix (pull request 1159) is not released yet. The pool opens
//! plain and STARTTLS connections itself with `TCP_NODELAY` and hands them to
//! lettre's connection, which still speaks SMTP; implicit TLS (`smtps://`)
//! needs TLS before the greeting, which lettre only offers through its own
//! connect, so those connections keep Nagle on.
//!
//! As lettre's pool does, it checks an idle connection with NOOP before
//! reusing it, parks at most `max_idle` connections and closes broken ones.

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::extension::ClientId;
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
}

/// Where and how to connect, and the connections parked between sends.
pub struct Pool {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS mode with its parameters.
    pub tls: Tls,
    /// Name given in EHLO.
    pub hello: ClientId,
    /// AUTH credentials, when configured.
    pub credentials: Option<Credentials>,
    /// Time allowed to open a TCP connection.
    pub connect_timeout: Duration,
    /// Most connections parked between sends.
    pub max_idle: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl Pool {
    /// A pool with no connection open yet.
    pub fn new(
        host: String,
        port: u16,
        tls: Tls,
        hello: ClientId,
        credentials: Option<Credentials>,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Pool {
        Pool {
            host,
            port,
            tls,
            hello,
            credentials,
            connect_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one message over a parked or new connection, then parks it.
    pub async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        message: &[u8],
    ) -> Result<Response, PoolError> {
        let mut conn = self.checkout().await?;
        let result = conn.send(envelope, message).await;
        self.checkin(conn).await;
        Ok(result?)
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, PoolError> {
        loop {
            let parked = self.idle.lock().expect("pool lock").pop();
            match parked {
                Some(mut conn) => {
                    // The server may have closed it while it was parked.
                    if conn.test_connected().await {
                        return Ok(conn);
                    }
                    conn.abort().await;
                }
                None => return self.connect().await,
            }
        }
    }

    async fn checkin(&self, mut conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            let mut idle = self.idle.lock().expect("pool lock");
            if idle.len() < self.max_idle {
                idle.push(conn);
                return;
            }
        }
        conn.abort().await;
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, PoolError> {
        let mut conn = match &self.tls {
            Tls::Wrapper(parameters) => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.connect_timeout),
                    &self.hello,
                    Some(parameters.clone()),
                    None,
                )
                .await?
            }
            _ => {
                let server = format!("{}:{}", self.host, self.port);
                let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
                let stream = tokio::time::timeout(self.connect_timeout, connect)
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
                    .and_then(|stream| stream.set_nodelay(true).map(|()| stream))
                    .map_err(|source| PoolError::Connect { server, source })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?
            }
        };
        match &self.tls {
            Tls::Opportunistic(parameters) if conn.can_starttls() => {
                conn.starttls(parameters.clone(), &self.hello).await?;
            }
            Tls::Required(parameters) => conn.starttls(parameters.clone(), &self.hello).await?,
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }
}
