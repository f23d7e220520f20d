//! [`ApiError`]: every error of the API as one type that answers
//! `{"error": "..."}` (plus `state` for conflicts) with the right status,
//! and never shows the client what went wrong inside: internal errors are
//! logged once, here, and the client gets a generic sentence.

use crate::runs::RunState;
use crate::store::StoreError;
use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{error, warn};

/// The body of every error answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong and how to fix it, for a human.
    pub error: String,
    /// The run's current state, on `409` answers about a run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// `401`: no token, or a token no user holds.
    #[error(
        "a valid token is required: send `Authorization: Bearer TOKEN` with a token listed (hashed) under `users` in the daemon's config"
    )]
    Unauthorized,
    /// `403`: the caller lacks the role; the message names it.
    #[error("{0}")]
    Forbidden(String),
    /// `404`: no such run, delivery, or entry.
    #[error("{0}")]
    NotFound(String),
    /// `409`: the action is not allowed in the run's current state.
    #[error("the run is {state}: {action} is not allowed in that state")]
    Conflict {
        /// What was asked (`confirm`, `cancel`, ...).
        action: &'static str,
        /// The run's current state.
        state: RunState,
    },
    /// `400`: the request is malformed; the message says where.
    #[error("{0}")]
    BadRequest(String),
    /// `408`: the client stopped sending its body.
    #[error(
        "the request body stopped arriving before it was complete; send it without long pauses"
    )]
    BodyTimeout,
    /// `413`: the body is over the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// `503`: something the request needs is not available (a plugin).
    #[error("{0}")]
    Unavailable(String),
    /// `503` or `500`: the store failed; details go to the log only.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// `500`: anything else internal; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::BadRequest(_) | ApiError::Store(StoreError::BadCursor { .. }) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::Store(StoreError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Store(StoreError::Unavailable(detail)) => {
                metrics::counter!("herald_store_errors_total").increment(1);
                warn!(detail = ?detail, "API request failed: the store is unavailable.");
                "the store is unavailable; try again shortly".to_owned()
            }
            ApiError::Store(StoreError::BadCursor { cursor }) => format!(
                "query parameter `cursor`: {cursor:?} is not a cursor of this list; pass the `next_cursor` of a previous page, or leave `cursor` out for the first page"
            ),
            ApiError::Store(inner) => {
                metrics::counter!("herald_store_errors_total").increment(1);
                error!(error = ?inner.to_string(), "API request failed on a store error.");
                "internal error; the daemon's log has the details".to_owned()
            }
            ApiError::Internal(detail) => {
                error!(detail = ?detail, "API request failed on an internal error.");
                "internal error; the daemon's log has the details".to_owned()
            }
            other => other.to_string(),
        };
        let state = match &self {
            ApiError::Conflict { state, .. } => Some(state.as_str().to_owned()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: message,
                state,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The longest plain-text error body carried over into the JSON one.
const MAX_TEXT: usize = 4096;

/// Middleware: an error answer under `/api/` that is not JSON (axum's
/// `405`, the `408` of the request timeout, a path that does not decode)
/// becomes `{"error": "..."}` like every other error of the API.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this method is not allowed on this path: the API is described at /api/v1/openapi.json"
                .to_owned()
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request took too long to arrive or to answer; try again".to_owned()
        }
        _ if !text.is_empty() => text,
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let body = serde_json::to_vec(&ErrorBody { error, state: None }).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
