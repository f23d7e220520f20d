//! The email plugin's config: the `config` map of its `plugins[]` entry.

use herald_plugin_kit::{ConfigError, Rate, parse_duration, parse_rate, read_secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The config as written; [`EmailConfig::parse`] checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// `smtp://host:port` (STARTTLS when offered), `smtps://host:port`
    /// (implicit TLS); `?tls=required` refuses a plain connection.
    smtp_url: String,
    /// AUTH user name; needs `password_file`.
    username: Option<String>,
    /// File holding the AUTH password; needs `username`.
    password_file: Option<PathBuf>,
    /// Most SMTP connections kept open at once; also the concurrency asked of the host.
    pool_size: Option<u32>,
    /// Most messages sent per period across all calls, like `50/s`.
    rate: Option<String>,
    /// Time allowed for one message's whole SMTP exchange, like `30s`.
    timeout: Option<String>,
    /// Name given in EHLO; defaults to this machine's host name.
    helo_name: Option<String>,
    /// PEM file of extra CA certificates to trust for the server (a private relay).
    tls_ca_file: Option<PathBuf>,
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// `smtp://...?tls=required`: STARTTLS or nothing is sent.
    RequiredStartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// The checked config of one email plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// SMTP server host name or IP address.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// AUTH user name and password, when configured.
    pub credentials: Option<(String, String)>,
    /// Most pooled connections, at least 1.
    pub pool_size: u32,
    /// The instance's rate limit, when configured.
    pub rate: Option<Rate>,
    /// Time allowed for one message's whole SMTP exchange (connect included).
    pub timeout: Duration,
    /// Name given in EHLO, when configured.
    pub helo_name: Option<String>,
    /// Extra CA certificates (PEM) trusted for the server, when configured.
    pub tls_ca_pem: Option<Vec<u8>>,
}

const DEFAULT_POOL_SIZE: u32 = 4;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl EmailConfig {
    /// Parses and checks the JSON config; the error names the key at fault.
    pub fn parse(config: &serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_value(config.clone())
            .map_err(|e| ConfigError::invalid("config", format!("{e}; the keys are smtp_url, username, password_file, pool_size, rate, timeout, helo_name, tls_ca_file")))?;
        let (host, port, security) = parse_smtp_url(&raw.smtp_url)?;
        let credentials = match (raw.username, raw.password_file) {
            (Some(user), Some(file)) => Some((user, read_secret("password_file", &file)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "password_file",
                    "missing while `username` is set; name the file holding the SMTP password",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "username",
                    "missing while `password_file` is set; give the SMTP user name",
                ));
            }
        };
        let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if pool_size == 0 {
            return Err(ConfigError::invalid("pool_size", "must be at least 1"));
        }
        Ok(EmailConfig {
            host,
            port,
            security,
            credentials,
            pool_size,
            rate: raw
                .rate
                .as_deref()
                .map(|r| parse_rate("rate", r))
                .transpose()?,
            timeout: match raw.timeout.as_deref() {
                Some(t) => parse_duration("timeout", t)?,
                None => DEFAULT_TIMEOUT,
            },
            helo_name: raw.helo_name,
            tls_ca_pem: raw.tls_ca_file.as_deref().map(read_ca_file).transpose()?,
        })
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError::invalid(
            "tls_ca_file",
            format!(
                "cannot read `{}`: {e}; check the path and its permissions",
                path.display()
            ),
        )
    })?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::invalid(
            "tls_ca_file",
            format!(
                "`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                path.display()
            ),
        ));
    }
    Ok(pem)
}

/// Splits `smtp[s]://host[:port][?tls=required]` into its parts.
fn parse_smtp_url(url: &str) -> Result<(String, u16, Security), ConfigError> {
    let refuse = |why: &str| {
        ConfigError::invalid(
            "smtp_url",
            format!(
                "`{url}` {why}; write it like `smtp://mail.example:587`, `smtp://mail.example:587?tls=required` or `smtps://mail.example:465`"
            ),
        )
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| refuse("has no scheme"))?;
    let (authority, query) = match rest.split_once('?') {
        Some((authority, query)) => (authority, Some(query)),
        None => (rest, None),
    };
    let authority = authority.trim_end_matches('/');
    let (mut security, default_port) = match scheme {
        "smtp" => (Security::Opportunistic, 25),
        "smtps" => (Security::Implicit, 465),
        _ => return Err(refuse("has a scheme other than smtp or smtps")),
    };
    match query {
        None => {}
        Some("tls=required") if security == Security::Opportunistic => {
            security = Security::RequiredStartTls;
        }
        // smtps is always TLS: saying so again is harmless.
        Some("tls=required") => {}
        Some(_) => return Err(refuse("has a query other than `tls=required`")),
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| refuse("has an unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || authority.contains('@') {
        return Err(refuse(
            "has no host, or carries credentials (use `username` and `password_file`)",
        ));
    }
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| refuse("has a port that is not a number from 1 to 65535"))?,
        None => default_port,
    };
    Ok((host.to_owned(), port, security))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smtp_urls_choose_the_tls_mode() {
        let parse = |url| parse_smtp_url(url).unwrap();
        assert_eq!(
            parse("smtp://mx.example:587"),
            ("mx.example".into(), 587, Security::Opportunistic)
        );
        assert_eq!(
            parse("smtp://mx.example:587?tls=required"),
            ("mx.example".into(), 587, Security::RequiredStartTls)
        );
        assert_eq!(
            parse("smtps://mx.example"),
            ("mx.example".into(), 465, Security::Implicit)
        );
        assert_eq!(
            parse("smtp://[::1]:2525"),
            ("::1".into(), 2525, Security::Opportunistic)
        );
    }

    #[test]
    fn a_bad_smtp_url_is_refused_naming_the_key() {
        for bad in [
            "mx.example:25",
            "http://mx.example",
            "smtp://mx.example:x",
            "smtp://mx.example?tls=maybe",
            "smtp://u:p@mx.example",
        ] {
            let message = EmailConfig::parse(&json!({ "smtp_url": bad }))
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("`smtp_url`") && message.contains(bad),
                "{message}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let message =
            EmailConfig::parse(&json!({ "smtp_url": "smtp://h:25", "password": "inline" }))
                .unwrap_err()
                .to_string();
        assert!(message.contains("unknown field `password`"), "{message}");
    }

    #[test]
    fn the_password_comes_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2\n").unwrap();
        let config = EmailConfig::parse(&json!({
            "smtp_url": "smtp://h:25", "username": "herald", "password_file": file,
            "rate": "20/s", "timeout": "5s", "pool_size": 2,
        }))
        .unwrap();
        assert_eq!(
            config.credentials,
            Some(("herald".into(), "hunter2".into()))
        );
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.pool_size, 2);
        assert_eq!(config.rate.unwrap().count, 20);
    }

    #[test]
    fn a_username_without_password_file_is_refused() {
        let message = EmailConfig::parse(&json!({ "smtp_url": "smtp://h:25", "username": "u" }))
            .unwrap_err()
            .to_string();
        assert!(message.contains("`password_file`"), "{message}");
    }
}
