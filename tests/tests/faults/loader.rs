//! G5 and the audience roots, live: while a delivery is sending, hostile
//! files are dropped into the deliveries folder (garbage, binary, truncated
//! YAML, wrong types, unknown keys, a 10 MB file, a FIFO, a symlink loop,
//! the sending delivery's own file broken, audience paths escaping the
//! roots by `..`, by an absolute path and by a symlink). The daemon keeps
//! running and sending, reports every file, never reads outside its roots,
//! and still schedules a good file dropped afterwards.

use crate::{Api, Bed, csv_audience, run_path};
use herald_test_support::{Daemon, RedisServer};
use serde_json::Value;
use std::time::{Duration, Instant};

const RECIPIENTS: usize = 3_000;
const SECRET: &str = "TOP-SECRET-ROW";

/// The hostile files: name and content (FIFOs and symlinks are made apart).
fn hostile_files() -> Vec<(&'static str, Vec<u8>)> {
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut big = Vec::with_capacity(10 * 1024 * 1024 + 16);
    while big.len() < 10 * 1024 * 1024 + 1 {
        big.extend_from_slice(b"# padding line\n");
    }
    vec![
        ("garbage.yaml", b"}}}{{{ ::: - - [[[ !!! \n\t\t%%%".to_vec()),
        ("binary.yaml", binary),
        ("truncated.yaml", b"channel: count\naudience:\n  recipients:\n    - { id: x1, addr".to_vec()),
        ("wrong-types.yaml", b"channel: 42\naudience: true\ncontent: 7\nschedule: [1, 2]\n".to_vec()),
        (
            "unknown-keys.yaml",
            b"channel: count\naudience:\n  recipients: [{ id: u1, address: u1 }]\ncontent: { body: hi }\nfrobnicate: yes\n".to_vec(),
        ),
        ("big.yaml", big),
        (
            "dotdot.yaml",
            b"channel: count\naudience:\n  file: ../outside/secret.csv\ncontent: { body: hi }\n".to_vec(),
        ),
    ]
}

/// A delivery reading `path` as its audience.
fn audience_at(path: &std::path::Path) -> String {
    format!(
        "channel: count\naudience:\n  file: {}\ncontent: {{ body: hi }}\n",
        path.display()
    )
}

#[test]
fn hostile_files_dropped_while_sending_never_stop_the_daemon_nor_the_run() {
    let bed = Bed::new();
    let redis = RedisServer::start();
    csv_audience(&bed, "steady.csv", RECIPIENTS);
    let steady =
        "channel: count\naudience:\n  file: steady.csv\ncontent:\n  body: \"Hello {{ name }}\"\n";
    bed.deliver("steady.yaml", steady);
    let outside = bed.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("secret.csv"),
        format!("id,address\n{SECRET},s@x.example\n"),
    )
    .unwrap();
    let config = bed.config(
        &format!("  kind: redis\n  url: {}\n", redis.url()),
        &bed.count_plugin(r#", "concurrency": 2, "batch_delay_ms": 80"#),
        "sending:\n  batch_size: 20\n  chunk_size: 500\n  lease: 3s\n",
    );
    let mut daemon = Daemon::start(bed.dir.path(), &config);
    let api = Api::new(&daemon);
    let steady_run = run_path("steady@once");
    api.wait(&steady_run, Duration::from_secs(30), |r| {
        r["kpi"]["sent"].as_u64().is_some_and(|s| s > 0)
    });

    let dropped = Instant::now();
    for (name, content) in hostile_files() {
        bed.deliver(name, content);
    }
    let deliveries = bed.path("deliveries");
    let fifo = std::ffi::CString::new(deliveries.join("pipe.yaml").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    std::os::unix::fs::symlink(
        deliveries.join("loop-b.yaml"),
        deliveries.join("loop-a.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        deliveries.join("loop-a.yaml"),
        deliveries.join("loop-b.yaml"),
    )
    .unwrap();
    bed.deliver("absolute.yaml", audience_at(&outside.join("secret.csv")));
    std::os::unix::fs::symlink(outside.join("secret.csv"), deliveries.join("linked.csv")).unwrap();
    bed.deliver(
        "symlinked.yaml",
        audience_at(std::path::Path::new("linked.csv")),
    );
    // The sending delivery's own file, broken in the middle of its run.
    bed.deliver("steady.yaml", "channel: count\naudience: [unclosed\n");

    let expected = [
        "garbage.yaml",
        "binary.yaml",
        "truncated.yaml",
        "wrong-types.yaml",
        "unknown-keys.yaml",
        "big.yaml",
        "dotdot.yaml",
        "pipe.yaml",
        "loop-a.yaml",
        "absolute.yaml",
        "symlinked.yaml",
        "steady.yaml",
    ];
    let named = |list: &Value, name: &str| {
        list["errors"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["file"].as_str().is_some_and(|f| f.ends_with(name)))
        })
    };
    let listed = api.wait("/api/v1/deliveries", Duration::from_secs(20), |list| {
        expected.iter().all(|name| named(list, name))
    });
    let reported = dropped.elapsed();
    for error in listed["errors"].as_array().unwrap() {
        println!("G5: {} → {}", error["file"], error["message"]);
    }
    assert!(
        listed["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "steady"),
        "the last good version of steady.yaml stays loaded: {listed}"
    );
    let body = listed.to_string();
    assert!(
        !body.contains(SECRET),
        "an error message leaks a row from outside the roots: {body}"
    );

    // The run goes on to the end on the last good version.
    let run = api.wait(&steady_run, Duration::from_secs(90), |r| {
        r["state"] == "sent"
    });
    let received = bed.received();
    let steady_messages = received
        .keys()
        .filter(|k| k.starts_with("steady@once/"))
        .count();
    println!(
        "G5: {} hostile files reported within {reported:?}; runs 1, recipients {RECIPIENTS}, delivered {}, messages {}, duplicates {}, lost {}",
        listed["errors"].as_array().unwrap().len(),
        run["kpi"]["delivered"],
        steady_messages,
        received.values().map(|c| c.saturating_sub(1)).sum::<u64>(),
        RECIPIENTS - steady_messages,
    );
    assert_eq!(run["kpi"]["delivered"], RECIPIENTS as u64, "{run}");
    assert_eq!(steady_messages, RECIPIENTS);
    for escape in ["dotdot", "absolute", "symlinked"] {
        let answer = api.send(
            "GET",
            &run_path(&format!("{escape}@once")),
            Some(crate::VIEWER),
            None,
        );
        assert_eq!(answer.status, 404, "{escape} made a run: {}", answer.body);
    }
    assert!(
        !received.keys().any(|k| k.contains(SECRET)),
        "a row from outside the roots was sent"
    );

    // The loader is not stuck on the FIFO or the loop: a good file dropped
    // now is scheduled and sent.
    csv_audience(&bed, "after.csv", 10);
    bed.deliver(
        "after.yaml",
        "channel: count\naudience:\n  file: after.csv\ncontent:\n  body: \"Bye {{ name }}\"\n",
    );
    api.wait(&run_path("after@once"), Duration::from_secs(30), |r| {
        r["state"] == "sent"
    });
    assert!(daemon.is_running(), "the daemon died:\n{}", daemon.log());
    assert_eq!(api.send("GET", "/healthz", None, None).status, 200);
    assert!(
        !daemon.log().contains(SECRET),
        "the log leaks a row from outside the roots"
    );
}
