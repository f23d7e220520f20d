//! `POST /api/v1/feedback` reads `quarantine.soft_threshold` as the last
//! reload left it, not as the daemon started with it.

use super::*;
use crate::config::Config;
use crate::runs::Outcome;
use crate::store::RecipientOutcome;

/// The quarantine list's addresses, as a viewer sees them.
async fn quarantined(h: &Harness) -> Vec<Value> {
    let (status, page) = h
        .call(
            "GET",
            "/api/v1/suppressions?list=quarantine",
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn soft_bounces_quarantine_at_the_threshold_of_the_reloaded_config() {
    let h = Harness::new().await;
    let run = h.prepared_run("promo", 0, false, None).await;
    let delivered = RecipientOutcome {
        recipient_id: "c1".to_owned(),
        address: "c1@example.com".to_owned(),
        outcome: Outcome::Delivered,
        reason: None,
        provider_message_id: Some("pm-1".to_owned()),
        detail: None,
        at: h.clock.now(),
    };
    h.store.record_outcomes(&run, &[delivered]).await.unwrap();
    let bounce = format!(
        r#"{{"event":"bounced","kind":"soft","run_id":"{}","recipient_id":"c1"}}"#,
        run.as_str()
    );
    let soft_bounce = || h.call("POST", "/api/v1/feedback", Some(FEEDBACK), Some(&bounce));

    // The harness starts at 5: two bounces are far from it.
    for _ in 0..2 {
        let (status, answer) = soft_bounce().await;
        assert_eq!((status, &answer["applied"]), (StatusCode::OK, &1.into()));
    }
    assert_eq!(quarantined(&h).await, Vec::<Value>::new());

    let mut reloaded = Config::default();
    reloaded.quarantine.soft_threshold = 3;
    h.state.engine.reload(&reloaded);
    assert_eq!(h.state.engine.soft_threshold.get(), 3);
    soft_bounce().await;
    let entries = quarantined(&h).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["address"], "c1@example.com");
    assert_eq!(entries[0]["soft_bounces"], 3);
}

/// Ids we do not know, whether well formed or not, are counted and
/// ignored (http-api.md); an event we cannot read refuses the request.
#[tokio::test]
async fn unknown_ids_are_counted_and_ignored_and_a_bad_event_is_refused() {
    let h = Harness::new().await;
    let events = r#"{"events": [
        {"event": "bounced", "kind": "hard", "provider_message_id": "nobody-knows"},
        {"event": "stop", "run_id": "promo@20261207T080000Z", "recipient_id": "c1"},
        {"event": "failed", "run_id": "not a run id", "recipient_id": "c1"}
    ]}"#;
    let (status, answer) = h
        .call("POST", "/api/v1/feedback", Some(FEEDBACK), Some(events))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, serde_json::json!({"applied": 0, "unknown": 3}));

    let bad = r#"{"event": "opened", "provider_message_id": "x"}"#;
    let (status, answer) = h
        .call("POST", "/api/v1/feedback", Some(FEEDBACK), Some(bad))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("unknown event"),
        "{answer}"
    );
}
