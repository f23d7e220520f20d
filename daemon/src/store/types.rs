//! The records the store keeps and hands back.

use crate::runs::{ExclusionReason, Outcome, RunId, RunState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the scheduler knows when it creates a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    /// The deterministic id.
    pub id: RunId,
    /// The delivery it belongs to.
    pub delivery_id: String,
    /// The channel it is sent on.
    pub channel: String,
    /// The occurrence's instant (for `@once`, the instant it was loaded).
    pub scheduled_for: DateTime<Utc>,
    /// When a pending run expires.
    pub confirm_deadline: DateTime<Utc>,
    /// Whether it waits in `pending` for a confirmer.
    pub confirm_required: bool,
    /// `2026-12-07`, `2026-W49` or `2026-12` for aggregated deliveries.
    pub aggregation_period: Option<String>,
    /// The delivery definition as JSON: every instance renders from it.
    pub definition: String,
    /// `sha256:<hex>` of `definition`.
    pub definition_hash: String,
    /// The delivery's throttle in messages per second, if any.
    pub throttle_per_second: Option<f64>,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
}

/// A run as the API shows it (http-api.md "JSON shapes"), with its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The deterministic id.
    pub id: RunId,
    /// The delivery it belongs to.
    pub delivery_id: String,
    /// The channel it is sent on.
    pub channel: String,
    /// Where it is in its life.
    pub state: RunState,
    /// The occurrence's instant.
    pub scheduled_for: DateTime<Utc>,
    /// When a pending run expires.
    pub confirm_deadline: DateTime<Utc>,
    /// Whether it waits in `pending` for a confirmer.
    pub confirm_required: bool,
    /// The aggregation period key, if the delivery aggregates.
    pub aggregation_period: Option<String>,
    /// `sha256:<hex>` of the definition snapshot.
    pub definition_hash: String,
    /// The delivery's throttle in messages per second, if any.
    pub throttle_per_second: Option<f64>,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// Who confirmed it.
    pub confirmed_by: Option<String>,
    /// When it was confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Who cancelled it (`None` when the system did).
    pub cancelled_by: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: Option<CancelReason>,
    /// Who paused it last.
    pub paused_by: Option<String>,
    /// When it was paused last.
    pub paused_at: Option<DateTime<Utc>>,
    /// Who resumed it last.
    pub resumed_by: Option<String>,
    /// When it was resumed last.
    pub resumed_at: Option<DateTime<Utc>>,
    /// When it started sending.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed, for `failed` runs.
    pub failure: Option<String>,
    /// Whether retention or erasure purged its per-recipient rows.
    pub outcomes_purged: bool,
    /// The content rendered for the first recipient.
    pub preview: Option<Preview>,
    /// Number of chunks its audience was frozen into.
    pub chunks: u32,
    /// Chunks finished (every recipient has an outcome).
    pub chunks_done: u32,
    /// The outcome counters.
    pub counters: Counters,
}

/// Why a run was cancelled (`cancel_reason` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// A user cancelled it (named in `cancelled_by`).
    Cancelled,
    /// Its delivery file was removed.
    DeliveryRemoved,
}

/// The content rendered for the first recipient, shown to confirmers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// Whose data it was rendered with.
    pub recipient_id: String,
    /// The rendered content fields.
    pub content: BTreeMap<String, String>,
}

/// The run's counters: the ground truth of its KPIs (kpis.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Audience rows read at preparation.
    pub targeted: u64,
    /// Rows left out at preparation, by reason.
    pub excluded_by_reason: BTreeMap<ExclusionReason, u64>,
    /// Recipients whose outcome is `delivered`.
    pub delivered: u64,
    /// Recipients whose outcome is `bounced`.
    pub bounced: u64,
    /// Recipients whose outcome is `failed`.
    pub failed: u64,
    /// Recipients not sent because the run was cancelled.
    pub cancelled: u64,
    /// Unique recipients with an open or a click.
    pub opened: u64,
    /// Unique recipients with a click.
    pub clicked: u64,
    /// Unique recipients who unsubscribed through this run.
    pub unsubscribed: u64,
}

impl Counters {
    /// Rows left out at preparation.
    pub fn excluded(&self) -> u64 {
        self.excluded_by_reason.values().sum()
    }

    /// `targeted − excluded`.
    pub fn to_send(&self) -> u64 {
        self.targeted.saturating_sub(self.excluded())
    }

