//! The store on a Redis Cluster and behind Sentinel, beyond the
//! conformance suite: wake-ups across instances, a cluster down at start,
//! a failover (crash or graceful demotion of the master).

use super::*;
use herald_test_support::{MASTER_NAME, RedisSentinelSet, redis_cli};
use std::time::{Duration as StdDuration, Instant};

async fn on_cluster(nodes: Vec<String>, prefix: &str) -> RedisStore {
    RedisStore::connect_topology(RedisTopology::Cluster(nodes), prefix.to_owned())
        .await
        .expect("a cluster store")
}

#[tokio::test]
async fn another_instance_on_the_cluster_is_woken_when_a_run_is_created() {
    let cluster = RedisCluster::shared();
    let prefix = format!("wake{}", std::process::id());
    let store = on_cluster(cluster.nodes(), &prefix).await;
    let other = on_cluster(cluster.nodes(), &prefix).await;
    // Both listeners subscribe through the first seed node.
    let port: u16 = cluster.nodes()[0]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let channel = format!("{prefix}:changes");
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while !redis_cli(port, &["pubsub", "numsub", &channel]).ends_with("2\n") {
        assert!(Instant::now() < deadline, "listeners did not subscribe");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    // A run whose tag lives on another master than the first seed, so the
    // wake-up crosses nodes through the cluster bus.
    let woken = other.changes();
    let notified = woken.notified();
    store.create_run(&new_run("weekly", false)).await.unwrap();
    tokio::time::timeout(StdDuration::from_secs(5), notified)
        .await
        .expect("the other instance was notified");
}

/// Creates `run` on `store`, retrying while the cluster re-forms
/// (CLUSTERDOWN, refused connections) or Sentinel promotes a replica, for
/// at most 20 s.
async fn create_when_up(store: &RedisStore, run: &NewRun) -> StdDuration {
    let start = Instant::now();
    loop {
        match store.create_run(run).await {
            Ok(created) => {
                assert!(created, "{} already existed", run.id);
                return start.elapsed();
            }
            Err(e) if start.elapsed() > StdDuration::from_secs(20) => {
                panic!("no write after the restart: {e}")
            }
            Err(_) => tokio::time::sleep(StdDuration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn the_cluster_store_works_once_the_cluster_is_up_at_start_and_after_an_outage() {
    let mut cluster = RedisCluster::start();
    for node in cluster.servers() {
        node.stop();
    }
    let store = on_cluster(cluster.nodes(), "herald").await;
    assert!(matches!(
        store.ping().await,
        Err(crate::store::StoreError::Unavailable(_))
    ));
    for node in cluster.servers() {
        node.restart();
    }
    let first = new_run("weekly", false);
    let took = create_when_up(&store, &first).await;
    println!("the cluster store wrote {took:?} after the nodes started");
    // Every node goes away and comes back while the store is connected.
    for node in cluster.servers() {
        node.stop();
    }
    assert!(store.run(&first.id).await.is_err());
    for node in cluster.servers() {
        node.restart();
    }
    let took = create_when_up(&store, &new_run("daily", false)).await;
    println!("the cluster store wrote {took:?} after the outage");
    assert!(
        store.run(&first.id).await.unwrap().is_some(),
        "kept by the AOF"
    );
}

async fn on_sentinels(set: &RedisSentinelSet) -> RedisStore {
    RedisStore::connect_topology(
        RedisTopology::Sentinel {
            sentinels: set.sentinels(),
            master_name: MASTER_NAME.to_owned(),
        },
        "herald".to_owned(),
    )
    .await
    .expect("a Sentinel store")
}

#[tokio::test]
async fn the_sentinel_store_follows_a_crashed_master_to_the_promoted_replica() {
    let mut set = RedisSentinelSet::start();
    let store = on_sentinels(&set).await;
    let before = new_run("weekly", false);
    assert!(store.create_run(&before).await.unwrap());
    // WAIT: the run must be on the replica before the crash for this test.
    let replicated: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(2000)
        .query_async(&mut store.conn())
        .await
        .unwrap();
    assert_eq!(replicated, 1);
    set.kill_master();
    let promoted = set.wait_promotion();
    let took = create_when_up(&store, &new_run("daily", false)).await;
    println!("promotion {promoted:?}; the store wrote to the new master {took:?} after it");
    assert!(store.run(&before.id).await.unwrap().is_some());
}

#[tokio::test]
async fn the_sentinel_store_leaves_a_demoted_master_for_the_promoted_one() {
    let set = RedisSentinelSet::start();
    let store = on_sentinels(&set).await;
    assert!(store.create_run(&new_run("weekly", false)).await.unwrap());
    let promoted = set.failover();
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while redis_cli(set.master_port(), &["role"]).lines().next() != Some("slave") {
        assert!(Instant::now() < deadline, "the old master was not demoted");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    // The old master is alive but a replica now: it answers READONLY (or
    // drops the connection) and the store asks Sentinel again.
    let daily = new_run("daily", false);
    let took = create_when_up(&store, &daily).await;
    println!(
        "graceful failover {promoted:?}; the store wrote to the new master {took:?} after the demotion"
    );
    let new_master = RedisStore::connect(RedisSettings {
        url: format!("redis://127.0.0.1:{}/0", set.replica_port()),
        key_prefix: "herald".to_owned(),
    })
    .await
    .unwrap();
    assert!(new_master.run(&daily.id).await.unwrap().is_some());
}

#[tokio::test]
async fn writes_refused_for_want_of_replicas_are_an_outage_not_an_error() {
    let server = RedisServer::start_with(&["--min-replicas-to-write", "1"]);
    let store = store_on(&server).await;
    let err = store
        .create_run(&new_run("weekly", false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, crate::store::StoreError::Unavailable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_evicting_memory_policy_is_reported() {
    let f = fixture().await;
    assert!(f.store.noeviction().await.unwrap(), "Redis's default");
    let lru = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    assert!(!store_on(&lru).await.noeviction().await.unwrap());
}

/// The scripts loaded when Redis first answers are on every master of a
/// cluster, so a first call on any of them does not meet `NOSCRIPT`.
#[tokio::test]
async fn scripts_loaded_at_start_are_on_every_master_of_a_cluster() {
    let cluster = RedisCluster::start();
    let store = on_cluster(cluster.nodes(), "scripts").await;
    store.load_scripts().await.unwrap();
    let shas: Vec<&str> = crate::store::redis::scripts::all()
        .iter()
        .map(|script| script.get_hash())
        .collect();
    let mut args = vec!["script", "exists"];
    args.extend(&shas);
    for node in cluster.nodes() {
        let port: u16 = node.rsplit(':').next().unwrap().parse().unwrap();
        let exists = redis_cli(port, &args);
        let loaded = exists.lines().filter(|l| l.trim() == "1").count();
        assert_eq!(loaded, shas.len(), "{node} lacks scripts:\n{exists}");
    }
}
