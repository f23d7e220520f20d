//! # herald_outbox
//!
//! A Herald channel plugin that "sends" by writing each message as a file
//! into a folder: `.eml` (a real RFC 5322 message) on the `email` channel,
//! `.json` (the whole rendered message) on every other. The quickstart and
//! the tests use it in place of real providers.
//!
//! - [`config`]: `dir` (required, created if missing), `channels` (served
//!   besides `outbox`), `concurrency` (default 4), `from` (for `.eml` files
//!   whose content has none).
//! - [`eml`]: the e-mail writer.
//! - [`file`]: file names from message ids and atomic writes.
//!
//! Each file is named after the message id made safe (`run/ana@x` becomes
//! `run%2Fana%40x`), so sending the same message again overwrites the
//! same file: a retry never makes a second copy.

pub mod config;
pub mod eml;
pub mod file;

use config::Config;
use herald_plugin_api::{
    Batch, Channel, ChannelInfo, Description, Message, MessageResult, Normalisation, SendStatus,
    WIRE_VERSION,
};

/// The outbox channel: one instance writes into one folder.
#[derive(Debug)]
pub struct Outbox {
    config: Config,
}

impl Outbox {
    /// Writes one message; the file name is the result's provider id.
    fn write(&self, message: &Message) -> std::io::Result<String> {
        let stem = file::stem(&message.message_id);
        let (name, bytes) = if message.channel == "email" {
            let bytes = eml::render(message, &self.config.from, chrono::Utc::now(), &stem);
            (format!("{stem}.eml"), bytes)
        } else {
            let mut bytes = serde_json::to_vec_pretty(message).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            (format!("{stem}.json"), bytes)
        };
        file::write_atomic(&self.config.dir, &name, &bytes)?;
        Ok(name)
    }
}

/// How the host finds and checks addresses on a channel served by name.
fn channel_info(name: &str) -> ChannelInfo {
    let (column, normalise, tracking) = match name {
        "email" => (Some("email"), Normalisation::Email, true),
        "sms" => (Some("phone"), Normalisation::E164, false),
        "push" => (Some("push_token"), Normalisation::Token, false),
        _ => (None, Normalisation::None, false),
    };
    ChannelInfo {
        name: name.to_owned(),
        address_column: column.map(str::to_owned),
        normalise,
        tracking,
    }
}

impl Channel for Outbox {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        let config = Config::parse(config)?;
        std::fs::create_dir_all(&config.dir).map_err(|e| {
            format!(
                "outbox config: cannot create `dir` {}: {e}; point it at a writable folder",
                config.dir.display()
            )
        })?;
        Ok(Outbox { config })
    }

    fn describe(&self) -> Description {
        let mut names = vec!["outbox".to_owned()];
        for name in &self.config.channels {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Description {
            version: WIRE_VERSION,
            channels: names.iter().map(|name| channel_info(name)).collect(),
            concurrency: self.config.concurrency,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        batch
            .messages
            .iter()
            .map(|message| MessageResult {
                message_id: message.message_id.clone(),
                status: match self.write(message) {
                    Ok(name) => SendStatus::Accepted {
                        provider_message_id: Some(name),
                    },
                    Err(e) => SendStatus::Retry {
                        reason: format!(
                            "outbox: cannot write into {}: {e}",
                            self.config.dir.display()
                        ),
                        retry_after_ms: None,
                    },
                },
            })
            .collect()
    }
}

herald_plugin_api::export_channel!(Outbox, "herald_outbox", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests;
