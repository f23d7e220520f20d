//! The JSON shapes of the API (http-api.md, "JSON shapes"): built from the
//! store's records, serialised for clients, and described in the OpenAPI
//! document through their JSON Schemas.

use crate::kpi::Kpi;
use crate::store::{HistoryEntry, Run, Suppression};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The content rendered for the first recipient of a run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PreviewView {
    /// Whose data it was rendered with.
    pub recipient_id: String,
    /// The rendered content fields (`subject`, `text`, ...).
    pub content: BTreeMap<String, String>,
}

/// A run, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunView {
    /// `{delivery_id}@{instant}`.
    pub id: String,
    /// The delivery it belongs to.
    pub delivery_id: String,
    /// The delivery's label, when the delivery is loaded and has one.
    pub label: Option<String>,
    /// The channel it is sent on.
    pub channel: String,
    /// `preparing`, `pending`, `scheduled`, `sending`, `paused`, `sent`, `cancelled`, `expired` or `failed`.
    pub state: String,
    /// The occurrence's instant.
    pub scheduled_for: DateTime<Utc>,
    /// When a pending run expires.
    pub confirm_deadline: DateTime<Utc>,
    /// `2026-12-07`, `2026-W49` or `2026-12`; `null` without aggregation.
    pub aggregation_period: Option<String>,
    /// `sha256:<hex>` of the definition snapshot.
    pub definition_hash: String,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// Who confirmed it.
    pub confirmed_by: Option<String>,
    /// When it was confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Who cancelled it (`null` when the system did).
    pub cancelled_by: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `null`, `cancelled` or `delivery_removed`.
    pub cancel_reason: Option<String>,
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
    pub preview: Option<PreviewView>,
    /// Its deployment figures.
    pub kpi: Kpi,
}

impl RunView {
    /// The view of `run`; `tracking` says whether its channel tracks opens.
    pub fn new(run: Run, label: Option<String>, tracking: bool) -> RunView {
        let kpi = Kpi::from_counters(&run.counters, tracking);
        RunView {
            id: run.id.to_string(),
            delivery_id: run.delivery_id,
            label,
            channel: run.channel,
            state: run.state.as_str().to_owned(),
            scheduled_for: run.scheduled_for,
            confirm_deadline: run.confirm_deadline,
            aggregation_period: run.aggregation_period,
            definition_hash: run.definition_hash,
            created_at: run.created_at,
            confirmed_by: run.confirmed_by,
            confirmed_at: run.confirmed_at,
            cancelled_by: run.cancelled_by,
            cancelled_at: run.cancelled_at,
            cancel_reason: run.cancel_reason.map(|r| {
                match r {
                    crate::store::CancelReason::Cancelled => "cancelled",
                    crate::store::CancelReason::DeliveryRemoved => "delivery_removed",
                }
                .to_owned()
            }),
            paused_by: run.paused_by,
            paused_at: run.paused_at,
            resumed_by: run.resumed_by,
            resumed_at: run.resumed_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            failure: run.failure,
            outcomes_purged: run.outcomes_purged,
            preview: run.preview.map(|p| PreviewView {
                recipient_id: p.recipient_id,
                content: p.content,
            }),
            kpi,
        }
    }
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A loaded delivery, summarised: an item of `GET /api/v1/deliveries`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeliverySummary {
    /// The delivery id.
    pub id: String,
    /// What its file says.
    #[serde(flatten)]
    pub definition: DefinitionSummary,
    /// The next occurrence after now, if any.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// What a delivery's file says, shown at the top level of both the list's
/// items and `GET /api/v1/deliveries/{id}`, which keeps its own `id` and
/// `next_run_at` when the file is gone and only runs remain.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DefinitionSummary {
    /// Free text shown to confirmers.
    pub label: Option<String>,
    /// The channel name.
    pub channel: String,
    /// The file it was loaded from.
    pub file: String,
    /// `once`, `at` or `cron`.
    pub schedule: String,
    /// The cron pattern of a recurring delivery.
    pub cron: Option<String>,
    /// Whether runs wait for a confirmer.
    pub confirm: bool,
    /// `none`, `day`, `week` or `month`.
    pub aggregation: String,
    /// `sha256:<hex>` of the definition.
    pub definition_hash: String,
}

/// One error of a delivery file that does not load.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FileErrorView {
    /// The file at fault.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// `GET /api/v1/deliveries`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryList {
    /// The loaded deliveries.
    pub deliveries: Vec<DeliverySummary>,
    /// Errors of the files that do not load.
    pub errors: Vec<FileErrorView>,
}

