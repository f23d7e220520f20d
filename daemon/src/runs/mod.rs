//! The run lifecycle: prepare, confirm, cancel, pause, resume, expire.
//!
//! The state changes themselves are atomic store operations; this module
//! decides which one a due run needs ([`advance`]) and does the work of
//! preparation ([`prepare`]).

pub mod actions;
mod advance;
mod busy;
pub mod feedback;
pub mod model;
pub mod prepare;

pub use advance::{advance, cancel_removed, prepare_taken};
pub use busy::{Busy, BusyGuard};
pub use model::{ExclusionReason, FeedbackEvent, Outcome, Role, RunId, RunState};
