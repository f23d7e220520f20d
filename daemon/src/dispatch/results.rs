//! What a plugin's verdict means for a recipient: a final outcome, with its
//! side effects on the suppression lists, or another try.

use crate::runs::Outcome;
use herald_plugin_api::{BounceKind, SendStatus};
use std::time::{Duration, Instant};

/// The decision for one message after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Final: record this outcome.
    Final {
        /// The outcome.
        outcome: Outcome,
        /// The provider's message id (accepted only).
        provider_message_id: Option<String>,
        /// The provider's or host's words (bounced and failed).
        detail: Option<String>,
        /// What the bounce does to the address.
        suppression: Suppression,
    },
    /// Try again after at least this long.
    Retry {
        /// Why.
        reason: String,
        /// The provider's requested delay, if any.
        after: Option<Duration>,
    },
}

/// What a result does to the address's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// Nothing.
    None,
    /// Accepted: soft-bounce counts are reset.
    ResetSoftBounces,
    /// Hard bounce: quarantine at once.
    Quarantine,
    /// Soft bounce: count toward the threshold.
    CountSoftBounce,
}

/// Maps a plugin result; `retry` becomes `failed` once `attempt` reaches `max_retries`.
pub fn verdict(status: SendStatus, attempt: u32, max_retries: u32) -> Verdict {
    let final_ = |outcome, provider_message_id, detail, suppression| Verdict::Final {
        outcome,
        provider_message_id,
        detail,
        suppression,
    };
    match status {
        SendStatus::Accepted {
            provider_message_id,
        } => final_(
            Outcome::Delivered,
            provider_message_id,
            None,
            Suppression::ResetSoftBounces,
        ),
        SendStatus::Bounced { kind, reason } => {
            let suppression = match kind {
                BounceKind::Hard => Suppression::Quarantine,
                BounceKind::Soft => Suppression::CountSoftBounce,
            };
            final_(Outcome::Bounced, None, Some(reason), suppression)
        }
        SendStatus::Failed { reason } => {
            final_(Outcome::Failed, None, Some(reason), Suppression::None)
        }
        SendStatus::Retry {
            reason,
            retry_after_ms,
        } => retry_or_give_up(
            reason,
            retry_after_ms.map(Duration::from_millis),
            attempt,
            max_retries,
        ),
    }
}

/// A transient failure: another try, or `failed` when the retries are spent.
pub fn retry_or_give_up(
    reason: String,
    after: Option<Duration>,
    attempt: u32,
    max_retries: u32,
) -> Verdict {
    if attempt < max_retries {
        Verdict::Retry { reason, after }
    } else {
        Verdict::Final {
            outcome: Outcome::Failed,
            provider_message_id: None,
            detail: Some(format!("gave up after {} attempts: {reason}", attempt + 1)),
            suppression: Suppression::None,
        }
    }
}

/// When a message answered `retry` may be tried again: `now` plus
/// [`backoff`].
pub fn retry_at(now: Instant, attempt: u32, asked: Option<Duration>) -> Instant {
    now + backoff(attempt, asked)
}

/// The longest delay a plugin's `retry` is honoured for. The chunk waits
/// for its retries while holding its lease, so a plugin asking for days
/// (a bug, or a provider's `Retry-After` taken literally) would stall the
/// run; past this the message is tried again anyway, and fails after
/// `sending.retries` like any other.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Exponential backoff with full jitter, never shorter than the provider
/// asked, up to [`MAX_RETRY_AFTER`].
pub fn backoff(attempt: u32, asked: Option<Duration>) -> Duration {
    let base = Duration::from_millis(500);
    let cap = Duration::from_secs(60);
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
    let jittered = ceiling.mul_f64(0.5 + rand::random::<f64>() * 0.5);
    asked.map_or(jittered, |asked| asked.min(MAX_RETRY_AFTER).max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz target `plugin_result`): a `retry_after_ms` of
    /// years put the next try out of reach and stalled the chunk forever.
    #[test]
    fn a_retry_delay_of_years_is_cut_to_the_maximum() {
        let now = Instant::now();
        for asked in [u64::MAX, 99_999_999_999, 3_600_001] {
            let at = retry_at(now, 0, Some(Duration::from_millis(asked)));
            assert_eq!(at - now, MAX_RETRY_AFTER, "retry_after_ms {asked}");
        }
        let asked = Duration::from_secs(120);
        assert_eq!(retry_at(now, 0, Some(asked)) - now, asked);
    }

    #[test]
    fn accepted_is_delivered_with_the_provider_id() {
        let v = verdict(
            SendStatus::Accepted {
                provider_message_id: Some("Q1".into()),
            },
            0,
            3,
        );
        assert!(
            matches!(v, Verdict::Final { outcome: Outcome::Delivered, provider_message_id: Some(ref id), .. } if id == "Q1")
        );
    }

    #[test]
    fn a_hard_bounce_quarantines_and_a_soft_one_counts() {
        let hard = verdict(
            SendStatus::Bounced {
                kind: BounceKind::Hard,
                reason: "550".into(),
            },
            0,
            3,
        );
        let soft = verdict(
            SendStatus::Bounced {
                kind: BounceKind::Soft,
                reason: "452".into(),
            },
            0,
            3,
        );
        assert!(matches!(
            hard,
            Verdict::Final {
                outcome: Outcome::Bounced,
                suppression: Suppression::Quarantine,
                ..
            }
        ));
        assert!(matches!(
            soft,
            Verdict::Final {
                outcome: Outcome::Bounced,
                suppression: Suppression::CountSoftBounce,
                ..
            }
        ));
    }

    #[test]
    fn retries_end_in_failed_after_the_configured_count() {
        let status = || SendStatus::Retry {
            reason: "421 busy".into(),
            retry_after_ms: Some(2000),
        };
        assert!(
            matches!(verdict(status(), 2, 3), Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(2))
        );
        match verdict(status(), 3, 3) {
            Verdict::Final {
                outcome: Outcome::Failed,
                detail: Some(detail),
                ..
            } => {
                assert!(
                    detail.contains("gave up after 4 attempts: 421 busy"),
                    "{detail}"
                );
            }
            other => panic!("expected failed, got {other:?}"),
        }
    }

    #[test]
    fn backoff_grows_is_jittered_and_honours_the_provider() {
        for attempt in 0..5 {
            let ceiling = Duration::from_millis(500 * (1 << attempt));
            let d = backoff(attempt, None);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        assert!(backoff(40, None) <= Duration::from_secs(60));
    }
}
