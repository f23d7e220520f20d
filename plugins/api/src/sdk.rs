//! The Rust SDK: implement [`Channel`] and export it with
//! [`export_channel!`](crate::export_channel).

use crate::wire::{Batch, Description, MessageResult};

/// A channel plugin instance. The host may call [`Channel::send_batch`]
/// from several threads at once, up to the concurrency [`Channel::describe`]
/// declares, so implementations must be thread-safe.
pub trait Channel: Send + Sync + Sized + 'static {
    /// Creates an instance from the `config` map of the `plugins[]` entry.
    /// The error is shown to the operator: say what is wrong and how to fix it.
    fn create(config: &serde_json::Value) -> Result<Self, String>;

    /// What this instance serves and how it wants to be called.
    fn describe(&self) -> Description;

    /// Sends one batch; returns exactly one result per message, in order.
    /// Blocking: the host calls it off its async workers.
    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult>;
}

/// Exports a [`Channel`] type as the `herald_channel_v1` symbol of a
/// `cdylib`: `herald_plugin_api::export_channel!(MyChannel, "my_plugin", "1.0.0");`
#[macro_export]
macro_rules! export_channel {
    ($channel:ty, $name:expr, $version:expr) => {
        // Filled by the plugins issue: the C table and the catch_unwind wrappers.
        const _: fn() = || {
            fn assert_channel<T: $crate::Channel>() {}
            assert_channel::<$channel>();
        };
    };
}
