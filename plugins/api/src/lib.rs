//! # Herald plugin API
//!
//! Everything a third party needs to write a Herald channel plugin without
//! the daemon's source: the C table of ABI version 1, the JSON documents
//! that cross it, and a Rust SDK that hides both.
//!
//! ## Brief overview
//!
//! - [`abi`]: the `#[repr(C)]` table [`abi::HeraldChannelV1`] that the
//!   exported `herald_channel_v1` function returns, its function pointer
//!   types and version constants. `include/herald_plugin.h` is the same
//!   thing for C.
//! - [`wire`]: the JSON documents that cross the ABI ([`Batch`] in,
//!   [`BatchResults`] out, [`Description`] of an instance), each with a
//!   `version` field.
//! - [`sdk`]: the [`Channel`] trait and the [`export_channel!`] macro.
//!
//! ## Writing a plugin with the SDK
//!
//! Make a `cdylib` crate that depends on this one, implement [`Channel`],
//! and export it. The host calls `send_batch` from several threads at once
//! (up to `concurrency`), off its async workers; the call may block, and may
//! run its own async runtime inside.
//!
//! ```
//! use herald_plugin_api::{
//!     Batch, Channel, ChannelInfo, Description, MessageResult, Normalisation, SendStatus,
//!     WIRE_VERSION,
//! };
//!
//! /// Accepts every message and forgets it.
//! struct Null {
//!     channel: String,
//! }
//!
//! impl Channel for Null {
//!     fn create(config: &serde_json::Value) -> Result<Self, String> {
//!         let channel = match config.get("channel") {
//!             None => "null".to_owned(),
//!             Some(serde_json::Value::String(name)) => name.clone(),
//!             Some(other) => return Err(format!("`channel` must be a string, not {other}")),
//!         };
//!         Ok(Null { channel })
//!     }
//!
//!     fn describe(&self) -> Description {
//!         Description {
//!             version: WIRE_VERSION,
//!             channels: vec![ChannelInfo {
//!                 name: self.channel.clone(),
//!                 address_column: None,
//!                 normalise: Normalisation::None,
//!                 tracking: false,
//!             }],
//!             concurrency: 4,
//!         }
//!     }
//!
//!     fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
//!         batch
//!             .messages
//!             .iter()
//!             .map(|m| MessageResult {
//!                 message_id: m.message_id.clone(),
//!                 status: SendStatus::Accepted { provider_message_id: None },
//!             })
//!             .collect()
//!     }
//! }
//!
//! herald_plugin_api::export_channel!(Null, "null_plugin", env!("CARGO_PKG_VERSION"));
//! # unsafe extern "C" {
//! #     fn herald_channel_v1() -> *const herald_plugin_api::abi::HeraldChannelV1;
//! # }
//! # fn main() {
//! #     let table = unsafe { &*herald_channel_v1() };
//! #     assert_eq!(table.abi_version, herald_plugin_api::abi::ABI_VERSION);
//! # }
//! ```
//!
//! The rules the macro keeps for you (and a C plugin keeps by hand):
//!
//! - Return exactly one result per message, in the batch's order, echoing
//!   each `message_id`. The id stays the same across retries, so pass it to
//!   a provider that deduplicates.
//! - `retry` for transient trouble (with `retry_after_ms` when the provider
//!   says), `bounced` when the provider refuses the address, `failed` when
//!   this message can never go.
//! - No panic crosses the boundary: a panic in `send_batch` becomes `retry`
//!   for every message of the batch, with the panic message; a panic in
//!   `create` becomes a config error.
//! - Whoever allocates a buffer frees it.
//! - The library is never unloaded, so statics live as long as the daemon.

pub mod abi;
pub mod sdk;
pub mod wire;

pub use sdk::Channel;

pub use wire::{
    Batch, BatchResults, BatchResultsRef, BounceKind, ChannelInfo, Description, Message,
    MessageResult, MessageResultRef, Normalisation, SendStatus, WIRE_VERSION,
};
