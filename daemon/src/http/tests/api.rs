//! Roles, actions and the state × action table through the API.

use super::*;

#[tokio::test]
async fn a_viewer_cannot_confirm_a_pending_run() {
    let h = Harness::new().await;
    let id = h.pending_run("weekly-digest", 2).await;
    let (status, body) = h
        .call("POST", &action_path(&id, "confirm"), Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "You do not have the start_deliveries role: only users who hold it can confirm a send."
    );
    let run = h.store.run(&id).await.unwrap().unwrap();
    assert_eq!(run.state, crate::runs::RunState::Pending);
}

#[tokio::test]
async fn a_missing_or_unknown_token_gets_401() {
    let h = Harness::new().await;
    let id = h.pending_run("weekly-digest", 2).await;
    for token in [None, Some("not-a-token")] {
        let (status, body) = h.call("GET", "/api/v1/runs", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
        let (status, _) = h
            .call("POST", &action_path(&id, "confirm"), token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn confirming_twice_gives_409_with_the_state_the_second_time() {
    let h = Harness::new().await;
    let id = h.pending_run("weekly-digest", 2).await;
    let (status, run) = h
        .call("POST", &action_path(&id, "confirm"), Some(CONFIRMER), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["state"], "scheduled");
    assert_eq!(run["confirmed_by"], "alice");
    assert_eq!(run["confirmed_at"], "2026-12-07T06:00:00Z");
    let (status, body) = h
        .call("POST", &action_path(&id, "confirm"), Some(CONFIRMER), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["state"], "scheduled");
    assert!(
        body["error"].as_str().unwrap().contains("confirm"),
        "{body}"
    );
}

#[tokio::test]
async fn confirming_past_the_deadline_before_the_expiry_pass_gives_409_expired() {
    let h = Harness::new().await;
    // Scheduled at t0 + 3 h, deadline 6 h later; the scheduler never runs here.
    let id = h.pending_run("promo", 3).await;
    h.clock.advance(chrono::Duration::hours(9));
    let (status, body) = h
        .call("POST", &action_path(&id, "confirm"), Some(CONFIRMER), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::CONFLICT, Some("expired")),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let run = h.store.run(&id).await.unwrap().unwrap();
    assert_eq!(run.state, crate::runs::RunState::Expired);
    assert_eq!(run.confirmed_by, None, "nobody confirmed it");
}

#[tokio::test]
async fn cancelling_or_pausing_past_the_deadline_before_the_expiry_pass_gives_409_expired() {
    let h = Harness::new().await;
    // Scheduled at t0 + 3 h, deadline 6 h later; the scheduler never runs here.
    let cancelled = h.pending_run("promo", 3).await;
    let paused = h.pending_run("digest", 3).await;
    h.clock.advance(chrono::Duration::hours(9));
    for (id, action) in [(&cancelled, "cancel"), (&paused, "pause")] {
        let (status, body) = h
            .call("POST", &action_path(id, action), Some(CONFIRMER), None)
            .await;
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::CONFLICT, Some("expired")),
            "{action}: {body}"
        );
        let run = h.store.run(id).await.unwrap().unwrap();
        assert_eq!(run.state, crate::runs::RunState::Expired, "{action}");
        assert_eq!(run.cancel_reason, None, "{action}: nobody cancelled it");
    }
}

#[tokio::test]
async fn confirming_a_cancelled_or_expired_run_gives_409_with_its_state() {
    let h = Harness::new().await;
    let cancelled = h.pending_run("promo", 2).await;
    let (status, run) = h
        .call(
            "POST",
            &action_path(&cancelled, "cancel"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["cancelled_by"], "root");
    assert_eq!(run["cancel_reason"], "cancelled");
    let (status, body) = h
        .call(
            "POST",
            &action_path(&cancelled, "confirm"),
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::CONFLICT, Some("cancelled"))
    );

    let expired = h.pending_run("promo", 3).await;
    h.clock.advance(chrono::Duration::hours(12));
    let now = h.clock.now();
    assert!(matches!(
        h.store.expire(&expired, now).await.unwrap(),
        Transition::Done(_)
    ));
    let (status, body) = h
        .call(
            "POST",
            &action_path(&expired, "confirm"),
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::CONFLICT, Some("expired"))
    );
    let (status, body) = h
        .call(
            "POST",
            &action_path(&expired, "cancel"),
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::CONFLICT, Some("expired"))
    );
}

