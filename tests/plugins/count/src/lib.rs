//! A test channel that counts: every accepted message id is appended to
//! `{dir}/{pid}.log` (one line each, one `write` per batch, before the
//! batch returns), so a test can count deliveries per recipient across
//! daemon processes, including one killed mid-batch.
//!
//! Config: `channel` (default `count`), `dir` (required unless `log:
//! false`), `concurrency` (default 4), `batch_delay_ms` (each batch takes
//! this long, like a slow provider), `retry_first` (every message is
//! answered `retry` this many times before it is accepted),
//! `address_column` (default none: the address is the recipient id).
//!
//! What happens to one message depends on its address:
//! - `always-retry…`: always `retry`;
//! - `fail…`: `failed`; `bounce…`: `bounced` (hard);
//! - `panic…`: the whole batch panics;
//! - `hang…`: the whole batch sleeps for an hour;
//! - anything else: `accepted` (after `retry_first` retries).

use herald_plugin_api::{
    Batch, BounceKind, Channel, ChannelInfo, Description, MessageResult, Normalisation, SendStatus,
    WIRE_VERSION,
};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The counting channel.
struct Count {
    channel: String,
    concurrency: u32,
    address_column: Option<String>,
    batch_delay: Duration,
    retry_first: u32,
    log: Option<Mutex<File>>,
    /// Tries so far per message id, for `retry_first`.
    tries: Mutex<HashMap<String, u32>>,
}

fn number(config: &serde_json::Value, key: &str, default: u64) -> Result<u64, String> {
    match config.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("`{key}` must be a whole number, got {v}")),
    }
}

impl Channel for Count {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        let channel = config
            .get("channel")
            .and_then(|v| v.as_str())
            .unwrap_or("count")
            .to_owned();
        let log = if config.get("log").and_then(|v| v.as_bool()) == Some(false) {
            None
        } else {
            let dir = config
                .get("dir")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
                .ok_or("`dir` is required: the folder where accepted message ids are logged")?;
            let path = dir.join(format!("{}.log", std::process::id()));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            Some(Mutex::new(file))
        };
        Ok(Count {
            channel,
            concurrency: u32::try_from(number(config, "concurrency", 4)?)
                .map_err(|_| "`concurrency` is too big")?,
            address_column: config
                .get("address_column")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            batch_delay: Duration::from_millis(number(config, "batch_delay_ms", 0)?),
            retry_first: u32::try_from(number(config, "retry_first", 0)?)
                .map_err(|_| "`retry_first` is too big")?,
            log,
            tries: Mutex::new(HashMap::new()),
        })
    }

    fn describe(&self) -> Description {
        Description {
            version: WIRE_VERSION,
            channels: vec![ChannelInfo {
                name: self.channel.clone(),
                address_column: self.address_column.clone(),
                normalise: Normalisation::None,
                tracking: false,
            }],
            concurrency: self.concurrency,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        if !self.batch_delay.is_zero() {
            std::thread::sleep(self.batch_delay);
        }
        for message in &batch.messages {
            if message.address.starts_with("panic") {
                panic!("count was told to panic on {}", message.message_id);
            }
            if message.address.starts_with("hang") {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        let mut accepted = String::new();
        let results = batch
            .messages
            .iter()
            .map(|m| {
                let status = self.status(&m.message_id, &m.address);
                if matches!(status, SendStatus::Accepted { .. }) {
                    accepted.push_str(&m.message_id);
                    accepted.push('\n');
                }
                MessageResult {
                    message_id: m.message_id.clone(),
                    status,
                }
            })
            .collect();
        if let Some(log) = &self.log {
            // One write per batch: what the test counts is what a provider
            // would have received before the host learnt the results.
            let mut file = log.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(accepted.as_bytes())
                .expect("the count log is writable");
        }
        results
    }
}

impl Count {
    fn status(&self, message_id: &str, address: &str) -> SendStatus {
        if address.starts_with("always-retry") {
            return retry();
        }
        if address.starts_with("fail") {
            return SendStatus::Failed {
                reason: "count was told to fail".into(),
            };
        }
        if address.starts_with("bounce") {
            return SendStatus::Bounced {
                kind: BounceKind::Hard,
                reason: "count was told to bounce".into(),
            };
        }
        if self.retry_first > 0 {
            let mut tries = self.tries.lock().unwrap_or_else(|e| e.into_inner());
            let so_far = tries.entry(message_id.to_owned()).or_insert(0);
            if *so_far < self.retry_first {
                *so_far += 1;
                return retry();
            }
        }
        SendStatus::Accepted {
            provider_message_id: None,
        }
    }
}

fn retry() -> SendStatus {
    SendStatus::Retry {
        reason: "count was told to retry".into(),
        retry_after_ms: Some(10),
    }
}

herald_plugin_api::export_channel!(Count, "count", env!("CARGO_PKG_VERSION"));
