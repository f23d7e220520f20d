//! G6 at start: `herald run` with a plugin of the wrong ABI version, with
//! a null table or without the entry symbol exits at once with an error
//! naming the library, instead of calling into it.

use crate::Bed;
use herald_test_support::Daemon;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_daemon_refuses_to_start_with_a_plugin_of_the_wrong_abi() {
    let bed = Bed::new();
    for (package, expected) in [
        ("herald_test_wrong_abi", "99"),
        ("herald_test_null_table", "null"),
        ("herald_test_no_symbol", "herald_channel_v1"),
    ] {
        let plugin = Daemon::plugin(package);
        let config = bed
            .config(
                &format!(
                    "  kind: embedded\n  path: {}\n",
                    bed.path("herald.db").display()
                ),
                &format!("  - path: {}\n    config: {{}}\n", plugin.display()),
                "",
            )
            .replace("{listen}", &format!("127.0.0.1:{}", Daemon::free_port()));
        let path = bed.path(&format!("{package}.yaml"));
        std::fs::write(&path, config).unwrap();
        let started = Instant::now();
        let mut child = Command::new(Daemon::binary())
            .args(["run", "--config"])
            .arg(&path)
            .env_remove("HERALD_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("herald starts");
        let status = loop {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("herald kept running with {package}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        println!(
            "G6: {package}: {status} after {:?}: {}",
            started.elapsed(),
            stderr.lines().last().unwrap_or_default()
        );
        assert!(!status.success(), "{package}: herald exited 0");
        assert!(
            stderr.contains(&plugin.display().to_string()) && stderr.contains(expected),
            "{package}: the error names neither the file nor {expected:?}:\n{stderr}"
        );
    }
}
