//! Extractors whose rejections are [`ApiError`]s: a malformed body or
//! query gets `400` with the parser's message as JSON, an oversized body
//! `413`, never axum's plain-text defaults.

use super::error::ApiError;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tower_http::timeout::TimeoutError;

/// Request bodies over this many bytes get `413` (http-api.md, "Limits").
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Middleware: reads the whole body, up to [`MAX_BODY_BYTES`], before the
/// handler runs. Axum's body limit acts only where a handler reads its
/// body; this way every route refuses an oversized one with `413`, also
/// the actions and the tracking routes that ignore theirs, and a chunked
/// body that announces no length is cut off as soon as it grows past the
/// limit. A `Content-Length` over the limit is refused without reading.
pub async fn limit_body(request: Request, next: Next) -> Response {
    let too_large = || {
        ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into_response()
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                return body_error(StatusCode::BAD_REQUEST, &error)
                    .unwrap_or_else(|| {
                        ApiError::BadRequest(format!("the request body could not be read: {error}"))
                    })
                    .into_response();
            }
        };
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return too_large();
        }
        bytes.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if let Some(error) = body_error(rejection.status(), &rejection) {
        return error;
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
            "the body must be JSON: send `Content-Type: application/json`".to_owned(),
        ),
        other => ApiError::BadRequest(format!("the JSON body is malformed: {}", other.body_text())),
    }
}

/// The error of a body that could not be read: `413` over the limit,
/// `408` when the client stopped sending it; `None` for other rejections.
pub fn body_error(status: StatusCode, rejection: &dyn std::error::Error) -> Option<ApiError> {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Some(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    // The body timeout's error is buried under axum's rejection layers.
    let mut cause = rejection.source();
    while let Some(error) = cause {
        if error.is::<TimeoutError>() {
            return Some(ApiError::BodyTimeout);
        }
        cause = error.source();
    }
    None
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest(format!(
        "the query string is malformed: {}",
        rejection.body_text()
    ))
}

/// A page size from `limit`: default 100, at most 1000, at least 1.
pub fn page_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(100).clamp(1, 1000)
}
