//! Delivery definitions: the YAML files marketers write, parsed and
//! checked into [`Delivery`] values that are valid by construction.
//!
//! - [`model`]: the file format as serde types (and the JSON Schema).
//! - [`schedule`]: at once, `at`, or `cron` in a zone, with its window.
//! - [`errors`]: [`FileError`], every problem as `file:line:column: message`.

pub mod duration;
pub mod errors;
pub mod model;
pub mod schedule;

pub use duration::{Per, Throttle};
pub use errors::FileError;
pub use schedule::{Aggregation, CatchUp, Schedule, When};
