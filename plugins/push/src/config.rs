//! The push plugin's config and the service-account key it names.

use herald_plugin_kit::{ConfigError, Rate, parse_duration, parse_rate, read_secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The config as written; [`PushConfig::parse`] checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The Google service-account key (JSON) of the Firebase project.
    service_account_file: PathBuf,
    /// The Firebase project; defaults to the key's `project_id`.
    project_id: Option<String>,
    /// OAuth2 token endpoint; defaults to the key's `token_uri`.
    token_url: Option<String>,
    /// FCM send endpoint; defaults to the FCM HTTP v1 URL of the project.
    send_url: Option<String>,
    /// Most messages sent per period across all calls, like `500/s`.
    rate: Option<String>,
    /// Time allowed for one request, like `10s`.
    timeout: Option<String>,
    /// How many `send_batch` calls the host may make at once.
    concurrency: Option<u32>,
}

/// The fields of a service-account key the plugin uses; the key file has more.
#[derive(Debug, Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    token_uri: Option<String>,
    project_id: Option<String>,
}

/// The checked config of one push plugin instance.
#[derive(Clone)]
pub struct PushConfig {
    /// The service account's e-mail, the JWT issuer.
    pub client_email: String,
    /// The service account's RSA key, ready to sign.
    pub signing_key: jsonwebtoken::EncodingKey,
    /// OAuth2 token endpoint, also the JWT audience.
    pub token_url: String,
    /// FCM send endpoint.
    pub send_url: String,
    /// The instance's rate limit, when configured.
    pub rate: Option<Rate>,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// How many `send_batch` calls the host may make at once.
    pub concurrency: u32,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: u32 = 4;

impl PushConfig {
    /// Parses and checks the JSON config and reads the key; errors name the key at fault.
    pub fn parse(config: &serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_value(config.clone()).map_err(|e| {
            ConfigError::invalid(
                "config",
                format!("{e}; the keys are service_account_file, project_id, token_url, send_url, rate, timeout, concurrency"),
            )
        })?;
        let key_text = read_secret("service_account_file", &raw.service_account_file)?;
        let file = raw.service_account_file.display();
        let account: ServiceAccount = serde_json::from_str(&key_text).map_err(|e| {
            ConfigError::invalid(
                "service_account_file",
                format!("`{file}` is not a service-account key ({e}); download a JSON key for the service account from the Google Cloud console"),
            )
        })?;
        let signing_key = jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| {
            ConfigError::invalid(
                "service_account_file",
                format!("the `private_key` in `{file}` is not an RSA key in PEM ({e})"),
            )
        })?;
        let token_url = raw.token_url.or(account.token_uri).ok_or_else(|| {
            ConfigError::invalid("token_url", format!("missing, and `{file}` has no `token_uri`; set it to https://oauth2.googleapis.com/token"))
        })?;
        let send_url = match raw.send_url {
            Some(url) => url,
            None => {
                let project = raw.project_id.or(account.project_id).ok_or_else(|| {
                    ConfigError::invalid("project_id", format!("missing, and `{file}` has no `project_id`; give the Firebase project id"))
                })?;
                format!("https://fcm.googleapis.com/v1/projects/{project}/messages:send")
            }
        };
        let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(ConfigError::invalid("concurrency", "must be at least 1"));
        }
        Ok(PushConfig {
            client_email: account.client_email,
            signing_key,
            token_url,
            send_url,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_key_file_names_the_key() {
        let message =
            PushConfig::parse(&json!({ "service_account_file": "/nonexistent/key.json" }))
                .err()
                .unwrap()
                .to_string();
        assert!(
            message.contains("`service_account_file`") && message.contains("/nonexistent/key.json"),
            "{message}"
        );
    }

    #[test]
    fn a_key_file_without_an_rsa_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.json");
        let key = json!({ "client_email": "a@b.iam", "private_key": "not a key", "token_uri": "http://t" });
        std::fs::write(&file, key.to_string()).unwrap();
        let message = PushConfig::parse(&json!({ "service_account_file": file }))
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("`private_key`") && message.contains("PEM"),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let message =
            PushConfig::parse(&json!({ "service_account_file": "k", "server_key": "legacy" }))
                .err()
                .unwrap()
                .to_string();
        assert!(message.contains("unknown field `server_key`"), "{message}");
    }
}
