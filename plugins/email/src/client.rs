//! The pooled SMTP transport and the mapping of SMTP replies onto results.

use crate::config::{EmailConfig, Security};
use crate::connector::Connector;
use crate::pool::{LaneGuard, Pool, PoolError};
use crate::transaction::Command;
use herald_plugin_api::{BounceKind, SendStatus};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use std::time::Duration;

/// A message ready to send: its envelope and its MIME bytes.
pub struct Outgoing {
    /// Sender and recipients for MAIL and RCPT.
    pub envelope: lettre::address::Envelope,
    /// The formatted message.
    pub bytes: Vec<u8>,
}

impl From<&lettre::Message> for Outgoing {
    fn from(message: &lettre::Message) -> Self {
        Outgoing {
            envelope: message.envelope().clone(),
            bytes: message.formatted(),
        }
    }
}

/// A pooled SMTP client for one plugin instance.
pub struct SmtpClient {
    timeout: Duration,
    pool: Pool,
}

impl SmtpClient {
    /// Builds the pool; connections open on the first sends.
    pub fn new(config: &EmailConfig) -> Result<Self, String> {
        let tls_parameters = || {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(pem) = &config.tls_ca_pem {
                let ca = Certificate::from_pem(pem).map_err(|e| {
                    format!("config key `tls_ca_file`: not a usable PEM certificate: {e}")
                })?;
                builder = builder.add_root_certificate(ca);
            }
            builder.build().map_err(|e| {
                format!(
                    "config key `smtp_url`: cannot set up TLS for `{}`: {e}",
                    config.host
                )
            })
        };
        let tls = match config.security {
            Security::Opportunistic => Tls::Opportunistic(tls_parameters()?),
            Security::RequiredStartTls => Tls::Required(tls_parameters()?),
            Security::Implicit => Tls::Wrapper(tls_parameters()?),
        };
        let hello = match &config.helo_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let credentials = config
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.clone()));
        let connector = Connector {
            host: config.host.clone(),
            port: config.port,
            tls,
            hello,
            credentials,
            connect_timeout: config.timeout,
        };
        Ok(SmtpClient {
            timeout: config.timeout,
            pool: Pool::new(connector, config.pool_size as usize),
        })
    }

    /// A connection lane for one call's messages.
    pub fn lane(&self) -> Result<LaneGuard<'_>, PoolError> {
        self.pool.lane()
    }

    /// Sends one message over `lane` and says what became of it; `next` is
    /// the message the lane sends after it, if any.
    pub fn send(
        &self,
        lane: &mut LaneGuard<'_>,
        message: &Outgoing,
        next: Option<&Outgoing>,
    ) -> SendStatus {
        let next = next.map(|n| (&n.envelope, n.bytes.as_slice()));
        match lane.send(&message.envelope, &message.bytes, next, self.timeout) {
            Ok(response) => SendStatus::Accepted {
                provider_message_id: queue_id(&response),
            },
            Err(PoolError::Smtp(error)) => map_error(&error, None),
            Err(PoolError::Refused { at, source }) => map_error(&source, Some(at)),
            Err(error @ PoolError::Timeout(_)) => SendStatus::Retry {
                reason: format!(
                    "{error}; it may have taken the message, the retry carries the same Message-ID"
                ),
                retry_after_ms: None,
            },
            Err(
                error @ (PoolError::Connect { .. }
                | PoolError::Unsupported(_)
                | PoolError::OtherTransaction
                | PoolError::Runtime(_)),
            ) => SendStatus::Retry {
                reason: error.to_string(),
                retry_after_ms: None,
            },
        }
    }
}

/// The queue id in a 250 reply: Postfix's `queued as ABC123`, Exim's
/// `id=1abc-...`; `None` when the server gives none.
pub fn queue_id(response: &Response) -> Option<String> {
    response.message().find_map(|line| {
        let after = line
            .split_once("queued as ")
            .map(|(_, rest)| rest)
            .or_else(|| line.split_whitespace().find_map(|w| w.strip_prefix("id=")))?;
        let id = after
            .split_whitespace()
            .next()?
            .trim_matches(|c: char| !c.is_ascii_alphanumeric());
        (!id.is_empty()).then(|| id.to_owned())
    })
}

