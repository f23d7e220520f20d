//! `confirmations.webhook`: when a run becomes pending, POST a short JSON
//! note (a chat room's incoming hook, say) so confirmers know to look.
//! Retried with exponential backoff; a webhook that stays down is logged,
//! never allowed to hold up the run.

use crate::config::Config;
use crate::engine::Engine;
use crate::runs::RunState;
use crate::store::Run;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, RwLock};
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

/// The webhook in force. `confirmations.webhook` is reloaded on SIGHUP,
/// so the engine holds this slot and reads it at each announcement.
#[derive(Debug, Clone, Default)]
pub struct WebhookSlot {
    /// The confirm page the announcements link to; `listen` and
    /// `public_url` need a restart, so it is fixed at start.
    page_url: String,
    current: Arc<RwLock<Option<Arc<Webhook>>>>,
}

impl WebhookSlot {
    /// The slot of `config`: its webhook, if any, linking to the confirm
    /// page at `http.public_url` when the page is served there (no
    /// `public_listen`), else at the `listen` address.
    pub fn from_config(config: &Config) -> WebhookSlot {
        let page_url = match (&config.http.public_url, config.http.public_listen) {
            (Some(public), None) => format!("{}/", public.trim_end_matches('/')),
            _ => format!("http://{}/", config.http.listen),
        };
        let slot = WebhookSlot {
            page_url,
            current: Arc::default(),
        };
        slot.reload(config);
        slot
    }

    /// Takes `confirmations.webhook` from a reloaded `config` (none turns
    /// announcements off).
    pub fn reload(&self, config: &Config) {
        let webhook = config
            .confirmations
            .webhook
            .clone()
            .map(|url| Arc::new(Webhook::new(url, self.page_url.clone())));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = webhook;
    }

    /// The webhook in force, if any.
    pub fn current(&self) -> Option<Arc<Webhook>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Where announcements go.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
    page_url: String,
    client: reqwest::Client,
    /// Delay before the second try; doubled after each failure.
    first_backoff: Duration,
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
            first_backoff: FIRST_BACKOFF,
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
                "Run {} ({}) waits for confirmation: {} message{}, scheduled for {}. {}",
                run.id,
                label.as_deref().unwrap_or(&run.delivery_id),
                to_send,
                if to_send == 1 { "" } else { "s" },
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
        let mut backoff = self.first_backoff;
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
    let Some(webhook) = engine.webhook.current() else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use std::sync::Mutex;
    use std::time::Instant;

    /// A hook on loopback that answers `503` to the first `failures`
    /// posts, then `200`; returns its URL and the instants of the posts.
    async fn hook(failures: usize) -> (String, Arc<Mutex<Vec<Instant>>>) {
        let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let log = log.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    log.push(Instant::now());
                    if log.len() <= failures {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn note() -> Announcement {
        Announcement {
            event: "run.pending".to_owned(),
            run_id: "promo@once".to_owned(),
            delivery_id: "promo".to_owned(),
            label: None,
            to_send: 2,
            scheduled_for: Utc::now(),
            confirm_deadline: Utc::now(),
            link: "http://127.0.0.1:8425/".to_owned(),
            text: "Run promo@once waits for confirmation.".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_failing_webhook_is_retried_with_a_doubling_backoff_then_given_up() {
        let (url, seen) = hook(usize::MAX).await;
        let mut webhook = Webhook::new(url, "http://127.0.0.1:8425/".to_owned());
        webhook.first_backoff = Duration::from_millis(40);
        let problem = webhook.post(&note()).await.unwrap_err();
        assert!(problem.contains("503"), "{problem}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), ATTEMPTS as usize);
        let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1] - w[0]).collect();
        for (n, gap) in gaps.iter().enumerate() {
            let backoff = Duration::from_millis(40) * 2u32.pow(n as u32);
            assert!(
                *gap >= backoff,
                "gap {n} is {gap:?}, backoff {backoff:?}: {gaps:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_webhook_that_recovers_gets_the_note_once() {
        let (url, seen) = hook(2).await;
        let webhook = Webhook::new(url, "http://127.0.0.1:8425/".to_owned());
        let started = Instant::now();
        webhook.post(&note()).await.unwrap();
        // Two failures: waits of 500 ms then 1 s before the third try.
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert!(started.elapsed() >= FIRST_BACKOFF * 3);
    }

    /// The note names the run, its figures and the page, and reads right
    /// for one message as for several.
    #[tokio::test]
    async fn the_announcement_names_the_run_its_messages_and_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let store: crate::store::SharedStore = Arc::new(
            crate::store::embedded::EmbeddedStore::open(dir.path().join("db"))
                .await
                .unwrap(),
        );
        let id = crate::store::conformance::run_in(&store, "promo", RunState::Pending).await;
        let mut run = store.run(&id).await.unwrap().unwrap();
        let webhook = Webhook::new(
            "http://127.0.0.1:9/h".to_owned(),
            "http://127.0.0.1:8425/".to_owned(),
        );
        let two = webhook.announcement(&run, Some("Promo".to_owned()));
        assert_eq!(
            (two.event.as_str(), two.run_id.as_str(), two.to_send),
            ("run.pending", id.as_str(), 2)
        );
        assert!(
            two.text
                .contains("(Promo) waits for confirmation: 2 messages,")
                && two.text.ends_with("http://127.0.0.1:8425/"),
            "{}",
            two.text
        );
        run.counters.excluded_by_reason.clear();
        run.counters.targeted = 1;
        let one = webhook.announcement(&run, None);
        assert!(
            one.text
                .contains("(promo) waits for confirmation: 1 message,"),
            "{}",
            one.text
        );
    }

    #[test]
    fn a_reload_replaces_the_webhook_and_keeps_the_page_link() {
        let mut config = Config::default();
        config.http.public_url = Some("https://t.shop.example/".to_owned());
        let slot = WebhookSlot::from_config(&config);
        assert!(slot.current().is_none());
        config.confirmations.webhook = Some("https://chat.example/hooks/abc".to_owned());
        config.http.public_url = None;
        slot.reload(&config);
        let webhook = slot.current().unwrap();
        assert_eq!(webhook.url, "https://chat.example/hooks/abc");
        assert_eq!(webhook.page_url, "https://t.shop.example/");
        config.confirmations.webhook = None;
        slot.reload(&config);
        assert!(slot.current().is_none());
    }
}
