//! # Herald push channel plugin (`herald_push`)
//!
//! Sends push notifications through Firebase Cloud Messaging HTTP v1.
//!
//! ## Brief overview
//!
//! - [`PushChannel`]: the [`Channel`] the plugin exports.
//! - [`config`]: the plugin config (`service_account_file`, `project_id`,
//!   `token_url`, `send_url`, `rate`, `timeout`, `concurrency`).
//! - [`token`]: OAuth2 access tokens by the JWT bearer grant, signed RS256
//!   with the service account's key, cached until shortly before expiry.
//! - [`client`]: the send and the mapping of FCM replies: `UNREGISTERED`
//!   or an invalid token `bounced` hard, 429 and 5xx `retry` (with
//!   `Retry-After`), other errors `failed`; a 401 refreshes the token once.

pub mod client;
pub mod config;
pub mod token;

use client::FcmClient;
use config::PushConfig;
use herald_plugin_api::{
    Batch, Channel, ChannelInfo, Description, MessageResult, Normalisation, SendStatus,
    WIRE_VERSION,
};
use herald_plugin_kit::RateLimiter;
use token::TokenSource;

/// A push plugin instance: one HTTP client and token cache, one rate limit, one runtime.
pub struct PushChannel {
    client: FcmClient,
    limiter: Option<RateLimiter>,
    concurrency: u32,
    // Declared last so the client's connections drop while the runtime lives.
    runtime: tokio::runtime::Runtime,
}

impl Channel for PushChannel {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        let config = PushConfig::parse(config).map_err(|e| format!("herald_push: {e}"))?;
        // Workers keep reqwest's connection tasks running between batches.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("herald-push")
            .enable_all()
            .build()
            .map_err(|e| format!("herald_push: cannot start the plugin's runtime: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("herald_push: cannot build the HTTP client: {e}"))?;
        Ok(PushChannel {
            limiter: config.rate.map(RateLimiter::new),
            concurrency: config.concurrency,
            client: FcmClient::new(
                http.clone(),
                config.send_url.clone(),
                TokenSource::new(config, http),
            ),
            runtime,
        })
    }

    fn describe(&self) -> Description {
        Description {
            version: WIRE_VERSION,
            channels: vec![ChannelInfo {
                name: "push".into(),
                address_column: Some("push_token".into()),
                normalise: Normalisation::Token,
                tracking: false,
            }],
            concurrency: self.concurrency,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        batch
            .messages
            .iter()
            .map(|message| {
                let status = if message.content.contains_key("body") {
                    if let Some(limiter) = &self.limiter {
                        limiter.wait_blocking();
                    }
                    self.runtime.block_on(self.client.send(message))
                } else {
                    SendStatus::Failed {
                        reason: "the content field `body` is missing; set `content.body` in the delivery".into(),
                    }
                };
                MessageResult {
                    message_id: message.message_id.clone(),
                    status,
                }
            })
            .collect()
    }
}

herald_plugin_api::export_channel!(PushChannel, "herald_push", env!("CARGO_PKG_VERSION"));
