//! `POST /api/v1/deliveries/{id}/proof`: renders the delivery for one
//! recipient and sends it to test addresses through the channel's plugin.
//! A proof is not a run: nothing is recorded, nothing is counted.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::views::{ProofAnswer, ProofRequest, ProofResult};
use crate::definitions::{AudienceRow, Delivery, Renderer, normalise_address};
use axum::Json;
use axum::extract::{Path, State};
use herald_plugin_api::{Batch, Message, SendStatus, WIRE_VERSION};
use std::sync::Arc;

/// At most this many addresses per proof: it is a test send, not a run.
const MAX_ADDRESSES: usize = 20;

/// `POST /api/v1/deliveries/{id}/proof`.
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ProofRequest>,
) -> ApiResult<Json<ProofAnswer>> {
    caller.require(Right::Start, "send a proof")?;
    if request.addresses.is_empty() || request.addresses.len() > MAX_ADDRESSES {
        return Err(ApiError::BadRequest(format!(
            "`addresses` must list 1 to {MAX_ADDRESSES} addresses"
        )));
    }
    let delivery = state.deliveries.borrow().get(&id).cloned().ok_or_else(|| {
        ApiError::NotFound(format!(
            "no delivery `{id}` is loaded: list them with GET /api/v1/deliveries"
        ))
    })?;
    let sender = state.engine.plugins.sender(delivery.channel()).ok_or_else(|| {
        ApiError::Unavailable(format!(
            "channel `{}` is not served by any loaded plugin; add its plugin to `plugins` in the config",
            delivery.channel()
        ))
    })?;
    let row = recipient(delivery.clone(), request.recipient_id.clone()).await?;
    let renderer = Renderer::new(&delivery)
        .map_err(|e| ApiError::BadRequest(format!("the delivery cannot be rendered: {e}")))?;
    let rendered = renderer
        .render(&row, "proof")
        .map_err(|e| ApiError::BadRequest(format!("recipient `{}`: {e}", row.id)))?;
    let mut content = rendered.content;
    mark_as_proof(&mut content);

    let stamp = state.engine.clock.now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut results = Vec::new();
    let mut messages = Vec::new();
    for (n, raw) in request.addresses.iter().enumerate() {
        let message_id = format!("proof/{}/{stamp}/{n}", delivery.id());
        match normalise_address(delivery.channel_info().normalise, raw) {
            Ok(address) => messages.push(Message {
                message_id,
                run_id: "proof".to_owned(),
                recipient_id: row.id.clone(),
                channel: delivery.channel().to_owned(),
                address,
                content: content.clone(),
                headers: rendered.headers.clone(),
                data: rendered.data.clone(),
            }),
            Err(problem) => results.push(ProofResult {
                address: raw.clone(),
                status: "invalid_address".to_owned(),
                message_id,
                detail: Some(problem.to_string()),
            }),
        }
    }
    if !messages.is_empty() {
        let batch = Batch {
            version: WIRE_VERSION,
            messages,
        };
        let answer = sender.send(&batch).await.map_err(|e| {
            ApiError::Unavailable(format!(
                "the {} plugin did not take the proof: {e}",
                delivery.channel()
            ))
        })?;
        for (message, status) in batch.messages.iter().zip(answer) {
            let (status, detail) = match status {
                SendStatus::Accepted {
                    provider_message_id,
                } => ("accepted", provider_message_id),
                SendStatus::Bounced { reason, .. } => ("bounced", Some(reason)),
                SendStatus::Failed { reason } => ("failed", Some(reason)),
                SendStatus::Retry { reason, .. } => ("retry", Some(reason)),
            };
            results.push(ProofResult {
                address: message.address.clone(),
                status: status.to_owned(),
                message_id: message.message_id.clone(),
                detail,
            });
        }
    }
    tracing::info!(delivery_id = ?delivery.id(), user = ?caller.name, addresses = request.addresses.len(), "Proof sent.");
    Ok(Json(ProofAnswer {
        recipient_id: row.id,
        results,
    }))
}

/// Prefixes the subject (or, for channels without one, the title or the
/// body) with `[PROOF]`, so nobody mistakes a proof for the real send.
fn mark_as_proof(content: &mut std::collections::BTreeMap<String, String>) {
    for field in ["subject", "title", "body"] {
        if let Some(value) = content.get_mut(field) {
            *value = format!("[PROOF] {value}");
            return;
        }
    }
}

/// The audience row to render: `recipient_id`, or the first row.
async fn recipient(delivery: Arc<Delivery>, wanted: Option<String>) -> ApiResult<AudienceRow> {
    let found = tokio::task::spawn_blocking(move || -> ApiResult<Option<AudienceRow>> {
        for row in delivery.audience().rows() {
            let row =
                row.map_err(|e| ApiError::BadRequest(format!("the audience cannot be read: {e}")))?;
            if wanted.as_deref().is_none_or(|w| w == row.id) {
                return Ok(Some(row));
            }
        }
        Ok(None)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("audience reader: {e}")))??;
    found.ok_or_else(|| {
        ApiError::NotFound(
            "no such recipient in the delivery's audience (or the audience is empty)".to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_are_marked_in_the_subject_or_the_body() {
        let mut email = std::collections::BTreeMap::from([
            ("subject".to_owned(), "Your week".to_owned()),
            ("body".to_owned(), "x".to_owned()),
        ]);
        mark_as_proof(&mut email);
        assert_eq!(email["subject"], "[PROOF] Your week");
        assert_eq!(email["body"], "x");
        let mut sms = std::collections::BTreeMap::from([("body".to_owned(), "Hi".to_owned())]);
        mark_as_proof(&mut sms);
        assert_eq!(sms["body"], "[PROOF] Hi");
    }
}
