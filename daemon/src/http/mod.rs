//! The HTTP hook: the API for confirmers, the confirm page, `/metrics`,
//! health, and the tracking routes. [`router`] builds the whole router so
//! tests drive it in-process.

use crate::definitions::FileError;
use crate::engine::{Deliveries, Engine};
use crate::ops::Readiness;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::watch;

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
}

/// The router of the `listen` address.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
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
    if let Ok(counts) = state.engine.store.count_by_state().await {
        for (run_state, count) in counts {
            metrics::gauge!("herald_runs", "state" => run_state.as_str()).set(count as f64);
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
