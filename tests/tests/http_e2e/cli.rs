//! `herald runs|confirm|kpi` over the API, with the server's role rules.

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
    let store = format!(
        "  kind: embedded\n  path: {}\n",
        dir.path().join("herald.db").display()
    );
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
    let written: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        written
            .iter()
            .any(|m| m.contains("[PROOF] Hello Name1") && m.contains("qa@example.com")),
        "{written:?}"
    );
    let (_, run) = api.call("GET", "/api/v1/runs/promo%40once", VIEWER).await;
    assert_eq!(run["kpi"]["sent"], 0);

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
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("sent") && l.ends_with('4')),
        "{table}"
    );
}
