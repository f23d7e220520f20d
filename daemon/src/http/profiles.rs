//! `/api/v1/profiles/{recipient_id}/messages`: a recipient's history.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::ApiResult;
use super::extract::{ApiQuery, page_limit};
use super::views::MessagePage;
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