/// 4xx and connection trouble are transient; a 5xx that refuses the
/// recipient is a hard bounce; any other 5xx fails the message. `at` is
/// the command the reply answered, `None` outside a transaction (greeting,
/// EHLO, AUTH).
fn map_error(error: &lettre::transport::smtp::Error, at: Option<Command>) -> SendStatus {
    let reason = error.to_string();
    if !error.is_permanent() {
        return SendStatus::Retry {
            reason,
            retry_after_ms: None,
        };
    }
    let code = error.status().map(|c| c.to_string()).unwrap_or_default();
    let text = std::error::Error::source(error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    if AUTH_REFUSALS.contains(&code.as_str()) {
        // Refused credentials are a setup problem: the run waits for the
        // operator rather than failing every message.
        return SendStatus::Retry {
            reason: format!(
                "{reason}; the SMTP server refused the credentials, check `username` and `password_file`"
            ),
            retry_after_ms: None,
        };
    }
    if refuses_recipient(at, &code, &text) {
        SendStatus::Bounced {
            kind: BounceKind::Hard,
            reason,
        }
    } else {
        SendStatus::Failed { reason }
    }
}

/// RFC 3463 codes about the sender's address: bad syntax, bad system.
const SENDER_CODES: &[&str] = &["5.1.7", "5.1.8"];

/// RFC 4954 replies refusing authentication (required, too weak, invalid, needs encryption).
const AUTH_REFUSALS: &[&str] = &["530", "534", "535", "538"];

/// Whether a permanent reply refuses the recipient's mailbox.
///
/// A refusal of MAIL (or outside a transaction) is about the sender, never
/// the recipient. Otherwise an RFC 3463 enhanced code decides when present:
/// `5.1.x` addressing and `5.2.1` mailbox disabled, except `5.1.7`/`5.1.8`,
/// which blame the sender (Postfix gives its sender checks at RCPT). A bare
/// 550, 551 or 553 (RFC 5321's mailbox refusals) blames the recipient only
/// at RCPT: after DATA it refuses the content.
pub fn refuses_recipient(at: Option<Command>, code: &str, text: &str) -> bool {
    if !matches!(at, Some(Command::Rcpt | Command::Data)) {
        return false;
    }
    let enhanced = text.split_whitespace().next().filter(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    match enhanced {
        Some(enhanced) => {
            (enhanced.starts_with("5.1.") && !SENDER_CODES.contains(&enhanced))
                || enhanced == "5.2.1"
        }
        None => at == Some(Command::Rcpt) && matches!(code, "550" | "551" | "553"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

    fn ok(lines: &[&str]) -> Response {
        let code = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        Response::new(code, lines.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn the_queue_id_is_read_from_postfix_and_exim_replies() {
        assert_eq!(
            queue_id(&ok(&["2.0.0 Ok: queued as ABC123"])).as_deref(),
            Some("ABC123")
        );
        assert_eq!(
            queue_id(&ok(&["OK id=1pXyz-000abc-12"])).as_deref(),
            Some("1pXyz-000abc-12")
        );
        assert_eq!(queue_id(&ok(&["OK"])), None);
    }

    #[test]
    fn enhanced_codes_decide_whether_the_recipient_was_refused() {
        let rcpt = Some(Command::Rcpt);
        assert!(refuses_recipient(
            rcpt,
            "550",
            "5.1.1 <ana@example.org>: Recipient address rejected"
        ));
        assert!(refuses_recipient(rcpt, "550", "No such user"));
        assert!(refuses_recipient(rcpt, "553", "Mailbox name not allowed"));
        assert!(!refuses_recipient(
            rcpt,
            "550",
            "5.7.1 Message rejected as spam"
        ));
        assert!(!refuses_recipient(rcpt, "554", "Transaction failed"));
    }

    #[test]
    fn only_a_refusal_naming_the_recipient_bounces() {
        let (mail, rcpt, data) = (
            Some(Command::Mail),
            Some(Command::Rcpt),
            Some(Command::Data),
        );
        // Postfix's delayed sender checks answer RCPT with the sender's code.
        let sender = "5.1.8 <news@shop.example>: Sender address rejected: Domain not found";
        assert!(!refuses_recipient(rcpt, "553", sender));
        assert!(!refuses_recipient(mail, "553", sender));
        assert!(!refuses_recipient(mail, "550", "5.1.1 No such user here"));
        assert!(!refuses_recipient(None, "550", "5.1.1 No such user here"));
        // After DATA a bare 550 refuses the content; an enhanced 5.1.1 still names the mailbox.
        assert!(!refuses_recipient(data, "550", "Message content rejected"));
        assert!(refuses_recipient(data, "550", "5.1.1 No such user here"));
    }
}
