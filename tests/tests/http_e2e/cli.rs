//! The CLI over the API (`herald runs|confirm|cancel|pause|resume|kpi|proof`),
//! with the server's role rules; and the OpenAPI document checked against
//! the live daemon's routes.

use super::*;
use std::process::{Command, Output};

fn herald(daemon: &Daemon, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(Daemon::binary());
    command.args(args).args(["--url", &daemon.url()]);
    match token {
        Some(token) => command.env("HERALD_TOKEN", token),
        None => command.env_remove("HERALD_TOKEN"),
    };
    command.output().expect("herald runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_confirms_with_the_servers_role_rules_and_prints_kpis() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(dir.path());
    confirmed_delivery(dir.path(), "promo", 4);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, ""));
    let api = Api::new(&daemon);
    api.wait_run("promo@once", |r| r["state"] == "pending")
        .await;

    let listed = herald(&daemon, Some(VIEWER), &["runs", "--state", "pending"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains("promo@once"),
        "{}",
        text(&listed.stdout)
    );

    let refused = herald(&daemon, Some(VIEWER), &["confirm", "promo@once"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains(
            "You do not have the start_deliveries role: only users who hold it can confirm a send."
        ),
        "{}",
        text(&refused.stderr)
    );
    let no_token = herald(&daemon, None, &["confirm", "promo@once"]);
    assert_eq!(no_token.status.code(), Some(2));
    let empty_token = herald(&daemon, Some(""), &["confirm", "promo@once"]);
    assert_eq!(empty_token.status.code(), Some(2));
    assert!(
        text(&empty_token.stderr).contains("set HERALD_TOKEN"),
        "{}",
        text(&empty_token.stderr)
    );
    // `--url` takes the daemon's `http.listen` as the config writes it.
    let listen = daemon.url().replace("http://", "");
    let bare = Command::new(Daemon::binary())
        .args(["runs", "--url", &listen])
        .env("HERALD_TOKEN", VIEWER)
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(0), "{}", text(&bare.stderr));
    assert!(
        text(&bare.stdout).contains("promo@once"),
        "{}",
        text(&bare.stdout)
    );

    // A proof goes through the plugin, marked, and is no part of the run.
    let refused = herald(&daemon, Some(VIEWER), &["proof", "promo", "qa@example.com"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("can send a proof"),
        "{}",
        text(&refused.stderr)
    );
    let proof = herald(
        &daemon,
        Some(CONFIRMER),
        &["proof", "promo", "qa@example.com"],
    );
    assert_eq!(proof.status.code(), Some(0), "{}", text(&proof.stderr));
    assert!(
        text(&proof.stdout).contains("qa@example.com: accepted"),
        "{}",
        text(&proof.stdout)
    );
    let written = outbox(dir.path());
    assert!(
        written
            .iter()
            .any(|m| m.contains("[PROOF] Hello Name1") && m.contains("qa@example.com")),
        "{written:?}"
    );
    // `--recipient` picks whose data is rendered.
    let proof = herald(
        &daemon,
        Some(CONFIRMER),
        &["proof", "promo", "qa2@example.com", "--recipient", "c2"],
    );
    assert_eq!(proof.status.code(), Some(0), "{}", text(&proof.stderr));
    assert!(
        outbox(dir.path())
            .iter()
            .any(|m| m.contains("[PROOF] Hello Name2") && m.contains("qa2@example.com")),
        "no proof for c2"
    );
    // Not a run, not in anyone's history, not counted.
    let (_, runs) = api.call("GET", "/api/v1/runs?delivery=promo", VIEWER).await;
    let ids: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["promo@once"]);
    for recipient in ["c1", "c2"] {
        let (_, history) = api
            .call(
                "GET",
                &format!("/api/v1/profiles/{recipient}/messages"),
                VIEWER,
            )
            .await;
        assert_eq!(history["messages"], serde_json::json!([]), "{recipient}");
    }
    let (_, delivery) = api.call("GET", "/api/v1/deliveries/promo", VIEWER).await;
    assert_eq!(delivery["kpi"]["sent"], 0, "{delivery}");

    let confirmed = herald(&daemon, Some(CONFIRMER), &["confirm", "promo@once"]);
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        text(&confirmed.stderr)
    );
    let again = herald(&daemon, Some(CONFIRMER), &["confirm", "promo@once"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("HTTP 409"),
        "{}",
        text(&again.stderr)
    );

    api.wait_run("promo@once", |r| r["state"] == "sent").await;
    let kpi = herald(
        &daemon,
        Some(CONFIRMER),
        &[
            "kpi",
            "promo",
            "--run",
            "promo@once",
            "--compute",
            "--watch",
        ],
    );
    assert_eq!(kpi.status.code(), Some(0), "{}", text(&kpi.stderr));
    let table = text(&kpi.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("delivered rate") && l.ends_with("100.0 %")),
        "{table}"
    );
    // Four recipients, four sent: the two proofs are not in the figures.
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["sent", "4"]),
        "{table}"
    );
    let (_, delivery) = api.call("GET", "/api/v1/deliveries/promo", VIEWER).await;
    assert_eq!(delivery["kpi"]["sent"], 4, "{delivery}");
    openapi_matches_the_live_routes(&api).await;
}

