//! The data lifecycle (daemon.md `retention`, http-api.md profiles):
//!
//! - [`sweep`]: the housekeeping pass and its timer: purges the per-recipient
//!   rows of runs finished longer than `retention.runs` ago, history
//!   entries older than `retention.history`, and applies kept erasures of
//!   runs that have finished since.
//! - [`erase`]: `DELETE /api/v1/profiles/{recipient_id}`.
//!
//! Every store call does a bounded amount of work (a batch of recipients,
//! a few chunks), so a purge of a million-recipient run never holds Redis
//! or the embedded store's writer for long.

pub mod erase;
pub mod sweep;

pub use erase::{Erasure, erase_profile};
pub use sweep::{Policy, Swept, sweep};

/// Recipients (or rows) one store call of a purge handles.
pub const BATCH: usize = 500;

/// Chunks one erasure step scans for the recipient.
pub const CHUNKS_PER_STEP: u32 = 20;