#[tokio::test]
async fn pause_and_resume_are_refused_outside_sending_and_paused() {
    let h = Harness::new().await;
    let id = h.pending_run("promo", 2).await;
    for action in ["pause", "resume"] {
        let (status, body) = h
            .call("POST", &action_path(&id, action), Some(CONFIRMER), None)
            .await;
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::CONFLICT, Some("pending"))
        );
    }
}

#[tokio::test]
async fn an_unknown_run_gives_404() {
    let h = Harness::new().await;
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/runs/nope%4020261207T080000Z/confirm",
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = h
        .call("GET", "/api/v1/runs/not-a-run-id", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_has_the_binding_json_shape_with_its_kpi() {
    let h = Harness::new().await;
    let id = h.pending_run("weekly-digest", 2).await;
    let (status, run) = h
        .call(
            "GET",
            &format!("/api/v1/runs/{}", id.as_str().replace('@', "%40")),
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["id"], "weekly-digest@20261207T080000Z");
    assert_eq!(run["state"], "pending");
    assert_eq!(run["scheduled_for"], "2026-12-07T08:00:00Z");
    assert_eq!(run["aggregation_period"], Value::Null);
    assert_eq!(run["outcomes_purged"], false);
    assert_eq!(run["preview"]["content"]["subject"], "Your week, Ana");
    let kpi = &run["kpi"];
    assert_eq!(
        (
            kpi["targeted"].as_u64(),
            kpi["excluded"].as_u64(),
            kpi["to_send"].as_u64()
        ),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(kpi["remaining"], 2);
    assert_eq!(kpi["delivered_rate"], Value::Null);
    assert_eq!(kpi["excluded_by_reason"]["invalid_address"], 1);
    // No plugin serves `email` here, so the channel has no tracking.
    assert_eq!(kpi["opened"], Value::Null);
    for field in [
        "confirm_deadline",
        "definition_hash",
        "created_at",
        "confirmed_by",
        "cancelled_at",
        "cancel_reason",
    ] {
        assert!(run.get(field).is_some(), "missing {field}");
    }
}

#[tokio::test]
async fn runs_are_listed_newest_first_in_pages_with_a_cursor() {
    let h = Harness::new().await;
    for hour in 1..=5 {
        h.pending_run("daily", hour).await;
    }
    let (status, first) = h
        .call("GET", "/api/v1/runs?limit=2", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids = |page: &Value| -> Vec<String> {
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&first),
        ["daily@20261207T110000Z", "daily@20261207T100000Z"]
    );
    let mut seen = ids(&first);
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (_, page) = h
            .call(
                "GET",
                &format!("/api/v1/runs?limit=2&cursor={c}"),
                Some(VIEWER),
                None,
            )
            .await;
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.last().unwrap(), "daily@20261207T070000Z");

    let (_, filtered) = h
        .call("GET", "/api/v1/runs?state=scheduled", Some(VIEWER), None)
        .await;
    assert_eq!(filtered["runs"].as_array().unwrap().len(), 0);
    assert_eq!(filtered["next_cursor"], Value::Null);
    let (status, body) = h
        .call("GET", "/api/v1/runs?state=nope", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("pending"),
        "{body}"
    );
}

#[tokio::test]
async fn feedback_users_cannot_read_and_viewers_cannot_manage_suppressions() {
    let h = Harness::new().await;
    let (status, _) = h.call("GET", "/api/v1/runs", Some(FEEDBACK), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = h
        .call(
            "PUT",
            "/api/v1/suppressions/denylist/ana%40example.com",
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("admin"), "{body}");
}

#[tokio::test]
async fn admins_add_list_and_lift_suppressions() {
    let h = Harness::new().await;
    let (status, body) = h
        .call(
            "PUT",
            "/api/v1/suppressions/denylist/Ana%40Example.com",
            Some(ADMIN),
            Some(r#"{"reason":"complained"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["address"], "ana@example.com");
    let (_, page) = h
        .call(
            "GET",
            "/api/v1/suppressions?list=denylist",
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(page["entries"][0]["address"], "ana@example.com");
    assert_eq!(page["entries"][0]["reason"], "complained");
    let (status, _) = h
        .call(
            "DELETE",
            "/api/v1/suppressions/denylist/ana%40example.com",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(
            "DELETE",
            "/api/v1/suppressions/denylist/ana%40example.com",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .call("GET", "/api/v1/suppressions?list=other", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn statistics_recount_the_runs_of_a_delivery_and_sum_their_kpis() {
    let h = Harness::new().await;
    h.pending_run("daily", 1).await;
    h.pending_run("daily", 2).await;
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/deliveries/daily/statistics",
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/deliveries/daily/statistics",
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["runs"], 2);
    assert_eq!(body["kpi"]["targeted"], 8);
    assert_eq!(body["kpi"]["to_send"], 4);
    let (status, _) = h
        .call("GET", "/api/v1/deliveries/unknown", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// kpis.md: compute statistics recounts from the tracking records, so
/// the events still buffered in memory are written first and counted.
#[tokio::test]
async fn statistics_count_the_opens_still_waiting_for_the_flush() {
    let h = Harness::new().await;
    let id = h.prepared_run("promo", 0, false, None).await;
    let at = h.clock.now();
    let delivered = |r: &str| crate::store::RecipientOutcome {
        recipient_id: r.to_owned(),
        address: format!("{r}@example.com"),
        outcome: crate::runs::Outcome::Delivered,
        reason: None,
        provider_message_id: None,
        detail: None,
        at,
    };
    h.store
        .record_outcomes(&id, &[delivered("c1"), delivered("c2")])
        .await
        .unwrap();
    let tracking = h.state.engine.tracking.clone().unwrap();
    tracking
        .buffer()
        .record(id.clone(), "c1", crate::store::TrackingKind::Click);
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/deliveries/promo/statistics",
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(tracking.buffer().is_empty());
    let counters = h.store.run(&id).await.unwrap().unwrap().counters;
    assert_eq!((counters.opened, counters.clicked), (1, 1));
    assert_eq!(body["kpi"]["delivered"], 2);
}

#[tokio::test]
async fn a_sending_run_is_paused_resumed_and_cancelled_with_who_and_when() {
    let h = Harness::new().await;
    let id = h.prepared_run("promo", 0, false, None).await;
    let (status, run) = h
        .call("POST", &action_path(&id, "pause"), Some(CONFIRMER), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        (run["state"].as_str(), run["paused_by"].as_str()),
        (Some("paused"), Some("alice"))
    );
    let (status, body) = h
        .call("POST", &action_path(&id, "pause"), Some(CONFIRMER), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::CONFLICT, Some("paused"))
    );
    let (status, run) = h
        .call("POST", &action_path(&id, "resume"), Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        (run["state"].as_str(), run["resumed_by"].as_str()),
        (Some("sending"), Some("root"))
    );
    let (status, run) = h
        .call("POST", &action_path(&id, "cancel"), Some(CONFIRMER), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["state"], "cancelled");
    assert_eq!(run["cancelled_by"], "alice");
    assert_eq!(run["cancelled_at"], "2026-12-07T06:00:00Z");
}

#[tokio::test]
async fn a_delivery_sums_its_runs_and_splits_them_by_aggregation_period() {
    let h = Harness::new().await;
    h.prepared_run("weekly", 1, false, Some("2026-W49")).await;
    h.prepared_run("weekly", 2, false, Some("2026-W49")).await;
    h.prepared_run("weekly", 200, false, Some("2026-W50")).await;
    let (status, body) = h
        .call("GET", "/api/v1/deliveries/weekly", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["runs"], 3);
    assert_eq!(body["kpi"]["targeted"], 12);
    assert!(body.get("channel").is_none(), "no file, no summary: {body}");
    assert_eq!(body["id"], "weekly", "the id stays when only runs remain");
    let periods = body["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0]["period"], "2026-W50");
    assert_eq!(periods[1]["period"], "2026-W49");
    assert_eq!(periods[1]["kpi"]["to_send"], 4);
}

/// The example run of http-api.md ("JSON shapes"): its field names are binding.
const SPEC_RUN: &str = r#"{
  "id": "weekly-digest@20261207T080000Z",
  "delivery_id": "weekly-digest",
  "state": "pending",
  "scheduled_for": "2026-12-07T08:00:00Z",
  "confirm_deadline": "2026-12-07T14:00:00Z",
  "aggregation_period": null,
  "definition_hash": "sha256:9c1f",
  "created_at": "2026-12-07T06:00:00.012Z",
  "confirmed_by": null, "confirmed_at": null,
  "cancelled_by": null, "cancelled_at": null, "cancel_reason": null,
  "outcomes_purged": false,
  "preview": {"recipient_id": "c1", "content": {"subject": "Your week, Ana"}},
  "kpi": {
    "targeted": 4, "excluded": 2, "to_send": 2, "sent": 0, "remaining": 2,
    "delivered": 0, "bounces_errors": 0, "cancelled": 0, "opened": 0,
    "clicked": 0, "unsubscribed": 0, "delivered_rate": null,
    "bounce_error_rate": null, "open_rate": null, "click_rate": null,
    "excluded_by_reason": {"no_address": 1, "invalid_address": 1}
  }
}"#;

/// Every key of `spec` is in `got`, recursively through objects; `path` names where.
fn has_every_key(spec: &Value, got: &Value, path: &str) {
    let Some(fields) = spec.as_object() else {
        return;
    };
    for (key, value) in fields {
        let inner = got
            .get(key)
            .unwrap_or_else(|| panic!("`{path}{key}` is missing from {got}"));
        has_every_key(value, inner, &format!("{path}{key}."));
    }
}

#[tokio::test]
async fn a_run_carries_every_field_of_the_specs_example_with_the_same_values() {
    let h = Harness::new().await;
    let id = h.pending_run("weekly-digest", 2).await;
    let (status, run) = h
        .call(
            "GET",
            "/api/v1/runs/weekly-digest%4020261207T080000Z",
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let spec: Value = serde_json::from_str(SPEC_RUN).unwrap();
    has_every_key(&spec, &run, "");
    assert_eq!(run["id"], id.as_str());
    for field in [
        "id",
        "delivery_id",
        "state",
        "scheduled_for",
        "aggregation_period",
        "confirmed_by",
        "confirmed_at",
        "cancelled_by",
        "cancelled_at",
        "cancel_reason",
        "outcomes_purged",
        "preview",
    ] {
        assert_eq!(run[field], spec[field], "{field}");
    }
    // The same figures, except open and click, which are `null` here: no
    // plugin serves `email` in these tests, so the channel has no tracking.
    let mut kpi = spec["kpi"].clone();
    kpi["opened"] = Value::Null;
    kpi["clicked"] = Value::Null;
    assert_eq!(run["kpi"], kpi);
}

#[tokio::test]
async fn a_feedback_user_cannot_confirm_and_gets_the_binding_403_message() {
    let h = Harness::new().await;
    let id = h.pending_run("weekly-digest", 2).await;
    let (status, body) = h
        .call("POST", &action_path(&id, "confirm"), Some(FEEDBACK), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "You do not have the start_deliveries role: only users who hold it can confirm a send."
    );
    for action in ["cancel", "pause", "resume"] {
        let (status, _) = h
            .call("POST", &action_path(&id, action), Some(VIEWER), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
    }
    let run = h.store.run(&id).await.unwrap().unwrap();
    assert_eq!(run.state, crate::runs::RunState::Pending);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_other_schemes_get_401() {
    let h = Harness::new().await;
    for (header, status) in [
        (format!("bearer {VIEWER}"), StatusCode::OK),
        (format!("Basic {VIEWER}"), StatusCode::UNAUTHORIZED),
        (VIEWER.to_owned(), StatusCode::UNAUTHORIZED),
    ] {
        let request = Request::builder()
            .uri("/api/v1/runs")
            .header("authorization", &header)
            .body(Body::empty())
            .unwrap();
        let response = router(h.state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{header}");
    }
}

#[tokio::test]
async fn suppressions_need_a_list_and_pages_are_capped_at_a_thousand() {
    let h = Harness::new().await;
    let (status, body) = h
        .call("GET", "/api/v1/suppressions", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`list` is required")
    );
    assert_eq!(crate::http::extract::page_limit(None), 100);
    assert_eq!(crate::http::extract::page_limit(Some(5000)), 1000);
    assert_eq!(crate::http::extract::page_limit(Some(0)), 1);
    let (status, _) = h
        .call("GET", "/api/v1/runs?limit=5000", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
