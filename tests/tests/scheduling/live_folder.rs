//! The deliveries folder, live: new files, invalid edits, removals, edits
//! and SIGHUP (with the reloadable keys of daemon.md), against one daemon
//! on a private Redis.

use crate::{Fixture, email_delivery, log_count, metric, post_json, wait_for};
use chrono::Utc;
use herald::runs::RunState;
use herald::store::{CancelReason, Store, SuppressionList};
use herald_test_support::{Daemon, SmtpSink};
use std::time::Duration;

/// An outbox delivery with `n` inline recipients, body `body` and the
/// given `schedule:` lines (empty: at once).
pub fn outbox_delivery(n: usize, body: &str, schedule: &str) -> String {
    let mut yaml = String::from("channel: outbox\naudience:\n  recipients:\n");
    for i in 0..n {
        yaml.push_str(&format!("    - {{ id: r{i}, name: N{i} }}\n"));
    }
    yaml.push_str(&format!("content:\n  body: \"{body} {{{{ name }}}}\"\n"));
    if !schedule.is_empty() {
        yaml.push_str("schedule:\n");
        yaml.push_str(schedule);
    }
    yaml
}

/// Every two seconds, on even seconds.
const EVERY_2S: &str = "  cron: \"*/2 * * * * *\"\n";

#[test]
fn a_new_file_is_scheduled_within_a_second() {
    let f = Fixture::start();
    let _daemon = f.daemon("herald", &f.config(""));
    // The watcher is installed right after readiness; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    f.write_delivery("hello.yaml", &outbox_delivery(3, "hello", ""));
    let created = wait_for(Duration::from_secs(5), || {
        f.probe.run("hello@once").is_some()
    })
    .expect("the run of a new at-once delivery was not created within 5 s");
    let sent = wait_for(Duration::from_secs(5), || {
        f.outbox_files("hello@once").len() == 3
    })
    .expect("the 3 messages of the new delivery were not written within 5 s");
    println!(
        "new file: run created {created:?} after the drop, 3/3 messages written {sent:?} after that"
    );
    assert!(
        created <= Duration::from_secs(1),
        "run created after {created:?}"
    );
    wait_for(Duration::from_secs(5), || {
        f.probe
            .run("hello@once")
            .is_some_and(|r| r.state == RunState::Sent)
    })
    .expect("the run did not end sent");
}

#[test]
fn an_invalid_edit_keeps_the_last_good_version_running() {
    let f = Fixture::start();
    let daemon = f.daemon("herald", &f.config(""));
    f.write_delivery("tick.yaml", &outbox_delivery(2, "good", EVERY_2S));
    wait_for(Duration::from_secs(6), || {
        !f.probe.runs(Some("tick")).is_empty()
    })
    .expect("the recurring delivery made no run within 6 s");

    f.write_delivery("tick.yaml", "channel: outbox\naudience: [unclosed\n");
    let broken_at = Utc::now();
    wait_for(Duration::from_secs(3), || {
        log_count(
            f.dir.path(),
            &["herald"],
            "Delivery file is invalid; its last good version stays active.",
        ) >= 1
    })
    .expect("the invalid file was not reported in the log within 3 s");
    assert!(daemon.log().contains("tick.yaml"), "the log names the file");
    let errors = metric(&f.probe, &daemon, "herald_delivery_file_errors");
    assert_eq!(errors, Some(1.0), "herald_delivery_file_errors");

    // Runs keep coming from the last good version while the file is broken.
    let later = broken_at + chrono::Duration::seconds(1);
    let waited = wait_for(Duration::from_secs(8), || {
        f.probe
            .runs(Some("tick"))
            .iter()
            .filter(|r| r.scheduled_for > later && r.state == RunState::Sent)
            .count()
            >= 2
    })
    .expect("no run of the last good version was sent after the file broke");
    let runs = f.probe.runs(Some("tick"));
    let after = runs.iter().filter(|r| r.scheduled_for > later).count();
    println!(
        "invalid edit: {} runs in all, {after} scheduled after the file broke (2 sent within {waited:?}), file errors metric {errors:?}",
        runs.len()
    );
    let last = runs.last().unwrap();
    let files = f.outbox_files(last.id.as_str());
    assert!(!files.is_empty());
    let content = std::fs::read_to_string(&files[0]).unwrap();
    assert!(content.contains("good N"), "{content}");

    // Fixed again: the error is gone from the metric.
    f.write_delivery("tick.yaml", &outbox_delivery(2, "good", EVERY_2S));
    wait_for(Duration::from_secs(3), || {
        metric(&f.probe, &daemon, "herald_delivery_file_errors") == Some(0.0)
    })
    .expect("herald_delivery_file_errors did not go back to 0 once the file was fixed");
}

