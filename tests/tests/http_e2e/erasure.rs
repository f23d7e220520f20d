//! Erasing a profile on a real daemon over Redis: after a run is sent, an
//! admin erases one recipient; their messages are gone, the run's KPIs
//! are unchanged and the run says `outcomes_purged`.

use super::*;
use herald_test_support::RedisServer;

/// Token of `root`, an `admin`.
const ADMIN: &str = "root-secret-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_profile_has_no_messages_and_the_run_keeps_its_kpis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "  kind: redis\n  url: {}\n  key_prefix: erasure\n",
        redis.url()
    );
    let admin = format!(
        "  - name: root\n    token_sha256: \"{}\"\n    roles: [admin]\n",
        digest(ADMIN)
    );
    confirmed_delivery(dir.path(), "promo", 3);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, &admin));
    let api = Api::new(&daemon);
    api.wait_run("promo@once", |r| r["state"] == "pending")
        .await;
    let (status, _) = api
        .call("POST", &action("promo@once", "confirm"), CONFIRMER)
        .await;
    assert_eq!(status, 200);
    let sent = api.wait_run("promo@once", |r| r["state"] == "sent").await;
    assert_eq!(sent["kpi"]["delivered"], 3, "{sent}");
    let (_, messages) = api
        .call("GET", "/api/v1/profiles/c2/messages", VIEWER)
        .await;
    assert_eq!(
        messages["messages"].as_array().unwrap().len(),
        1,
        "{messages}"
    );

    let (status, refused) = api.call("DELETE", "/api/v1/profiles/c2", VIEWER).await;
    assert_eq!(status, 403, "{refused}");
    let (status, erased) = api.call("DELETE", "/api/v1/profiles/c2", ADMIN).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["runs_erased"], serde_json::json!(["promo@once"]));
    assert_eq!(erased["runs_pending"], serde_json::json!([]));

    let (status, messages) = api
        .call("GET", "/api/v1/profiles/c2/messages", VIEWER)
        .await;
    assert_eq!(status, 200);
    assert_eq!(messages["messages"], serde_json::json!([]));
    let (_, others) = api
        .call("GET", "/api/v1/profiles/c1/messages", VIEWER)
        .await;
    assert_eq!(others["messages"].as_array().unwrap().len(), 1, "{others}");
    let run = api.wait_run("promo@once", |_| true).await;
    assert_eq!(run["outcomes_purged"], true, "{run}");
    assert_eq!(run["kpi"], sent["kpi"]);
    // A recount ("compute statistics") keeps the counters of a purged run.
    let (status, _) = api
        .call("POST", "/api/v1/deliveries/promo/statistics", CONFIRMER)
        .await;
    assert_eq!(status, 200);
    let run = api.wait_run("promo@once", |_| true).await;
    assert_eq!(run["kpi"], sent["kpi"]);
}
