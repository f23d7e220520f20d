//! Shared helpers for Herald's tests.
//!
//! - [`RedisServer`]: a private `redis-server` on a free loopback port, with
//!   its own data folder, that a test can stop, kill and restart at will
//!   (guarantees.md: tests never touch another Redis).
//!
//! The crate does not depend on `herald`, so it can also drive the built
//! daemon binary as a separate process.

mod redis_server;

pub use redis_server::RedisServer;
