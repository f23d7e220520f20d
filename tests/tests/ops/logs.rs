//! Logs: JSON lines with `--log-format json` where every line about a run
//! carries `delivery_id` and `run_id` at the top level, messages written
//! as sentences, and the human format when stderr is not asked for JSON.

use crate::support::{
    Herald, add_delivery, add_misbehave_delivery, files_starting, misbehave_config,
    unsubscribe_path, wait_for,
};
use herald_test_support::Daemon;
use serde_json::Value;
use std::time::Duration;

/// Words of a message that make it about one run (or its batches).
const RUN_WORDS: [&str; 5] = ["run", "batch", "chunk", "recipient", "unsubscribe"];

/// Fields that only a line about a run has.
const RUN_FIELDS: [&str; 4] = ["run_id", "delivery_id", "chunk", "recipient_id"];

/// Whether a log line is about a run: it names one, has a field only such
/// lines have, or its message speaks of a run, a batch, a chunk, a
/// recipient or a plugin call (the plugin host's lines about a batch).
fn about_a_run(event: &Value, line: &str, run_ids: &[&str]) -> bool {
    let message = event["message"].as_str().unwrap_or_default().to_lowercase();
    run_ids.iter().any(|id| line.contains(id))
        || RUN_FIELDS.iter().any(|f| event.get(f).is_some())
        || message.contains("plugin call")
        || message
            .split(|c: char| !c.is_alphabetic())
            .any(|word| RUN_WORDS.contains(&word))
}

#[test]
fn every_json_line_about_a_run_names_its_delivery_and_run() {
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "json-logs", 500, 1000);
    // One batch of the `slow` delivery outlasts the plugin timeout: the
    // plugin host logs the abandoned call and, later, its late return,
    // lines that have no ids of their own but the run's span.
    add_misbehave_delivery(dir.path(), "slow", &["sleep:2500"]);
    let config = misbehave_config("  retries: 0\n  plugin_timeout: 1s\n", 2);
    let mut herald = Herald::start(dir.path(), &config, &["--log-format", "json"], &[]);
    herald.wait_ready();
    let outbox = dir.path().join("var/outbox");
    wait_for(Duration::from_secs(30), "the run to send", || {
        files_starting(&outbox, "json-logs%40once") == 500
    });
    // The one-click unsubscribe of a sent message logs about its run.
    let unsubscribe = unsubscribe_path(&outbox, "json-logs%40once");
    let (status, page) = herald
        .post(&unsubscribe, "List-Unsubscribe=One-Click")
        .unwrap();
    assert_eq!(status, 200, "{page}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !herald.log().contains("An abandoned plugin call returned.") {
        assert!(
            std::time::Instant::now() < deadline,
            "no late plugin call:\n{}",
            herald.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The abandoned call is counted where alerts look for it.
    let (_, metrics) = herald.get("/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "herald_plugin_abandoned_calls{plugin=\"misbehave\"} 1"),
        "{metrics}"
    );
    herald.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(herald.stop().success());

    let log = herald.log();
    let run_ids = ["json-logs@once", "slow@once"];
    let mut about_runs = Vec::new();
    for (number, line) in log.lines().enumerate() {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", number + 1));
        let message = event["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(|c: char| c.is_uppercase()) && message.ends_with('.'),
            "line {}: the message is not a capitalised sentence: {line}",
            number + 1
        );
        assert!(
            !message.contains('='),
            "line {}: values belong in fields, not in the message: {line}",
            number + 1
        );
        if about_a_run(&event, line, &run_ids) {
            let delivery = event["delivery_id"].as_str();
            let run = event["run_id"].as_str();
            assert!(
                delivery.is_some() && run.is_some(),
                "line {} is about a run but lacks a top-level delivery_id or run_id: {line}",
                number + 1
            );
            assert!(
                run.unwrap().starts_with(&format!("{}@", delivery.unwrap())),
                "{line}"
            );
            about_runs.push(message.to_owned());
        }
    }
    println!(
        "{} JSON lines, {} about runs: {:?}",
        log.lines().count(),
        about_runs.len(),
        {
            let mut kinds = about_runs.clone();
            kinds.sort();
            kinds.dedup();
            kinds
        }
    );
    for expected in [
        "Run created.",
        "Run prepared.",
        "First message of the run handed to the plugin.",
        "Plugin call abandoned after the timeout.",
        "An abandoned plugin call returned.",
        "Recipient unsubscribed.",
    ] {
        assert!(
            about_runs.iter().any(|m| m == expected),
            "no `{expected}` line about a run:\n{log}"
        );
    }
}

#[test]
fn text_format_is_the_default_and_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "plain", 3, 100);
    let mut herald = Herald::start(dir.path(), &crate::support::embedded_config(), &[], &[]);
    herald.wait_ready();
    assert!(herald.stop().success());
    let log = herald.log();
    let first = log.lines().next().expect("at least one line");
    assert!(!first.starts_with('{'), "{log}");
    assert!(log.contains("Herald is running."), "{log}");
    // No terminal: no colour escapes in a file or the journal.
    assert!(!log.contains('\u{1b}'), "{log}");
}

