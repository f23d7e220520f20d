//! FCM HTTP v1 sends and the mapping of FCM's replies.

use crate::token::TokenSource;
use herald_plugin_api::{BounceKind, Message, SendStatus};
use herald_plugin_kit::retry_after_ms;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

/// Sends push notifications through FCM with a cached access token.
pub struct FcmClient {
    http: reqwest::Client,
    send_url: String,
    tokens: TokenSource,
}

impl FcmClient {
    /// A client posting to `send_url` with tokens from `tokens`.
    pub fn new(http: reqwest::Client, send_url: String, tokens: TokenSource) -> Self {
        FcmClient {
            http,
            send_url,
            tokens,
        }
    }

    /// Sends one notification; a 401 refreshes the token and tries once more.
    pub async fn send(&self, message: &Message) -> SendStatus {
        let body = fcm_body(message);
        let mut refreshed = false;
        loop {
            let token = match self.tokens.token().await {
                Ok(token) => token,
                Err(e) => {
                    return SendStatus::Retry {
                        reason: e.to_string(),
                        retry_after_ms: None,
                    };
                }
            };
            let response = match self
                .http
                .post(&self.send_url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) => {
                    return SendStatus::Retry {
                        reason: format!("FCM at {} did not answer: {e}", self.send_url),
                        retry_after_ms: None,
                    };
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // The token may have been revoked before its expiry.
                self.tokens.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                // Credentials refused twice: a setup problem, not this
                // message's fault, so the run waits rather than losing it.
                return SendStatus::Retry {
                    reason: "FCM refused a freshly issued access token (HTTP 401); check that the service account may send with Firebase Cloud Messaging".into(),
                    retry_after_ms: None,
                };
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after_ms);
            let reply: Value = response.json().await.unwrap_or(Value::Null);
            return map_response(status, retry_after, &reply);
        }
    }
}

/// The FCM v1 request: `notification` from the content, `data` from the message.
pub fn fcm_body(message: &Message) -> Value {
    let mut notification = serde_json::Map::new();
    for field in ["title", "body", "image"] {
        if let Some(value) = message.content.get(field) {
            notification.insert(field.into(), Value::String(value.clone()));
        }
    }
    let mut fcm = json!({ "token": message.address, "notification": notification });
    if !message.data.is_empty() {
        fcm["data"] = json!(message.data);
    }
    json!({ "message": fcm })
}

/// Maps an FCM reply onto a result: `UNREGISTERED` or an invalid token is
/// a hard bounce, 429 and 5xx are retried, anything else fails.
pub fn map_response(status: StatusCode, retry_after_ms: Option<u64>, reply: &Value) -> SendStatus {
    if status.is_success() {
        return SendStatus::Accepted {
            provider_message_id: reply.get("name").and_then(Value::as_str).map(str::to_owned),
        };
    }
    let error = reply.get("error");
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let fcm_code = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|detail| detail.get("errorCode").and_then(Value::as_str))
        .or_else(|| error.and_then(|e| e.get("status")).and_then(Value::as_str))
        .unwrap_or("");
    let reason = format!("HTTP {status} {fcm_code}: {message}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return SendStatus::Retry {
            reason,
            retry_after_ms,
        };
    }
    let invalid_token = fcm_code == "INVALID_ARGUMENT"
        && (message.to_ascii_lowercase().contains("token") || names_the_token(error));
    if fcm_code == "UNREGISTERED"
        || invalid_token
        || (status == StatusCode::NOT_FOUND && fcm_code == "NOT_FOUND")
    {
        SendStatus::Bounced {
            kind: BounceKind::Hard,
            reason,
        }
    } else {
        SendStatus::Failed { reason }
    }
}

/// Whether a `google.rpc.BadRequest` detail blames `message.token`: FCM
/// may answer a malformed token with the generic "Request contains an
/// invalid argument." and name the field only there.
fn names_the_token(error: Option<&Value>) -> bool {
    error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|detail| detail.get("fieldViolations").and_then(Value::as_array))
        .flatten()
        .any(|violation| violation.get("field").and_then(Value::as_str) == Some("message.token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_body_carries_notification_and_data() {
        let message = Message {
            message_id: "run-1/c1".into(),
            run_id: "run-1".into(),
            recipient_id: "c1".into(),
            channel: "push".into(),
            address: "tok-1".into(),
            content: BTreeMap::from([
                ("title".into(), "Sale".into()),
                ("body".into(), "Now".into()),
            ]),
            headers: BTreeMap::new(),
            data: BTreeMap::from([("order".into(), "42".into())]),
        };
        assert_eq!(
            fcm_body(&message),
            json!({ "message": { "token": "tok-1", "notification": { "title": "Sale", "body": "Now" }, "data": { "order": "42" } } })
        );
    }

    #[test]
    fn an_invalid_argument_not_about_the_token_fails() {
        let reply = json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT", "message": "Invalid JSON payload: data must be strings" } });
        assert!(matches!(
            map_response(StatusCode::BAD_REQUEST, None, &reply),
            SendStatus::Failed { .. }
        ));
        let reply = json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT", "message": "The registration token is not a valid FCM registration token" } });
        assert!(matches!(
            map_response(StatusCode::BAD_REQUEST, None, &reply),
            SendStatus::Bounced {
                kind: BounceKind::Hard,
                ..
            }
        ));
    }

    #[test]
    fn a_field_violation_on_the_token_is_an_invalid_token() {
        let reply = |field: &str| {
            json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT", "message": "Request contains an invalid argument.", "details": [
                { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT" },
                { "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{ "field": field, "description": "Invalid value" }] },
            ] } })
        };
        assert!(matches!(
            map_response(StatusCode::BAD_REQUEST, None, &reply("message.token")),
            SendStatus::Bounced {
                kind: BounceKind::Hard,
                ..
            }
        ));
        assert!(matches!(
            map_response(StatusCode::BAD_REQUEST, None, &reply("message.data")),
            SendStatus::Failed { .. }
        ));
    }
}
