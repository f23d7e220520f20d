//! Config values every plugin takes, parsed with errors that name the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config value a plugin refuses; the message names the key and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that is not a number followed by a unit.
    #[error(
        "config key `{key}`: `{value}` is not a duration ({reason}); write it like `500ms`, `10s`, `5m` or `1h`"
    )]
    Duration {
        /// The config key.
        key: String,
        /// The value as written.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A rate that is not `N/s`, `N/m` or `N/h` with N at least 1.
    #[error(
        "config key `{key}`: `{value}` is not a rate; write it like `50/s` (also `/m`, `/h`), with a count of at least 1"
    )]
    Rate {
        /// The config key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A secret file that cannot be read.
    #[error("config key `{key}`: cannot read the secret file `{}`: {source}; check the path and that the daemon's user may read it", path.display())]
    SecretUnreadable {
        /// The config key.
        key: String,
        /// The file named by the key.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A secret file holding nothing but white space.
    #[error("config key `{key}`: the secret file `{}` is empty; put the secret in it", path.display())]
    SecretEmpty {
        /// The config key.
        key: String,
        /// The file named by the key.
        path: PathBuf,
    },
    /// A required key that is missing, or a value that is out of range.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The config key.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// A free-form refusal of `key`; `message` says what is wrong and how to fix it.
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Parses a duration such as `500ms`, `10s`, `5m`, `1h`, `90d` given under `key`.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| ConfigError::Duration {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// A sending rate: `count` sends per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many sends are allowed per period (at least 1).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// The even spacing between two sends at this rate.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

/// Parses a rate such as `50/s`, `600/m` or `1000/h` given under `key`.
pub fn parse_rate(key: &str, value: &str) -> Result<Rate, ConfigError> {
    let refuse = || ConfigError::Rate {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    let (count, unit) = value.trim().split_once('/').ok_or_else(refuse)?;
    let count: u32 = count.trim().parse().map_err(|_| refuse())?;
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(refuse()),
    };
    if count == 0 {
        return Err(refuse());
    }
    Ok(Rate { count, per })
}

/// Reads the secret in the file named under `key`, without the trailing
/// newline editors add; an empty file is refused rather than sent as an
/// empty password.
pub fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretUnreadable {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.trim().is_empty() {
        return Err(ConfigError::SecretEmpty {
            key: key.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_daemon_units() {
        assert_eq!(
            parse_duration("timeout", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("timeout", "10s").unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(
            parse_duration("timeout", "5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration("timeout", "1h").unwrap(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn a_bad_duration_names_the_key_and_the_fix() {
        let message = parse_duration("timeout", "ten").unwrap_err().to_string();
        assert!(message.contains("`timeout`"), "{message}");
        assert!(message.contains("`10s`"), "{message}");
    }

    #[test]
    fn rates_are_count_per_unit() {
        let rate = parse_rate("rate", "50/s").unwrap();
        assert_eq!(rate.interval(), Duration::from_millis(20));
        assert_eq!(
            parse_rate("rate", "60/m").unwrap().interval(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_zero_or_unitless_rate_is_refused_naming_the_key() {
        for bad in ["0/s", "50", "50/day", "x/s"] {
            let message = parse_rate("rate", bad).unwrap_err().to_string();
            assert!(
                message.contains("`rate`") && message.contains(bad),
                "{message}"
            );
        }
    }

    #[test]
    fn a_secret_loses_only_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, " s3cret \n").unwrap();
        assert_eq!(read_secret("auth_token_file", &path).unwrap(), " s3cret ");
    }

    #[test]
    fn a_missing_or_empty_secret_file_names_the_key_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let message = read_secret("password_file", &missing)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`password_file`") && message.contains("nope"),
            "{message}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let message = read_secret("password_file", &empty)
            .unwrap_err()
            .to_string();
        assert!(message.contains("is empty"), "{message}");
    }
}
