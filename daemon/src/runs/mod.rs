//! The run lifecycle: prepare, confirm, cancel, pause, resume, expire.

pub mod model;

pub use model::{ExclusionReason, FeedbackEvent, Outcome, Role, RunId, RunState};
