//! Durations (`500ms`, `10s`, `5m`, `1h`, `90d`, or sums like `1h30m`) and
//! throttles (`N/s`, `N/min`, `N/h`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Parses a duration: one or more `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "write a whole number and a unit: `500ms`, `10s`, `5m`, `1h` or `90d`";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("empty duration: {hint}"));
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration `{text}`: {hint}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration `{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("duration `{text}` has no unit: {hint}")),
            other => return Err(format!("unknown unit `{other}` in `{text}`: {hint}")),
        };
        rest = &rest[unit_len..];
        let ms = n
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
    }
    // chrono cannot add more than ~292 years; no schedule needs a tenth of it.
    if total > Duration::from_secs(100 * 366 * 86_400) {
        return Err(format!("duration `{text}` is longer than 100 years"));
    }
    Ok(total)
}

/// The unit of a throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    /// Per second.
    S,
    /// Per minute.
    Min,
    /// Per hour.
    H,
}

/// At most `count` messages per unit of time, across all daemon instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Throttle {
    /// Messages allowed per period (at least 1).
    pub count: u32,
    /// The period.
    pub per: Per,
}

impl Throttle {
    /// The length of the throttle's period.
    pub fn period(&self) -> Duration {
        match self.per {
            Per::S => Duration::from_secs(1),
            Per::Min => Duration::from_secs(60),
            Per::H => Duration::from_secs(3600),
        }
    }

    /// Messages per second, for rate limiters that want one number.
    pub fn per_second(&self) -> f64 {
        f64::from(self.count) / self.period().as_secs_f64()
    }
}

impl std::str::FromStr for Throttle {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let hint = "write `N/s`, `N/min` or `N/h` with N a whole number of at least 1, e.g. `50/s`";
        let (n, unit) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("invalid throttle `{text}`: {hint}"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("invalid throttle count `{n}`: {hint}"))?;
        if count == 0 {
            return Err(format!("throttle `{text}` allows nothing: {hint}"));
        }
        let per = match unit.trim() {
            "s" => Per::S,
            "min" => Per::Min,
            "h" => Per::H,
            other => return Err(format!("unknown throttle unit `{other}`: {hint}")),
        };
        Ok(Throttle { count, per })
    }
}

impl TryFrom<String> for Throttle {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Throttle> for String {
    fn from(t: Throttle) -> String {
        t.to_string()
    }
}

impl fmt::Display for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            Per::S => "s",
            Per::Min => "min",
            Per::H => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_every_documented_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn durations_refuse_missing_or_unknown_units_and_overflow() {
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("3w")
                .unwrap_err()
                .contains("unknown unit `w`")
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("40000d").unwrap_err().contains("100 years"));
    }

    #[test]
    fn throttles_parse_and_print_back() {
        let t: Throttle = "50/s".parse().unwrap();
        assert_eq!(
            t,
            Throttle {
                count: 50,
                per: Per::S
            }
        );
        assert_eq!(t.to_string(), "50/s");
        let m: Throttle = "600/min".parse().unwrap();
        assert!((m.per_second() - 10.0).abs() < 1e-9);
        assert_eq!(
            "3/h".parse::<Throttle>().unwrap().period(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn throttles_refuse_zero_bad_units_and_garbage() {
        assert!("0/s".parse::<Throttle>().is_err());
        assert!(
            "5/day"
                .parse::<Throttle>()
                .unwrap_err()
                .contains("unknown throttle unit")
        );
        assert!("fast".parse::<Throttle>().is_err());
    }
}
