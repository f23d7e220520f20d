//! Shared helpers for Herald's tests.
//!
//! - [`RedisServer`]: a private `redis-server` on a free loopback port, with
//!   its own data folder, that a test can stop, kill and restart at will
//!   (guarantees.md: tests never touch another Redis).
//! - [`Daemon`]: the built `herald` binary with a temporary config, ready
//!   once `/readyz` answers; it can be stopped (SIGTERM) or killed (SIGKILL).
//!
//! The crate does not depend on `herald`, so it can also drive the built
//! daemon binary as a separate process.

mod daemon;
mod redis_server;

pub use daemon::Daemon;
pub use redis_server::RedisServer;
