//! `/api/v1/runs`: list, show, and the actions of confirmers.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, page_limit};
use super::views::{RunPage, RunView};
use crate::runs::actions::{self, Action};
use crate::runs::{RunId, RunState};
use crate::store::{Run, RunFilter, Transition};
use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::Deserialize;

/// Query of `GET /api/v1/runs`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunQuery {
    /// Only runs in this state.
    pub state: Option<String>,
    /// Only runs of this delivery.
    pub delivery: Option<String>,
    /// Page size: default 100, at most 1000.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/runs`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    caller.require(Right::Read, "read runs")?;
    let run_state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<RunState>()
                .map_err(|e| ApiError::BadRequest(format!("query parameter `state`: {e}")))?,
        ),
        None => None,
    };
    let filter = RunFilter {
        state: run_state,
        delivery_id: query.delivery.filter(|d| !d.is_empty()),
    };
    let page = state
        .engine
        .store
        .list_runs(
            &filter,
            query.cursor.as_deref().filter(|c| !c.is_empty()),
            page_limit(query.limit),
        )
        .await?;
    Ok(Json(RunPage {
        runs: page.items.into_iter().map(|r| state.view(r)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `GET /api/v1/runs/{run_id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RunView>> {
    caller.require(Right::Read, "read runs")?;
    let id = run_id(&id)?;
    match state.engine.store.run(&id).await? {
        Some(run) => Ok(Json(state.view(run))),
        None => Err(unknown_run(&id)),
    }
}

/// `POST /api/v1/runs/{run_id}/{confirm,cancel,pause,resume}`.
pub async fn act(
    state: AppState,
    caller: Caller,
    id: String,
    action: Action,
) -> ApiResult<Json<RunView>> {
    let what = match action {
        Action::Confirm => "confirm a send",
        Action::Cancel => "cancel a run",
        Action::Pause => "pause a run",
        Action::Resume => "resume a run",
    };
    caller.require(Right::Start, what)?;
    let id = run_id(&id)?;
    match actions::act(&state.engine, action, &id, &caller.name).await? {
        Transition::Done(run) => Ok(Json(state.view(*run))),
        Transition::Conflict(run_state) => Err(ApiError::Conflict {
            action: action.as_str(),
            state: run_state,
        }),
        Transition::NotFound => Err(unknown_run(&id)),
    }
}

fn run_id(text: &str) -> ApiResult<RunId> {
    text.parse::<RunId>()
        .map_err(|e| ApiError::NotFound(format!("no such run: {e}")))
}

fn unknown_run(id: &RunId) -> ApiError {
    ApiError::NotFound(format!(
        "no run `{id}`: list the runs with GET /api/v1/runs"
    ))
}

impl AppState {
    /// The API view of a run, with its delivery's label and channel tracking.
    pub fn view(&self, run: Run) -> RunView {
        let label = self
            .deliveries
            .borrow()
            .get(&run.delivery_id)
            .and_then(|d| d.label().map(str::to_owned));
        let tracking = self.tracking(&run.channel);
        RunView::new(run, label, tracking)
    }

    /// Whether the plugin serving `channel` tracks opens and clicks.
    pub fn tracking(&self, channel: &str) -> bool {
        self.engine
            .plugins
            .channels()
            .get(channel)
            .is_some_and(|c| c.tracking)
    }
}
