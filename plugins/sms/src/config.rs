//! The SMS plugin's config: the `config` map of its `plugins[]` entry.

use herald_plugin_kit::{ConfigError, Rate, parse_duration, parse_rate, read_secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Which provider API the plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A Twilio-compatible REST API: form-encoded POST, basic auth.
    Twilio,
    /// A generic JSON webhook at `url`.
    Webhook,
}

/// The config as written; [`SmsConfig::parse`] checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// `twilio` or `webhook`.
    mode: Mode,
    /// Twilio: the API base (default `https://api.twilio.com`) or the full
    /// `.../Messages.json` URL; webhook: the URL posted to.
    url: Option<String>,
    /// Twilio account SID, also the basic-auth user.
    account_sid: Option<String>,
    /// File holding the Twilio auth token, or the webhook's bearer token.
    auth_token_file: Option<PathBuf>,
    /// Extra HTTP headers sent with every request (not secrets: use `auth_token_file`).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Sender used when the delivery's content has no `from`.
    from: Option<String>,
    /// Most messages sent per period across all calls, like `10/s`.
    rate: Option<String>,
    /// Time allowed for one request, like `10s`.
    timeout: Option<String>,
    /// How many `send_batch` calls the host may make at once.
    concurrency: Option<u32>,
}

/// The checked config of one SMS plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConfig {
    /// Which provider API the plugin speaks.
    pub mode: Mode,
    /// Twilio: the full Messages.json URL; webhook: the URL posted to.
    pub endpoint: String,
    /// Twilio: account SID and auth token.
    pub basic_auth: Option<(String, String)>,
    /// Webhook: a bearer token, when `auth_token_file` is given.
    pub bearer_token: Option<String>,
    /// Extra HTTP headers.
    pub headers: BTreeMap<String, String>,
    /// Default sender.
    pub from: Option<String>,
    /// The instance's rate limit, when configured.
    pub rate: Option<Rate>,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// How many `send_batch` calls the host may make at once.
    pub concurrency: u32,
}

const TWILIO_API: &str = "https://api.twilio.com";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: u32 = 4;

impl SmsConfig {
    /// Parses and checks the JSON config; the error names the key at fault.
    pub fn parse(config: &serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_value(config.clone()).map_err(|e| {
            ConfigError::invalid(
                "config",
                format!("{e}; the keys are mode (twilio or webhook), url, account_sid, auth_token_file, headers, from, rate, timeout, concurrency"),
            )
        })?;
        let token = raw
            .auth_token_file
            .as_deref()
            .map(|file| read_secret("auth_token_file", file))
            .transpose()?;
        let (endpoint, basic_auth, bearer_token) = match raw.mode {
            Mode::Twilio => {
                let sid = raw.account_sid.ok_or_else(|| {
                    ConfigError::invalid(
                        "account_sid",
                        "missing; `mode: twilio` needs the account SID",
                    )
                })?;
                let token = token.ok_or_else(|| {
                    ConfigError::invalid(
                        "auth_token_file",
                        "missing; `mode: twilio` needs the file holding the auth token",
                    )
                })?;
                let base = raw
                    .url
                    .as_deref()
                    .unwrap_or(TWILIO_API)
                    .trim_end_matches('/');
                check_http_url(base)?;
                // A Twilio-compatible provider may be given by its full
                // messages URL as well as by its API base.
                let endpoint = if base.ends_with("/Messages.json") {
                    base.to_owned()
                } else {
                    format!("{base}/2010-04-01/Accounts/{sid}/Messages.json")
                };
                (endpoint, Some((sid, token)), None)
            }
            Mode::Webhook => {
                if raw.account_sid.is_some() {
                    return Err(ConfigError::invalid(
                        "account_sid",
                        "only used with `mode: twilio`; remove it",
                    ));
                }
                let url = raw.url.ok_or_else(|| {
                    ConfigError::invalid("url", "missing; `mode: webhook` needs the URL to post to")
                })?;
                check_http_url(&url)?;
                (url, None, token)
            }
        };
        let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(ConfigError::invalid("concurrency", "must be at least 1"));
        }
        Ok(SmsConfig {
            mode: raw.mode,
            endpoint,
            basic_auth,
            bearer_token,
            headers: raw.headers,
            from: raw.from,
            rate: raw
                .rate
                .as_deref()
                .map(|r| parse_rate("rate", r))
                .transpose()?,
            timeout: match raw.timeout.as_deref() {
                Some(t) => parse_duration("timeout", t)?,
                None => DEFAULT_TIMEOUT,
            },
            concurrency,
        })
    }
}

fn check_http_url(url: &str) -> Result<(), ConfigError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "url",
            format!("`{url}` is not an http:// or https:// URL"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok\n").unwrap();
        (dir, path)
    }

    #[test]
    fn twilio_mode_builds_the_messages_url_from_the_account() {
        let (_dir, file) = token_file();
        let config = SmsConfig::parse(
            &json!({ "mode": "twilio", "account_sid": "AC1", "auth_token_file": file }),
        )
        .unwrap();
        assert_eq!(
            config.endpoint,
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
        );
        assert_eq!(config.basic_auth, Some(("AC1".into(), "tok".into())));
    }

    #[test]
    fn twilio_mode_takes_a_full_messages_url_as_is() {
        let (_dir, file) = token_file();
        let url = "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json";
        let config = SmsConfig::parse(
            &json!({ "mode": "twilio", "url": url, "account_sid": "AC1", "auth_token_file": file }),
        )
        .unwrap();
        assert_eq!(config.endpoint, url);
        let config = SmsConfig::parse(
            &json!({ "mode": "twilio", "url": "http://127.0.0.1:9/", "account_sid": "AC1", "auth_token_file": file }),
        )
        .unwrap();
        assert_eq!(config.endpoint, url);
    }

    #[test]
    fn twilio_mode_without_a_token_names_the_key() {
        let message = SmsConfig::parse(&json!({ "mode": "twilio", "account_sid": "AC1" }))
            .unwrap_err()
            .to_string();
        assert!(message.contains("`auth_token_file`"), "{message}");
    }

    #[test]
    fn webhook_mode_needs_a_url() {
        let message = SmsConfig::parse(&json!({ "mode": "webhook" }))
            .unwrap_err()
            .to_string();
        assert!(message.contains("`url`"), "{message}");
    }

    #[test]
    fn an_unknown_mode_or_key_is_refused() {
        let message = SmsConfig::parse(&json!({ "mode": "pigeon" }))
            .unwrap_err()
            .to_string();
        assert!(message.contains("pigeon"), "{message}");
        let message = SmsConfig::parse(
            &json!({ "mode": "webhook", "url": "http://h", "auth_token": "inline" }),
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("unknown field `auth_token`"), "{message}");
    }

    #[test]
    fn a_bad_rate_names_the_key() {
        let message =
            SmsConfig::parse(&json!({ "mode": "webhook", "url": "http://h", "rate": "fast" }))
                .unwrap_err()
                .to_string();
        assert!(message.contains("`rate`"), "{message}");
    }
}
