//! The sending pipeline end to end (issue 5): real daemon processes on a
//! private Redis, the `count` test plugin as the sink, and the store read
//! back directly to check that every recipient has exactly one outcome.
//!
//! Needs the built binary and plugins: `cargo build --workspace` first when
//! running this test binary alone.

mod cluster;
mod control;
mod crash;
mod faults;
mod lease;
mod throttle;
