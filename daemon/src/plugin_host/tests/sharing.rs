//! Batches that wait for a thread share one plugin call
//! (`ChannelSender::send_sharing`), and each caller still gets its own
//! results.

use super::*;
use crate::plugin_host::{ChannelSender, SendError};
use herald_plugin_api::SendStatus;
use std::future::Future;
use std::pin::Pin;

/// One message on its own run, `address` telling the plugin what to do.
fn run_batch(run: usize, address: &str) -> Batch {
    let mut one = batch("misbehave", &[address]);
    let message = &mut one.messages[0];
    message.run_id = format!("run-{run}");
    message.message_id = format!("run-{run}/r0");
    one
}

type Sent = Pin<Box<dyn Future<Output = Result<Vec<SendStatus>, SendError>> + Send>>;

/// Holds the instance's only thread with a slow call, queues `calls` in
/// order while it runs, and returns every queued call's result.
async fn queued_behind_a_slow_call(
    sender: &ChannelSender,
    calls: Vec<Sent>,
) -> Vec<Result<Vec<SendStatus>, SendError>> {
    let slow = {
        let sender = sender.clone();
        tokio::spawn(async move { sender.send(&run_batch(0, "sleep:300")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut queued = Vec::new();
    for call in calls {
        queued.push(tokio::spawn(call));
        // Queued in this order.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(slow.await.unwrap().is_ok());
    let mut results = Vec::new();
    for call in queued {
        results.push(call.await.unwrap());
    }
    results
}

fn sharing(sender: &ChannelSender, run: usize, address: &str, limit: usize) -> Sent {
    let sender = sender.clone();
    let batch = run_batch(run, address);
    Box::pin(async move { sender.send_sharing(&batch, limit).await })
}

fn alone(sender: &ChannelSender, run: usize, address: &str) -> Sent {
    let sender = sender.clone();
    let batch = run_batch(run, address);
    Box::pin(async move { sender.send(&batch).await })
}

/// What each call's one message came back as: its provider id.
fn provider_ids(results: &[Result<Vec<SendStatus>, SendError>]) -> Vec<String> {
    results
        .iter()
        .map(
            |r| match r.as_ref().expect("the call succeeds").as_slice() {
                [
                    SendStatus::Accepted {
                        provider_message_id: Some(id),
                    },
                ] => id.clone(),
                other => panic!("one accepted message expected, got {other:?}"),
            },
        )
        .collect()
}

#[tokio::test]
async fn waiting_batches_share_calls_up_to_their_limit_and_each_gets_its_results() {
    let host = load_one(
        misbehave(serde_json::json!({"concurrency": 1})),
        Duration::from_secs(5),
    );
    let sender = host.sender("misbehave").unwrap();
    // Five waiting batches of one message, three at most per call, then a
    // batch sent alone, which nothing joins.
    let mut calls: Vec<Sent> = (1..=5)
        .map(|run| sharing(&sender, run, "size", 3))
        .collect();
    calls.push(alone(&sender, 6, "size"));
    let results = queued_behind_a_slow_call(&sender, calls).await;
    assert_eq!(
        provider_ids(&results),
        [
            "batch-of-3",
            "batch-of-3",
            "batch-of-3",
            "batch-of-2",
            "batch-of-2",
            "batch-of-1"
        ]
    );

    // Each caller gets its own message's result, not a neighbour's.
    let calls: Vec<Sent> = (1..=4).map(|run| sharing(&sender, run, "a", 50)).collect();
    let results = queued_behind_a_slow_call(&sender, calls).await;
    assert_eq!(
        provider_ids(&results),
        (1..=4)
            .map(|run| format!("p-run-{run}/r0"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_shared_call_whose_reply_cannot_be_cut_fails_every_batch_in_it() {
    let host = load_one(
        misbehave(serde_json::json!({"concurrency": 1})),
        Duration::from_secs(5),
    );
    let sender = host.sender("misbehave").unwrap();
    // The plugin leaves out one result: no caller can tell which of its
    // messages the others are, so all of them retry the batch.
    let calls = vec![
        sharing(&sender, 1, "a", 50),
        sharing(&sender, 2, "drop", 50),
        sharing(&sender, 3, "a", 50),
    ];
    let results = queued_behind_a_slow_call(&sender, calls).await;
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::ResultCount { .. }), "{error:?}");
    }
}

#[tokio::test]
async fn a_shared_call_past_the_timeout_counts_as_one_abandoned_call() {
    let host = load_one(
        misbehave(serde_json::json!({"concurrency": 1})),
        Duration::from_millis(500),
    );
    let sender = host.sender("misbehave").unwrap();
    // Three batches queue behind a 300 ms call and go out together in one
    // call that sleeps 2 s: all three callers give up on it.
    let calls = vec![
        sharing(&sender, 1, "sleep:2000", 50),
        sharing(&sender, 2, "a", 50),
        sharing(&sender, 3, "a", 50),
    ];
    let results = queued_behind_a_slow_call(&sender, calls).await;
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Abandoned { .. }), "{error:?}");
    }
    let health = &host.health()[0];
    assert_eq!(health.abandoned_total, 1);
    assert_eq!(health.abandoned_outstanding, 1);
    assert!(health.healthy);
}
