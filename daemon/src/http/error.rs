//! [`ApiError`]: every error of the API as one type that answers
//! `{"error": "..."}` (plus `state` for conflicts) with the right status,
//! and never shows the client what went wrong inside: internal errors are
//! logged once, here, and the client gets a generic sentence.

use crate::runs::RunState;
use crate::store::StoreError;
use axum::Json;
use axum::http::{StatusCode, header};
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
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
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