    /// `delivered + bounced + failed`.
    pub fn sent(&self) -> u64 {
        self.delivered + self.bounced + self.failed
    }

    /// `to_send − sent − cancelled`.
    pub fn remaining(&self) -> u64 {
        self.to_send()
            .saturating_sub(self.sent())
            .saturating_sub(self.cancelled)
    }
}

/// One audience row frozen at preparation, with its normalised address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenRecipient {
    /// The row's `id`.
    pub id: String,
    /// The normalised address.
    pub address: String,
    /// The row's columns: the template variables (shared with the
    /// template context of each try, not copied into it).
    pub fields: Arc<BTreeMap<String, String>>,
}

/// A slice of a run's audience, claimed and sent as a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// 0-based position in the run.
    pub number: u32,
    /// The recipients to send to.
    pub recipients: Vec<FrozenRecipient>,
}

/// What preparation found, recorded when it finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    /// Audience rows read.
    pub targeted: u64,
    /// Rows left out, by reason; their per-recipient `excluded` outcomes
    /// are recorded with [`Store::record_outcomes`](super::Store::record_outcomes)
    /// before this.
    pub excluded_by_reason: BTreeMap<ExclusionReason, u64>,
    /// How many chunks were written with [`Store::put_chunk`](super::Store::put_chunk).
    pub chunks: u32,
    /// The content rendered for the first recipient.
    pub preview: Option<Preview>,
}

/// A chunk claimed under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedChunk {
    /// The chunk's number.
    pub number: u32,
    /// Its recipients that have no outcome yet (a reclaimed chunk skips
    /// those the previous holder finished).
    pub recipients: Vec<FrozenRecipient>,
    /// Whether the run was cancelled: the claimer records `cancelled` for
    /// every recipient instead of sending.
    pub cancelled: bool,
}

/// The final outcome of one recipient, as the dispatcher records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    /// The row's `id`.
    pub recipient_id: String,
    /// The address it was sent to (empty when there was none).
    pub address: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The exclusion reason, for `excluded`.
    // Absent rather than `null` when stored: a million records are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ExclusionReason>,
    /// The provider's message id, for `delivered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// The provider's or the host's words, for `bounced` and `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it was recorded.
    #[serde(serialize_with = "instant_text::serialize")]
    pub at: DateTime<Utc>,
}

/// Outcome instants written as chrono writes them, formatted once per
/// instant: the fifty outcomes of a batch share one, and formatting it
/// was half the cost of their JSON.
mod instant_text {
    use chrono::{DateTime, Utc};
    use std::cell::RefCell;

    thread_local! {
        static LAST: RefCell<Option<(DateTime<Utc>, String)>> = const { RefCell::new(None) };
    }

    pub fn serialize<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        LAST.with_borrow_mut(|last| {
            if last.as_ref().is_none_or(|(instant, _)| instant != at) {
                *last = Some((*at, chrono_text(at)));
            }
            let (_, text) = last.as_ref().expect("set above");
            s.serialize_str(text)
        })
    }

    /// chrono's own serialisation, without its quotes.
    fn chrono_text(at: &DateTime<Utc>) -> String {
        let json = serde_json::to_string(at).unwrap_or_default();
        json.trim_matches('"').to_owned()
    }

    #[cfg(test)]
    mod tests {
        use chrono::TimeZone;

        #[test]
        fn instants_are_written_as_chrono_writes_them_also_when_repeated() {
            let instants = [
                chrono::Utc
                    .timestamp_opt(1_780_000_000, 123_456_789)
                    .unwrap(),
                chrono::Utc
                    .timestamp_opt(1_780_000_000, 123_456_789)
                    .unwrap(),
                chrono::Utc.timestamp_opt(1_780_000_001, 0).unwrap(),
                chrono::Utc
                    .timestamp_opt(1_780_000_000, 123_456_789)
                    .unwrap(),
            ];
            for at in instants {
                let mut out = serde_json::Serializer::new(Vec::new());
                super::serialize(&at, &mut out).unwrap();
                let ours = String::from_utf8(out.into_inner()).unwrap();
                assert_eq!(ours, serde_json::to_string(&at).unwrap());
            }
        }
    }
}

