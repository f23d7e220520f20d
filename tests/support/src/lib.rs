//! Shared helpers for Herald's tests.
//!
//! - [`RedisServer`]: a private `redis-server` on a free loopback port, with
//!   its own data folder, that a test can stop, kill and restart at will
//!   (guarantees.md: tests never touch another Redis).
//! - [`RedisCluster`] (3 masters) and [`RedisSentinelSet`] (a master, a
//!   replica, 3 Sentinels): Redis past one server, on loopback.
//! - [`Daemon`]: the built `herald` binary with a temporary config, ready
//!   once `/readyz` answers; it can be stopped (SIGTERM) or killed (SIGKILL).
//! - [`eml`]: reading the messages the outbox plugin writes.
//! - [`SmtpSink`]: an SMTP server on loopback that counts messages per
//!   recipient and keeps them raw.
//!
//! The crate does not depend on `herald`, so it can also drive the built
//! daemon binary as a separate process.

mod daemon;
pub mod eml;
mod redis_server;
mod smtp_sink;
mod topologies;

pub use daemon::{Daemon, get_status};
pub use redis_server::RedisServer;
pub use smtp_sink::{RawMessage, SmtpSink};
pub use topologies::{MASTER_NAME, RedisCluster, RedisSentinelSet, redis_cli};