/// Runs `herald run --config CONFIG EXTRA...` with a pseudo-terminal as
/// stderr (util-linux `script`), returning what it wrote there.
fn on_a_terminal(dir: &std::path::Path, config: &std::path::Path, extra: &str) -> String {
    let command = format!(
        "{} run --config {} {extra}",
        Daemon::binary().display(),
        config.display()
    );
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(dir)
        .env("HERALD_LOG", "info")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) runs (Debian: bsdutils, always installed)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn on_a_terminal_the_text_format_is_coloured_and_json_stays_plain_json() {
    // A config whose second plugin does not exist: the daemon logs the
    // first one's "Plugin loaded." and exits, so the run is short.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.yaml");
    std::fs::write(
        &config,
        format!(
            "deliveries_dir: deliveries\nstore:\n  kind: embedded\n  path: var/herald.db\nhttp:\n  listen: 127.0.0.1:{}\nplugins:\n  - path: {}\n    config:\n      dir: var/outbox\n      channels: [email]\n  - path: {}\n",
            Daemon::free_port(),
            Daemon::plugin("herald_outbox").display(),
            dir.path().join("missing.so").display()
        ),
    )
    .unwrap();

    let text = on_a_terminal(dir.path(), &config, "");
    let loaded = text
        .lines()
        .find(|l| l.contains("Plugin loaded."))
        .unwrap_or_else(|| panic!("no log line on the terminal:\n{text}"));
    assert!(
        loaded.contains("\u{1b}["),
        "no colour on a terminal: {loaded:?}"
    );

    let json = on_a_terminal(dir.path(), &config, "--log-format json");
    let loaded = json
        .lines()
        .find(|l| l.contains("Plugin loaded."))
        .unwrap_or_else(|| panic!("no log line on the terminal:\n{json}"));
    let event: serde_json::Value = serde_json::from_str(loaded.trim_end())
        .unwrap_or_else(|e| panic!("not JSON on a terminal ({e}): {loaded:?}"));
    assert_eq!(event["message"], "Plugin loaded.");
}

#[test]
fn sigterm_stops_the_daemon_even_when_its_stderr_is_gone() {
    // stderr a pipe whose reader goes away (`herald run | head`, a
    // restarted log collector): every later log line fails to be written,
    // and the daemon must still stop cleanly on SIGTERM.
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "quiet", 3, 100);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", Daemon::free_port())
        .parse()
        .unwrap();
    let config = dir.path().join("herald.yaml");
    std::fs::write(
        &config,
        crate::support::embedded_config().replace("{listen}", &addr.to_string()),
    )
    .unwrap();
    let mut child = std::process::Command::new(Daemon::binary())
        .current_dir(dir.path())
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .env("HERALD_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "the daemon to be ready", || {
        crate::support::http_get(addr, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    drop(child.stderr.take());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("herald did not stop on SIGTERM once its stderr was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "{exit}");
}

#[test]
fn with_json_logs_the_reason_the_daemon_cannot_start_is_a_json_line_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.so");
    let config = format!(
        "deliveries_dir: deliveries\nstore:\n  kind: embedded\n  path: var/herald.db\nhttp:\n  listen: \"{{listen}}\"\nplugins:\n  - path: {}\n",
        missing.display()
    );
    let mut herald = Herald::start(dir.path(), &config, &["--log-format", "json"], &[]);
    let exit = herald.child.wait().unwrap();
    assert_eq!(exit.code(), Some(1), "{}", herald.log());
    let log = herald.log();
    let events: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let last = events.last().expect("at least one line");
    assert_eq!(last["level"], "ERROR", "{log}");
    assert_eq!(last["message"], "Herald cannot start.", "{log}");
    let error = last["error"].as_str().unwrap_or_default();
    assert!(error.contains(&missing.display().to_string()), "{log}");
}

#[test]
fn a_command_whose_output_pipe_is_closed_ends_quietly_as_ls_does() {
    // `herald schema | head -1`: the reader has gone before the command
    // writes. A panic ("failed printing to stdout") is not how a command
    // line tool ends; the default SIGPIPE death is.
    let (read, write) = std::io::pipe().unwrap();
    drop(read);
    let output = std::process::Command::new(Daemon::binary())
        .arg("schema")
        .stdout(write)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}
