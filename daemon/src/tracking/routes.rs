//! The public routes: `/t/o/{token}` (open pixel), `/t/c/{token}` (click
//! redirect) and `/u/{token}` (unsubscribe page and RFC 8058 one-click).
//! A token that does not verify, or that is not of the route's kind, gets
//! `404` before anything is recorded or redirected. Opens and clicks only
//! go to the in-memory buffer; an unsubscribe writes the denylist at once,
//! because the recipient was promised it, but waits for the store at most
//! [`STORE_WAIT`]: past it the buffer keeps the unsubscribe and the next
//! flush writes it (http-api.md: tracking requests do not block on the store).

use super::Tracking;
use super::token::{Claim, LinkKind};
use crate::clock::Clock;
use crate::runs::RunId;
use crate::store::{SharedStore, TrackingKind};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How long an unsubscribe waits for its denylist write before the buffer
/// takes it over: a write that does not wait on anything takes less.
pub const STORE_WAIT: Duration = Duration::from_millis(50);

/// A transparent 1x1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// What the public routes share.
#[derive(Clone)]
pub struct PublicState {
    /// Tokens and the buffer.
    pub tracking: Arc<Tracking>,
    /// For the unsubscribe's denylist write.
    pub store: SharedStore,
    /// Where time comes from.
    pub clock: Clock,
}

/// The tracking and unsubscribe routes, and nothing else: merged into the
/// `listen` router, or served alone on `http.public_listen`.
pub fn public_routes(state: PublicState) -> Router {
    Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
        // The API's body limit, also when these routes are served alone;
        // bounded in time, since the limit reads bodies the handlers ignore.
        .layer(axum::middleware::from_fn(crate::http::extract::limit_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            crate::http::Timeouts::default().body,
        ))
        .with_state(state)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "This link is not valid.\n",
    )
        .into_response()
}

/// Why a link's token is not honoured.
enum Refused {
    /// Forged, of another kind, or naming no well-formed run: `404`.
    Invalid,
    /// The daemon started while the store was down and has not had the
    /// links' key from it yet: `503`, try again.
    KeyMissing,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Invalid => not_found(),
            Refused::KeyMissing => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "60")],
                "This link cannot be checked right now; please try again in a minute.\n",
            )
                .into_response(),
        }
    }
}

/// The claim of a token of `kind` with a well-formed run id.
fn claim(state: &PublicState, token: &str, kind: LinkKind) -> Result<(Claim, RunId), Refused> {
    let signer = state.tracking.signer().ok_or(Refused::KeyMissing)?;
    let claim = signer
        .verify(token)
        .filter(|claim| claim.kind == kind)
        .ok_or(Refused::Invalid)?;
    let run = claim.run.parse().map_err(|_| Refused::Invalid)?;
    Ok((claim, run))
}

async fn open(State(state): State<PublicState>, Path(token): Path<String>) -> Response {
    let (claim, run) = match claim(&state, &token, LinkKind::Open) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    state
        .tracking
        .buffer()
        .record(run, &claim.recipient, TrackingKind::Open);
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL,
    )
        .into_response()
}

async fn click(State(state): State<PublicState>, Path(token): Path<String>) -> Response {
    let (claim, run) = match claim(&state, &token, LinkKind::Click) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let lower = claim.url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return not_found();
    }
    state
        .tracking
        .buffer()
        .record(run, &claim.recipient, TrackingKind::Click);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, claim.url.as_str()),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
        .into_response()
}

/// `GET /u/{token}`: a page with a button; a GET never unsubscribes,
/// because mail scanners follow links.
async fn unsubscribe_page(State(state): State<PublicState>, Path(token): Path<String>) -> Response {
    if let Err(refused) = claim(&state, &token, LinkKind::Unsubscribe) {
        return refused.into_response();
    }
    page(
        "Unsubscribe",
        r#"<p>Stop receiving these messages?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>"#,
    )
}

/// `POST /u/{token}` (the page's button, or a mail client's RFC 8058
/// one-click): the address joins the denylist now. The answer waits for
/// the store at most [`STORE_WAIT`]; a slower write goes on after it, and
/// one that fails is retried by the next flush.
async fn unsubscribe(State(state): State<PublicState>, Path(token): Path<String>) -> Response {
    let (claim, run) = match claim(&state, &token, LinkKind::Unsubscribe) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let now = state.clock.now();
    let recipient = claim.recipient;
    let mut write = tokio::spawn({
        let (store, run, recipient) = (state.store.clone(), run.clone(), recipient.clone());
        async move { super::buffer::denylist_recipient(&store, &run, &recipient, now).await }
    });
    let written = match tokio::time::timeout(STORE_WAIT, &mut write).await {
        Ok(written) => written,
        Err(_) => {
            info!(delivery_id = run.delivery_id(), run_id = %run, recipient_id = ?recipient, "Recipient unsubscribed; the store is slow, the denylist entry is written when it answers.");
            let tracking = state.tracking.clone();
            tokio::spawn(async move { settle(&tracking, run, &recipient, now, write.await) });
            return unsubscribed();
        }
    };
    match &written {
        Ok(Ok(false)) => return not_found(),
        Ok(Ok(true)) => {
            info!(delivery_id = run.delivery_id(), run_id = %run, recipient_id = ?recipient, "Recipient unsubscribed.")
        }
        Ok(Err(error)) => {
            warn!(delivery_id = run.delivery_id(), run_id = %run, recipient_id = ?recipient, %error, "Recipient unsubscribed; the denylist write failed and the next flush retries it.")
        }
        Err(error) => {
            warn!(delivery_id = run.delivery_id(), run_id = %run, recipient_id = ?recipient, %error, "Recipient unsubscribed; the denylist write stopped and the next flush retries it.")
        }
    }
    settle(&state.tracking, run, &recipient, now, written);
    unsubscribed()
}

/// Counts an unsubscribe whose denylist write is done, or hands one whose
/// write failed to the buffer, whose next flush writes it.
fn settle(
    tracking: &Tracking,
    run: RunId,
    recipient: &str,
    at: chrono::DateTime<chrono::Utc>,
    written: Result<crate::store::StoreResult<bool>, tokio::task::JoinError>,
) {
    match written {
        Ok(Ok(true)) => tracking
            .buffer()
            .record(run, recipient, TrackingKind::Unsubscribe),
        // No outcome, so no address: nothing to list (answered 404 when
        // the store said so in time).
        Ok(Ok(false)) => {}
        // The store keeps the first denylist entry, so a retry of a write
        // that did land is harmless.
        Ok(Err(_)) | Err(_) => tracking.buffer().defer_unsubscribe(run, recipient, at),
    }
}

fn unsubscribed() -> Response {
    page(
        "Unsubscribed",
        "<p>You are unsubscribed: you will not receive these messages any more.</p>",
    )
}

fn page(title: &str, body: &str) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:30em;margin:3em auto\"><h1>{title}</h1>{body}</body></html>"
        )),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
