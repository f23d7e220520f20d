//! `confirmations.webhook` is told when a run becomes pending.

use super::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_run_is_announced_to_the_webhook_even_after_a_failure() {
    let hook = MockServer::start().await;
    // The first POST fails: the announcement is retried.
    Mock::given(method("POST"))
        .and(path("/hooks/abc"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/abc"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "  kind: embedded\n  path: {}\n",
        dir.path().join("herald.db").display()
    );
    let extra = format!("confirmations:\n  webhook: {}/hooks/abc\n", hook.uri());
    confirmed_delivery(dir.path(), "promo", 2);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, &extra));
    let api = Api::new(&daemon);
    api.wait_run("promo@once", |r| r["state"] == "pending")
        .await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let note = loop {
        let received = hook.received_requests().await.unwrap_or_default();
        if received.len() >= 2 {
            break serde_json::from_slice::<Value>(&received[1].body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the webhook got {} posts:\n{}",
            received.len(),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(note["run_id"], "promo@once");
    assert_eq!(note["delivery_id"], "promo");
    assert_eq!(note["label"], "Winter promo");
    assert_eq!(note["to_send"], 2);
    assert!(note["scheduled_for"].is_string());
    assert_eq!(note["link"], format!("{}/", daemon.url()));
}
