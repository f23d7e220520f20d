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
//! - [`retry_after_ms`]: reads an HTTP `Retry-After` header value
//!   (seconds or an HTTP date).

pub mod config;
mod rate;

pub use config::{ConfigError, Rate, parse_duration, parse_rate, read_secret};
pub use rate::RateLimiter;

/// Reads an HTTP `Retry-After` value (RFC 9110 §10.2.3) into milliseconds
/// from now: delay-seconds (`"30"`) or an HTTP date (a date already past
/// is 0); `None` for anything unreadable, so the host applies its own
/// back-off.
pub fn retry_after_ms(value: &str) -> Option<u64> {
    retry_after_ms_at(value, std::time::SystemTime::now())
}

/// [`retry_after_ms`] as seen at `now`.
fn retry_after_ms_at(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |wait| {
        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_becomes_milliseconds() {
        assert_eq!(retry_after_ms(" 30 "), Some(30_000));
    }

    #[test]
    fn retry_after_as_a_date_is_the_time_until_it() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(
            retry_after_ms_at("Wed, 21 Oct 2026 07:28:45 GMT", now),
            Some(45_000)
        );
        assert_eq!(
            retry_after_ms_at("Wed, 21 Oct 2026 07:27:00 GMT", now),
            Some(0),
            "a date already past means at once"
        );
    }

    #[test]
    fn an_unreadable_retry_after_is_left_to_the_host() {
        assert_eq!(retry_after_ms("soon"), None);
        assert_eq!(retry_after_ms("-5"), None);
    }
}