#[test]
fn a_removed_file_stops_future_runs_and_cancels_pending_ones() {
    let f = Fixture::start();
    let daemon = f.daemon("herald", &f.config(""));
    let confirm = format!("{EVERY_2S}  confirm: true\n  confirm_deadline: 1h\n");
    f.write_delivery("ask.yaml", &outbox_delivery(2, "ask", &confirm));
    let later_at = crate::in_seconds(10);
    f.write_delivery(
        "later.yaml",
        &outbox_delivery(
            2,
            "later",
            &format!("  at: \"{}\"\n", later_at.to_rfc3339()),
        ),
    );
    wait_for(Duration::from_secs(8), || {
        f.probe
            .runs(Some("ask"))
            .iter()
            .filter(|r| r.state == RunState::Pending)
            .count()
            >= 2
    })
    .expect("the confirm-asking delivery did not make 2 pending runs within 8 s");
    assert!(
        Utc::now() < later_at,
        "the test is too slow to remove the one-shot before it is due"
    );
    assert!(f.probe.runs(Some("later")).is_empty());

    std::fs::remove_file(f.deliveries().join("ask.yaml")).unwrap();
    std::fs::remove_file(f.deliveries().join("later.yaml")).unwrap();
    let removed_at = Utc::now();
    wait_for(Duration::from_secs(3), || {
        f.probe
            .runs(Some("ask"))
            .iter()
            .all(|r| r.state == RunState::Cancelled)
    })
    .expect("the pending runs of the removed file were not cancelled within 3 s");
    let cancelled = f.probe.runs(Some("ask"));
    for run in &cancelled {
        assert_eq!(
            run.cancel_reason,
            Some(CancelReason::DeliveryRemoved),
            "{}",
            run.id
        );
        assert_eq!(run.cancelled_by, None, "the system cancelled {}", run.id);
    }
    let logged = log_count(
        f.dir.path(),
        &["herald"],
        "Run cancelled: its delivery file was removed.",
    );
    assert!(logged >= cancelled.len(), "{logged} log lines");

    // Past the one-shot's instant and several cron ticks: nothing new.
    let until =
        (later_at + chrono::Duration::seconds(2)).max(removed_at + chrono::Duration::seconds(5));
    std::thread::sleep((until - Utc::now()).to_std().unwrap_or_default());
    let after: Vec<_> = f
        .probe
        .runs(Some("ask"))
        .into_iter()
        .filter(|r| r.created_at > removed_at)
        .collect();
    assert!(after.is_empty(), "runs created after removal: {after:?}");
    assert!(
        f.probe.runs(Some("later")).is_empty(),
        "the removed one-shot ran"
    );
    let written = std::fs::read_dir(f.outbox()).unwrap().count();
    assert_eq!(written, 0, "messages written");
    println!(
        "removed file: {} pending runs cancelled (delivery_removed, {logged} log lines), 0 runs after removal, 0 messages",
        cancelled.len()
    );
    drop(daemon);
}

