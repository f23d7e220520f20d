//! A test plugin written with the SDK that misbehaves on demand.
//!
//! Config: `channel` (default `misbehave`), `concurrency` (default 4),
//! `refuse` (a message: `create` fails with it), `panic_in_create` (true:
//! `create` panics). What a batch does depends on the addresses in it:
//!
//! - `panic`: `send_batch` panics;
//! - `sleep:MS`: `send_batch` sleeps MS milliseconds first;
//! - `drop`: that message gets no result (wrong count);
//! - `wrong-id`: that message's result carries another id;
//! - `size`: `accepted`, with provider id `batch-of-{N}`, N the messages
//!   in the batch (so tests see which batches shared a call);
//! - anything else: `accepted`, with provider id `p-{message_id}`.

use herald_plugin_api::{
    Batch, Channel, ChannelInfo, Description, MessageResult, Normalisation, SendStatus,
    WIRE_VERSION,
};
use std::time::Duration;

/// The misbehaving channel.
struct Misbehave {
    channel: String,
    concurrency: u32,
}

impl Channel for Misbehave {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        if let Some(message) = config.get("refuse").and_then(|v| v.as_str()) {
            return Err(message.to_owned());
        }
        if config.get("panic_in_create").and_then(|v| v.as_bool()) == Some(true) {
            panic!("misbehave was told to panic in create");
        }
        let channel = config
            .get("channel")
            .and_then(|v| v.as_str())
            .unwrap_or("misbehave");
        let concurrency = config
            .get("concurrency")
            .and_then(|v| v.as_u64())
            .unwrap_or(4);
        Ok(Misbehave {
            channel: channel.to_owned(),
            concurrency: u32::try_from(concurrency).map_err(|_| "`concurrency` is too big")?,
        })
    }

    fn describe(&self) -> Description {
        Description {
            version: WIRE_VERSION,
            channels: vec![ChannelInfo {
                name: self.channel.clone(),
                address_column: None,
                normalise: Normalisation::None,
                tracking: false,
            }],
            concurrency: self.concurrency,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        for message in &batch.messages {
            if let Some(ms) = message.address.strip_prefix("sleep:") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
            }
            if message.address == "panic" {
                panic!("misbehave was told to panic on {}", message.message_id);
            }
        }
        batch
            .messages
            .iter()
            .filter(|m| m.address != "drop")
            .map(|m| MessageResult {
                message_id: if m.address == "wrong-id" {
                    format!("{}-other", m.message_id)
                } else {
                    m.message_id.clone()
                },
                status: SendStatus::Accepted {
                    provider_message_id: Some(if m.address == "size" {
                        format!("batch-of-{}", batch.messages.len())
                    } else {
                        format!("p-{}", m.message_id)
                    }),
                },
            })
            .collect()
    }
}

herald_plugin_api::export_channel!(Misbehave, "misbehave", env!("CARGO_PKG_VERSION"));
