//! The HTTP hook: the API for confirmers, the confirm page, `/metrics`,
//! health, and the tracking routes. [`router`] builds the whole router so
//! tests drive it in-process.
//!
//! - [`openapi`]: the route table; the router and the OpenAPI document are built from it.
//! - [`auth`]: bearer tokens, roles and the `403` messages.
//! - [`error`]: [`ApiError`], the one error answer.
//! - [`runs`], [`deliveries`], [`proof`], [`profiles`], [`suppressions`]: one file per resource.
//! - [`page`]: the confirm page and the Deployment view.
//! - [`webhook`]: tells a chat room when a run waits for confirmation.
//! - [`serve`]: the accept loop, which times out clients slow to send their headers.

pub mod auth;
pub mod deliveries;
pub mod error;
pub mod extract;
pub mod feedback;
pub mod openapi;
pub mod page;
pub mod profiles;
pub mod proof;
pub mod runs;
pub mod serve;
pub mod suppressions;
pub mod views;
pub mod webhook;

pub use error::ApiError;
pub use serve::{Timeouts, serve};

use crate::definitions::FileError;
use crate::engine::{Deliveries, Engine};
use crate::ops::Readiness;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The engine: store, clock, plugins, settings.
    pub engine: Arc<Engine>,
    /// Readiness flags.
    pub readiness: Readiness,
    /// The loaded deliveries.
    pub deliveries: watch::Receiver<Deliveries>,
    /// Errors of the delivery files that do not load.
    pub errors: watch::Receiver<Arc<Vec<FileError>>>,
    /// The Prometheus recorder.
    pub metrics: PrometheusHandle,
    /// The users of the config, with their token digests and roles.
    pub users: auth::Users,
}

/// The router of the `listen` address, with the default [`Timeouts`].
pub fn router(state: AppState) -> Router {
    router_with(state, Timeouts::default())
}

/// The router of the `listen` address: a body that stalls for
/// `timeouts.body`, or a request not answered within `timeouts.request`,
/// gets `408`.
pub fn router_with(state: AppState, timeouts: Timeouts) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for endpoint in openapi::endpoints() {
        let handler = (endpoint.handler)();
        let merged = match by_path.remove(endpoint.path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(endpoint.path, merged);
    }
    let mut router = Router::new();
    for (path, method_router) in by_path {
        router = router.route(path, method_router);
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        // Inside the body timeout, so a body that stalls while it is read
        // here still gets `408`.
        .layer(axum::middleware::from_fn(extract::limit_body))
        .layer(RequestBodyTimeoutLayer::new(timeouts.body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeouts.request,
        ))
        // Outermost, so the answers of the layers above (405, 408) get
        // the API's JSON error body too.
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route: the API is described at /api/v1/openapi.json".to_owned())
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let unhealthy: Vec<String> = state
        .engine
        .plugins
        .health()
        .into_iter()
        .filter(|p| !p.healthy)
        .map(|p| p.name)
        .collect();
    if let Some(problem) = state.readiness.problem() {
        (StatusCode::SERVICE_UNAVAILABLE, problem.to_owned())
    } else if !unhealthy.is_empty() {
        let reason = format!("unhealthy plugins: {}", unhealthy.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, reason)
    } else {
        (StatusCode::OK, "ready".to_owned())
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store.count_by_state().await {
        Ok(counts) => {
            for (run_state, count) in counts {
                metrics::gauge!("herald_runs", "state" => run_state.as_str()).set(count as f64);
            }
        }
        // Unknown while the store does not answer: not the last counts,
        // which would look current (NaN reads as a gap on a graph).
        Err(_) => {
            for run_state in crate::runs::RunState::ALL {
                metrics::gauge!("herald_runs", "state" => run_state.as_str()).set(f64::NAN);
            }
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
pub(crate) mod tests;
