//! `/api/v1/suppressions`: the quarantine and the denylist.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, body_error, page_limit};
use super::views::{SuppressAnswer, SuppressRequest, SuppressionPage};
use crate::definitions::normalise_address;
use crate::store::SuppressionList;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use herald_plugin_api::Normalisation;
use schemars::JsonSchema;
use serde::Deserialize;

/// Query of `GET /api/v1/suppressions`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SuppressionQuery {
    /// `quarantine` or `denylist`.
    pub list: Option<String>,
    /// Page size: default 100, at most 1000.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/suppressions?list=`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SuppressionQuery>,
) -> ApiResult<Json<SuppressionPage>> {
    caller.require(Right::Read, "read suppressions")?;
    let Some(list) = query.list.as_deref() else {
        return Err(ApiError::BadRequest(
            "query parameter `list` is required: `quarantine` or `denylist`".to_owned(),
        ));
    };
    let list = parse_list(list)?;
    let page = state
        .engine
        .store
        .suppressions(
            list,
            query.cursor.as_deref().filter(|c| !c.is_empty()),
            page_limit(query.limit),
        )
        .await?;
    Ok(Json(SuppressionPage {
        entries: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `PUT /api/v1/suppressions/{list}/{address}`.
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path((list, address)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SuppressAnswer>> {
    caller.require(Right::Admin, "manage the quarantine and denylist")?;
    let list_kind = parse_list(&list)?;
    let address = normalise(&address)?;
    let reason = optional_body(body)?
        .reason
        .unwrap_or_else(|| "manual".to_owned());
    let now = state.engine.clock.now();
    state
        .engine
        .store
        .suppress(list_kind, &address, &reason, now)
        .await?;
    tracing::info!(list = ?list, address = ?address, user = ?caller.name, "Address suppressed.");
    Ok(Json(SuppressAnswer {
        address,
        list,
        listed: true,
    }))
}

/// `DELETE /api/v1/suppressions/{list}/{address}`.
pub async fn lift(
    State(state): State<AppState>,
    caller: Caller,
    Path((list, address)): Path<(String, String)>,
) -> ApiResult<Json<SuppressAnswer>> {
    caller.require(Right::Admin, "manage the quarantine and denylist")?;
    let list_kind = parse_list(&list)?;
    let address = normalise(&address)?;
    if !state.engine.store.unsuppress(list_kind, &address).await? {
        return Err(ApiError::NotFound(format!(
            "`{address}` is not on the {list}"
        )));
    }
    tracing::info!(list = ?list, address = ?address, user = ?caller.name, "Suppression lifted.");
    Ok(Json(SuppressAnswer {
        address,
        list,
        listed: false,
    }))
}

/// The body of `PUT`, which may be empty.
fn optional_body(body: Result<Bytes, BytesRejection>) -> ApiResult<SuppressRequest> {
    let bytes = body.map_err(|rejection| {
        body_error(rejection.status(), &rejection)
            .unwrap_or_else(|| ApiError::BadRequest(rejection.body_text()))
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(SuppressRequest::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body is malformed: {e}")))
}

fn parse_list(text: &str) -> ApiResult<SuppressionList> {
    match text {
        "quarantine" => Ok(SuppressionList::Quarantine),
        "denylist" => Ok(SuppressionList::Denylist),
        other => Err(ApiError::BadRequest(format!(
            "unknown list `{other}`: use `quarantine` or `denylist`"
        ))),
    }
}

/// Addresses are kept normalised (kpis.md): e-mail lower-cased, phones in
/// E.164, anything else (push tokens) trimmed.
fn normalise(raw: &str) -> ApiResult<String> {
    let kind = if raw.contains('@') {
        Normalisation::Email
    } else if raw.trim_start().starts_with('+') {
        Normalisation::E164
    } else {
        Normalisation::Token
    };
    normalise_address(kind, raw).map_err(|e| ApiError::BadRequest(format!("address `{raw}`: {e}")))
}
