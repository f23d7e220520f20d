//! The plugin host: loads the channel plugins named in the config, checks
//! their ABI, creates one instance per `plugins[]` entry, and calls them off
//! the async workers (plugins.md).
//!
//! - [`PluginHost::load`] opens every library ([`PluginLibrary::open`]:
//!   symbol, then version, before anything else), creates and describes the
//!   instances, and refuses two instances serving one channel.
//! - [`PluginHost::sender`] gives the dispatcher a cheap [`ChannelSender`]
//!   per channel; [`ChannelSender::send`] runs a batch on one of the
//!   instance's own threads (as many as it declared) and returns checked
//!   results or a batch-level [`SendError`]; [`ChannelSender::send_sharing`]
//!   lets batches that wait for a thread share one plugin call.
//! - A call still running after `plugin_timeout` is abandoned: the caller
//!   gets [`SendError::Abandoned`] at once, the thread is left to finish, and
//!   [`PluginHost::health`] reports the plugin unhealthy past a few.
//!
//! Libraries are never unloaded and instances are destroyed only after
//! their last call returns, so nothing a plugin holds is freed under it.

mod affinity;
mod decode;
mod encode;
mod error;
mod library;
mod merge;
mod pool;
mod queue;

#[cfg(test)]
pub(crate) mod tests;

pub use decode::decode_results;
pub use encode::encode_batch;
pub use error::{LoadError, SendError};
pub use library::{HOST_ABI_MAX, HOST_ABI_MIN, Instance, PluginLibrary, RawReply};
pub use pool::{PluginHealth, RECENT_WINDOW, UNHEALTHY_OUTSTANDING, UNHEALTHY_RECENT};

use herald_plugin_api::{Batch, ChannelInfo, SendStatus};
use pool::Pool;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One `plugins[]` entry of the config.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The shared library.
    pub path: PathBuf,
    /// The plugin's `config` map, handed to it as JSON.
    pub config: serde_json::Value,
}

/// Every loaded plugin instance, by the channels they serve.
#[derive(Debug)]
pub struct PluginHost {
    channels: BTreeMap<String, ChannelInfo>,
    senders: BTreeMap<String, ChannelSender>,
    pools: Vec<Arc<Pool>>,
}

impl PluginHost {
    /// Loads every plugin of `specs` and starts its threads. Fails on the
    /// first plugin that cannot load, naming its file.
    pub fn load(specs: &[PluginSpec], plugin_timeout: Duration) -> Result<PluginHost, LoadError> {
        let mut host = PluginHost {
            channels: BTreeMap::new(),
            senders: BTreeMap::new(),
            pools: Vec::new(),
        };
        let mut owners: BTreeMap<String, PathBuf> = BTreeMap::new();
        for spec in specs {
            let library = PluginLibrary::open(&spec.path)?;
            let instance = library.create(&spec.config)?;
            let description = instance.describe()?;
            for channel in &description.channels {
                if let Some(first) = owners.get(&channel.name) {
                    return Err(LoadError::DuplicateChannel {
                        channel: channel.name.clone(),
                        first: first.clone(),
                        second: spec.path.clone(),
                    });
                }
                owners.insert(channel.name.clone(), spec.path.clone());
            }
            let pool = Arc::new(Pool::start(
                instance,
                description.concurrency,
                plugin_timeout,
            )?);
            tracing::info!(
                path = %spec.path.display(),
                plugin = library.name(),
                version = library.version(),
                channels = ?description.channels.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                concurrency = description.concurrency,
                "Plugin loaded."
            );
            for channel in description.channels {
                let sender = ChannelSender {
                    channel: channel.name.as_str().into(),
                    pool: pool.clone(),
                };
                host.senders.insert(channel.name.clone(), sender);
                host.channels.insert(channel.name.clone(), channel);
            }
            host.pools.push(pool);
        }
        Ok(host)
    }

    /// The channels the loaded plugins serve, by name.
    pub fn channels(&self) -> &BTreeMap<String, ChannelInfo> {
        &self.channels
    }

    /// The sender for `channel`, or `None` when no plugin serves it.
    pub fn sender(&self, channel: &str) -> Option<ChannelSender> {
        self.senders.get(channel).cloned()
    }

    /// The health of every loaded instance, in load order.
    pub fn health(&self) -> Vec<PluginHealth> {
        self.pools.iter().map(|pool| pool.health.report()).collect()
    }

    /// Whether every loaded instance is healthy.
    pub fn is_healthy(&self) -> bool {
        self.health().iter().all(|h| h.healthy)
    }
}

/// Sends batches on one channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct ChannelSender {
    channel: Arc<str>,
    pool: Arc<Pool>,
}

impl ChannelSender {
    /// The channel this sender serves.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// How many batches the instance behind this channel takes at once.
    pub fn concurrency(&self) -> usize {
        self.pool.concurrency as usize
    }

    /// Sends `batch` and returns the status of each message, in order,
    /// once the plugin's results are checked (one per message, with the
    /// batch's message ids). Waits at most `plugin_timeout` (queueing
    /// included); an error means the whole batch is to be retried with the
    /// same message ids.
    pub async fn send(&self, batch: &Batch) -> Result<Vec<SendStatus>, SendError> {
        self.pool
            .send(&self.channel, batch, batch.messages.len())
            .await
    }

    /// [`ChannelSender::send`], but when `batch` has to wait for a free
    /// thread it may go out in one plugin call with other batches waiting
    /// then, up to `limit` messages in all (each message names its run, so
    /// runs can share a call). A burst of small runs then costs the plugin
    /// host one call per group, not one per run.
    pub async fn send_sharing(
        &self,
        batch: &Batch,
        limit: usize,
    ) -> Result<Vec<SendStatus>, SendError> {
        self.pool.send(&self.channel, batch, limit).await
    }
}
