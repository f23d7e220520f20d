//! Redis going away and coming back; wake-ups across instances.

use super::*;
use crate::store::{Creation, StoreError};
use std::time::{Duration as StdDuration, Instant};

#[tokio::test]
async fn a_stopped_redis_is_unavailable_promptly_and_the_store_recovers_after_a_restart() {
    let mut f = fixture().await;
    let run = new_run("weekly", false);
    assert!(f.store.create_run(&run).await.unwrap());
    f.server.stop();
    let started = Instant::now();
    let err = f.store.run(&run.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(f.store.ping().await.is_err());
    assert!(
        started.elapsed() < StdDuration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    f.server.restart();
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        match f.store.ping().await {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => panic!("store did not recover: {e}"),
            Err(_) => tokio::time::sleep(StdDuration::from_millis(100)).await,
        }
    }
    let back = f.store.run(&run.id).await.unwrap();
    assert!(
        back.is_some(),
        "the run survived the restart through the AOF"
    );
    assert!(!f.store.create_run(&run).await.unwrap());
}

#[tokio::test]
async fn a_store_connected_while_redis_is_down_works_once_it_starts() {
    let mut server = herald_test_support::RedisServer::start();
    server.stop();
    let store = store_on(&server).await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    server.restart();
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "store did not connect");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// Waits until both stores' listeners are subscribed to the changes channel.
async fn wait_for_listeners(store: &RedisStore) {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        let subscribers: Result<Vec<(String, i64)>, _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("herald:changes")
            .query_async(&mut store.conn())
            .await;
        if subscribers.is_ok_and(|s| s[0].1 >= 2) {
            // Let the wake-up each listener gives after subscribing pass,
            // so only the change itself can satisfy the test.
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            return;
        }
        assert!(Instant::now() < deadline, "listeners did not subscribe");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Creates a run with `store` and waits until `other` is woken.
async fn creation_wakes(store: &RedisStore, other: &RedisStore, delivery: &str) {
    let woken = other.changes();
    let notified = woken.notified();
    store.create_run(&new_run(delivery, false)).await.unwrap();
    tokio::time::timeout(StdDuration::from_secs(5), notified)
        .await
        .expect("the other instance was notified");
}

#[tokio::test]
async fn another_instance_is_woken_when_a_run_is_created_also_after_a_redis_restart() {
    let mut f = fixture().await;
    let other = store_on(&f.server).await;
    wait_for_listeners(&f.store).await;
    creation_wakes(&f.store, &other, "weekly").await;
    f.server.restart();
    wait_for_listeners(&f.store).await;
    creation_wakes(&f.store, &other, "daily").await;
}

#[tokio::test]
async fn the_private_server_persists_with_an_append_only_file() {
    let f = fixture().await;
    assert!(f.store.appendonly_enabled().await.unwrap());
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query_async::<()>(&mut f.store.conn())
        .await
        .unwrap();
    assert!(!f.store.appendonly_enabled().await.unwrap());
}

#[tokio::test]
async fn a_malformed_url_or_prefix_is_refused_with_the_setting_named() {
    let bad_url = RedisStore::connect(RedisSettings {
        url: "http://nowhere".to_owned(),
        key_prefix: "herald".to_owned(),
    })
    .await;
    let message = bad_url.err().unwrap().to_string();
    assert!(message.contains("store.url"), "{message}");
    let bad_prefix = RedisStore::connect(RedisSettings {
        url: "redis://127.0.0.1:1/0".to_owned(),
        key_prefix: "{x}".to_owned(),
    })
    .await;
    let message = bad_prefix.err().unwrap().to_string();
    assert!(message.contains("store.key_prefix"), "{message}");
}

#[tokio::test]
async fn a_frozen_redis_is_unavailable_within_the_response_timeout() {
    let f = fixture().await;
    f.store.ping().await.unwrap();
    f.server.freeze();
    let started = Instant::now();
    let err = f.store.run(&RunId::once("weekly")).await.unwrap_err();
    let waited = started.elapsed();
    f.server.thaw();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(waited < StdDuration::from_secs(6), "{waited:?}");
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while f.store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "store did not recover");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn appendonly_reads_as_enabled_when_config_is_not_permitted() {
    let f = fixture().await;
    redis::cmd("ACL")
        .arg(
            &[
                "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all", "-config",
            ][..],
        )
        .query_async::<()>(&mut f.store.conn())
        .await
        .unwrap();
    redis::cmd("CONFIG")
        .arg(&["SET", "appendonly", "no"][..])
        .query_async::<()>(&mut f.store.conn())
        .await
        .unwrap();
    let limited = RedisStore::connect(RedisSettings {
        url: format!("redis://app:secret@127.0.0.1:{}/0", f.server.port()),
        key_prefix: "herald".to_owned(),
    })
    .await
    .unwrap();
    assert!(limited.appendonly_enabled().await.unwrap());
    assert!(!f.store.appendonly_enabled().await.unwrap());
}

/// Runs created at once share a script call; one corrupt run (its hash
/// overwritten with a string) stops that script, and is then the only one
/// to fail: the others are created and taken as if created alone.
#[tokio::test]
async fn a_corrupt_run_among_runs_created_at_once_fails_alone() {
    let f = fixture().await;
    let runs: Vec<NewRun> = (0..40).map(|i| new_run(&format!("d{i}"), false)).collect();
    let corrupt = &runs[20].id;
    let _: () = raw(
        &f.store,
        redis::cmd("SET")
            .arg(f.store.run_keys(corrupt).run)
            .arg("garbage"),
    )
    .await;
    let created = futures_util::future::join_all(
        runs.iter()
            .map(|run| f.store.create_and_take(run, "a", t(30))),
    )
    .await;
    for (run, created) in runs.iter().zip(created) {
        if &run.id == corrupt {
            let error = created.expect_err("a run hash that is a string");
            assert!(matches!(error, StoreError::Other(_)), "{error:?}");
        } else {
            match created {
                Ok(Creation::Taken(taken)) => assert_eq!(taken.id, run.id),
                other => panic!("{}: expected Taken, got {other:?}", run.id),
            }
            assert!(f.store.run(&run.id).await.unwrap().is_some());
        }
    }
}
