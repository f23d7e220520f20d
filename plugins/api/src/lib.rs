//! # Herald plugin API
//!
//! Everything a third party needs to write a Herald channel plugin without
//! the daemon's source.
//!
//! ## Brief overview
//!
//! - [`wire`]: the JSON documents that cross the ABI ([`Batch`] in,
//!   [`BatchResults`] out, [`Description`] of an instance), each with a
//!   `version` field.
//!
//! (The C table, the SDK trait and the export macro are added by the
//! plugins issue.)

pub mod sdk;
pub mod wire;

pub use sdk::Channel;

pub use wire::{
    Batch, BatchResults, BounceKind, ChannelInfo, Description, Message, MessageResult,
    Normalisation, SendStatus, WIRE_VERSION,
};
