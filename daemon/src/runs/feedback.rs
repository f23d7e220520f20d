//! Provider feedback as engine operations (kpis.md, "Quarantine and
//! denylist"): a message named by the provider's id or by run and
//! recipient; a later bounce or failure amends a `delivered` outcome and
//! its counters; a hard bounce quarantines the address, soft bounces count
//! to the threshold, a delivery resets that count, and a complaint or a
//! STOP puts the address on the denylist.

use crate::runs::{FeedbackEvent, Outcome, RunId};
use crate::store::{SharedStore, StoreResult, SuppressionList};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Whether a bounce is permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// Permanent: the address is quarantined at once.
    Hard,
    /// Temporary: counted towards `quarantine.soft_threshold`.
    Soft,
}

/// Which message the feedback is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef {
    /// The provider's message id, as the plugin returned it.
    Provider(String),
    /// The run and the recipient.
    Recipient {
        /// The run.
        run: RunId,
        /// The recipient id.
        recipient: String,
    },
}

/// One feedback event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// What happened.
    pub event: FeedbackEvent,
    /// For `bounced`: hard (the default) or soft.
    pub kind: Option<BounceKind>,
    /// The message.
    pub message: MessageRef,
    /// The provider's words, kept as the outcome's detail.
    pub detail: Option<String>,
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The message was found and the event applied.
    Applied,
    /// No such message: counted and ignored.
    Unknown,
}