#[test]
fn an_edit_changes_future_runs_only() {
    let f = Fixture::start();
    let _daemon = f.daemon("herald", &f.config(""));
    f.write_delivery("news.yaml", &outbox_delivery(2, "v1", EVERY_2S));
    wait_for(Duration::from_secs(6), || {
        f.probe
            .runs(Some("news"))
            .iter()
            .any(|r| r.state == RunState::Sent)
    })
    .expect("the first version sent nothing within 6 s");
    let before_edit = f.probe.runs(Some("news"));
    let edited_at = Utc::now();
    f.write_delivery("news.yaml", &outbox_delivery(2, "v2", EVERY_2S));
    let later = edited_at + chrono::Duration::seconds(2);
    wait_for(Duration::from_secs(8), || {
        f.probe
            .runs(Some("news"))
            .iter()
            .any(|r| r.scheduled_for > later && r.state == RunState::Sent)
    })
    .expect("no run of the edited version was sent within 8 s");

    let runs = f.probe.runs(Some("news"));
    let (mut old, mut new) = (0, 0);
    for run in &runs {
        let definition = f.probe.definition(&run.id);
        if run.created_at < edited_at {
            old += 1;
            assert!(definition.contains("v1 "), "{} kept v1", run.id);
        } else if run.scheduled_for > later {
            new += 1;
            assert!(definition.contains("v2 "), "{} uses v2", run.id);
            if run.state == RunState::Sent {
                let files = f.outbox_files(run.id.as_str());
                let body = std::fs::read_to_string(&files[0]).unwrap();
                assert!(body.contains("v2 N"), "{body}");
            }
        }
    }
    // The runs made before the edit are untouched: same snapshot, same messages.
    for run in before_edit.iter().filter(|r| r.state == RunState::Sent) {
        let now = f.probe.run(run.id.as_str()).unwrap();
        assert_eq!(now.definition_hash, run.definition_hash);
        for file in f.outbox_files(run.id.as_str()) {
            let body = std::fs::read_to_string(file).unwrap();
            assert!(body.contains("v1 N"), "{body}");
        }
    }
    println!(
        "edit: {} runs, {old} created before the edit with v1, {new} after with v2",
        runs.len()
    );
    assert!(old >= 1 && new >= 1);
}

#[test]
fn sighup_rescans_a_folder_whose_events_are_missed() {
    let f = Fixture::start();
    let daemon = f.daemon("herald", &f.config(""));
    std::thread::sleep(Duration::from_millis(300));
    // Swap the folder for a new one, as a deploy tool might: the watch
    // stays on the old folder, so files in the new one make no events.
    let fresh = f.dir.path().join("deliveries.new");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::rename(f.deliveries(), f.dir.path().join("deliveries.old")).unwrap();
    std::fs::rename(&fresh, f.deliveries()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    f.write_delivery("hup.yaml", &outbox_delivery(2, "hup", ""));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        f.probe.run("hup@once").is_none(),
        "the watcher saw the file: this test needs a folder whose events are missed"
    );
    daemon.signal(libc::SIGHUP);
    let picked = wait_for(Duration::from_secs(3), || f.probe.run("hup@once").is_some())
        .expect("SIGHUP did not pick up the file within 3 s (the safety net is 30 s)");
    wait_for(Duration::from_secs(5), || {
        f.outbox_files("hup@once").len() == 2
    })
    .expect("the delivery picked up on SIGHUP sent nothing");
    assert!(daemon.log().contains("Configuration reloaded."));
    println!("SIGHUP: a file the watcher missed was scheduled {picked:?} after the signal");
}

/// The feedback user's token, and the `users` block that declares it.
const FEEDBACK_TOKEN: &str = "ses-webhook-token";

fn feedback_user() -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(FEEDBACK_TOKEN.as_bytes()));
    format!("users:\n  - name: ses\n    token_sha256: \"{digest}\"\n    roles: [feedback]\n")
}

/// Edits the daemon's config file with `edit`, sends SIGHUP, and waits
/// for the reload's log line number `nth`.
fn reload(f: &Fixture, daemon: &Daemon, nth: usize, edit: impl Fn(String) -> String) {
    let file = f.dir.path().join("herald.yaml");
    let yaml = edit(std::fs::read_to_string(&file).unwrap());
    std::fs::write(&file, yaml).unwrap();
    daemon.signal(libc::SIGHUP);
    wait_for(Duration::from_secs(5), || {
        log_count(f.dir.path(), &["herald"], "Configuration reloaded.") >= nth
    })
    .unwrap_or_else(|| panic!("reload {nth} not logged within 5 s:\n{}", daemon.log()));
}

