//! In-process tests of the router (axum `Router::oneshot`) over an
//! `AppState` built on the embedded store in a temporary folder.

mod api;
mod deliveries;
mod feedback;
mod limits;
pub(crate) mod logs;
mod profiles;
mod routes;

use super::{AppState, auth::Users, router};
use crate::clock::Clock;
use crate::config::User;
use crate::engine::{Engine, Settings, SoftThreshold};
use crate::ops::Readiness;
use crate::plugin_host::PluginHost;
use crate::runs::{Role, RunId};
use crate::store::{NewRun, Prepared, Preview, SharedStore, Transition};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Tokens of the test users.
pub const CONFIRMER: &str = "alice-token";
pub const VIEWER: &str = "bob-token";
pub const ADMIN: &str = "root-token";
pub const FEEDBACK: &str = "ses-token";

/// A router on a fresh embedded store, with a fake clock.
pub struct Harness {
    pub state: AppState,
    pub store: SharedStore,
    pub clock: Clock,
    /// Replaces the loaded deliveries, as the folder watcher does.
    pub deliveries: tokio::sync::watch::Sender<crate::engine::Deliveries>,
    /// Replaces the errors of the files that do not load.
    pub errors: tokio::sync::watch::Sender<Arc<Vec<crate::definitions::FileError>>>,
    dir: tempfile::TempDir,
}

fn user(name: &str, token: &str, role: Role) -> User {
    User {
        name: name.to_owned(),
        token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
        roles: vec![role],
    }
}

/// The instant the fake clock starts at.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 6, 0, 0).unwrap()
}

impl Harness {
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(
            crate::store::embedded::EmbeddedStore::open(dir.path().join("herald.db"))
                .await
                .unwrap(),
        );
        let clock = Clock::fake(t0());
        let plugins = Arc::new(PluginHost::load(&[], Duration::from_secs(5)).unwrap());
        let (deliveries_tx, deliveries) = tokio::sync::watch::channel(Arc::new(BTreeMap::new()));
        let (errors_tx, errors) = tokio::sync::watch::channel(Arc::new(Vec::new()));
        let engine = Arc::new(Engine {
            store: store.clone(),
            clock: clock.clone(),
            plugins,
            settings: Settings {
                batch_size: 50,
                chunk_size: 1000,
                lease: Duration::from_secs(30),
                retries: 3,
                shutdown_grace: Duration::from_secs(5),
            },
            owner: "test:1:00000000".to_owned(),
            deliveries: deliveries.clone(),
            wake: Arc::default(),
            stopping: Default::default(),
            tasks: Default::default(),
            soft_threshold: SoftThreshold::new(5),
            webhook: Default::default(),
            // A key in hand, as after start: the buffer and the links work.
            tracking: Some(Arc::new(crate::tracking::Tracking::new(
                crate::tracking::token::Signer::new(vec![3; 32]),
                "http://127.0.0.1:8425",
            ))),
        });
        let readiness = Readiness::default();
        readiness.set_deliveries_loaded();
        readiness.set_store(true);
        let users = Users::new(&[
            user("alice", CONFIRMER, Role::StartDeliveries),
            user("bob", VIEWER, Role::Viewer),
            user("root", ADMIN, Role::Admin),
            user("ses", FEEDBACK, Role::Feedback),
        ]);
        let state = AppState {
            engine,
            readiness,
            deliveries,
            errors,
            metrics: crate::ops::metrics::install(),
            users,
        };
        Harness {
            state,
            store,
            clock,
            deliveries: deliveries_tx,
            errors: errors_tx,
            dir,
        }
    }

    /// Writes `files` (name, YAML) into a deliveries folder and loads it
    /// as the daemon would: the valid ones become the loaded deliveries,
    /// the others' errors are reported.
    pub fn load(&self, files: &[(&str, &str)]) {
        let folder = self.dir.path().join("deliveries");
        std::fs::create_dir_all(&folder).unwrap();
        for (name, yaml) in files {
            std::fs::write(folder.join(name), yaml).unwrap();
        }
        let loaded = crate::definitions::load_folder(&crate::definitions::ValidationContext {
            deliveries_dir: folder,
            audience_roots: Vec::new(),
            channels: crate::definitions::ChannelCatalog::builtin(),
        });
        let by_id = loaded
            .deliveries
            .into_iter()
            .map(|d| (d.id().to_owned(), Arc::new(d)))
            .collect();
        self.deliveries.send_replace(Arc::new(by_id));
        self.errors.send_replace(Arc::new(loaded.errors));
    }

    /// Sends one request; returns the status and the body as JSON (or as a JSON string when not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    /// A run of `delivery` at `t0 + hours`, prepared with 4 rows (2 excluded), left pending.
    pub async fn pending_run(&self, delivery: &str, hours: i64) -> RunId {
        self.prepared_run(delivery, hours, true, None).await
    }

    /// A run prepared with 4 rows (2 excluded): `pending` when `confirm`,
    /// else `sending` (when due) or `scheduled`.
    pub async fn prepared_run(
        &self,
        delivery: &str,
        hours: i64,
        confirm: bool,
        period: Option<&str>,
    ) -> RunId {
        let at = t0() + chrono::Duration::hours(hours);
        let id = RunId::at(delivery, at);
        let created = self
            .store
            .create_run(&NewRun {
                id: id.clone(),
                delivery_id: delivery.to_owned(),
                channel: "email".to_owned(),
                scheduled_for: at,
                confirm_deadline: at + chrono::Duration::hours(6),
                confirm_required: confirm,
                aggregation_period: period.map(str::to_owned),
                definition: "{}".to_owned(),
                definition_hash: "sha256:00".to_owned(),
                throttle_per_second: None,
                created_at: self.clock.now(),
            })
            .await
            .unwrap();
        assert!(created);
        let now = self.clock.now();
        assert!(
            self.store
                .claim_preparation(&id, "test", now + chrono::Duration::minutes(1), now)
                .await
                .unwrap()
        );
        let recipients = ["c1", "c2"]
            .map(|r| crate::store::FrozenRecipient {
                id: r.to_owned(),
                address: format!("{r}@example.com"),
                fields: Default::default(),
            })
            .to_vec();
        let chunk = crate::store::Chunk {
            number: 0,
            recipients,
        };
        self.store.put_chunk(&id, &chunk).await.unwrap();
        let prepared = Prepared {
            targeted: 4,
            excluded_by_reason: BTreeMap::from([
                (crate::runs::ExclusionReason::NoAddress, 1),
                (crate::runs::ExclusionReason::InvalidAddress, 1),
            ]),
            chunks: 1,
            preview: Some(Preview {
                recipient_id: "c1".to_owned(),
                content: BTreeMap::from([("subject".to_owned(), "Your week, Ana".to_owned())]),
            }),
        };
        let done = self
            .store
            .finish_preparation(&id, "test", &prepared, now)
            .await
            .unwrap();
        match done {
            Transition::Done(run) if confirm => {
                assert_eq!(run.state, crate::runs::RunState::Pending)
            }
            Transition::Done(_) => {}
            other => panic!("preparation did not finish: {other:?}"),
        }
        id
    }
}

