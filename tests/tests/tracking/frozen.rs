//! http-api.md: tracking requests do not block on the store. With the
//! daemon's Redis frozen (SIGSTOP: every command waits out its timeout),
//! the pixel, a click and the one-click unsubscribe still answer at once,
//! and the unsubscribe reaches the denylist once Redis answers again.

use super::*;
use herald_test_support::{RedisServer, eml};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_and_unsubscribe_answer_at_once_while_redis_is_frozen() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), "").replace(
        "  kind: embedded\n",
        &format!("  kind: redis\n  url: {}\n", redis.url()),
    );
    let daemon = Daemon::start(dir.path(), &text);
    std::fs::write(
        dir.path().join("deliveries/frozen.yaml"),
        r#"channel: email
audience:
  recipients:
    - { id: c1, email: ana@test.example }
content:
  from: "Shop <news@shop.example>"
  subject: Hello
  html: '<p><a href="https://shop.example/p">Your page</a></p>'
"#,
    )
    .unwrap();
    let api = Api::new(&daemon.url());
    api.wait(&run_path("frozen@once"), Duration::from_secs(30), |r| {
        r["state"] == "sent"
    })
    .await;
    let messages = eml::of_run(&dir.path().join("outbox"), "frozen@once");
    let message = &messages["c1"];
    let pixel = message
        .attributes("src")
        .into_iter()
        .find(|s| s.contains("/t/o/"))
        .unwrap();
    let click = message.attributes("href")[0].clone();
    let unsubscribe = message.unsubscribe();

    redis.freeze();
    let timed = |request: reqwest::RequestBuilder| async move {
        let asked = Instant::now();
        let status = request.send().await.unwrap().status().as_u16();
        (status, asked.elapsed())
    };
    let answers = [
        timed(api.http.get(&pixel)).await,
        timed(api.http.get(&click)).await,
        timed(
            api.http
                .post(&unsubscribe)
                .body("List-Unsubscribe=One-Click"),
        )
        .await,
    ];
    redis.thaw();
    for ((status, took), expected) in answers.into_iter().zip([200, 302, 200]) {
        assert_eq!(status, expected);
        // Each Redis command waits 2 s for a frozen server; an answer
        // that waited on one would take that long.
        assert!(took < Duration::from_millis(1000), "took {took:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = api
            .call("GET", "/api/v1/suppressions?list=denylist", VIEWER, None)
            .await;
        if status == 200 && body["entries"][0]["address"] == "ana@test.example" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never denylisted: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = api
        .wait(&run_path("frozen@once"), Duration::from_secs(20), |r| {
            r["kpi"]["unsubscribed"] == 1
        })
        .await;
    assert_eq!(
        (&run["kpi"]["opened"], &run["kpi"]["clicked"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
}
