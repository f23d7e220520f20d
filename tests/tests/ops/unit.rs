//! The systemd unit as the Debian package installs it: hardening rated 2.0
//! or lower by `systemd-analyze security`, and `systemd-analyze verify`
//! clean in a root laid out like an installed system.

use herald_test_support::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unit() -> PathBuf {
    repo().join("systemd/herald.service")
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze runs (Debian: `apt-get install systemd`; .ci/run installs it)")
}

#[test]
fn unit_declares_notify_watchdog_restart_reload_and_its_directories() {
    let text = std::fs::read_to_string(unit()).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=herald",
        "ConfigurationDirectory=herald",
        "ExecStart=/usr/bin/herald run --config /etc/herald/herald.yaml",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} missing from the unit"
        );
    }
    assert!(text.lines().any(|l| l.starts_with("WatchdogSec=")));
}

#[test]
fn hardening_is_rated_two_or_lower() {
    let unit = unit().display().to_string();
    let output = systemd_analyze(&["security", "--offline=true", "--threshold=20", &unit]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let overall = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default();
    println!("{}", overall.trim());
    assert!(
        output.status.success(),
        "systemd-analyze security rates the unit above 2.0:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies a file, keeping its mode (so executables stay executable).
fn install(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("{} → {}: {e}", from.display(), to.display()));
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn verify_passes_on_the_unit_where_the_package_installs_it() {
    let manifest = std::fs::read_to_string(repo().join("daemon/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("\"lib/systemd/system/herald.service\""),
        "the package no longer installs the unit at /lib/systemd/system/herald.service"
    );

    // A usr-merged root with the system's own units (for the targets the
    // unit names), kill(1) for ExecReload, and herald where ExecStart says.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    copy_tree(
        Path::new("/usr/lib/systemd/system"),
        &r.join("usr/lib/systemd"),
    );
    install(Path::new("/usr/bin/kill"), &r.join("usr/bin/kill"));
    install(&Daemon::binary(), &r.join("usr/bin/herald"));
    install(&unit(), &r.join("lib/systemd/system/herald.service"));

    let root_arg = format!("--root={}", r.display());
    let output = systemd_analyze(&["verify", &root_arg, "herald.service"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // verify exits 0 on some mistakes (an unknown value is "ignoring"), so
    // any complaint about the unit counts as a failure.
    assert!(
        output.status.success() && !stderr.contains("herald.service"),
        "systemd-analyze verify: {}\n{stderr}",
        output.status
    );
}

#[test]
fn packaged_config_loads_and_keeps_state_under_var_lib_herald() {
    let path = repo().join("packaging/herald.yaml");
    let loaded = herald::config::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
    let config = loaded.config;
    assert!(
        config.store.path.starts_with("/var/lib/herald"),
        "{:?}",
        config.store.path
    );
    assert!(
        config.deliveries_dir.starts_with("/var/lib/herald")
            || config.deliveries_dir.starts_with("/etc/herald")
    );
    // The daemon refuses to start when `http.secret_file` is missing, so
    // a packaged config naming one needs the postinst that makes it.
    if let Some(secret) = &config.http.secret_file {
        assert!(secret.starts_with("/var/lib/herald"), "{secret:?}");
        let postinst = std::fs::read_to_string(repo().join("packaging/debian/postinst")).unwrap();
        assert!(
            postinst.contains(&format!("> {}", secret.display())),
            "packaging/debian/postinst does not make {}",
            secret.display()
        );
    }
    for plugin in &config.plugins {
        assert!(
            plugin.path.starts_with("/usr/lib/herald/plugins"),
            "{:?}",
            plugin.path
        );
        let dir = plugin.config["dir"].as_str();
        assert!(
            dir.is_none_or(|d| d.starts_with("/var/lib/herald")),
            "{dir:?}"
        );
    }
}
