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

/// "Malformed JSON gets 400 with the parser's message" (http-api.md): the
/// message names the event, the field and what was expected, never only
/// that the body matched no shape.
#[tokio::test]
async fn a_malformed_event_is_refused_naming_its_index_its_field_and_what_was_expected() {
    let h = Harness::new().await;
    for (body, words) in [
        (
            r#"{"events": [{"event": "stop", "provider_message_id": "a"},
                           {"event": "bounced", "kind": "medium", "provider_message_id": "b"}]}"#,
            &["events[1].kind", "`medium`", "`hard`", "`soft`"][..],
        ),
        (
            r#"{"events": [{"evnt": "stop", "provider_message_id": "a"}]}"#,
            &["events[0]", "unknown field `evnt`", "`event`"],
        ),
        (
            r#"{"event": 5, "provider_message_id": "x"}"#,
            &["`event`", "expected a string"],
        ),
        (
            r#"{"provider_message_id": "x"}"#,
            &["the event", "missing field `event`"],
        ),
        (
            r#"{"events": {"event": "stop"}}"#,
            &["`events` is an object", "array"],
        ),
        (
            r#"[{"event": "stop"}]"#,
            &["the body is an array", "events"],
        ),
    ] {
        let (status, answer) = h
            .call("POST", "/api/v1/feedback", Some(FEEDBACK), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        for word in words {
            assert!(error.contains(word), "{body}: {error}");
        }
        assert!(!error.contains("untagged"), "{body}: {error}");
    }
}
