//! The run vocabulary shared by the store, the engine, the API and the
//! metrics. The string forms are binding (spec README, "One vocabulary").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `{delivery_id}@{YYYYMMDDTHHMMSSZ}` or `{delivery_id}@once`: deterministic,
/// so every daemon instance computes the same id for the same occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

/// The format of the instant in a run id.
const INSTANT_FORMAT: &str = "%Y%m%dT%H%M%SZ";

impl RunId {
    /// The run of `delivery_id` scheduled at `instant`.
    pub fn at(delivery_id: &str, instant: DateTime<Utc>) -> Self {
        RunId(format!("{delivery_id}@{}", instant.format(INSTANT_FORMAT)))
    }

    /// The single run of a delivery without a time.
    pub fn once(delivery_id: &str) -> Self {
        RunId(format!("{delivery_id}@once"))
    }

    /// The delivery part of the id.
    pub fn delivery_id(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(d, _)| d)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a run id.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a run id: expected `{{delivery_id}}@YYYYMMDDTHHMMSSZ` or `{{delivery_id}}@once`"
)]
pub struct BadRunId(String);

impl FromStr for RunId {
    type Err = BadRunId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadRunId(s.to_owned());
        let (delivery, when) = s.split_once('@').ok_or_else(bad)?;
        let id_ok = !delivery.is_empty()
            && delivery.len() <= 64
            && delivery
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let when_ok =
            when == "once" || chrono::NaiveDateTime::parse_from_str(when, INSTANT_FORMAT).is_ok();
        if id_ok && when_ok {
            Ok(RunId(s.to_owned()))
        } else {
            Err(bad())
        }
    }
}

impl TryFrom<String> for RunId {
    type Error = BadRunId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

/// Macro for the closed string enums of the vocabulary: serde, Display,
/// FromStr and the list of all values, from one table.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The binding string form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        kind: stringify!($name),
                        value: s.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

/// A string that is not one of the values of a vocabulary.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} `{value}`; expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    kind: &'static str,
    value: String,
    expected: &'static [&'static str],
}

vocabulary! {
    /// Where a run is in its life (spec README, "Life of a run").
    RunState {
        /// The audience is being read and frozen.
        Preparing = "preparing",
        /// Waiting for a confirmer.
        Pending = "pending",
        /// Prepared (and confirmed where asked), waiting for its instant.
        Scheduled = "scheduled",
        /// Chunks are being claimed and sent.
        Sending = "sending",
        /// Sending stopped by a user until resumed.
        Paused = "paused",
        /// Every recipient has a final outcome.
        Sent = "sent",
        /// Cancelled by a user or because its delivery file was removed.
        Cancelled = "cancelled",
        /// Nobody confirmed it before its confirm deadline.
        Expired = "expired",
        /// An error stopped it (for example an unreadable audience).
        Failed = "failed",
    }
}

impl RunState {
    /// Sent, cancelled, expired or failed: nothing more happens to the run.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Sent | RunState::Cancelled | RunState::Expired | RunState::Failed
        )
    }
}

vocabulary! {
    /// The final outcome of one recipient in one run.
    Outcome {
        /// The channel accepted the message (and no later feedback said otherwise).
        Delivered = "delivered",
        /// The channel or later feedback reported a bounce.
        Bounced = "bounced",
        /// Permanent failure, or retries exhausted.
        Failed = "failed",
        /// Left out at preparation.
        Excluded = "excluded",
        /// Not sent because the run was cancelled while sending or paused.
        Cancelled = "cancelled",
    }
}

vocabulary! {
    /// Why a recipient was left out at preparation.
    ExclusionReason {
        /// The address column is missing or empty.
        NoAddress = "no_address",
        /// The address is malformed for the channel.
        InvalidAddress = "invalid_address",
        /// A repeated `id`; the first row wins.
        Duplicate = "duplicate",
        /// The address hard-bounced before, or soft-bounced past the threshold.
        Quarantined = "quarantined",
        /// The address unsubscribed, complained or replied STOP.
        Denylisted = "denylisted",
    }
}

vocabulary! {
    /// Provider feedback about a message already sent.
    FeedbackEvent {
        /// The provider confirmed delivery.
        Delivered = "delivered",
        /// The message bounced (`hard` or `soft`).
        Bounced = "bounced",
        /// The message failed permanently.
        Failed = "failed",
        /// The recipient complained (spam report).
        Complained = "complained",
        /// An SMS STOP reply.
        Stop = "stop",
    }
}

vocabulary! {
    /// What a user of the HTTP hook may do.
    Role {
        /// Reads everything under `/api/v1`.
        Viewer = "viewer",
        /// Also confirms, cancels, pauses, resumes, computes statistics, sends proofs.
        StartDeliveries = "start_deliveries",
        /// Only posts provider feedback.
        Feedback = "feedback",
        /// Every right, plus suppressions and erasure.
        Admin = "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn run_ids_are_deterministic_and_parse_back() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap();
        let id = RunId::at("weekly-digest", at);
        assert_eq!(id.as_str(), "weekly-digest@20261207T080000Z");
        assert_eq!(id.delivery_id(), "weekly-digest");
        assert_eq!(id.as_str().parse::<RunId>().unwrap(), id);
        assert_eq!(RunId::once("promo").as_str(), "promo@once");
    }

    #[test]
    fn malformed_run_ids_are_refused() {
        for bad in ["", "x", "Upper@once", "a@20261207", "a@tomorrow", "@once"] {
            assert!(bad.parse::<RunId>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn vocabulary_round_trips_through_text_and_json() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>().unwrap(), *state);
            let json = serde_json::to_string(state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        let err = "nope".parse::<Outcome>().unwrap_err().to_string();
        assert!(err.contains("delivered, bounced"), "{err}");
    }
}
