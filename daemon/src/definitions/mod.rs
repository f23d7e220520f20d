//! Delivery definitions: the YAML files marketers write, parsed and
//! checked into [`Delivery`] values that are valid by construction.
//!
//! - [`model`]: the file format as serde types (and the JSON Schema).
//! - [`schedule`]: at once, `at`, or `cron` in a zone, with its window.
//! - [`catalog`]: the channels and folders a file is checked against.
//! - [`folder`]: [`load_folder`] and [`load_file`], safe against hostile files.
//! - [`live`]: the folder kept loaded, rescanned when it changes; a rescan
//!   reuses the verdicts of files that did not change (`file_cache`).
//! - [`audience`]: CSV streamed row by row, or inline recipients.
//! - [`templates`]: template checks and the per-recipient [`Renderer`].
//! - [`errors`]: [`FileError`], every problem as `file:line:column: message`.

pub mod address;
pub mod audience;
mod build;
pub mod catalog;
pub mod delivery;
pub mod duration;
pub mod errors;
mod file_cache;
pub mod folder;
mod fsio;
pub mod live;
pub mod model;
pub mod schedule;
pub mod templates;

pub use address::{AddressProblem, normalise_address};
pub use audience::{Audience, AudienceError, AudienceRow};
pub use build::is_valid_id;
pub use catalog::{ChannelCatalog, ValidationContext};
pub use delivery::{Content, Delivery, Tracking};
pub use duration::{Per, Throttle};
pub use errors::FileError;
pub use folder::{
    FileReport, Loaded, check_bytes, check_file, is_delivery_file_name, load_file, load_folder,
    load_paths, validate_paths,
};
pub use fsio::MAX_FILE_BYTES;
pub use schedule::{Aggregation, CatchUp, Schedule, When};
pub use templates::{RenderError, Rendered, Renderer};

/// The JSON Schema of delivery files, derived from the parser's own types.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(model::RawDelivery)
}

#[cfg(test)]
mod examples_tests;
