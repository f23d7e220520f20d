//! The JSON that crosses the ABI: batches in, results out, and an
//! instance's description. Every document carries `version`
//! ([`WIRE_VERSION`]) so either side can refuse a shape it does not know.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Version of the JSON documents below; bumped only for incompatible changes.
pub const WIRE_VERSION: u32 = 1;

/// One call of `send_batch`: messages already rendered by the host, of
/// one run or several (small runs waiting for a call share one), at most
/// the host's `sending.batch_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// The messages, in order; the results come back in the same order.
    pub messages: Vec<Message>,
}

/// One rendered message for one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Stable across retries of the same recipient in the same run, so a
    /// provider that deduplicates can use it (`{run_id}/{recipient_id}`).
    pub message_id: String,
    /// The run this message belongs to, or `proof` for a proof send.
    pub run_id: String,
    /// The audience row's `id`.
    pub recipient_id: String,
    /// The channel name the message is sent on (`email`, `sms`, ...).
    pub channel: String,
    /// The normalised address (e-mail lower-cased, E.164 phone, push token).
    pub address: String,
    /// Rendered content fields (`subject`, `html`, `text`, `body`, ...).
    pub content: BTreeMap<String, String>,
    /// Extra headers (e-mail), already checked by the host to hold no CR or LF.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Structured data for channels that take it (push `data`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// What `send_batch` returns: exactly one result per message, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchResults {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// One per message of the batch, in the batch's order.
    pub results: Vec<MessageResult>,
}

/// The plugin's verdict for one message, on the wire one flat object:
/// `message_id`, `status` and the fields of that status.
// Encoded through `FlatResult` rather than `#[serde(flatten)]`: flatten
// buffers every object into an intermediate map, which made decoding the
// results the largest cost of a plugin call. Unknown fields are ignored,
// as they were, so a newer plugin may add some.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageResult {
    /// The `message_id` of the message this result is for.
    pub message_id: String,
    /// What happened.
    pub status: SendStatus,
}

/// The `status` tag of a result.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatusTag {
    Accepted,
    Bounced,
    Failed,
    Retry,
}

/// [`MessageResult`] as it is on the wire: every field any status has.
#[derive(Serialize, Deserialize)]
struct FlatResult<S> {
    message_id: S,
    status: StatusTag,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_message_id: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<BounceKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

impl Serialize for MessageResult {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut flat = FlatResult {
            message_id: self.message_id.as_str(),
            status: StatusTag::Accepted,
            provider_message_id: None,
            kind: None,
            reason: None,
            retry_after_ms: None,
        };
        match &self.status {
            SendStatus::Accepted {
                provider_message_id,
            } => flat.provider_message_id = provider_message_id.as_deref(),
            SendStatus::Bounced { kind, reason } => {
                flat.status = StatusTag::Bounced;
                flat.kind = Some(*kind);
                flat.reason = Some(reason);
            }
            SendStatus::Failed { reason } => {
                flat.status = StatusTag::Failed;
                flat.reason = Some(reason);
            }
            SendStatus::Retry {
                reason,
                retry_after_ms,
            } => {
                flat.status = StatusTag::Retry;
                flat.reason = Some(reason);
                flat.retry_after_ms = *retry_after_ms;
            }
        }
        flat.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MessageResult {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flat = FlatResult::<String>::deserialize(deserializer)?;
        let (message_id, status) = flat.into_parts::<D::Error>()?;
        Ok(MessageResult { message_id, status })
    }
}

impl<S: Into<String>> FlatResult<S> {
    /// The message id and the status the flat fields describe.
    fn into_parts<E: serde::de::Error>(self) -> Result<(S, SendStatus), E> {
        let reason = self.reason.map(Into::into).unwrap_or_default();
        let status = match self.status {
            StatusTag::Accepted => SendStatus::Accepted {
                provider_message_id: self.provider_message_id.map(Into::into),
            },
            StatusTag::Bounced => SendStatus::Bounced {
                kind: self.kind.ok_or_else(|| E::missing_field("kind"))?,
                reason,
            },
            StatusTag::Failed => SendStatus::Failed { reason },
            StatusTag::Retry => SendStatus::Retry {
                reason,
                retry_after_ms: self.retry_after_ms,
            },
        };
        Ok((self.message_id, status))
    }
}

/// [`BatchResults`] as the host reads it: the same JSON, but each
/// `message_id` is borrowed from the reply (copied only when it holds an
/// escape), since the host only compares it with the batch's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchResultsRef<'a> {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// One per message of the batch, in the batch's order.
    #[serde(borrow)]
    pub results: Vec<MessageResultRef<'a>>,
}

/// [`MessageResult`] with its `message_id` borrowed from the JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageResultRef<'a> {
    /// The `message_id` of the message this result is for.
    pub message_id: Cow<'a, str>,
    /// What happened.
    pub status: SendStatus,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageResultRef<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flat = FlatResult::<Text<'a>>::deserialize(deserializer)?;
        let (message_id, status) = flat.into_parts::<D::Error>()?;
        Ok(MessageResultRef {
            message_id: message_id.0,
            status,
        })
    }
}

/// A JSON string borrowed from the input when it holds no escape.
#[derive(Default)]
struct Text<'a>(Cow<'a, str>);

impl From<Text<'_>> for String {
    fn from(text: Text<'_>) -> String {
        text.0.into_owned()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(text))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text.to_owned()))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text))
            }
        }
        deserializer.deserialize_str(Visit).map(Text)
    }
}

