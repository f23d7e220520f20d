//! Sending: results, panics, garbage, timeouts, health, concurrency, C.

use super::*;
use crate::plugin_host::{PluginLibrary, SendError};
use herald_plugin_api::SendStatus;
use std::time::Instant;

#[tokio::test]
async fn accepted_batch_returns_one_result_per_message_in_order() {
    let host = load_one(
        misbehave(serde_json::json!({"channel": "sms"})),
        Duration::from_secs(5),
    );
    assert_eq!(host.channels().keys().collect::<Vec<_>>(), ["sms"]);
    assert!(host.sender("email").is_none());
    let results = host
        .sender("sms")
        .unwrap()
        .send(&batch("sms", &["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(
        provider_ids(&results),
        ["p-run-1/r0", "p-run-1/r1", "p-run-1/r2"]
    );
}

#[tokio::test]
async fn panicking_plugin_gives_retry_results_and_the_host_keeps_working() {
    let host = load_one(misbehave(serde_json::json!({})), Duration::from_secs(5));
    let sender = host.sender("misbehave").unwrap();
    let results = sender
        .send(&batch("misbehave", &["a", "panic"]))
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    for status in &results {
        let SendStatus::Retry { reason, .. } = status else {
            panic!("{status:?}")
        };
        assert!(reason.contains("told to panic on run-1/r1"), "{reason}");
    }
    let after = sender.send(&batch("misbehave", &["a"])).await.unwrap();
    assert!(matches!(after[0], SendStatus::Accepted { .. }));
    assert!(host.is_healthy());
}

#[tokio::test]
async fn invalid_result_json_is_a_batch_error() {
    let host = load_one(
        spec(rust_plugin("raw"), serde_json::json!("garbage")),
        Duration::from_secs(5),
    );
    let error = host
        .sender("raw")
        .unwrap()
        .send(&batch("raw", &["a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, SendError::InvalidResults { .. }),
        "{error:?}"
    );
    assert!(error.plugin_may_have_sent());
}

#[tokio::test]
async fn error_code_is_a_batch_error_with_the_plugins_message() {
    let host = load_one(
        spec(rust_plugin("raw"), serde_json::json!("error")),
        Duration::from_secs(5),
    );
    let error = host
        .sender("raw")
        .unwrap()
        .send(&batch("raw", &["a"]))
        .await
        .unwrap_err();
    let SendError::Plugin { code, message, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((*code, message.as_str()), (1, "raw: the provider is down"));
}

#[tokio::test]
async fn wrong_number_of_results_is_a_batch_error() {
    let host = load_one(misbehave(serde_json::json!({})), Duration::from_secs(5));
    let error = host
        .sender("misbehave")
        .unwrap()
        .send(&batch("misbehave", &["a", "drop", "b"]))
        .await;
    assert!(
        matches!(
            error,
            Err(SendError::ResultCount {
                expected: 3,
                got: 2,
                ..
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn result_for_another_message_id_is_a_batch_error() {
    let host = load_one(misbehave(serde_json::json!({})), Duration::from_secs(5));
    let error = host
        .sender("misbehave")
        .unwrap()
        .send(&batch("misbehave", &["a", "wrong-id"]))
        .await;
    assert!(
        matches!(error, Err(SendError::ResultId { index: 1, .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn hung_call_is_abandoned_promptly_counted_and_the_next_call_works() {
    let timeout = Duration::from_millis(200);
    let host = load_one(misbehave(serde_json::json!({"concurrency": 2})), timeout);
    let sender = host.sender("misbehave").unwrap();
    let started = Instant::now();
    let error = sender
        .send(&batch("misbehave", &["sleep:1500"]))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(error, SendError::Abandoned { .. }), "{error:?}");
    assert!(
        waited < Duration::from_millis(1000),
        "returned after {waited:?}"
    );
    let health = &host.health()[0];
    assert_eq!(
        (
            health.abandoned_total,
            health.abandoned_outstanding,
            health.healthy
        ),
        (1, 1, true)
    );
    let next = sender.send(&batch("misbehave", &["a"])).await.unwrap();
    assert_eq!(provider_ids(&next), ["p-run-1/r0"]);
    // Once the abandoned call returns it no longer counts as outstanding.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(host.health()[0].abandoned_outstanding, 0);
    assert_eq!(host.health()[0].abandoned_total, 1);
}

#[tokio::test]
async fn plugin_is_unhealthy_with_three_abandoned_calls_outstanding() {
    let host = load_one(
        misbehave(serde_json::json!({"concurrency": 4})),
        Duration::from_millis(100),
    );
    let sender = host.sender("misbehave").unwrap();
    let hung = batch("misbehave", &["sleep:3000"]);
    let calls = futures_join3(sender.send(&hung), sender.send(&hung), sender.send(&hung)).await;
    assert!(
        calls
            .iter()
            .all(|c| matches!(c, Err(SendError::Abandoned { .. }))),
        "{calls:?}"
    );
    let health = &host.health()[0];
    assert_eq!(health.abandoned_outstanding, 3);
    assert!(!health.healthy && !host.is_healthy());
}

async fn futures_join3<T>(
    a: impl std::future::Future<Output = T>,
    b: impl std::future::Future<Output = T>,
    c: impl std::future::Future<Output = T>,
) -> Vec<T> {
    let (a, b, c) = tokio::join!(a, b, c);
    vec![a, b, c]
}

#[tokio::test]
async fn calls_beyond_the_declared_concurrency_wait_and_are_not_sent_past_the_timeout() {
    let host = load_one(
        misbehave(serde_json::json!({"concurrency": 1})),
        Duration::from_millis(300),
    );
    let sender = host.sender("misbehave").unwrap();
    let hung = batch("misbehave", &["sleep:1000"]);
    let (first, second) = tokio::join!(sender.send(&hung), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sender.send(&batch("misbehave", &["a"])).await
    });
    assert!(
        matches!(first, Err(SendError::Abandoned { .. })),
        "{first:?}"
    );
    let second = second.unwrap_err();
    assert!(matches!(second, SendError::Saturated { .. }), "{second:?}");
    assert!(!second.plugin_may_have_sent());
    assert_eq!(host.health()[0].abandoned_total, 1);
}

#[tokio::test]
async fn c_plugin_loads_and_echoes_every_message_id() {
    let library = PluginLibrary::open(&c_plugin()).unwrap();
    assert_eq!(
        (library.name(), library.version(), library.abi_version()),
        ("c_echo", "1.0.0", 1)
    );
    let host = load_one(
        spec(c_plugin(), serde_json::json!({})),
        Duration::from_secs(5),
    );
    let info = &host.channels()["c_echo"];
    assert_eq!(info.address_column, None);
    let sent = batch("c_echo", &["x", "y", "z"]);
    let results = host.sender("c_echo").unwrap().send(&sent).await.unwrap();
    assert_eq!(
        provider_ids(&results),
        ["c-run-1/r0", "c-run-1/r1", "c-run-1/r2"]
    );
}

#[tokio::test]
async fn instances_of_c_and_rust_plugins_serve_side_by_side() {
    let specs = [
        misbehave(serde_json::json!({"channel": "sms"})),
        spec(c_plugin(), serde_json::json!({})),
    ];
    let host = PluginHost::load(&specs, Duration::from_secs(5)).unwrap();
    assert_eq!(
        host.channels().keys().collect::<Vec<_>>(),
        ["c_echo", "sms"]
    );
    let names: Vec<_> = host.health().into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["misbehave", "c_echo"]);
}

#[tokio::test]
async fn outbox_plugin_writes_each_message_through_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"dir": dir.path(), "channels": ["sms"]});
    let host = load_one(spec(outbox_plugin(), config), Duration::from_secs(5));
    assert_eq!(
        host.channels()["sms"].address_column.as_deref(),
        Some("phone")
    );
    let results = host
        .sender("sms")
        .unwrap()
        .send(&batch("sms", &["+33612345678"]))
        .await
        .unwrap();
    assert_eq!(provider_ids(&results), ["run-1%2Fr0.json"]);
    assert!(dir.path().join("run-1%2Fr0.json").is_file());
}
