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
    let store = embedded_store(dir.path());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_added_by_a_reload_announces_the_next_pending_run() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/later"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(dir.path());
    confirmed_delivery(dir.path(), "before", 1);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, ""));
    let api = Api::new(&daemon);
    api.wait_run("before@once", |r| r["state"] == "pending")
        .await;

    // `confirmations.webhook` is reloadable (R): add it and send SIGHUP.
    let file = dir.path().join("herald.yaml");
    let mut yaml = std::fs::read_to_string(&file).unwrap();
    yaml.push_str(&format!(
        "confirmations:\n  webhook: {}/hooks/later\n",
        hook.uri()
    ));
    std::fs::write(&file, yaml).unwrap();
    daemon.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log().contains("Configuration reloaded.") {
        assert!(Instant::now() < deadline, "no reload:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    confirmed_delivery(dir.path(), "after", 1);
    api.wait_run("after@once", |r| r["state"] == "pending")
        .await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let received = hook.received_requests().await.unwrap_or_default();
        let notes: Vec<Value> = received
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        if let Some(note) = notes.iter().find(|n| n["run_id"] == "after@once") {
            assert_eq!(note["to_send"], 1);
            // The run that was pending before the reload is not announced again.
            assert!(
                notes.iter().all(|n| n["run_id"] != "before@once"),
                "{notes:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reloaded webhook got {notes:?}:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
