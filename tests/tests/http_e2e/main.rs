//! End to end tests of the HTTP hook against the real `herald` binary:
//! confirmation races between instances, the CLI over the API, the
//! confirmation webhook, and the confirm page in headless Chromium.

mod browser;
mod cli;
mod erasure;
mod race;
mod webdriver;
mod webhook;

use herald_test_support::Daemon;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Token of `alice`, who holds `start_deliveries`.
pub const CONFIRMER: &str = "alice-secret-token";
/// Token of `bob`, a `viewer`.
pub const VIEWER: &str = "bob-secret-token";

/// The built outbox plugin.
pub fn outbox_plugin() -> PathBuf {
    Daemon::plugin("herald_outbox")
}

/// `target/screenshots`, created.
pub fn screenshots() -> PathBuf {
    let dir = Daemon::binary()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A daemon config (with `{listen}` left for [`Daemon`]) on `store`
/// (a YAML block), with the outbox plugin and the two test users.
pub fn config(dir: &Path, store: &str, extra: &str) -> String {
    let deliveries = dir.join("deliveries");
    std::fs::create_dir_all(&deliveries).unwrap();
    format!(
        r#"deliveries_dir: {deliveries}
store:
{store}
http:
  listen: "{{listen}}"
plugins:
  - path: {plugin}
    config:
      dir: {outbox}
users:
  - name: alice
    token_sha256: "{alice}"
    roles: [start_deliveries]
  - name: bob
    token_sha256: "{bob}"
    roles: [viewer]
{extra}"#,
        deliveries = deliveries.display(),
        plugin = outbox_plugin().display(),
        outbox = dir.join("outbox").display(),
        alice = digest(CONFIRMER),
        bob = digest(VIEWER),
    )
}

/// The `store:` block of an embedded store in `dir`.
pub fn embedded_store(dir: &Path) -> String {
    format!(
        "  kind: embedded\n  path: {}\n",
        dir.join("herald.db").display()
    )
}

/// Writes a one-shot outbox delivery `id` that waits for a confirmer.
pub fn confirmed_delivery(dir: &Path, id: &str, recipients: usize) {
    write_delivery(dir, id, recipients, "");
}

/// As [`confirmed_delivery`], sent at `per_second` messages a second at
/// most (after a first second's burst), so a test can watch it send.
pub fn throttled_delivery(dir: &Path, id: &str, recipients: usize, per_second: u32) {
    write_delivery(dir, id, recipients, &format!("throttle: {per_second}/s\n"));
}

fn write_delivery(dir: &Path, id: &str, recipients: usize, extra: &str) {
    let rows: String = (1..=recipients)
        .map(|n| format!("    - {{ id: c{n}, first_name: Name{n} }}\n"))
        .collect();
    let yaml = format!(
        "id: {id}\nlabel: Winter promo\nchannel: outbox\naudience:\n  recipients:\n{rows}content:\n  subject: \"Hello {{{{ first_name }}}}\"\n  body: \"Our winter promo, {{{{ first_name }}}}.\"\nschedule:\n  confirm: true\n{extra}"
    );
    let deliveries = dir.join("deliveries");
    std::fs::create_dir_all(&deliveries).unwrap();
    std::fs::write(deliveries.join(format!("{id}.yaml")), yaml).unwrap();
}

/// Small batches, so a throttled run moves in small steps.
pub const SMALL_BATCHES: &str = "sending:\n  batch_size: 4\n";

/// A client of one daemon.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client of `daemon`.
    pub fn new(daemon: &Daemon) -> Api {
        Api {
            base: daemon.url(),
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with `token`: the status and the JSON body (`null` when not JSON).
    pub async fn call(&self, method: &str, path: &str, token: &str) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls the run until `ok` holds for it; panics after 30 s.
    pub async fn wait_run(&self, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/v1/runs/{}", id.replace('@', "%40"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, run) = self.call("GET", &path, VIEWER).await;
            if status == 200 && ok(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never got there; last: {status} {run}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `/api/v1/runs/{id}/{action}`.
pub fn action(id: &str, action: &str) -> String {
    format!("/api/v1/runs/{}/{action}", id.replace('@', "%40"))
}
