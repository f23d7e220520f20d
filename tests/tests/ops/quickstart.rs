//! The README's first command on a fresh checkout: the release binary runs
//! `config/herald.yaml` as shipped (embedded store, outbox plugin), with no
//! server. The test lays out a temporary folder like the repository
//! (`config/` copied, `target/release/` linking to the built binary and
//! outbox plugin) and runs the command line the README shows, from there.

use crate::support::{Herald, files_starting, http_get, wait_for};
use herald_test_support::Daemon;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The command the README gives after the build.
const COMMAND: &str = "./target/release/herald run --config config/herald.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "var" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn readme_first_command_sends_the_at_once_example_and_leaves_the_confirm_example_pending() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("cargo build --release --workspace") && readme.contains(COMMAND),
        "the README's first command is no longer `cargo build --release --workspace` then `{COMMAND}`"
    );

    let root = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("config"), &root.path().join("config"));
    let release = root.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(Daemon::binary(), release.join("herald")).unwrap();
    std::os::unix::fs::symlink(
        Daemon::plugin("herald_outbox"),
        release.join("libherald_outbox.so"),
    )
    .unwrap();
    // The one change to the shipped config: a free port instead of 8425,
    // which another daemon on the machine may hold.
    let config = root.path().join("config/herald.yaml");
    let shipped = std::fs::read_to_string(&config).unwrap();
    assert!(shipped.contains("listen: 127.0.0.1:8425"));
    let addr: SocketAddr = format!("127.0.0.1:{}", Daemon::free_port())
        .parse()
        .unwrap();
    std::fs::write(
        &config,
        shipped.replace("listen: 127.0.0.1:8425", &format!("listen: {addr}")),
    )
    .unwrap();

    let started = Instant::now();
    let mut herald = Herald::spawn(root.path(), Path::new("config/herald.yaml"), addr, &[], &[]);
    let outbox = root.path().join("config/var/outbox");
    // welcome-now has four recipients; one address is invalid and excluded.
    wait_for(
        Duration::from_secs(15),
        "the welcome-now messages in the outbox",
        || files_starting(&outbox, "welcome-now%40once") == 3,
    );
    println!(
        "welcome-now landed in the outbox {:?} after the start",
        started.elapsed()
    );
    herald.wait_ready();
    assert_eq!(
        std::fs::read_to_string(
            root.path()
                .join("config/var/outbox")
                .join("welcome-now%40once%2Fc1.eml")
        )
        .map(|eml| eml.contains("Welcome, Ana!"))
        .ok(),
        Some(true)
    );

    // Its own run, not a count of pending runs: on Monday mornings the
    // weekly digest's run is pending too (prepared 2 h ahead, confirmed).
    let is_prepared = |l: &&str| l.contains("Run prepared.") && l.contains("launch-approval@once");
    wait_for(
        Duration::from_secs(15),
        "launch-approval@once to be prepared",
        || herald.log().lines().any(|l| is_prepared(&l)),
    );
    let log = herald.log();
    let prepared = log.lines().find(is_prepared).unwrap();
    assert!(prepared.contains("state=pending"), "{prepared}");
    let (_, metrics) = http_get(addr, "/metrics").unwrap();
    let pending = metrics
        .lines()
        .find_map(|l| l.strip_prefix("herald_runs{state=\"pending\"} "))
        .and_then(|n| n.trim().parse::<f64>().ok());
    assert!(pending.is_some_and(|n| n >= 1.0), "{metrics}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        files_starting(&outbox, "launch-approval"),
        0,
        "a run waiting for its confirmer sent messages"
    );
    assert!(herald.stop().success(), "{}", herald.log());
}
