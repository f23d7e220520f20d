//! `DELETE /api/v1/profiles/{recipient_id}`: roles, status, and what the
//! profile and the run show afterwards.

use super::*;
use crate::store::RecipientOutcome;

/// Sends the run's chunk (`c1`, `c2` delivered) so the run ends `sent`.
async fn send(h: &Harness, id: &RunId) {
    let now = h.clock.now();
    let claimed = h
        .store
        .claim_chunk(id, "test", now + chrono::Duration::minutes(1), now)
        .await
        .unwrap()
        .unwrap();
    let outcomes: Vec<RecipientOutcome> = claimed
        .recipients
        .iter()
        .map(|r| RecipientOutcome {
            recipient_id: r.id.clone(),
            address: r.address.clone(),
            outcome: crate::runs::Outcome::Delivered,
            reason: None,
            provider_message_id: Some(format!("pm-{}", r.id)),
            detail: None,
            at: now,
        })
        .collect();
    h.store.record_outcomes(id, &outcomes).await.unwrap();
    h.store
        .complete_chunk(id, claimed.number, "test", now)
        .await
        .unwrap();
}

#[tokio::test]
async fn only_admins_erase_profiles_and_others_get_401_or_403() {
    let h = Harness::new().await;
    let path = "/api/v1/profiles/c1";
    for token in [None, Some("not-a-token")] {
        let (status, _) = h.call("DELETE", path, token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    for token in [VIEWER, CONFIRMER, FEEDBACK] {
        let (status, body) = h.call("DELETE", path, Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token}");
        assert_eq!(
            body["error"],
            "You do not have the admin role: only users who hold it can erase profiles."
        );
    }
    let (status, body) = h.call("DELETE", path, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recipient_id"], "c1");
    assert_eq!(body["history_entries_erased"], 0);
}

#[tokio::test]
async fn an_erased_profile_has_no_messages_and_its_runs_keep_their_kpis() {
    let h = Harness::new().await;
    let sent = h.prepared_run("weekly-digest", 0, false, None).await;
    send(&h, &sent).await;
    let pending = h.pending_run("monthly", 4).await;
    let run_path = format!("/api/v1/runs/{}", sent.as_str().replace('@', "%40"));
    let (_, before) = h.call("GET", &run_path, Some(VIEWER), None).await;
    let (_, messages) = h
        .call("GET", "/api/v1/profiles/c1/messages", Some(VIEWER), None)
        .await;
    assert_eq!(messages["messages"].as_array().unwrap().len(), 1);

    let (status, body) = h
        .call("DELETE", "/api/v1/profiles/c1", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["history_entries_erased"], 1);
    assert_eq!(body["runs_erased"], serde_json::json!([sent.as_str()]));
    assert_eq!(body["runs_pending"], serde_json::json!([pending.as_str()]));

    let (status, messages) = h
        .call("GET", "/api/v1/profiles/c1/messages", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages["messages"], serde_json::json!([]));
    let (_, after) = h.call("GET", &run_path, Some(VIEWER), None).await;
    assert_eq!(after["outcomes_purged"], true);
    assert_eq!(after["kpi"], before["kpi"]);
    assert_eq!(after["kpi"]["delivered"], 2);
    // The run's preview was rendered with c1's data: erased with them.
    assert_eq!(before["preview"]["recipient_id"], "c1");
    assert!(after["preview"].is_null(), "{after}");
    let (_, other) = h
        .call("GET", "/api/v1/profiles/c2/messages", Some(VIEWER), None)
        .await;
    assert_eq!(other["messages"].as_array().unwrap().len(), 1);
}