#[test]
fn sighup_reloads_the_soft_threshold_the_audience_roots_and_the_deliveries_folder() {
    let f = Fixture::start();
    let sink = SmtpSink::start();
    let lists = f.dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(lists.join("vip.csv"), "id,email\nv1,vip-v1@test.example\n").unwrap();
    let config = format!(
        "{}{}quarantine: {{ soft_threshold: 5 }}\n",
        f.config(&sink.email_plugin()),
        feedback_user()
    );
    let daemon = f.daemon("herald", &config);
    let at_once = "  confirm: false\n";
    f.write_delivery("bounce.yaml", &email_delivery("bounce", 1, at_once));
    let vip = email_delivery("vip", 0, at_once).replace(
        "audience:\n  recipients:\n",
        "audience:\n  file: ../lists/vip.csv\n",
    );
    f.write_delivery("vip.yaml", &vip);
    wait_for(Duration::from_secs(5), || {
        f.probe
            .run("bounce@once")
            .is_some_and(|r| r.state == RunState::Sent)
    })
    .expect("bounce@once was not sent within 5 s");
    assert!(
        daemon.log().contains("add its folder to `audience_roots`"),
        "vip.yaml's audience outside the roots is reported:\n{}",
        daemon.log()
    );
    assert!(f.probe.run("vip@once").is_none());

    // Two soft bounces: under the starting threshold of 5.
    let feedback = format!("{}/api/v1/feedback", daemon.url());
    let bounce = r#"{"event":"bounced","kind":"soft","run_id":"bounce@once","recipient_id":"r0"}"#;
    for _ in 0..2 {
        let answer = post_json(&f.probe, &feedback, FEEDBACK_TOKEN, bounce);
        assert_eq!(answer.map(|a| a.0), Some(200));
    }
    let address = vec!["bounce-r0@test.example".to_owned()];
    let quarantined = || {
        f.probe
            .block_on(f.probe.store().suppressed(&address))
            .unwrap()[0]
    };
    assert_eq!(quarantined(), None);

    // A threshold of 3, the lists folder as an audience root, and a
    // restart-only key changed beside them.
    reload(&f, &daemon, 1, |yaml| {
        yaml.replace("soft_threshold: 5", "soft_threshold: 3")
            .replace("batch_size: 50", "batch_size: 40")
            + "audience_roots: [lists]\n"
    });
    let loaded = wait_for(Duration::from_secs(5), || f.probe.run("vip@once").is_some())
        .expect("vip.yaml did not load within 5 s of the reload that added its audience root");
    wait_for(Duration::from_secs(5), || {
        sink.per_address().contains_key("vip-v1@test.example")
    })
    .expect("the delivery whose root was added sent nothing");
    let log = daemon.log();
    assert!(
        log.contains("need a restart") && log.contains("sending.batch_size"),
        "the restart-only key is named:\n{log}"
    );
    let answer = post_json(&f.probe, &feedback, FEEDBACK_TOKEN, bounce);
    assert_eq!(answer.map(|a| a.0), Some(200));
    assert_eq!(
        quarantined(),
        Some(SuppressionList::Quarantine),
        "the third soft bounce reaches the reloaded threshold of 3"
    );

    // A new deliveries folder: its files load, and the watch follows it.
    let moved = f.dir.path().join("deliveries2");
    std::fs::create_dir(&moved).unwrap();
    std::fs::write(
        moved.join("moved.yaml"),
        email_delivery("moved", 1, at_once),
    )
    .unwrap();
    reload(&f, &daemon, 2, |yaml| {
        yaml.replace(
            "deliveries_dir: deliveries\n",
            "deliveries_dir: deliveries2\n",
        )
    });
    wait_for(Duration::from_secs(5), || {
        f.probe.run("moved@once").is_some()
    })
    .expect("the new deliveries folder's file did not load within 5 s of the reload");
    std::fs::write(moved.join(".late.tmp"), email_delivery("late", 1, at_once)).unwrap();
    std::fs::rename(moved.join(".late.tmp"), moved.join("late.yaml")).unwrap();
    let seen = wait_for(Duration::from_secs(5), || {
        f.probe.run("late@once").is_some()
    })
    .expect("a file dropped in the new folder was not seen within 5 s (the safety net is 30 s)");
    println!(
        "SIGHUP: audience root added, vip.yaml loaded {loaded:?} after the reload; 2 soft bounces kept at threshold 5, the 3rd quarantined at the reloaded 3; new deliveries folder loaded, a file dropped in it seen {seen:?} after"
    );
}