/// The KPIs of one aggregation period.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PeriodKpi {
    /// `2026-12-07`, `2026-W49` or `2026-12`.
    pub period: String,
    /// Its figures, summed over its runs.
    pub kpi: Kpi,
}

/// `GET /api/v1/deliveries/{id}` and the statistics answer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryDetail {
    /// The delivery id, also when only runs remain.
    pub id: String,
    /// The definition summary, beside `id` as in the list (http-api.md);
    /// its fields are absent when only runs remain (file removed).
    #[serde(flatten)]
    pub definition: Option<DefinitionSummary>,
    /// The next occurrence after now, if any.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Figures summed over all its runs.
    pub kpi: Kpi,
    /// How many runs were summed.
    pub runs: u64,
    /// Per aggregation period, newest first; empty without aggregation.
    pub periods: Vec<PeriodKpi>,
}

/// `POST /api/v1/deliveries/{id}/proof`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// Where to send the proof.
    pub addresses: Vec<String>,
    /// Whose data to render it with (default: the first audience row).
    pub recipient_id: Option<String>,
}

/// What happened to one proof message.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProofResult {
    /// The address as given.
    pub address: String,
    /// `accepted`, `bounced`, `failed`, `retry` or `invalid_address`.
    pub status: String,
    /// The proof's message id (`proof/...`).
    pub message_id: String,
    /// The provider's message id or the reason it failed.
    pub detail: Option<String>,
}

/// The answer to a proof request.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProofAnswer {
    /// The recipient whose data was rendered.
    pub recipient_id: String,
    /// One result per address.
    pub results: Vec<ProofResult>,
}

/// One entry of a recipient's history.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct MessageView {
    /// The run.
    pub run_id: String,
    /// Its delivery.
    pub delivery_id: String,
    /// Its channel.
    pub channel: String,
    /// `delivered`, `bounced`, `failed`, `excluded` or `cancelled`.
    pub outcome: String,
    /// The provider's message id, if any.
    pub provider_message_id: Option<String>,
    /// When the outcome was recorded.
    pub at: DateTime<Utc>,
}

impl From<HistoryEntry> for MessageView {
    fn from(e: HistoryEntry) -> Self {
        MessageView {
            run_id: e.run_id.to_string(),
            delivery_id: e.delivery_id,
            channel: e.channel,
            outcome: e.outcome.as_str().to_owned(),
            provider_message_id: e.provider_message_id,
            at: e.at,
        }
    }
}

/// A page of a recipient's messages, newest first.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct MessagePage {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// One suppressed address.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SuppressionView {
    /// The normalised address.
    pub address: String,
    /// `quarantine` or `denylist`.
    pub list: String,
    /// Why it is there.
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Soft bounces counted for the address.
    pub soft_bounces: u32,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> Self {
        SuppressionView {
            address: s.address,
            list: match s.list {
                crate::store::SuppressionList::Quarantine => "quarantine",
                crate::store::SuppressionList::Denylist => "denylist",
            }
            .to_owned(),
            reason: s.reason,
            since: s.since,
            soft_bounces: s.soft_bounces,
        }
    }
}

/// A page of suppression entries, by address.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SuppressionPage {
    /// The entries.
    pub entries: Vec<SuppressionView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `PUT /api/v1/suppressions/{list}/{address}`: optional body.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressRequest {
    /// Why (default `manual`).
    pub reason: Option<String>,
}

/// The answer of `PUT` and `DELETE` on a suppression.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SuppressAnswer {
    /// The normalised address.
    pub address: String,
    /// The list.
    pub list: String,
    /// Whether the address is on the list now.
    pub listed: bool,
}

/// The answer of `DELETE /api/v1/profiles/{recipient_id}`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ErasureAnswer {
    /// The recipient erased.
    pub recipient_id: String,
    /// History entries removed.
    pub history_entries_erased: u64,
    /// Finished runs that had sent the recipient a message, now cleared of
    /// their rows and marked `outcomes_purged`.
    pub runs_erased: Vec<String>,
    /// Runs not finished yet: they are cleared when they finish.
    pub runs_pending: Vec<String>,
}
