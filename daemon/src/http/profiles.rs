//! `/api/v1/profiles/{recipient_id}`: a recipient's history, and erasing it.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::ApiResult;
use super::extract::{ApiQuery, page_limit};
use super::views::{ErasureAnswer, MessagePage};
use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::Deserialize;

/// Query of paginated lists without filters.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PageQuery {
    /// Page size: default 100, at most 1000.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/profiles/{recipient_id}/messages`.
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(recipient_id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<MessagePage>> {
    caller.require(Right::Read, "read profiles")?;
    let page = state
        .engine
        .store
        .history(
            &recipient_id,
            query.cursor.as_deref().filter(|c| !c.is_empty()),
            page_limit(query.limit),
        )
        .await?;
    Ok(Json(MessagePage {
        messages: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `DELETE /api/v1/profiles/{recipient_id}`: `200` with what was erased
/// (http-api.md answers JSON; the request is done for finished runs and
/// kept for the others, so there is no later status to poll).
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(recipient_id): Path<String>,
) -> ApiResult<Json<ErasureAnswer>> {
    caller.require(Right::Admin, "erase profiles")?;
    let now = state.engine.clock.now();
    let erasure = crate::retention::erase_profile(&state.engine.store, &recipient_id, now).await?;
    tracing::info!(
        user = ?caller.name,
        runs_erased = erasure.runs_erased.len(),
        runs_pending = erasure.runs_pending.len(),
        "Profile erased."
    );
    Ok(Json(ErasureAnswer {
        recipient_id,
        history_entries_erased: erasure.history_entries,
        runs_erased: erasure
            .runs_erased
            .iter()
            .map(ToString::to_string)
            .collect(),
        runs_pending: erasure
            .runs_pending
            .iter()
            .map(ToString::to_string)
            .collect(),
    }))
}
