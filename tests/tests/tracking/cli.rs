//! `herald suppress` over the API, with the server's role rules.

use super::*;
use std::process::{Command, Output};

fn herald(daemon: &Daemon, token: &str, args: &[&str]) -> Output {
    Command::new(Daemon::binary())
        .args(args)
        .args(["--url", &daemon.url()])
        .env("HERALD_TOKEN", token)
        .output()
        .expect("herald runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_suppress_adds_imports_lists_and_removes_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config(dir.path(), ""));

    let refused = herald(
        &daemon,
        VIEWER,
        &["suppress", "add", "denylist", "a@x.example"],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("admin"),
        "{}",
        text(&refused.stderr)
    );

    let added = herald(
        &daemon,
        ADMIN,
        &[
            "suppress",
            "add",
            "denylist",
            "A@X.example",
            "--reason",
            "asked by phone",
        ],
    );
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));

    let csv = dir.path().join("bounced.csv");
    std::fs::write(&csv, "email\nb@x.example\nc@x.example\n\n").unwrap();
    let imported = herald(
        &daemon,
        ADMIN,
        &["suppress", "import", "quarantine", csv.to_str().unwrap()],
    );
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    assert!(
        text(&imported.stdout).contains("2 address(es) on the quarantine"),
        "{}",
        text(&imported.stdout)
    );

    let listed = herald(&daemon, VIEWER, &["suppress", "list", "quarantine"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let out = text(&listed.stdout);
    assert!(
        out.contains("b@x.example") && out.contains("c@x.example") && out.contains("imported"),
        "{out}"
    );
    let listed = text(&herald(&daemon, VIEWER, &["suppress", "list", "denylist"]).stdout);
    assert!(
        listed.contains("a@x.example") && listed.contains("asked by phone"),
        "{listed}"
    );

    let removed = herald(
        &daemon,
        ADMIN,
        &["suppress", "remove", "quarantine", "b@x.example"],
    );
    assert_eq!(removed.status.code(), Some(0), "{}", text(&removed.stderr));
    let again = herald(
        &daemon,
        ADMIN,
        &["suppress", "remove", "quarantine", "b@x.example"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not on the quarantine"),
        "{}",
        text(&again.stderr)
    );
    let out = text(&herald(&daemon, VIEWER, &["suppress", "list", "quarantine"]).stdout);
    assert!(
        !out.contains("b@x.example") && out.contains("c@x.example"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_suppress_imports_an_audience_file_and_lists_both_lists() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config(dir.path(), ""));

    // An audience file as marketers have them: ids first, the address
    // in the `email` column; the ids must not land on the list.
    let csv = dir.path().join("audience.csv");
    std::fs::write(&csv, "id,email,first_name\nc1,d@x.example,Dee\nc2,,Eve\n").unwrap();
    let imported = herald(
        &daemon,
        ADMIN,
        &["suppress", "import", "denylist", csv.to_str().unwrap()],
    );
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        text(&imported.stderr)
    );
    let added = herald(
        &daemon,
        ADMIN,
        &["suppress", "add", "quarantine", "q@x.example"],
    );
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));

    // Without a list, `list` prints both, each line naming its list.
    let listed = herald(&daemon, VIEWER, &["suppress", "list"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let out = text(&listed.stdout);
    let line = |address: &str| out.lines().find(|l| l.contains(address)).map(str::to_owned);
    assert!(
        line("q@x.example").is_some_and(|l| l.starts_with("quarantine ")),
        "{out}"
    );
    assert!(
        line("d@x.example").is_some_and(|l| l.starts_with("denylist ")),
        "{out}"
    );
    assert!(line("c1").is_none() && line("Dee").is_none(), "{out}");
}
