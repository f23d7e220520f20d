//! Shared helpers for Herald's tests.
//!
//! - [`Daemon`]: the built `herald` binary with a temporary config, ready
//!   once `/readyz` answers.

mod daemon;

pub use daemon::Daemon;
