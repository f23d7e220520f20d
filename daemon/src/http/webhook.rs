//! `confirmations.webhook`: when a run becomes pending, POST a short JSON
//! note (a chat room's incoming hook, say) so confirmers know to look.
//! Retried with exponential backoff; a webhook that stays down is logged,
//! never allowed to hold up the run.

use crate::engine::Engine;
use crate::runs::RunState;
use crate::store::Run;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use tracing::{info, warn};

/// Tries before giving up on one announcement.
const ATTEMPTS: u32 = 5;
/// Delay before the second try; doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Time allowed for one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON posted for a pending run.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Announcement {
    /// Always `run.pending`.
    pub event: String,
    /// The run id.
    pub run_id: String,
    /// Its delivery.
    pub delivery_id: String,
    /// The delivery's label, if it has one.
    pub label: Option<String>,
    /// Messages to send once confirmed.
    pub to_send: u64,
    /// When it is to be sent.
    pub scheduled_for: DateTime<Utc>,
    /// When it expires unconfirmed.
    pub confirm_deadline: DateTime<Utc>,
    /// The confirm page.
    pub link: String,
    /// A one-line summary, for chat hooks that show `text`.
    pub text: String,
}

/// Where announcements go.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    page_url: String,
    client: reqwest::Client,
}

impl Webhook {
    /// A webhook posting to `url`, linking to the confirm page at `page_url`.
    pub fn new(url: String, page_url: String) -> Webhook {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Webhook {
            url,
            page_url,
            client,
        }
    }

    /// The announcement of `run`.
    pub fn announcement(&self, run: &Run, label: Option<String>) -> Announcement {
        let to_send = run.counters.to_send();
        Announcement {
            event: "run.pending".to_owned(),
            run_id: run.id.to_string(),
            delivery_id: run.delivery_id.clone(),
            text: format!(
                "Run {} ({}) waits for confirmation: {} messages, scheduled for {}. {}",
                run.id,
                label.as_deref().unwrap_or(&run.delivery_id),
                to_send,
                run.scheduled_for.to_rfc3339(),
                self.page_url
            ),
            label,
            to_send,
            scheduled_for: run.scheduled_for,
            confirm_deadline: run.confirm_deadline,
            link: self.page_url.clone(),
        }
    }

    /// Posts `note`, retrying with backoff; `Err` with the last problem after [`ATTEMPTS`] tries.
    pub async fn post(&self, note: &Announcement) -> Result<(), String> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.client.post(&self.url).json(note).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("the webhook answered {}", response.status()),
                Err(error) => last = error.to_string(),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(last)
    }
}

/// Called when preparation finishes: announces `run` when it is pending
/// and a webhook is configured, in the background.
pub fn announce_pending(engine: &Engine, run: &Run) {
    let Some(webhook) = engine.webhook.clone() else {
        return;
    };
    if run.state != RunState::Pending {
        return;
    }
    let label = engine
        .deliveries
        .borrow()
        .get(&run.delivery_id)
        .and_then(|d| d.label().map(str::to_owned));
    let note = webhook.announcement(run, label);
    let stopping = engine.stopping.clone();
    tokio::spawn(async move {
        let posted = tokio::select! {
            posted = webhook.post(&note) => posted,
            () = stopping.cancelled() => return,
        };
        match posted {
            Ok(()) => {
                info!(delivery_id = %note.delivery_id, run_id = %note.run_id, "Confirmation webhook notified.")
            }
            Err(problem) => {
                warn!(delivery_id = %note.delivery_id, run_id = %note.run_id, problem = ?problem, "The confirmation webhook could not be notified; confirmers will see the run on the page.")
            }
        }
    });
}
