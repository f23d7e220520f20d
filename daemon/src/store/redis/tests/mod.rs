//! Tests of the Redis backend, each against its own private redis-server.

mod lifecycle;
mod records;
mod resilience;
mod retention;
mod sending;
mod topologies;

use super::{RedisSettings, RedisStore, RedisTopology};
use crate::runs::{Outcome, RunId};
use crate::store::SharedStore;
use crate::store::conformance::conformance_tests;
use crate::store::{Chunk, FrozenRecipient, NewRun, Prepared, RecipientOutcome, Store, Transition};
use chrono::{DateTime, Duration, TimeZone, Utc};
use herald_test_support::{RedisCluster, RedisServer};
use std::sync::Arc;

/// A fresh store on its own private redis-server, which lives as long as
/// the store does (the conformance suite only holds the store).
async fn make_store() -> SharedStore {
    let server = RedisServer::start();
    let mut store = store_on(&server).await;
    store.guard = Some(Arc::new(server));
    Arc::new(store)
}

conformance_tests!(conformance_redis, make_store);

/// A fresh, empty store on the process's shared 3-master Redis Cluster: a
/// key prefix of its own keeps it apart from the other tests' stores.
async fn make_cluster_store() -> SharedStore {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let cluster = RedisCluster::shared();
    let prefix = format!(
        "c{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut store = RedisStore::connect_topology(RedisTopology::Cluster(cluster.nodes()), prefix)
        .await
        .expect("connect to the shared Redis Cluster");
    store.guard = Some(cluster);
    Arc::new(store)
}

conformance_tests!(conformance_redis_cluster, make_cluster_store);

/// A private server and a store on it.
struct Fixture {
    server: RedisServer,
    store: RedisStore,
}

async fn fixture() -> Fixture {
    let server = RedisServer::start();
    let store = store_on(&server).await;
    Fixture { server, store }
}

async fn store_on(server: &RedisServer) -> RedisStore {
    RedisStore::connect(RedisSettings {
        url: server.url(),
        key_prefix: "herald".to_owned(),
    })
    .await
    .expect("connect to the private redis-server")
}

/// An instant `secs` after 2099-12-07 08:00:00 UTC: later than any run
/// of these tests, so the history indexer (which looks at the wall clock)
/// never finds their queues overdue.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2099, 12, 7, 8, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A run of `delivery` scheduled at t(100), created at t(0).
fn new_run(delivery: &str, confirm_required: bool) -> NewRun {
    NewRun {
        id: RunId::at(delivery, t(100)),
        delivery_id: delivery.to_owned(),
        channel: "email".to_owned(),
        scheduled_for: t(100),
        confirm_deadline: t(50),
        confirm_required,
        aggregation_period: None,
        definition: r#"{"id":"x"}"#.to_owned(),
        definition_hash: "sha256:00".to_owned(),
        throttle_per_second: None,
        created_at: t(0),
    }
}

/// Recipients `r{first}`..`r{first+n}`.
fn recipients(first: usize, n: usize) -> Vec<FrozenRecipient> {
    (first..first + n)
        .map(|i| FrozenRecipient {
            id: format!("r{i}"),
            address: format!("r{i}@example.com"),
            fields: Default::default(),
        })
        .collect()
}

/// Creates a run and prepares it into `chunks` chunks of `per_chunk`
/// recipients; returns its id and the transition of finish_preparation.
async fn prepare(
    store: &RedisStore,
    run: &NewRun,
    chunks: u32,
    per_chunk: usize,
    now: DateTime<Utc>,
) -> Transition {
    assert!(store.create_run(run).await.unwrap());
    assert!(
        store
            .claim_preparation(&run.id, "a", now + Duration::seconds(30), now)
            .await
            .unwrap()
    );
    for number in 0..chunks {
        let chunk = Chunk {
            number,
            recipients: recipients(number as usize * per_chunk, per_chunk),
        };
        store.put_chunk(&run.id, &chunk).await.unwrap();
    }
    let prepared = Prepared {
        targeted: u64::from(chunks) * per_chunk as u64,
        excluded_by_reason: Default::default(),
        chunks,
        preview: None,
    };
    store
        .finish_preparation(&run.id, "a", &prepared, now)
        .await
        .unwrap()
}

/// A recorded outcome.
fn outcome(recipient: &str, outcome: Outcome, at: DateTime<Utc>) -> RecipientOutcome {
    RecipientOutcome {
        recipient_id: recipient.to_owned(),
        address: format!("{recipient}@example.com"),
        outcome,
        reason: None,
        provider_message_id: (outcome == Outcome::Delivered).then(|| format!("pm-{recipient}")),
        detail: None,
        at,
    }
}

/// A raw command on the test's own redis-server.
async fn raw<T: redis::FromRedisValue>(store: &RedisStore, cmd: &mut redis::Cmd) -> T {
    cmd.query_async(&mut store.conn()).await.unwrap()
}

/// The state of a transition's run, or a panic naming what came back.
fn done(transition: Transition) -> crate::store::Run {
    match transition {
        Transition::Done(run) => *run,
        other => panic!("expected Done, got {other:?}"),
    }
}
