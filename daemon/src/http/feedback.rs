//! `POST /api/v1/feedback`: provider feedback, one event or a batch, for
//! the roles `feedback` and `admin`. Each event is applied as an engine
//! operation ([`crate::runs::feedback`]); unknown messages are counted.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use crate::runs::FeedbackEvent;
use crate::runs::feedback::{Applied, BounceKind, Feedback, MessageRef, apply};
use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many events in one request.
const MAX_EVENTS: usize = 10_000;

/// One event as the provider's webhook posts it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackItem {
    /// `delivered`, `bounced`, `failed`, `complained` or `stop`.
    pub event: String,
    /// For `bounced`: `hard` (default) or `soft`.
    pub kind: Option<BounceKind>,
    /// The provider's message id, as the plugin returned it.
    pub provider_message_id: Option<String>,
    /// Instead of the provider id: the run…
    pub run_id: Option<String>,
    /// …and the recipient.
    pub recipient_id: Option<String>,
    /// The provider's words, kept with the outcome.
    pub detail: Option<String>,
}

/// The body: one event, or `{"events": [...]}`. Documents the shapes;
/// [`post`] reads them with [`items`], which says what is wrong where.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FeedbackRequest {
    /// Several events.
    Batch {
        /// The events, applied in order.
        events: Vec<FeedbackItem>,
    },
    /// One event.
    One(FeedbackItem),
}

/// What was done with the events.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct FeedbackAnswer {
    /// Events whose message was found and that were applied.
    pub applied: u64,
    /// Events naming a message Herald does not know: ignored.
    pub unknown: u64,
}

/// `POST /api/v1/feedback`.
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<FeedbackAnswer>> {
    caller.require(Right::Feedback, "post provider feedback")?;
    let items = items(body).map_err(ApiError::BadRequest)?;
    // Parse every event first, so a bad one refuses the request before any
    // is applied and the provider can resend the whole batch.
    let events = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse(item).map_err(|e| ApiError::BadRequest(format!("events[{i}]: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let engine = &state.engine;
    let mut answer = FeedbackAnswer {
        applied: 0,
        unknown: 0,
    };
    for event in &events {
        // An id that cannot be one of ours names no message we know.
        let Some(event) = event else {
            answer.unknown += 1;
            continue;
        };
        let now = engine.clock.now();
        match apply(&engine.store, event, engine.soft_threshold.get(), now).await? {
            Applied::Applied => answer.applied += 1,
            Applied::Unknown => answer.unknown += 1,
        }
    }
    tracing::info!(user = ?caller.name, applied = answer.applied, unknown = answer.unknown, "Feedback applied.");
    Ok(Json(answer))
}

/// The events of a body, in the shapes of [`FeedbackRequest`]. Read as a
/// value first, then one event at a time: the untagged enum could only say
/// that no shape matched, where a provider needs the event's index, the
/// field and what was expected.
fn items(body: Value) -> Result<Vec<FeedbackItem>, String> {
    let mut fields = match body {
        Value::Object(fields) => fields,
        other => {
            return Err(format!(
                "the body is {}: send one event object, or `{{\"events\": [...]}}`",
                json_kind(&other)
            ));
        }
    };
    // As the untagged enum did: keys beside `events` are ignored.
    let Some(events) = fields.remove("events") else {
        return item(Value::Object(fields))
            .map(|one| vec![one])
            .map_err(|e| match e {
                (None, inner) => format!("the event: {inner}"),
                (Some(path), inner) => format!("the event's `{path}`: {inner}"),
            });
    };
    let Value::Array(events) = events else {
        return Err(format!(
            "`events` is {}: send an array of event objects",
            json_kind(&events)
        ));
    };
    if events.len() > MAX_EVENTS {
        return Err(format!(
            "{} events in one request; send at most {MAX_EVENTS} per request",
            events.len()
        ));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            item(event).map_err(|e| match e {
                (None, inner) => format!("events[{i}]: {inner}"),
                (Some(path), inner) => format!("events[{i}].{path}: {inner}"),
            })
        })
        .collect()
}

/// One event, or the path of the field at fault (`None` for the event
/// itself) and serde's words for what was expected there.
fn item(value: Value) -> Result<FeedbackItem, (Option<String>, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = (path != ".").then_some(path);
        (path, e.into_inner().to_string())
    })
}

/// What a JSON value is, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The event, or `None` when its `run_id` cannot be a run id (counted
/// as unknown, as any id we do not know).
fn parse(item: FeedbackItem) -> Result<Option<Feedback>, String> {
    let event: FeedbackEvent = item.event.parse().map_err(|_| {
        format!(
            "unknown event {:?}: use delivered, bounced, failed, complained or stop",
            item.event
        )
    })?;
    let message = match (item.provider_message_id, item.run_id, item.recipient_id) {
        (Some(id), None, None) => MessageRef::Provider(id),
        (None, Some(run), Some(recipient)) => match run.parse() {
            Ok(run) => MessageRef::Recipient { run, recipient },
            Err(_) => return Ok(None),
        },
        _ => {
            return Err(
                "name the message by `provider_message_id`, or by `run_id` and `recipient_id`"
                    .to_owned(),
            );
        }
    };
    Ok(Some(Feedback {
        event,
        kind: item.kind,
        message,
        detail: item.detail,
    }))
}
