//! # Herald email channel plugin (`herald_email`)
//!
//! Sends e-mail over SMTP with lettre's pooled async transport.
//!
//! ## Brief overview
//!
//! - [`EmailChannel`]: the [`Channel`] the plugin exports.
//! - [`config`]: the plugin config (`smtp_url`, `username`,
//!   `password_file`, `pool_size`, `rate`, `timeout`, `helo_name`).
//! - [`message`]: builds the MIME message (multipart/alternative, custom
//!   headers, a Message-ID derived from the stable message id) and refuses
//!   header injection.
//! - [`pool`]: the SMTP connections kept open between sends, opened with
//!   Nagle's algorithm off.
//! - [`client`]: the pooled client and the mapping of SMTP replies: 250
//!   is `accepted` (with the queue id), 4xx and connection errors `retry`,
//!   5xx refusing the recipient `bounced` hard, other 5xx `failed`.

pub mod client;
pub mod config;
pub mod message;
pub mod pool;

use client::SmtpClient;
use config::EmailConfig;
use herald_plugin_api::{
    Batch, BounceKind, Channel, ChannelInfo, Description, MessageResult, Normalisation, SendStatus,
    WIRE_VERSION,
};
use herald_plugin_kit::RateLimiter;
use message::BuildError;

/// An email plugin instance: one SMTP pool, one rate limit, one runtime.
pub struct EmailChannel {
    client: SmtpClient,
    limiter: Option<RateLimiter>,
    concurrency: u32,
    // Declared last so the client's pooled connections drop while the runtime lives.
    runtime: tokio::runtime::Runtime,
}

impl Channel for EmailChannel {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        let config = EmailConfig::parse(config).map_err(|e| format!("herald_email: {e}"))?;
        // Host threads drive their sends with `block_on`; the two workers
        // own the I/O driver the pooled connections are registered with.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("herald-email")
            .enable_all()
            .build()
            .map_err(|e| format!("herald_email: cannot start the plugin's runtime: {e}"))?;
        let client = SmtpClient::new(&config).map_err(|e| format!("herald_email: {e}"))?;
        Ok(EmailChannel {
            client,
            limiter: config.rate.map(RateLimiter::new),
            concurrency: config.pool_size,
            runtime,
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
        batch
            .messages
            .iter()
            .map(|message| {
                let status = match message::build(message) {
                    Ok(email) => {
                        if let Some(limiter) = &self.limiter {
                            limiter.wait_blocking();
                        }
                        self.runtime.block_on(self.client.send(&email))
                    }
                    Err(BuildError::BadAddress(address)) => SendStatus::Bounced {
                        kind: BounceKind::Hard,
                        reason: format!("the address `{address}` is not a valid e-mail address"),
                    },
                    Err(BuildError::BadContent(reason)) => SendStatus::Failed { reason },
                };
                MessageResult {
                    message_id: message.message_id.clone(),
                    status,
                }
            })
            .collect()
    }
}

herald_plugin_api::export_channel!(EmailChannel, "herald_email", env!("CARGO_PKG_VERSION"));
