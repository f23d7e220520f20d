//! # Herald plugin kit
//!
//! Small pieces the in-tree channel plugins (`herald_email`, `herald_sms`,
//! `herald_push`) share, so that each reads its config and paces its sends
//! the same way.
//!
//! ## Brief overview
//!
//! - [`config`]: durations (`500ms`, `10s`), rates (`50/s`) and secrets read
//!   from files, each error naming the config key at fault.
//! - [`RateLimiter`]: spaces sends evenly across all threads of an instance.
//! - [`retry_after_ms`]: reads an HTTP `Retry-After` header value.

pub mod config;
mod rate;

pub use config::{ConfigError, Rate, parse_duration, parse_rate, read_secret};
pub use rate::RateLimiter;

/// Reads an HTTP `Retry-After` value given in seconds (`"30"`) into
/// milliseconds; `None` for an HTTP date or anything unreadable, since
/// the host then applies its own back-off.
pub fn retry_after_ms(value: &str) -> Option<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_becomes_milliseconds() {
        assert_eq!(retry_after_ms(" 30 "), Some(30_000));
    }

    #[test]
    fn retry_after_as_a_date_is_left_to_the_host() {
        assert_eq!(retry_after_ms("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    }
}