/// `herald kpi DELIVERY --watch` started in the background, as a viewer.
fn watch(daemon: &Daemon, delivery: &str) -> std::process::Child {
    Command::new(Daemon::binary())
        .args(["kpi", delivery, "--watch", "--url", &daemon.url()])
        .env("HERALD_TOKEN", VIEWER)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `herald ACTION RUN` as the confirmer, which must succeed.
fn act(daemon: &Daemon, action: &str, run: &str) -> Output {
    let output = herald(daemon, Some(CONFIRMER), &[action, run]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    output
}

/// The output of a [`watch`] that ended with exit code 0.
async fn finished(watcher: std::process::Child) -> Output {
    let watched = tokio::task::spawn_blocking(move || watcher.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watched.status.code(), Some(0), "{}", text(&watched.stderr));
    watched
}

/// Waits for the batches in flight of the paused `run` to finish, checks
/// that nothing more is sent, and returns the run.
async fn held_while_paused(api: &Api, run: &str) -> serde_json::Value {
    let path = format!("/api/v1/runs/{}", run.replace('@', "%40"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, held) = api.call("GET", &path, VIEWER).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, still) = api.call("GET", &path, VIEWER).await;
    assert_eq!(still["state"], "paused");
    assert_eq!(
        still["kpi"]["sent"], held["kpi"]["sent"],
        "sent while paused"
    );
    still
}

/// Every file the outbox plugin wrote.
fn outbox(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
        .collect()
}

/// The routes of http-api.md's table.
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/api/v1/deliveries"),
    ("get", "/api/v1/deliveries/{id}"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{run_id}"),
    ("post", "/api/v1/runs/{run_id}/confirm"),
    ("post", "/api/v1/runs/{run_id}/cancel"),
    ("post", "/api/v1/runs/{run_id}/pause"),
    ("post", "/api/v1/runs/{run_id}/resume"),
    ("post", "/api/v1/deliveries/{id}/statistics"),
    ("post", "/api/v1/deliveries/{id}/proof"),
    ("get", "/api/v1/profiles/{recipient_id}/messages"),
    ("delete", "/api/v1/profiles/{recipient_id}"),
    ("get", "/api/v1/suppressions"),
    ("put", "/api/v1/suppressions/{list}/{address}"),
    ("delete", "/api/v1/suppressions/{list}/{address}"),
    ("post", "/api/v1/feedback"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/t/o/{token}"),
    ("get", "/t/c/{token}"),
    ("get", "/u/{token}"),
    ("post", "/u/{token}"),
];

/// The document the daemon serves lists every route of the spec, and the
/// daemon (without `public_listen`, so the tracking routes too) routes
/// every operation of the document: without a token each answers 401
/// (under `/api/v1`), serves, or refuses the made-up link token (404 from
/// the route, not the router), never the router's 404 or 405.
async fn openapi_matches_the_live_routes(api: &Api) {
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", VIEWER).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in SPEC_ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    let mut checked = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let concrete = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x%40once" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let (status, body) = api.call(&method.to_uppercase(), &concrete, "").await;
            let routed_404 = status == 404
                && body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("no such route"));
            assert!(
                status != 405 && !routed_404,
                "{method} {path}: {status} {body}"
            );
            if operation.get("security").is_some() {
                assert_eq!(status, 401, "{method} {path} without a token: {body}");
            }
            checked += 1;
        }
    }
    assert!(checked >= SPEC_ROUTES.len(), "{checked} operations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pauses_resumes_and_cancels_while_kpi_watch_follows_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(dir.path());
    // 120 messages at 8 a second: about 15 s unless cancelled.
    throttled_delivery(dir.path(), "slow", 120, 8);
    confirmed_delivery(dir.path(), "other", 2);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, SMALL_BATCHES));
    let api = Api::new(&daemon);
    api.wait_run("slow@once", |r| r["state"] == "pending").await;
    api.wait_run("other@once", |r| r["state"] == "pending")
        .await;

    // Role rules and the state table, as the server says them.
    let refused = herald(&daemon, Some(VIEWER), &["cancel", "other@once"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains(
            "You do not have the start_deliveries role: only users who hold it can cancel a run."
        ),
        "{}",
        text(&refused.stderr)
    );
    let early = herald(&daemon, Some(CONFIRMER), &["pause", "slow@once"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(
        text(&early.stderr).contains("the run is pending")
            && text(&early.stderr).contains("HTTP 409"),
        "{}",
        text(&early.stderr)
    );
    let cancelled = herald(&daemon, Some(CONFIRMER), &["cancel", "other@once"]);
    assert_eq!(
        cancelled.status.code(),
        Some(0),
        "{}",
        text(&cancelled.stderr)
    );
    assert_eq!(
        text(&cancelled.stdout).trim(),
        "Run other@once is now cancelled."
    );

    let confirmed = herald(&daemon, Some(CONFIRMER), &["confirm", "slow@once"]);
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        text(&confirmed.stderr)
    );
    api.wait_run("slow@once", |r| r["state"] == "sending").await;
    // `kpi --watch` without --run follows the delivery's sending run.
    let watcher = watch(&daemon, "slow");

    // Long enough for the watcher (one look a second) to see it move.
    api.wait_run("slow@once", |r| r["kpi"]["sent"].as_u64() >= Some(32))
        .await;
    let paused = herald(&daemon, Some(CONFIRMER), &["pause", "slow@once"]);
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused.stderr));
    assert_eq!(text(&paused.stdout).trim(), "Run slow@once is now paused.");
    let again = herald(&daemon, Some(CONFIRMER), &["pause", "slow@once"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("the run is paused"),
        "{}",
        text(&again.stderr)
    );
    let held = held_while_paused(&api, "slow@once").await;
    assert_eq!(held["paused_by"], "alice");

    let resumed = herald(&daemon, Some(CONFIRMER), &["resume", "slow@once"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert_eq!(
        text(&resumed.stdout).trim(),
        "Run slow@once is now sending."
    );
    let before = held["kpi"]["sent"].as_u64().unwrap();
    api.wait_run("slow@once", |r| {
        r["kpi"]["sent"].as_u64() >= Some(before + 8)
    })
    .await;
    act(&daemon, "cancel", "slow@once");

    // The watcher ends with the run and prints its final figures.
    let watched = finished(watcher).await;
    let table = text(&watched.stdout);
    assert!(table.starts_with("slow@once (cancelled)"), "{table}");
    let figure = |name: &str| -> u64 {
        table
            .lines()
            .find_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                (words.len() == 2 && words[0] == name).then(|| words[1].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no {name} in {table}"))
    };
    let (sent, cancelled, remaining) = (figure("sent"), figure("cancelled"), figure("remaining"));
    assert!(sent >= before + 8 && cancelled > 0, "{table}");
    assert_eq!((sent + cancelled, remaining), (120, 0), "{table}");
    // Off a terminal, --watch prints a line per change: the progress moved,
    // the pause showed, and the last line is the end.
    let progress = text(&watched.stderr);
    let lines: Vec<&str> = progress.lines().collect();
    let sending = lines.iter().filter(|l| l.starts_with("sending ")).count();
    assert!(sending >= 3, "{progress}");
    assert!(lines[0].starts_with("sending "), "{progress}");
    assert!(lines.iter().any(|l| l.starts_with("paused ")), "{progress}");
    assert_eq!(
        *lines.last().unwrap(),
        "cancelled 120/120 (100.0 %)",
        "{progress}"
    );

    let listed = herald(&daemon, Some(VIEWER), &["runs", "--delivery", "slow"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout)
            .lines()
            .any(|l| l.starts_with("slow@once") && l.contains("cancelled")),
        "{}",
        text(&listed.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_run_with_full_batches_can_be_paused_watched_and_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(dir.path());
    // 40 messages at 4 a second with the default batch of 50: a batch may
    // not hold them all and wait 9 s for its turn, deaf to a pause or a
    // cancel, then send them in one burst.
    throttled_delivery(dir.path(), "steady", 40, 4);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, ""));
    let api = Api::new(&daemon);
    api.wait_run("steady@once", |r| r["state"] == "pending")
        .await;
    let confirmed = herald(&daemon, Some(CONFIRMER), &["confirm", "steady@once"]);
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        text(&confirmed.stderr)
    );
    api.wait_run("steady@once", |r| r["kpi"]["sent"].as_u64() >= Some(4))
        .await;
    act(&daemon, "pause", "steady@once");
    held_while_paused(&api, "steady@once").await;

    // `kpi --watch` without --run follows a paused run too.
    let watcher = watch(&daemon, "steady");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    act(&daemon, "resume", "steady@once");
    act(&daemon, "cancel", "steady@once");
    let watched = finished(watcher).await;
    assert!(
        text(&watched.stdout).starts_with("steady@once (cancelled)"),
        "{}",
        text(&watched.stdout)
    );
    let run = api
        .wait_run("steady@once", |r| !r["finished_at"].is_null())
        .await;
    let (sent, cancelled) = (
        run["kpi"]["sent"].as_u64().unwrap(),
        run["kpi"]["cancelled"].as_u64().unwrap(),
    );
    assert_eq!(sent + cancelled, 40, "{run}");
    assert!(cancelled >= 20, "the cancel held back too little: {run}");
    assert_eq!(outbox(dir.path()).len() as u64, sent, "{run}");
}
