//! What can go wrong loading a plugin or calling one.

use std::path::PathBuf;
use std::time::Duration;

/// A plugin could not be loaded or started; every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file is missing or is not a shared library for this machine.
    #[error(
        "cannot load plugin {path}: {}; check the `plugins[].path` and that the file is a .so built for this machine",
        chain(.cause)
    )]
    Open {
        /// The library's path.
        path: PathBuf,
        /// What the dynamic loader said (in the message, not a `source`,
        /// so that the fix is the last thing the operator reads).
        cause: libloading::Error,
    },
    /// The library does not export the entry point.
    #[error(
        "plugin {path} does not export the symbol `herald_channel_v1` ({}); build it with the SDK's `export_channel!` or export the function the header declares",
        chain(.cause)
    )]
    MissingSymbol {
        /// The library's path.
        path: PathBuf,
        /// What the dynamic loader said (in the message, not a `source`,
        /// so that the fix is the last thing the operator reads).
        cause: libloading::Error,
    },
    /// `herald_channel_v1()` returned a null pointer.
    #[error(
        "plugin {path}: `herald_channel_v1()` returned a null table; it must return a pointer to a static `HeraldChannelV1`"
    )]
    NullTable {
        /// The library's path.
        path: PathBuf,
    },
    /// The table's ABI version is outside what this host supports.
    #[error(
        "plugin {path} has ABI version {found} (compatible down to {min_compatible}), but this herald supports ABI versions {supported_min} to {supported_max}; rebuild the plugin against a matching herald-plugin-api"
    )]
    Version {
        /// The library's path.
        path: PathBuf,
        /// The table's `abi_version`.
        found: u32,
        /// The table's `abi_min_compatible`.
        min_compatible: u32,
        /// The oldest version this host supports.
        supported_min: u32,
        /// The newest version this host supports.
        supported_max: u32,
    },
    /// A field of the table that must be set is null or not UTF-8.
    #[error(
        "plugin {path}: the table's `{field}` is {problem}; every field of `HeraldChannelV1` must be set"
    )]
    BadTable {
        /// The library's path.
        path: PathBuf,
        /// The table field at fault.
        field: &'static str,
        /// `null` or `not UTF-8`.
        problem: &'static str,
    },
    /// The plugin refused its config (its own message).
    #[error("plugin {path} refused its config: {message}")]
    Refused {
        /// The library's path.
        path: PathBuf,
        /// The plugin's words.
        message: String,
    },
    /// `describe` failed or returned something the host cannot use.
    #[error("plugin {path}: bad description: {reason}")]
    Description {
        /// The library's path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Two instances serve the same channel.
    #[error(
        "channel `{channel}` is served by two plugins, {first} and {second}; remove one of them or configure it to serve other channels"
    )]
    DuplicateChannel {
        /// The channel name.
        channel: String,
        /// The plugin loaded first.
        first: PathBuf,
        /// The plugin loaded second.
        second: PathBuf,
    },
    /// The operating system would not start a worker thread.
    #[error("plugin {path}: cannot start a worker thread: {source}")]
    Thread {
        /// The library's path.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
}

/// An error and its sources on one line: libloading puts the loader's
/// words in the source, behind a bare "dlopen failed".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

/// A batch did not come back with usable results. Every variant is a
/// batch-level failure: the caller retries the batch's messages later with
/// the same message ids.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The call did not return within `plugin_timeout`; its thread is left
    /// to finish and counted against the plugin's health.
    #[error(
        "plugin {plugin} did not return a batch for channel `{channel}` within {timeout:?}; the call was abandoned"
    )]
    Abandoned {
        /// The channel the batch was for.
        channel: String,
        /// The plugin's name.
        plugin: String,
        /// The configured `sending.plugin_timeout`.
        timeout: Duration,
    },
    /// Every slot of the instance stayed busy for `plugin_timeout`, so the
    /// batch never reached the plugin.
    #[error(
        "plugin {plugin} had no free slot for channel `{channel}` within {timeout:?}; the batch was not sent"
    )]
    Saturated {
        /// The channel the batch was for.
        channel: String,
        /// The plugin's name.
        plugin: String,
        /// The configured `sending.plugin_timeout`.
        timeout: Duration,
    },
    /// `send_batch` returned a non-zero code.
    #[error("plugin {plugin} failed the batch for channel `{channel}` (code {code}): {message}")]
    Plugin {
        /// The channel the batch was for.
        channel: String,
        /// The plugin's name.
        plugin: String,
        /// The return code.
        code: i32,
        /// The plugin's error text.
        message: String,
    },
    /// The results are not a `BatchResults` JSON document of wire version 1.
    #[error("plugin {plugin} returned invalid results for channel `{channel}`: {reason}")]
    InvalidResults {
        /// The channel the batch was for.
        channel: String,
        /// The plugin's name.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// Not one result per message.
    #[error(
        "plugin {plugin} returned {got} results for a batch of {expected} messages on channel `{channel}`"
    )]
    ResultCount {
        /// The channel the batch was for.
        channel: String,
        /// The plugin's name.
        plugin: String,
        /// Messages in the batch.
        expected: usize,
        /// Results returned.
        got: usize,
    },
    /// A result's id is not the id of the message at the same position.
    #[error(
        "plugin {plugin} returned result {index} for message id `{got}` instead of `{expected}` on channel `{channel}`"
    )]
    ResultId {
        /// The channel the batch was for.
        channel: String,
        /// The plugin's name.
        plugin: String,
        /// Position in the batch.
        index: usize,
        /// The message's id.
        expected: String,
        /// The id the result carried.
        got: String,
    },
    /// The host is shutting down and its workers are gone.
    #[error("the plugin host for channel `{channel}` has stopped")]
    Stopped {
        /// The channel the batch was for.
        channel: String,
    },
}

impl SendError {
    /// Whether the plugin may have seen the batch (and so may have sent some
    /// of it): true except for `Saturated` and `Stopped`.
    pub fn plugin_may_have_sent(&self) -> bool {
        !matches!(self, Self::Saturated { .. } | Self::Stopped { .. })
    }
}