/// What [`Store::create_and_take`](super::Store::create_and_take) did.
#[derive(Debug, Clone, PartialEq)]
pub enum Creation {
    /// A run with this id existed already: nothing changed.
    Existed,
    /// Created, but its preparation is not this owner's (yet).
    Created,
    /// Created with its preparation taken by the owner: the run as stored.
    Taken(Box<Run>),
}

/// What sending a run needs of it. [`Store::take_due`](super::Store::take_due)
/// gives only this for a run it starts: thousands can start at one
/// instant, and reading each whole run cost more than the rest of taking it
/// (benches/README.md, P4).
#[derive(Debug, Clone, PartialEq)]
pub struct SendingRun {
    /// The deterministic id.
    pub id: RunId,
    /// The delivery it belongs to.
    pub delivery_id: String,
    /// The channel it is sent on.
    pub channel: String,
    /// `sha256:<hex>` of its definition snapshot.
    pub definition_hash: String,
    /// The delivery's throttle in messages per second, if any.
    pub throttle_per_second: Option<f64>,
    /// When it became due: its instant, or its confirmation if later.
    pub due: DateTime<Utc>,
    /// Chunks not finished yet.
    pub chunks_left: u32,
}

impl SendingRun {
    /// When a run of instant `scheduled_for`, confirmed at `confirmed_at`
    /// if it was, became due: the later of the two.
    pub fn due_at(
        scheduled_for: DateTime<Utc>,
        confirmed_at: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        confirmed_at.map_or(scheduled_for, |c| c.max(scheduled_for))
    }
}

impl From<&Run> for SendingRun {
    fn from(run: &Run) -> Self {
        SendingRun {
            id: run.id.clone(),
            delivery_id: run.delivery_id.clone(),
            channel: run.channel.clone(),
            definition_hash: run.definition_hash.clone(),
            throttle_per_second: run.throttle_per_second,
            due: SendingRun::due_at(run.scheduled_for, run.confirmed_at),
            chunks_left: run.chunks.saturating_sub(run.chunks_done),
        }
    }
}

/// What [`Store::take_due`](super::Store::take_due) found and did.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// A `preparing` run whose preparation the caller has taken.
    Taken(Box<Run>),
    /// A `scheduled` run whose instant had come, now sending (what sending
    /// it needs), with the chunk claimed for the caller if there was one.
    Started(Box<SendingRun>, Option<ClaimedChunk>),
    /// Any other run, as read: only its agenda entry was rewritten.
    Found(Box<Run>),
}

/// The result of an action on a run (confirm, cancel, pause, resume, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Done: the run as it is now.
    Done(Box<Run>),
    /// Not allowed in the run's current state (HTTP 409 with `state`).
    Conflict(RunState),
    /// No such run (HTTP 404).
    NotFound,
}

/// Filter of [`Store::list_runs`](super::Store::list_runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Only runs of this delivery.
    pub delivery_id: Option<String>,
}

/// One page of a paginated list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Opaque cursor of the next page, `None` on the last.
    pub next_cursor: Option<String>,
}

/// The two suppression lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionList {
    /// Hard-bounced addresses, or soft-bounced past the threshold.
    Quarantine,
    /// Unsubscribed, complained, SMS STOP.
    Denylist,
}

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The normalised address.
    pub address: String,
    /// Which list.
    pub list: SuppressionList,
    /// Why (`hard_bounce`, `soft_bounces`, `unsubscribed`, `complained`, `stop`, `manual`, ...).
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Soft bounces counted for the address.
    pub soft_bounces: u32,
}

/// A tracked action of a recipient, buffered then written in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingKind {
    /// The open pixel was fetched.
    Open,
    /// A tracked link was followed (implies an open).
    Click,
    /// The recipient unsubscribed through the run's link.
    Unsubscribe,
}

/// One entry of a recipient's profile history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The run.
    pub run_id: RunId,
    /// Its delivery.
    pub delivery_id: String,
    /// Its channel.
    pub channel: String,
    /// The recipient's outcome in it.
    pub outcome: Outcome,
    /// The provider's message id, if any.
    pub provider_message_id: Option<String>,
    /// When the outcome was recorded.
    pub at: DateTime<Utc>,
}

/// How far one bounded purge or erasure step got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The run is not finished (or draining its cancelled chunks): nothing
    /// was touched; try again once it has ended.
    NotFinished,
    /// Some rows were removed and more remain; call again, from this chunk
    /// for an erasure (retention steps ignore it).
    More(u32),
    /// Nothing (more) to remove from this run.
    Done,
}
