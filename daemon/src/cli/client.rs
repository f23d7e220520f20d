//! The API client of the commands that talk to a running daemon
//! (`runs`, `confirm`, ..., `suppress`): reqwest on a current-thread tokio
//! runtime, bearer token from `HERALD_TOKEN`, errors carrying the server's
//! `error` text.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The daemon's `listen` address by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8425";

/// Exit code of a usage error (no token).
const EXIT_USAGE: u8 = 2;

/// The token in `HERALD_TOKEN`; without one, says how to set it and gives
/// the usage exit code.
pub fn token_from_env() -> Result<String, std::process::ExitCode> {
    // An empty HERALD_TOKEN counts as unset, as an empty HERALD_CONFIG does:
    // sent as is it would only earn a 401 that hides the real mistake.
    std::env::var("HERALD_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty())
        .ok_or_else(|| {
            eprintln!("herald: set HERALD_TOKEN to your API token (the one whose `herald hash-token` digest is in the daemon's `users`)");
            std::process::ExitCode::from(EXIT_USAGE)
        })
}

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The server answered with an error status and message.
    #[error("{message} (HTTP {status})")]
    Refused {
        /// The status code.
        status: StatusCode,
        /// The server's `error` text.
        message: String,
    },
    /// The daemon could not be reached.
    #[error(
        "cannot reach the daemon at {url}: {detail}; is it running? Pass its address with --url"
    )]
    Unreachable {
        /// Where.
        url: String,
        /// The transport's words.
        detail: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {detail}")]
    BadAnswer {
        /// Where.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

/// A client of one daemon's API.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the daemon at `base` (see [`base_url`]) with `token`.
    pub fn new(base: &str, token: String) -> std::io::Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(150))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Client {
            base: base_url(base),
            token,
            http,
            runtime,
        })
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RemoteError> {
        self.call(Method::GET, path, None::<&()>)
    }

    /// `POST path` with an optional JSON body.
    pub fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, RemoteError> {
        self.call(Method::POST, path, body)
    }

    /// `method path` with an optional JSON body; the answer decoded as `T`.
    pub fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, RemoteError> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let mut request = self
                .http
                .request(method, &url)
                .bearer_auth(&self.token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| RemoteError::Unreachable {
                url: self.base.clone(),
                detail: e.to_string(),
            })?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| RemoteError::Unreachable {
                    url: self.base.clone(),
                    detail: e.to_string(),
                })?;
            if !status.is_success() {
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                    .unwrap_or(text);
                return Err(RemoteError::Refused { status, message });
            }
            serde_json::from_str(&text).map_err(|e| RemoteError::BadAnswer {
                url,
                detail: e.to_string(),
            })
        })
    }
}

/// The base of the API's URLs from `--url` or `HERALD_URL`: empty means
/// the default, and an address without a scheme, as `http.listen` gives it
/// (`127.0.0.1:8425`), means plain HTTP.
pub fn base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.is_empty() {
        DEFAULT_URL.to_owned()
    } else if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// Percent-encodes one path segment or query value.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_address_or_an_empty_url_makes_a_base_url() {
        assert_eq!(base_url("127.0.0.1:8425"), "http://127.0.0.1:8425");
        assert_eq!(base_url("https://h.example/"), "https://h.example");
        assert_eq!(base_url(""), DEFAULT_URL);
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            encode("weekly@20261207T080000Z"),
            "weekly%4020261207T080000Z"
        );
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
