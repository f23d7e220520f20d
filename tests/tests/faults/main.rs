//! Fault injection and hostile input (issue 11), against the real `herald`
//! binary, real plugins and a private `redis-server`:
//!
//! - [`embedded_crash`]: `kill -9` of a daemon on the embedded store in the
//!   middle of a run; the restarted daemon finishes it (G3, G4, issue 6).
//! - [`loader`]: hostile files dropped into the deliveries folder while a
//!   delivery is sending (G5), and audience paths escaping their roots.
//! - [`plugins`]: plugins of the wrong ABI are refused at start (G6).
//! - [`rates`]: the `kpi.rates_interval` timer recounts open and click
//!   figures that drifted from the tracking records (issue 8).
//! - [`security`]: token guessing, tampered tracking and unsubscribe
//!   tokens, CR/LF in recipient data, hostile templates, oversized and
//!   malformed bodies.
//!
//! Every test prints its figures; `tests/README.md` maps each guarantee
//! and security rule to its test. Needs the built binary and plugins
//! (built on demand by `herald-test-support`).

mod embedded_crash;
mod loader;
mod plugins;
mod rates;
mod security;

use herald_test_support::Daemon;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Token of the user with the role `viewer`.
pub const VIEWER: &str = "faults-viewer-token";
/// Token of the user with the role `admin`.
pub const ADMIN: &str = "faults-admin-token";

/// The `users` block: one viewer and one admin.
pub fn users() -> String {
    let digest = |token: &str| hex::encode(Sha256::digest(token.as_bytes()));
    format!(
        "users:\n  - name: vera\n    token_sha256: \"{}\"\n    roles: [viewer]\n  - name: root\n    token_sha256: \"{}\"\n    roles: [admin]\n",
        digest(VIEWER),
        digest(ADMIN)
    )
}

/// A temporary folder with `deliveries/`, `outbox/` and `sink/` inside.
pub struct Bed {
    /// The folder.
    pub dir: tempfile::TempDir,
}

impl Default for Bed {
    fn default() -> Bed {
        Bed::new()
    }
}

impl Bed {
    /// A fresh folder.
    pub fn new() -> Bed {
        let dir = tempfile::Builder::new()
            .prefix("herald-faults-")
            .tempdir()
            .expect("a temporary folder");
        for sub in ["deliveries", "outbox", "sink"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("a sub folder");
        }
        Bed { dir }
    }

    /// `path` inside the folder.
    pub fn path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Writes `text` to `deliveries/{name}`.
    pub fn deliver(&self, name: &str, text: impl AsRef<[u8]>) {
        std::fs::write(self.path("deliveries").join(name), text).expect("a delivery file");
    }

    /// The `plugins` item of the `count` test plugin serving channel
    /// `count`, logging accepted message ids into `sink/`; `extra` adds
    /// JSON members (`"batch_delay_ms": 40`, ...).
    pub fn count_plugin(&self, extra: &str) -> String {
        format!(
            "  - path: {}\n    config: {{ \"dir\": \"{}\", \"address_column\": \"address\"{extra} }}\n",
            Daemon::plugin("herald_test_count").display(),
            self.path("sink").display(),
        )
    }

    /// The `plugins` item of the outbox plugin, also serving `email`.
    pub fn outbox_plugin(&self) -> String {
        format!(
            "  - path: {}\n    config: {{ dir: \"{}\", channels: [email] }}\n",
            Daemon::plugin("herald_outbox").display(),
            self.path("outbox").display(),
        )
    }

    /// A daemon config: `store` and `plugins` are YAML blocks (their
    /// items indented), `extra` more top-level keys; `{listen}` is left
    /// for [`Daemon`].
    pub fn config(&self, store: &str, plugins: &str, extra: &str) -> String {
        format!(
            "deliveries_dir: {}\nstore:\n{store}http:\n  listen: \"{{listen}}\"\nplugins:\n{plugins}{extra}{}",
            self.path("deliveries").display(),
            users()
        )
    }

    /// Messages the `count` plugin accepted, per message id.
    pub fn received(&self) -> std::collections::HashMap<String, u64> {
        let mut counts = std::collections::HashMap::new();
        for entry in std::fs::read_dir(self.path("sink")).expect("the sink folder") {
            let text =
                std::fs::read_to_string(entry.expect("a sink entry").path()).expect("a sink log");
            for line in text.lines() {
                *counts.entry(line.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// Writes a CSV audience `deliveries/{name}` of `n` rows `r{i},a{i},Name {i}`.
pub fn csv_audience(bed: &Bed, name: &str, n: usize) {
    let mut csv = String::from("id,address,name\n");
    for i in 0..n {
        csv.push_str(&format!("r{i},a{i},Name {i}\n"));
    }
    bed.deliver(name, csv);
}

/// A blocking HTTP client of one daemon (its own small runtime).
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// One answer: status, headers and body.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Api {
    /// A client of `daemon` that never follows redirects.
    pub fn new(daemon: &Daemon) -> Api {
        Api {
            base: daemon.url(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A fresh connection per request: one the daemon closed
                // after a refusal is never reused.
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(20))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// `method path` with an optional bearer token and raw body. A request
    /// the daemon answered before reading all of it (a `413`) may see its
    /// connection reset while still writing: it is sent again, up to 3 times.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut last = None;
        for _ in 0..3 {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            match self.rt.block_on(answer(request)) {
                Ok(answer) => return answer,
                Err(error) => last = Some(error),
            }
        }
        panic!("{method} {path}: the daemon did not answer: {last:?}")
    }

    /// `GET path` as the viewer: the JSON answer, asserting 200.
    pub fn get(&self, path: &str) -> Value {
        let answer = self.send("GET", path, Some(VIEWER), None);
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answer.json()
    }

    /// Polls `GET path` until `ok` holds; panics after `within`.
    pub fn wait(&self, path: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let answer = self.send("GET", path, Some(VIEWER), None);
            if answer.status == 200 && ok(&answer.json()) {
                return answer.json();
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never got there within {within:?}; last: {} {}",
                answer.status,
                answer.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Sends `request` and reads the whole answer.
async fn answer(request: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or("?").to_owned());
    let body = response.text().await?;
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// `/api/v1/runs/{id}`.
pub fn run_path(id: &str) -> String {
    format!("/api/v1/runs/{}", id.replace('@', "%40"))
}

/// Every file of `dir`, sorted (none when it cannot be read).
pub fn outbox_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}
