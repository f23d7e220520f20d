//! The HTTP requests to the provider and the mapping of its replies.

use crate::config::{Mode, SmsConfig};
use herald_plugin_api::{BounceKind, SendStatus};
use herald_plugin_kit::retry_after_ms;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

/// Twilio error codes that say the number itself cannot receive: invalid
/// (21211, 21217, 21401, 21421), opted out (21610), unroutable (21612),
/// not a mobile number (21614).
const TWILIO_NUMBER_ERRORS: &[u64] = &[21211, 21217, 21401, 21421, 21610, 21612, 21614];

/// One SMS to send.
#[derive(Debug, Clone, Copy)]
pub struct Sms<'a> {
    /// The E.164 number.
    pub to: &'a str,
    /// The sender, when known.
    pub from: Option<&'a str>,
    /// The text.
    pub body: &'a str,
    /// The stable message id, so the provider may deduplicate.
    pub message_id: &'a str,
}

/// An HTTP client bound to one provider.
pub struct SmsClient {
    http: reqwest::Client,
    config: SmsConfig,
}

impl SmsClient {
    /// Builds the client; the error names the config key at fault.
    pub fn new(config: SmsConfig) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("config key `headers`: `{name}` is not a valid HTTP header name")
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                format!(
                    "config key `headers`: the value of `{name}` is not a valid HTTP header value"
                )
            })?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(SmsClient { http, config })
    }

    /// Sends one SMS and says what became of it.
    pub async fn send(&self, sms: Sms<'_>) -> SendStatus {
        let request = match self.config.mode {
            Mode::Twilio => {
                let Some(from) = sms.from else {
                    return SendStatus::Failed {
                        reason: "no sender: set `content.from` in the delivery or `from` in the sms plugin config".into(),
                    };
                };
                let (sid, token) = self
                    .config
                    .basic_auth
                    .as_ref()
                    .expect("twilio mode has credentials");
                self.http
                    .post(&self.config.endpoint)
                    .basic_auth(sid, Some(token))
                    .form(&[("To", sms.to), ("From", from), ("Body", sms.body)])
            }
            Mode::Webhook => {
                let body = serde_json::json!({
                    "to": sms.to, "from": sms.from, "body": sms.body, "message_id": sms.message_id,
                });
                let request = self.http.post(&self.config.endpoint).json(&body);
                match &self.config.bearer_token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                }
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return SendStatus::Retry {
                    reason: format!(
                        "the SMS provider at {} did not answer: {e}",
                        self.config.endpoint
                    ),
                    retry_after_ms: None,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after_ms);
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        map_response(self.config.mode, status, retry_after, &body)
    }
}

/// Maps a provider reply onto a result.
pub fn map_response(
    mode: Mode,
    status: StatusCode,
    retry_after_ms: Option<u64>,
    body: &serde_json::Value,
) -> SendStatus {
    let id_key = match mode {
        Mode::Twilio => "sid",
        Mode::Webhook => "id",
    };
    if status.is_success() {
        return SendStatus::Accepted {
            provider_message_id: body.get(id_key).and_then(provider_id),
        };
    }
    let words = body
        .get("message")
        .and_then(|m| m.as_str())
        .map(|m| format!("HTTP {status}: {m}"))
        .unwrap_or_else(|| format!("HTTP {status}"));
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return SendStatus::Retry {
            reason: words,
            retry_after_ms,
        };
    }
    let about_the_number = match mode {
        Mode::Twilio => body
            .get("code")
            .and_then(|c| c.as_u64())
            .is_some_and(|code| TWILIO_NUMBER_ERRORS.contains(&code)),
        // A generic provider says only the status: a request it could not
        // use (400, 422) or a number it does not know (404, 410) is about
        // the number; 401/403 (our credentials) and the like are not.
        Mode::Webhook => matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::NOT_FOUND
                | StatusCode::GONE
                | StatusCode::UNPROCESSABLE_ENTITY
        ),
    };
    if about_the_number {
        SendStatus::Bounced {
            kind: BounceKind::Hard,
            reason: words,
        }
    } else {
        SendStatus::Failed { reason: words }
    }
}

fn provider_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `number` is E.164: `+`, then 8 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn e164_needs_a_plus_and_8_to_15_digits() {
        assert!(is_e164("+33612345678"));
        assert!(!is_e164("0612345678"));
        assert!(!is_e164("+3361234"));
        assert!(!is_e164("+33 6 12 34 56 78"));
        assert!(!is_e164("+0612345678"));
    }

    #[test]
    fn a_twilio_code_about_the_number_is_a_hard_bounce_and_others_fail() {
        let invalid = json!({ "code": 21211, "message": "Invalid 'To' Phone Number" });
        assert!(matches!(
            map_response(Mode::Twilio, StatusCode::BAD_REQUEST, None, &invalid),
            SendStatus::Bounced {
                kind: BounceKind::Hard,
                ..
            }
        ));
        let auth = json!({ "code": 20003, "message": "Authenticate" });
        assert!(matches!(
            map_response(Mode::Twilio, StatusCode::UNAUTHORIZED, None, &auth),
            SendStatus::Failed { .. }
        ));
    }

    #[test]
    fn a_webhook_4xx_about_the_number_is_a_hard_bounce_and_others_fail() {
        let reply = json!({ "message": "invalid number" });
        for status in [400, 404, 410, 422] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(
                    map_response(Mode::Webhook, status, None, &reply),
                    SendStatus::Bounced {
                        kind: BounceKind::Hard,
                        ..
                    }
                ),
                "{status}"
            );
        }
        for status in [401, 403] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(
                    map_response(Mode::Webhook, status, None, &reply),
                    SendStatus::Failed { .. }
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn a_numeric_webhook_id_is_kept_as_text() {
        let status = map_response(Mode::Webhook, StatusCode::OK, None, &json!({ "id": 42 }));
        assert_eq!(
            status,
            SendStatus::Accepted {
                provider_message_id: Some("42".into())
            }
        );
    }
}