/// `/api/v1/runs/{id}/{action}`.
pub fn action_path(id: &RunId, action: &str) -> String {
    format!("/api/v1/runs/{}/{action}", id.as_str().replace('@', "%40"))
}

/// Asserts that `router` answers `method path` with a JSON `413` both for
/// a body whose `Content-Length` is over the limit (the body itself never
/// comes, so only a refusal up front answers) and for a chunked body that
/// grows past the limit and then stalls (so only a refusal as it grows
/// answers).
pub(crate) async fn assert_too_large(
    router: axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
) {
    use axum::body::Bytes;
    use futures_util::StreamExt;
    let limit = crate::http::extract::MAX_BODY_BYTES;
    let piece = Bytes::from(vec![b'x'; 64 * 1024]);
    let pieces = limit / piece.len() + 1;
    let grows = futures_util::stream::iter(
        std::iter::repeat_n(piece, pieces).map(Ok::<_, std::convert::Infallible>),
    )
    .chain(futures_util::stream::pending());
    let never = futures_util::stream::pending::<Result<Bytes, std::convert::Infallible>>();
    for (how, length, body) in [
        ("announced", Some(limit + 1), Body::from_stream(never)),
        ("chunked", None, Body::from_stream(grows)),
    ] {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(length) = length {
            request = request.header("content-length", length);
        }
        let answer = router.clone().oneshot(request.body(body).unwrap());
        let response = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .unwrap_or_else(|_| panic!("{method} {path}, {how}: no answer"))
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}, {how}"
        );
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("larger than"),
            "{method} {path}, {how}: {body}"
        );
    }
}
