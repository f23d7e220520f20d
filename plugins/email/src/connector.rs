//! Opening one SMTP connection: TCP with Nagle's algorithm off, greeting
//! and EHLO, STARTTLS as configured, EHLO again for PIPELINING, then AUTH.
//!
//! lettre 0.11.23 leaves Nagle on and writes a message's end (`\r\n.\r\n`)
//! apart from its body, so the end waited for the server's delayed ACK
//! (40 ms on Linux) on every message: 40 messages/s over four connections
//! into a local sink (benches/README.md, "Peers"). lettre's own fix (pull
//! request 1159) is not released yet, so plain and STARTTLS connections are
//! opened here with `TCP_NODELAY` and handed to lettre's connection, which
//! still speaks SMTP. Implicit TLS (`smtps://`) needs TLS before the
//! greeting, which lettre only offers through its own connect, so those
//! connections keep Nagle on: harmless, as a message's content and end go
//! in one write (`transaction.rs`) and every write follows a reply, so no
//! write waits for a delayed ACK (benches/README.md, P2 "Left").

use crate::pool::PoolError;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use std::time::Duration;

/// An open connection ready for mail transactions.
pub struct Session {
    /// lettre's connection, which speaks SMTP.
    pub conn: AsyncSmtpConnection,
    /// Whether the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// The envelope already sent for the next message, its replies unread.
    pub ahead: Option<Envelope>,
}

/// Where and how to connect.
pub struct Connector {
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
}

impl Connector {
    /// Opens a connection ready for mail transactions.
    pub async fn connect(&self) -> Result<Session, PoolError> {
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
        // lettre keeps only the EHLO keywords it knows, and PIPELINING is
        // not one of them, so ask once more (RFC 5321 §4.1.4 allows EHLO at
        // any time; it resets nothing but a transaction). Before AUTH, which
        // a server may forget on EHLO.
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
        let pipelining = offers(&ehlo, "PIPELINING");
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(Session {
            conn,
            pipelining,
            ahead: None,
        })
    }
}

/// Whether an EHLO reply lists `keyword` (the first line is the server's name).
fn offers(ehlo: &Response, keyword: &str) -> bool {
    ehlo.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
    })
}

#[cfg(test)]
mod tests {
    use super::offers;
    use lettre::transport::smtp::response::{Category, Code, Detail, Response, Severity};

    #[test]
    fn pipelining_is_read_from_the_ehlo_keywords_not_the_greeting() {
        let code = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        let reply =
            |lines: &[&str]| Response::new(code, lines.iter().map(|l| l.to_string()).collect());
        assert!(offers(
            &reply(&["mx.example", "8BITMIME", "pipelining"]),
            "PIPELINING"
        ));
        assert!(!offers(&reply(&["PIPELINING", "8BITMIME"]), "PIPELINING"));
        assert!(!offers(
            &reply(&["mx.example", "XPIPELINING"]),
            "PIPELINING"
        ));
    }
}
