//! `/api/v1/deliveries`: the loaded deliveries, the errors of the files
//! that do not load (file, line, column, message), and one delivery with
//! its next run and its runs' KPIs.

use super::*;

const WEEKLY: &str = r#"label: Weekly digest
channel: email
audience:
  recipients:
    - { id: c1, email: "ana@example.com" }
content:
  from: "Shop <news@shop.example>"
  subject: "Your week"
  text: "Hello"
schedule:
  cron: "0 9 * * MON"
  timezone: Europe/Paris
  confirm: true
"#;

/// An unknown key, `colour`, on line 3.
const BROKEN: &str = "label: Broken\nchannel: email\ncolour: blue\naudience:\n  recipients:\n    - { id: c1 }\ncontent:\n  body: Hi\n";

/// `GET /api/v1/deliveries/{id}` as a viewer.
async fn detail_of(h: &Harness, id: &str) -> (StatusCode, Value) {
    h.call(
        "GET",
        &format!("/api/v1/deliveries/{id}"),
        Some(VIEWER),
        None,
    )
    .await
}

#[tokio::test]
async fn deliveries_and_the_errors_of_files_that_do_not_load_are_listed() {
    let h = Harness::new().await;
    h.load(&[("weekly-digest.yaml", WEEKLY), ("broken.yaml", BROKEN)]);
    let (status, list) = h
        .call("GET", "/api/v1/deliveries", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let deliveries = list["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{list}");
    let weekly = &deliveries[0];
    assert_eq!(weekly["id"], "weekly-digest");
    assert_eq!(weekly["label"], "Weekly digest");
    assert_eq!(weekly["channel"], "email");
    assert_eq!(weekly["confirm"], true);
    // 2026-12-07 is a Monday: 09:00 in Paris is 08:00 UTC, after t0 (06:00 UTC).
    assert_eq!(weekly["next_run_at"], "2026-12-07T08:00:00Z");
    let errors = list["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{list}");
    for error in errors {
        assert!(
            error["file"].as_str().unwrap().ends_with("broken.yaml"),
            "{error}"
        );
        assert!(error["line"].as_u64().unwrap() >= 1, "{error}");
        assert!(error["column"].as_u64().unwrap() >= 1, "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(
        errors
            .iter()
            .any(|e| e["line"] == 3 && e["message"].as_str().unwrap().contains("colour")),
        "{list}"
    );
    let (status, _) = h
        .call("GET", "/api/v1/deliveries", Some(FEEDBACK), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_delivery_shows_its_summary_next_run_and_kpis_and_its_runs_their_label() {
    let h = Harness::new().await;
    h.load(&[("weekly-digest.yaml", WEEKLY)]);
    let id = h.pending_run("weekly-digest", 2).await;
    let (status, detail) = detail_of(&h, "weekly-digest").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["id"], "weekly-digest");
    assert_eq!(detail["channel"], "email");
    assert_eq!(detail["next_run_at"], "2026-12-07T08:00:00Z");
    assert_eq!(detail["runs"], 1);
    assert_eq!(detail["kpi"]["to_send"], 2);
    assert_eq!(detail["periods"], serde_json::json!([]));
    let (_, run) = h
        .call(
            "GET",
            &format!("/api/v1/runs/{}", id.as_str().replace('@', "%40")),
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(run["label"], "Weekly digest");
}

#[tokio::test]
async fn a_delivery_shows_the_same_summary_fields_as_its_list_item_at_the_top_level() {
    let h = Harness::new().await;
    h.load(&[("weekly-digest.yaml", WEEKLY)]);
    h.pending_run("weekly-digest", 2).await;
    let (_, list) = h
        .call("GET", "/api/v1/deliveries", Some(VIEWER), None)
        .await;
    let item = list["deliveries"][0].as_object().unwrap().clone();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "aggregation",
            "channel",
            "confirm",
            "cron",
            "definition_hash",
            "file",
            "id",
            "label",
            "next_run_at",
            "schedule"
        ],
        "the list's items keep their shape"
    );
    let (status, detail) = detail_of(&h, "weekly-digest").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    for (key, value) in &item {
        assert_eq!(&detail[key], value, "`{key}` of {detail}");
    }
    assert!(
        detail.get("delivery").is_none(),
        "not nested twice: {detail}"
    );
    assert_eq!(detail["cron"], "0 9 * * MON");
    let typed: crate::http::views::DeliveryDetail = serde_json::from_value(detail).unwrap();
    assert_eq!(
        typed.definition.map(|d| d.channel).as_deref(),
        Some("email"),
        "the CLI reads the answer back"
    );

    // The file is gone: the summary's fields go, the run figures stay.
    std::fs::remove_file(h.dir.path().join("deliveries/weekly-digest.yaml")).unwrap();
    h.load(&[]);
    let (status, detail) = detail_of(&h, "weekly-digest").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["id"], "weekly-digest");
    assert_eq!(detail["next_run_at"], Value::Null);
    assert_eq!(detail["runs"], 1);
    assert_eq!(detail["kpi"]["to_send"], 2);
    assert_eq!(detail["periods"], serde_json::json!([]));
    for key in ["channel", "file", "label", "schedule", "definition_hash"] {
        assert!(detail.get(key).is_none(), "`{key}` of {detail}");
    }
    let typed: crate::http::views::DeliveryDetail = serde_json::from_value(detail).unwrap();
    assert!(typed.definition.is_none());
}
