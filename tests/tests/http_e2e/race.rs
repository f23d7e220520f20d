//! Two daemon instances on one private Redis confirm the same run at the
//! same moment: the store's atomic transition lets exactly one win. Then
//! "compute statistics" on one repairs counters skewed in Redis.

use super::*;
use herald_test_support::RedisServer;
use std::sync::Arc;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_confirming_the_same_run_at_once_give_exactly_one_200() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "  kind: redis\n  url: {}\n  key_prefix: race\n",
        redis.url()
    );
    let config = config(dir.path(), &store, "");
    confirmed_delivery(dir.path(), "promo", 3);
    let a = Daemon::start_named(dir.path(), "a", &config);
    let b = Daemon::start_named(dir.path(), "b", &config);
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    api_a
        .wait_run("promo@once", |r| r["state"] == "pending")
        .await;
    api_b
        .wait_run("promo@once", |r| r["state"] == "pending")
        .await;

    for round in 0..2 {
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for api in [Api::new(&a), Api::new(&b)] {
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                api.call("POST", &action("promo@once", "confirm"), CONFIRMER)
                    .await
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        let ok = answers.iter().filter(|(s, _)| *s == 200).count();
        let conflicts: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == 409)
            .map(|(_, b)| b)
            .collect();
        if round == 0 {
            assert_eq!(ok, 1, "{answers:?}");
            assert_eq!(conflicts.len(), 1, "{answers:?}");
        } else {
            assert_eq!(ok, 0, "{answers:?}");
            assert_eq!(conflicts.len(), 2, "{answers:?}");
        }
        for body in conflicts {
            let state = body["state"].as_str().unwrap();
            assert!(["scheduled", "sending", "sent"].contains(&state), "{body}");
        }
    }
    let run = api_b.wait_run("promo@once", |r| r["state"] == "sent").await;
    assert_eq!(run["confirmed_by"], "alice");
    assert_eq!(run["kpi"]["sent"], 3);
    assert_eq!(run["kpi"]["delivered"], 3);

    // "Compute statistics" repairs counters that drifted: skew the run's
    // counters in Redis (the key layout of daemon/src/store/redis/keys.rs),
    // then recount through one instance and read through the other.
    let skew = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .args([
            "HSET",
            "race:{race:promo@once}:run",
            "delivered",
            "999",
            "bounced",
            "7",
        ])
        .output()
        .expect("redis-cli runs");
    assert!(skew.status.success(), "{skew:?}");
    let (_, drifted) = api_a.call("GET", "/api/v1/runs/promo%40once", VIEWER).await;
    assert_eq!(drifted["kpi"]["delivered"], 999, "{drifted}");
    let (status, delivery) = api_a
        .call("POST", "/api/v1/deliveries/promo/statistics", CONFIRMER)
        .await;
    assert_eq!(status, 200, "{delivery}");
    assert_eq!(delivery["kpi"]["delivered"], 3, "{delivery}");
    assert_eq!(delivery["kpi"]["bounces_errors"], 0, "{delivery}");
    let (_, run) = api_b.call("GET", "/api/v1/runs/promo%40once", VIEWER).await;
    assert_eq!(
        (
            &run["kpi"]["sent"],
            &run["kpi"]["delivered"],
            &run["kpi"]["delivered_rate"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(3),
            &serde_json::json!(1.0)
        ),
        "{run}"
    );
    drop((a, b));
}
