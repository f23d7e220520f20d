//! # Herald email channel plugin (`herald_email`)
//!
//! Sends e-mail over SMTP: lettre builds the messages and speaks SMTP over
//! connections this crate opens and pools.
//!
//! ## Brief overview
//!
//! - [`EmailChannel`]: the [`Channel`] the plugin exports.
//! - [`config`]: the plugin config (`smtp_url`, `username`,
//!   `password_file`, `pool_size`, `rate`, `timeout`, `helo_name`).
//! - [`message`]: builds the MIME message (multipart/alternative, custom
//!   headers, a Message-ID derived from the stable message id) and refuses
//!   header injection.
//! - [`pool`]: the SMTP connections kept open between sends, each on a
//!   single-threaded runtime driven by the calling thread.
//! - [`connector`]: opens a connection (Nagle's algorithm off, STARTTLS,
//!   AUTH).
//! - [`transaction`]: one MAIL, RCPT, DATA exchange, and what a failure
//!   leaves of the connection.
//! - [`client`]: the pooled client and the mapping of SMTP replies: 250
//!   is `accepted` (with the queue id), 4xx and connection errors `retry`,
//!   5xx refusing the recipient `bounced` hard, other 5xx `failed`.

pub mod client;
pub mod config;
pub mod connector;
pub mod message;
pub mod pool;
pub mod transaction;

use client::{Outgoing, SmtpClient};
use config::EmailConfig;
use herald_plugin_api::{
    Batch, BounceKind, Channel, ChannelInfo, Description, MessageResult, Normalisation, SendStatus,
    WIRE_VERSION,
};
use herald_plugin_kit::RateLimiter;
use message::BuildError;

/// An email plugin instance: one SMTP pool, one rate limit.
pub struct EmailChannel {
    client: SmtpClient,
    limiter: Option<RateLimiter>,
    concurrency: u32,
}

impl Channel for EmailChannel {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        let config = EmailConfig::parse(config).map_err(|e| format!("herald_email: {e}"))?;
        let client = SmtpClient::new(&config).map_err(|e| format!("herald_email: {e}"))?;
        Ok(EmailChannel {
            client,
            limiter: config.rate.map(RateLimiter::new),
            concurrency: config.pool_size,
        })
    }

    fn describe(&self) -> Description {
        Description {
            version: WIRE_VERSION,
            channels: vec![ChannelInfo {
                name: "email".into(),
                address_column: Some("email".into()),
                normalise: Normalisation::Email,
                tracking: true,
            }],
            concurrency: self.concurrency,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        let built: Vec<Result<Outgoing, BuildError>> = batch
            .messages
            .iter()
            .map(|message| message::build(message).map(|email| Outgoing::from(&email)))
            .collect();
        // One lane, so one connection, for the whole call: the host makes
        // at most `pool_size` calls at once.
        let mut lane = self.client.lane();
        let mut results = Vec::with_capacity(built.len());
        for (index, (message, this)) in batch.messages.iter().zip(&built).enumerate() {
            let status = match (this, &mut lane) {
                (Ok(outgoing), Ok(lane)) => {
                    let next = match &self.limiter {
                        Some(limiter) => {
                            limiter.wait_blocking();
                            // Nothing goes ahead of its turn under a rate limit.
                            None
                        }
                        None => built[index + 1..].iter().find_map(|b| b.as_ref().ok()),
                    };
                    self.client.send(lane, outgoing, next)
                }
                (Ok(_), Err(error)) => SendStatus::Retry {
                    reason: error.to_string(),
                    retry_after_ms: None,
                },
                (Err(BuildError::BadAddress(address)), _) => SendStatus::Bounced {
                    kind: BounceKind::Hard,
                    reason: format!("the address `{address}` is not a valid e-mail address"),
                },
                (Err(BuildError::BadContent(reason)), _) => SendStatus::Failed {
                    reason: reason.clone(),
                },
            };
            results.push(MessageResult {
                message_id: message.message_id.clone(),
                status,
            });
        }
        results
    }
}

herald_plugin_api::export_channel!(EmailChannel, "herald_email", env!("CARGO_PKG_VERSION"));
