//! Tracking, unsubscribe, feedback and suppressions against the real
//! `herald` binary and its real HTTP listeners (issue 8):
//!
//! - [`story`]: the whole story of a 1,000-recipient e-mail run through the
//!   outbox plugin; opens, clicks and unsubscribes made with the tokens
//!   found in the written messages; bounces and complaints posted as
//!   feedback; the KPIs equal the test's own count; the next run excludes
//!   the quarantined and denylisted addresses.
//! - [`cli`]: `herald suppress add|import|list|remove` over the API.
//! - [`frozen`]: tracking and unsubscribe answer at once while Redis is frozen.

mod cli;
mod frozen;
mod story;

use herald_test_support::Daemon;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Token of the user with the role `viewer`.
pub const VIEWER: &str = "viewer-token";
/// Token of the user with the role `start_deliveries`.
pub const STARTER: &str = "starter-token";
/// Token of the user with the role `feedback`.
pub const FEEDER: &str = "feedback-token";
/// Token of the user with the role `admin`.
pub const ADMIN: &str = "admin-token";

/// The built outbox plugin.
pub fn outbox_plugin() -> PathBuf {
    Daemon::plugin("herald_outbox")
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A daemon config (`{listen}` left for [`Daemon`]) on an embedded store,
/// with the outbox plugin serving `email` and one user per role; `http`
/// holds extra keys of the `http` block.
pub fn config(dir: &Path, http: &str) -> String {
    let deliveries = dir.join("deliveries");
    std::fs::create_dir_all(&deliveries).unwrap();
    format!(
        r#"deliveries_dir: {deliveries}
store:
  kind: embedded
  path: {db}
http:
  listen: "{{listen}}"
{http}
plugins:
  - path: {plugin}
    config:
      dir: {outbox}
      channels: [email]
sending:
  lease: 3s
kpi:
  flush_interval: 200ms
  rates_interval: 1h
users:
  - name: vera
    token_sha256: "{viewer}"
    roles: [viewer]
  - name: sam
    token_sha256: "{starter}"
    roles: [start_deliveries]
  - name: ses
    token_sha256: "{feeder}"
    roles: [feedback]
  - name: root
    token_sha256: "{admin}"
    roles: [admin]
"#,
        deliveries = deliveries.display(),
        db = dir.join("herald.db").display(),
        plugin = outbox_plugin().display(),
        outbox = dir.join("outbox").display(),
        viewer = digest(VIEWER),
        starter = digest(STARTER),
        feeder = digest(FEEDER),
        admin = digest(ADMIN),
    )
}

/// A client of one listener.
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client that does not follow redirects (clicks answer 302).
    pub http: reqwest::Client,
}

impl Api {
    /// A client of the listener at `base`.
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// `method path` with `token` and an optional JSON body: status and JSON answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until `ok` holds for its answer; panics after `within`.
    pub async fn wait(&self, path: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, value) = self.call("GET", path, VIEWER, None).await;
            if status == 200 && ok(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never got there; last: {status} {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `/api/v1/runs/{id}`.
pub fn run_path(id: &str) -> String {
    format!("/api/v1/runs/{}", id.replace('@', "%40"))
}