/// Applies one event; `soft_threshold` is `quarantine.soft_threshold`.
pub async fn apply(
    store: &SharedStore,
    feedback: &Feedback,
    soft_threshold: u32,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let (run, recipient) = match &feedback.message {
        MessageRef::Provider(id) => match store.find_message(id).await? {
            Some(found) => found,
            None => return Ok(Applied::Unknown),
        },
        MessageRef::Recipient { run, recipient } => (run.clone(), recipient.clone()),
    };
    let Some(outcome) = store.outcome(&run, &recipient).await? else {
        return Ok(Applied::Unknown);
    };
    // An excluded or cancelled recipient was never sent a message, so no
    // provider can report on one: the event names a message Herald does
    // not know, and must not quarantine or denylist an address for it.
    if matches!(outcome.outcome, Outcome::Excluded | Outcome::Cancelled) {
        return Ok(Applied::Unknown);
    }
    let address = outcome.address.as_str();
    let detail = |default: &str| {
        feedback
            .detail
            .clone()
            .unwrap_or_else(|| default.to_owned())
    };
    match feedback.event {
        FeedbackEvent::Delivered => {
            if !address.is_empty() {
                store.reset_soft_bounces(&[address.to_owned()]).await?;
            }
        }
        FeedbackEvent::Bounced => {
            let kind = feedback.kind.unwrap_or(BounceKind::Hard);
            let words = match kind {
                BounceKind::Hard => detail("hard bounce (provider feedback)"),
                BounceKind::Soft => detail("soft bounce (provider feedback)"),
            };
            store
                .amend_outcome(&run, &recipient, Outcome::Bounced, &words, now)
                .await?;
            if !address.is_empty() {
                match kind {
                    BounceKind::Hard => {
                        store
                            .suppress(SuppressionList::Quarantine, address, "hard_bounce", now)
                            .await?
                    }
                    BounceKind::Soft => {
                        store.soft_bounce(address, soft_threshold, now).await?;
                    }
                }
            }
        }
        FeedbackEvent::Failed => {
            store
                .amend_outcome(
                    &run,
                    &recipient,
                    Outcome::Failed,
                    &detail("failed (provider feedback)"),
                    now,
                )
                .await?;
        }
        FeedbackEvent::Complained | FeedbackEvent::Stop => {
            if !address.is_empty() {
                let reason = feedback.event.as_str();
                store
                    .suppress(SuppressionList::Denylist, address, reason, now)
                    .await?;
            }
        }
    }
    Ok(Applied::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecipientOutcome;
    use crate::store::conformance::{new_run, t};
    use crate::store::embedded::EmbeddedStore;
    use std::sync::Arc;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: SharedStore,
        run: RunId,
    }

    /// A run with recipients c1..c4 delivered to a1..a4@x.example.
    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            Arc::new(EmbeddedStore::open(dir.path().join("db")).await.unwrap());
        let new = new_run("d", 60, false);
        let run = new.id.clone();
        store.create_run(&new).await.unwrap();
        let outcomes: Vec<RecipientOutcome> = (1..=4)
            .map(|i| RecipientOutcome {
                recipient_id: format!("c{i}"),
                address: format!("a{i}@x.example"),
                outcome: Outcome::Delivered,
                reason: None,
                provider_message_id: Some(format!("pm-{i}")),
                detail: None,
                at: t(0),
            })
            .collect();
        store.record_outcomes(&run, &outcomes).await.unwrap();
        Fixture {
            _dir: dir,
            store,
            run,
        }
    }

    fn by_provider(event: FeedbackEvent, kind: Option<BounceKind>, id: &str) -> Feedback {
        Feedback {
            event,
            kind,
            message: MessageRef::Provider(id.to_owned()),
            detail: None,
        }
    }

    fn by_recipient(
        event: FeedbackEvent,
        kind: Option<BounceKind>,
        run: &RunId,
        recipient: &str,
    ) -> Feedback {
        Feedback {
            event,
            kind,
            message: MessageRef::Recipient {
                run: run.clone(),
                recipient: recipient.to_owned(),
            },
            detail: None,
        }
    }

    async fn lists(store: &SharedStore, address: &str) -> Option<SuppressionList> {
        store.suppressed(&[address.to_owned()]).await.unwrap()[0]
    }

    #[tokio::test]
    async fn a_hard_bounce_amends_the_outcome_and_quarantines_the_address() {
        let f = fixture().await;
        let e = by_provider(FeedbackEvent::Bounced, Some(BounceKind::Hard), "pm-1");
        assert_eq!(
            apply(&f.store, &e, 5, t(1)).await.unwrap(),
            Applied::Applied
        );
        let o = f.store.outcome(&f.run, "c1").await.unwrap().unwrap();
        assert_eq!(o.outcome, Outcome::Bounced);
        let c = f.store.run(&f.run).await.unwrap().unwrap().counters;
        assert_eq!((c.delivered, c.bounced), (3, 1));
        assert_eq!(
            lists(&f.store, "a1@x.example").await,
            Some(SuppressionList::Quarantine)
        );
    }

    #[tokio::test]
    async fn soft_bounces_quarantine_at_the_threshold_and_a_delivery_resets_them() {
        let f = fixture().await;
        let soft = by_provider(FeedbackEvent::Bounced, Some(BounceKind::Soft), "pm-2");
        apply(&f.store, &soft, 3, t(1)).await.unwrap();
        apply(&f.store, &soft, 3, t(2)).await.unwrap();
        let delivered = by_provider(FeedbackEvent::Delivered, None, "pm-2");
        apply(&f.store, &delivered, 3, t(3)).await.unwrap();
        apply(&f.store, &soft, 3, t(4)).await.unwrap();
        apply(&f.store, &soft, 3, t(5)).await.unwrap();
        assert_eq!(lists(&f.store, "a2@x.example").await, None);
        apply(&f.store, &soft, 3, t(6)).await.unwrap();
        assert_eq!(
            lists(&f.store, "a2@x.example").await,
            Some(SuppressionList::Quarantine)
        );
        // The outcome moved once, however many bounces came.
        let c = f.store.run(&f.run).await.unwrap().unwrap().counters;
        assert_eq!((c.delivered, c.bounced), (3, 1));
    }

    #[tokio::test]
    async fn complaints_and_stops_denylist_named_by_run_and_recipient() {
        let f = fixture().await;
        for (event, recipient) in [
            (FeedbackEvent::Complained, "c3"),
            (FeedbackEvent::Stop, "c4"),
        ] {
            let e = by_recipient(event, None, &f.run, recipient);
            assert_eq!(
                apply(&f.store, &e, 5, t(1)).await.unwrap(),
                Applied::Applied
            );
        }
        assert_eq!(
            lists(&f.store, "a3@x.example").await,
            Some(SuppressionList::Denylist)
        );
        assert_eq!(
            lists(&f.store, "a4@x.example").await,
            Some(SuppressionList::Denylist)
        );
        let c = f.store.run(&f.run).await.unwrap().unwrap().counters;
        assert_eq!(c.delivered, 4, "a complaint does not change the outcome");
    }

    #[tokio::test]
    async fn a_failure_turns_delivered_into_failed() {
        let f = fixture().await;
        let e = by_provider(FeedbackEvent::Failed, None, "pm-4");
        apply(&f.store, &e, 5, t(1)).await.unwrap();
        let c = f.store.run(&f.run).await.unwrap().unwrap().counters;
        assert_eq!((c.delivered, c.failed), (3, 1));
    }

    #[tokio::test]
    async fn events_about_recipients_never_sent_a_message_are_unknown() {
        let f = fixture().await;
        let unsent: Vec<RecipientOutcome> = [("c5", Outcome::Excluded), ("c6", Outcome::Cancelled)]
            .into_iter()
            .map(|(id, outcome)| RecipientOutcome {
                recipient_id: id.to_owned(),
                address: format!("{id}@x.example"),
                outcome,
                reason: None,
                provider_message_id: None,
                detail: None,
                at: t(0),
            })
            .collect();
        f.store.record_outcomes(&f.run, &unsent).await.unwrap();
        for recipient in ["c5", "c6"] {
            for (event, kind) in [
                (FeedbackEvent::Bounced, Some(BounceKind::Hard)),
                (FeedbackEvent::Complained, None),
            ] {
                let e = by_recipient(event, kind, &f.run, recipient);
                assert_eq!(
                    apply(&f.store, &e, 5, t(1)).await.unwrap(),
                    Applied::Unknown,
                    "{recipient} {event:?}"
                );
            }
            let address = format!("{recipient}@x.example");
            assert_eq!(lists(&f.store, &address).await, None, "{recipient}");
        }
        let c = f.store.run(&f.run).await.unwrap().unwrap().counters;
        assert_eq!((c.delivered, c.bounced), (4, 0));
    }

    #[tokio::test]
    async fn unknown_messages_are_reported_and_change_nothing() {
        let f = fixture().await;
        let e = by_provider(FeedbackEvent::Bounced, Some(BounceKind::Hard), "nope");
        assert_eq!(
            apply(&f.store, &e, 5, t(1)).await.unwrap(),
            Applied::Unknown
        );
        let e = by_recipient(FeedbackEvent::Complained, None, &f.run, "c99");
        assert_eq!(
            apply(&f.store, &e, 5, t(1)).await.unwrap(),
            Applied::Unknown
        );
        let c = f.store.run(&f.run).await.unwrap().unwrap().counters;
        assert_eq!(c.delivered, 4);
    }
}
