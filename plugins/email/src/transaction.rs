//! One mail transaction over an open connection (RFC 5321 §3.3): MAIL,
//! one RCPT per recipient, DATA, the content; and what a failure leaves of
//! the connection.
//!
//! lettre's `AsyncSmtpConnection::send` does the same commands but closes
//! the connection on any refusal, does not say which command failed, waits
//! for each reply before the next command and writes the content and its
//! end apart. Here:
//! - the content and its end go in one write;
//! - when the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go
//!   in one write and their replies are read after it; and when the caller
//!   names the message to send next, its MAIL, RCPT and DATA follow this
//!   message's content in the same write (content may open a group, RFC
//!   2920 §3.1): one round trip a message instead of four;
//! - a refusal is followed by RSET so the connection stays in the pool
//!   (RFC 5321 §4.1.1.5);
//! - a connection found closed at MAIL, before the server took anything,
//!   is told apart so the pool can send the message over a new one: that
//!   is what lets the pool reuse a parked connection without a NOOP first.

use crate::connector::Session;
use crate::pool::PoolError;
use lettre::address::Envelope;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use std::fmt;

/// The command whose reply refused a message: only a refusal at RCPT (or
/// one whose enhanced code names the recipient) may blame the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// MAIL FROM: the sender or the message as a whole.
    Mail,
    /// RCPT TO: the recipient.
    Rcpt,
    /// DATA or the end of the content: the content.
    Data,
}

/// A refusal tagged with the command it answered.
fn refused(at: Command, source: Error) -> PoolError {
    PoolError::Refused { at, source }
}

/// Why a transaction did not end in acceptance, and the connection's fate.
#[derive(Debug)]
pub enum Failure {
    /// The connection was closed (end of stream, a socket error or a 421
    /// reply) when MAIL was sent, or holds another message's transaction:
    /// the server took nothing, so the message may go over another
    /// connection.
    Stale(PoolError),
    /// The server refused the message; the connection is usable again.
    Refused(PoolError),
    /// The connection is unusable.
    Broken(PoolError),
}

/// Sends `message` to the envelope's recipients over `session`.
///
/// `next` is the message the caller sends next over this session, if any:
/// when the server pipelines, its envelope goes out behind this message's
/// content, and the call for it reads the replies.
pub async fn send(
    session: &mut Session,
    envelope: &Envelope,
    message: &[u8],
    next: Option<(&Envelope, &[u8])>,
) -> Result<Response, Failure> {
    let conn = &mut session.conn;
    match session.ahead.take() {
        Some(sent) if sent == *envelope => {
            let mail_reply = conn.read_response().await;
            group_replies(conn, mail_reply, 1, true).await?;
        }
        // Another message's transaction is open: a caller that changed its
        // mind. Nothing of this message was sent.
        Some(_) => return Err(Failure::Stale(PoolError::OtherTransaction)),
        None => {
            let mail = Mail::new(
                envelope.from().cloned(),
                parameters(conn, envelope, message)?,
            );
            let rcpts = rcpts(envelope);
            if session.pipelining {
                pipelined_envelope(conn, mail, &rcpts).await?;
            } else {
                serial_envelope(conn, mail, &rcpts).await?;
            }
        }
    }
    let ahead = next
        .filter(|_| session.pipelining)
        .and_then(|(next, bytes)| {
            let parameters = parameters(conn, next, bytes).ok()?;
            (next.to().len() == 1).then(|| {
                (
                    next,
                    Mail::new(next.from().cloned(), parameters),
                    rcpts(next),
                )
            })
        });
    // The reply to the content ends the transaction whatever it says
    // (RFC 5321 §4.1.1.4): no RSET is needed after a refusal.
    let sent = match (std::str::from_utf8(message), ahead) {
        (Ok(text), Some((next, mail, rcpts))) => {
            let group = Group {
                mail,
                rcpts: &rcpts,
                data: true,
            };
            let sent = conn.command(ContentThen(Content(text), group)).await;
            session.ahead = Some(next.clone());
            sent
        }
        (Ok(text), None) => conn.command(Content(text)).await,
        (Err(_), _) => conn.message(message).await,
    };
    sent.map_err(|error| {
        if error.status().is_some() && !is_closing(&error) {
            Failure::Refused(refused(Command::Data, error))
        } else {
            Failure::Broken(error.into())
        }
    })
}

/// One RCPT per recipient, without parameters.
fn rcpts(envelope: &Envelope) -> Vec<Rcpt> {
    envelope
        .to()
        .iter()
        .map(|to| Rcpt::new(to.clone(), vec![]))
        .collect()
}

