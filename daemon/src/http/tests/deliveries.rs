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
    let (status, detail) = h
        .call(
            "GET",
            "/api/v1/deliveries/weekly-digest",
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["delivery"]["id"], "weekly-digest");
    assert_eq!(detail["id"], "weekly-digest");
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
