//! OAuth2 access tokens from a service-account key (JWT bearer grant).

use crate::config::PushConfig;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Lifetime asked for the signed assertion (Google's maximum).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// A token is renewed this long before it expires, so no request carries
/// one that lapses in flight.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// The claims of the signed assertion.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The service account's e-mail.
    pub iss: String,
    /// The scopes asked for.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// Why no access token could be had; the message goes into `retry` results.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Signing the assertion failed.
    #[error("cannot sign the service-account assertion: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The token endpoint did not answer.
    #[error("the token endpoint {url} did not answer: {source}")]
    Unreachable {
        /// The token endpoint.
        url: String,
        /// The HTTP error.
        source: reqwest::Error,
    },
    /// The token endpoint refused or answered something unreadable.
    #[error(
        "the token endpoint {url} answered HTTP {status}: {body}; check the service-account key and its permissions"
    )]
    Refused {
        /// The token endpoint.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The endpoint's words.
        body: String,
    },
}

/// A cached access token and when to stop using it.
#[derive(Debug, Clone)]
struct Cached {
    token: String,
    renew_at: Instant,
}

/// Fetches access tokens and keeps the current one until shortly before it expires.
pub struct TokenSource {
    config: PushConfig,
    http: reqwest::Client,
    // An async lock: one refresh at a time, the others wait for its token.
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenSource {
    /// A source for the service account in `config`.
    pub fn new(config: PushConfig, http: reqwest::Client) -> Self {
        TokenSource {
            config,
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The current token, fetched when there is none or it is about to expire.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(current.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops `token` if it is still the cached one, after the server refused it.
    pub async fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Cached, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: self.config.client_email.clone(),
            scope: SCOPE.into(),
            aud: self.config.token_url.clone(),
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.config.signing_key,
        )?;
        let url = &self.config.token_url;
        let sent = Instant::now();
        let response = self
            .http
            .post(url)
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|source| TokenError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let refused = || TokenError::Refused {
            url: url.clone(),
            status,
            body: body.chars().take(300).collect(),
        };
        if !status.is_success() {
            return Err(refused());
        }
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|_| refused())?;
        let lifetime = Duration::from_secs(parsed.expires_in);
        // Short-lived tokens are renewed at half-life rather than never cached.
        let margin = RENEW_MARGIN.min(lifetime / 2);
        Ok(Cached {
            token: parsed.access_token,
            renew_at: sent + lifetime - margin,
        })
    }
}
