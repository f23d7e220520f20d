//! # Herald SMS channel plugin (`herald_sms`)
//!
//! Sends SMS through an HTTP provider: a Twilio-compatible REST API
//! (`mode: twilio`) or a generic JSON webhook (`mode: webhook`).
//!
//! ## Brief overview
//!
//! - [`SmsChannel`]: the [`Channel`] the plugin exports.
//! - [`config`]: the plugin config (`mode`, `url`, `account_sid`,
//!   `auth_token_file`, `headers`, `from`, `rate`, `timeout`, `concurrency`).
//! - [`client`]: the requests and the mapping of replies: 2xx `accepted`,
//!   429 and 5xx `retry` (with `Retry-After`), 4xx about the number
//!   `bounced` hard, other 4xx `failed`. A number that is not E.164 is
//!   `bounced` hard without a request.

pub mod client;
pub mod config;

use client::{Sms, SmsClient, is_e164};
use config::SmsConfig;
use herald_plugin_api::{
    Batch, BounceKind, Channel, ChannelInfo, Description, Message, MessageResult, Normalisation,
    SendStatus, WIRE_VERSION,
};
use herald_plugin_kit::RateLimiter;

/// An SMS plugin instance: one HTTP client, one rate limit, one runtime.
pub struct SmsChannel {
    client: SmsClient,
    default_from: Option<String>,
    limiter: Option<RateLimiter>,
    concurrency: u32,
    // Declared last so the client's connections drop while the runtime lives.
    runtime: tokio::runtime::Runtime,
}

impl SmsChannel {
    fn send_one(&self, message: &Message) -> SendStatus {
        if !is_e164(&message.address) {
            return SendStatus::Bounced {
                kind: BounceKind::Hard,
                reason: format!(
                    "`{}` is not an E.164 number (`+` and 8 to 15 digits)",
                    message.address
                ),
            };
        }
        let Some(body) = message.content.get("body") else {
            return SendStatus::Failed {
                reason: "the content field `body` is missing; set `content.body` in the delivery"
                    .into(),
            };
        };
        let sms = Sms {
            to: &message.address,
            from: message
                .content
                .get("from")
                .or(self.default_from.as_ref())
                .map(String::as_str),
            body,
            message_id: &message.message_id,
        };
        if let Some(limiter) = &self.limiter {
            limiter.wait_blocking();
        }
        self.runtime.block_on(self.client.send(sms))
    }
}

impl Channel for SmsChannel {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        let config = SmsConfig::parse(config).map_err(|e| format!("herald_sms: {e}"))?;
        // Workers keep reqwest's connection tasks running between batches.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("herald-sms")
            .enable_all()
            .build()
            .map_err(|e| format!("herald_sms: cannot start the plugin's runtime: {e}"))?;
        Ok(SmsChannel {
            default_from: config.from.clone(),
            limiter: config.rate.map(RateLimiter::new),
            concurrency: config.concurrency,
            client: SmsClient::new(config).map_err(|e| format!("herald_sms: {e}"))?,
            runtime,
        })
    }

    fn describe(&self) -> Description {
        Description {
            version: WIRE_VERSION,
            channels: vec![ChannelInfo {
                name: "sms".into(),
                address_column: Some("phone".into()),
                normalise: Normalisation::E164,
                tracking: false,
            }],
            concurrency: self.concurrency,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        batch
            .messages
            .iter()
            .map(|message| MessageResult {
                message_id: message.message_id.clone(),
                status: self.send_one(message),
            })
            .collect()
    }
}

herald_plugin_api::export_channel!(SmsChannel, "herald_sms", env!("CARGO_PKG_VERSION"));