/// Outcome of one send attempt, as the plugin reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SendStatus {
    /// The provider took the message.
    Accepted {
        /// The provider's id for the message, which feedback may later name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_message_id: Option<String>,
    },
    /// The provider refused the address.
    Bounced {
        /// `hard` (never retry this address) or `soft`.
        kind: BounceKind,
        /// The provider's words.
        #[serde(default)]
        reason: String,
    },
    /// Permanent failure for this message (not the address).
    Failed {
        /// The provider's words.
        #[serde(default)]
        reason: String,
    },
    /// Transient failure: try again later with the same `message_id`.
    Retry {
        /// The provider's words.
        #[serde(default)]
        reason: String,
        /// How long to wait before the next try, when the provider said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// Hard or soft bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// Permanent: the address is quarantined at once.
    Hard,
    /// Temporary: counted toward the quarantine threshold.
    Soft,
}

/// What one plugin instance serves and how it wants to be called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// Always [`WIRE_VERSION`].
    pub version: u32,
    /// The channels this instance serves.
    pub channels: Vec<ChannelInfo>,
    /// How many `send_batch` calls the host may make at once (at least 1).
    pub concurrency: u32,
}

/// One channel served by an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelInfo {
    /// The channel name deliveries use (`email`, `sms`, ...).
    pub name: String,
    /// The audience column that holds the address (`email`, `phone`, ...).
    /// `None` means any: the host passes the recipient id as the address.
    pub address_column: Option<String>,
    /// How the host normalises and checks addresses before sending.
    pub normalise: Normalisation,
    /// Whether the channel can track opens and clicks (e-mail).
    #[serde(default)]
    pub tracking: bool,
}

/// How addresses of a channel are normalised and checked by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// Trim and lower-case; must look like `local@domain`.
    Email,
    /// Trim, drop spaces, dashes, dots and parentheses; must be E.164 (`+` and 8 to 15 digits).
    E164,
    /// Trim; must be non-empty and free of white space.
    Token,
    /// Trim only; any non-empty value.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_through_json() {
        let results = BatchResults {
            version: WIRE_VERSION,
            results: vec![
                MessageResult {
                    message_id: "r/1".to_owned(),
                    status: SendStatus::Accepted {
                        provider_message_id: Some("p1".to_owned()),
                    },
                },
                MessageResult {
                    message_id: "r/2".to_owned(),
                    status: SendStatus::Bounced {
                        kind: BounceKind::Hard,
                        reason: "no such user".to_owned(),
                    },
                },
                MessageResult {
                    message_id: "r/3".to_owned(),
                    status: SendStatus::Retry {
                        reason: "busy".to_owned(),
                        retry_after_ms: Some(500),
                    },
                },
            ],
        };
        let json = serde_json::to_string(&results).unwrap();
        assert_eq!(
            serde_json::from_str::<BatchResults>(&json).unwrap(),
            results
        );
    }

    #[test]
    fn result_reads_the_documented_flat_shape() {
        let json = r#"{"message_id":"r/1","status":"failed","reason":"too big"}"#;
        let result: MessageResult = serde_json::from_str(json).unwrap();
        assert_eq!(
            result.status,
            SendStatus::Failed {
                reason: "too big".to_owned()
            }
        );
    }

    #[test]
    fn a_bounce_without_its_kind_and_an_unknown_status_are_refused() {
        let no_kind = r#"{"message_id":"r/1","status":"bounced","reason":"x"}"#;
        let error = serde_json::from_str::<MessageResult>(no_kind).unwrap_err();
        assert!(
            error.to_string().contains("missing field `kind`"),
            "{error}"
        );
        let unknown = r#"{"message_id":"r/1","status":"lost"}"#;
        let error = serde_json::from_str::<MessageResult>(unknown).unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `lost`"),
            "{error}"
        );
        let no_id = r#"{"status":"failed"}"#;
        assert!(serde_json::from_str::<MessageResult>(no_id).is_err());
    }

    #[test]
    fn unknown_fields_of_a_result_are_ignored_and_the_shape_stays_flat() {
        let newer = r#"{"message_id":"r/1","status":"accepted","cost_cents":3}"#;
        let result: MessageResult = serde_json::from_str(newer).unwrap();
        assert_eq!(
            result.status,
            SendStatus::Accepted {
                provider_message_id: None
            }
        );
        let retry = MessageResult {
            message_id: "r/2".to_owned(),
            status: SendStatus::Retry {
                reason: "busy".to_owned(),
                retry_after_ms: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&retry).unwrap(),
            r#"{"message_id":"r/2","status":"retry","reason":"busy"}"#
        );
    }

    #[test]
    fn borrowed_results_read_the_same_json_and_borrow_plain_ids() {
        let json = r#"{"version":1,"results":[
            {"message_id":"r/1","status":"accepted","provider_message_id":"p\u0031"},
            {"message_id":"r\/2","status":"bounced","kind":"soft","reason":"full","extra":1}]}"#;
        let owned: BatchResults = serde_json::from_str(json).unwrap();
        let borrowed: BatchResultsRef<'_> = serde_json::from_str(json).unwrap();
        assert_eq!(borrowed.version, owned.version);
        for (b, o) in borrowed.results.iter().zip(&owned.results) {
            assert_eq!(b.message_id, o.message_id);
            assert_eq!(b.status, o.status);
        }
        assert!(matches!(
            borrowed.results[0].message_id,
            Cow::Borrowed("r/1")
        ));
        assert_eq!(borrowed.results[1].message_id, "r/2");
        let stray = r#"{"version":1,"results":[],"more":true}"#;
        assert!(serde_json::from_str::<BatchResultsRef<'_>>(stray).is_err());
        let no_kind = r#"{"version":1,"results":[{"message_id":"r","status":"bounced"}]}"#;
        let error = serde_json::from_str::<BatchResultsRef<'_>>(no_kind).unwrap_err();
        assert!(
            error.to_string().contains("missing field `kind`"),
            "{error}"
        );
    }
}