/// MAIL's parameters: non-ASCII needs the server's word first (RFC 6531,
/// RFC 6152).
fn parameters(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Vec<MailParameter>, Failure> {
    let info = conn.server_info();
    let mut parameters = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(Failure::Refused(PoolError::Unsupported(
                "the envelope has a non-ASCII address but the SMTP server does not offer SMTPUTF8",
            )));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(Failure::Refused(PoolError::Unsupported(
                "the message has non-ASCII bytes but the SMTP server does not offer 8BITMIME",
            )));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(parameters)
}

/// MAIL, RCPT and DATA, each after the previous one's reply.
async fn serial_envelope(
    conn: &mut AsyncSmtpConnection,
    mail: Mail,
    rcpts: &[Rcpt],
) -> Result<(), Failure> {
    if let Err(error) = conn.command(mail).await {
        return Err(if is_closing(&error) {
            Failure::Stale(error.into())
        } else {
            reset(conn, Command::Mail, error).await
        });
    }
    for rcpt in rcpts {
        if let Err(error) = conn.command(rcpt).await {
            return Err(reset(conn, Command::Rcpt, error).await);
        }
    }
    if let Err(error) = conn.command(Data).await {
        return Err(reset(conn, Command::Data, error).await);
    }
    Ok(())
}

/// MAIL, the RCPTs and DATA in one write, then their replies in order
/// (RFC 2920 §3.1). DATA joins the group only for a single recipient: with
/// several, one refused recipient must stop the message for all, so DATA
/// waits for every RCPT reply.
async fn pipelined_envelope(
    conn: &mut AsyncSmtpConnection,
    mail: Mail,
    rcpts: &[Rcpt],
) -> Result<(), Failure> {
    let with_data = rcpts.len() == 1;
    let mail_reply = conn
        .command(Group {
            mail,
            rcpts,
            data: with_data,
        })
        .await;
    group_replies(conn, mail_reply, rcpts.len(), with_data).await?;
    if !with_data {
        if let Err(error) = conn.command(Data).await {
            return Err(reset(conn, Command::Data, error).await);
        }
    }
    Ok(())
}

/// Reads the replies to a group after MAIL's, whatever the first ones
/// said; the first refusal is the one reported (a refused recipient rather
/// than the DATA refusal that follows it). Leaves DATA open when it was in
/// the group and all went well, and the connection ready for the next
/// transaction otherwise.
async fn group_replies(
    conn: &mut AsyncSmtpConnection,
    mail_reply: Result<Response, Error>,
    rcpts: usize,
    with_data: bool,
) -> Result<(), Failure> {
    let mut refusal = match mail_reply {
        Err(error) if is_closing(&error) => return Err(Failure::Stale(error.into())),
        reply => reply.err().map(|error| (Command::Mail, error)),
    };
    for _ in 0..rcpts {
        match conn.read_response().await {
            Ok(_) => {}
            Err(error) if error.status().is_none() || is_closing(&error) => {
                return Err(Failure::Broken(error.into()));
            }
            Err(error) => {
                refusal.get_or_insert((Command::Rcpt, error));
            }
        }
    }
    if with_data {
        return match (refusal, conn.read_response().await) {
            (None, Ok(_)) => Ok(()),
            // A server must refuse DATA when MAIL or every RCPT was
            // refused (RFC 2920 §3.1). One that opens it anyway gets no
            // content: the connection is dropped without the final dot,
            // so the server discards the transaction.
            (Some((at, error)), Ok(_)) => Err(Failure::Broken(refused(at, error))),
            (None, Err(error)) => Err(reset(conn, Command::Data, error).await),
            (Some((at, error)), Err(_)) => Err(reset(conn, at, error).await),
        };
    }
    match refusal {
        Some((at, error)) => Err(reset(conn, at, error).await),
        None => Ok(()),
    }
}

/// MAIL, the RCPTs and maybe DATA, written as one command group.
struct Group<'a> {
    mail: Mail,
    rcpts: &'a [Rcpt],
    data: bool,
}

impl fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.mail.fmt(f)?;
        for rcpt in self.rcpts {
            rcpt.fmt(f)?;
        }
        if self.data {
            Data.fmt(f)?;
        }
        Ok(())
    }
}

/// The content as sent after DATA: dot-stuffed (RFC 5321 §4.5.2), then
/// `CRLF.CRLF`, the same bytes as lettre's `message` sends.
///
/// lettre writes the content and its end in two writes, two TCP segments
/// with Nagle off; written as one "command" (lettre writes a command in
/// one write, then reads one reply) they go in one, as smtp-source's do.
struct Content<'a>(&'a str);

impl fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line_start = true;
        for line in self.0.split_inclusive("\r\n") {
            if line_start && line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
            line_start = line.ends_with("\r\n");
        }
        f.write_str("\r\n.\r\n")
    }
}

/// A message's content followed by the next message's envelope group.
struct ContentThen<'a>(Content<'a>, Group<'a>);

impl fmt::Display for ContentThen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)?;
        self.1.fmt(f)
    }
}

/// After a refusal inside the transaction: RSET, so the connection can
/// carry the next message; a connection that cannot is broken.
async fn reset(conn: &mut AsyncSmtpConnection, at: Command, error: Error) -> Failure {
    if error.status().is_none() || is_closing(&error) {
        return Failure::Broken(error.into());
    }
    match conn.command(Rset).await {
        Ok(_) => Failure::Refused(refused(at, error)),
        Err(_) => Failure::Broken(refused(at, error)),
    }
}

/// Whether the error says the server has closed or is closing the
/// connection: no reply at all (end of stream, socket error, garbage), or
/// 421, which RFC 5321 §3.8 gives to a server about to close.
fn is_closing(error: &Error) -> bool {
    match error.status() {
        Some(code) => code.to_string() == "421",
        None => !error.is_client(),
    }
}

#[cfg(test)]
mod tests {
    use super::Content;

    #[test]
    fn content_is_dot_stuffed_and_terminated() {
        assert_eq!(
            Content(".a\r\nb\r\n..c\r\nd.\r\n.").to_string(),
            "..a\r\nb\r\n...c\r\nd.\r\n..\r\n.\r\n"
        );
        // A dot after a bare CR or LF does not start a line.
        assert_eq!(Content("a\r.b\n.c").to_string(), "a\r.b\n.c\r\n.\r\n");
    }
}
