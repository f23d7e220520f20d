//! The security rules of guarantees.md against the running daemon: guessed
//! API tokens, tampered tracking and unsubscribe tokens, hostile templates,
//! oversized and malformed bodies, and CR/LF in recipient data sent through
//! the real e-mail plugin into an SMTP sink.

use crate::{ADMIN, Api, Bed, VIEWER, run_path};
use herald_test_support::eml::{self, Eml};
use herald_test_support::{Daemon, RedisServer, SmtpSink};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// An e-mail delivery of `n` inline recipients with `content` (YAML lines).
fn email_delivery(n: usize, content: &str) -> String {
    let mut yaml = String::from("channel: email\naudience:\n  recipients:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "    - {{ id: r{i}, email: \"r{i}@test.example\" }}\n"
        ));
    }
    yaml.push_str("content:\n  from: \"Shop <news@shop.example>\"\n  subject: Hi\n");
    yaml.push_str(content);
    yaml
}

/// What a tampered token could change: the run's tracking figures and
/// the denylist.
fn written(api: &Api, run: &str) -> (Value, Value) {
    let kpi = api.get(&run_path(run))["kpi"].clone();
    let figures = serde_json::json!([kpi["opened"], kpi["clicked"], kpi["unsubscribed"]]);
    (figures, api.get("/api/v1/suppressions?list=denylist"))
}

/// Variants of a valid token that must all be refused.
fn tampered(token: &str) -> Vec<String> {
    let flip = |at: usize| {
        let mut bytes = token.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    vec![
        flip(token.len() - 1),
        flip(token.len() / 2),
        flip(0),
        token[..token.len() - 4].to_owned(),
        format!("{token}AAAA"),
        "A".repeat(token.len()),
        "x".repeat(8_000),
        "%2e%2e%2f%2e%2e%2fapi%2fv1%2fruns".to_owned(),
        "%0d%0aFORGED-LOG-LINE".to_owned(),
    ]
}

/// The token of a tracking URL `http://host/t/c/{token}`.
fn token_of(url: &str, route: &str) -> String {
    let at = url
        .find(route)
        .unwrap_or_else(|| panic!("{url} has no {route}"));
    url[at + route.len()..].to_owned()
}

#[test]
fn guessed_tokens_tampered_links_hostile_templates_and_bad_bodies_are_refused() {
    let bed = Bed::new();
    let redis = RedisServer::start();
    bed.deliver(
        "news.yaml",
        email_delivery(
            5,
            "  html: \"<p><a href='https://shop.example/sale'>sale</a></p>\"\n",
        ),
    );
    bed.deliver(
        "include.yaml",
        email_delivery(3, "  text: \"{% include '/etc/passwd' %}\"\n"),
    );
    bed.deliver(
        "forever.yaml",
        email_delivery(
            3,
            "  text: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"\n",
        ),
    );
    // G2: waits for a confirmer for the whole test; only refused tries come.
    bed.deliver(
        "held.yaml",
        email_delivery(4, "  text: held\nschedule:\n  confirm: true\n"),
    );
    let config = bed.config(
        &format!("  kind: redis\n  url: {}\n", redis.url()),
        &bed.outbox_plugin(),
        "kpi:\n  flush_interval: 200ms\n  rates_interval: 1h\n",
    );
    let mut daemon = Daemon::start(bed.dir.path(), &config);
    let api = Api::new(&daemon);
    for run in ["news@once", "include@once", "forever@once"] {
        api.wait(&run_path(run), Duration::from_secs(30), |r| {
            r["state"] == "sent"
        });
    }
    api.wait(&run_path("held@once"), Duration::from_secs(30), |r| {
        r["state"] == "pending"
    });
    let pending_since = Instant::now();

    // Token guessing: every unknown token gets 401, on reads and writes.
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..300u32 {
        let guess = hex::encode(Sha256::digest(format!("guess-{i}").as_bytes()));
        let (method, path) = if i % 2 == 0 {
            ("GET", "/api/v1/runs")
        } else {
            ("POST", "/api/v1/runs/news%40once/cancel")
        };
        let answer = api.send(method, path, Some(&guess), None);
        assert_eq!(
            answer.status, 401,
            "{method} {path} with a guessed token: {}",
            answer.body
        );
        refused += 1;
    }
    let digest_of_viewer = hex::encode(Sha256::digest(VIEWER.as_bytes()));
    for near in [
        format!("{VIEWER}x"),
        VIEWER[..VIEWER.len() - 1].to_owned(),
        VIEWER.to_uppercase(),
        digest_of_viewer,
        String::new(),
    ] {
        assert_eq!(
            api.send("GET", "/api/v1/runs", Some(&near), None).status,
            401,
            "{near:?}"
        );
        refused += 1;
    }
    assert_eq!(api.send("GET", "/api/v1/runs", None, None).status, 401);
    assert_eq!(
        api.send("GET", "/api/v1/runs", Some(VIEWER), None).status,
        200
    );
    println!(
        "security: {} guessed or near tokens all got 401 in {:?}",
        refused + 1,
        started.elapsed()
    );
    assert_eq!(
        api.get(&run_path("news@once"))["state"],
        "sent",
        "a guessed token changed the run"
    );

    // Tampered tracking and unsubscribe tokens: 404, no Location, no write.
    let messages = eml::of_run(&bed.path("outbox"), "news@once");
    assert_eq!(messages.len(), 5);
    let first: &Eml = messages.values().next().unwrap();
    let click = first
        .attributes("href")
        .into_iter()
        .find(|h| h.contains("/t/c/"))
        .expect("a rewritten link");
    let open = first
        .attributes("src")
        .into_iter()
        .find(|s| s.contains("/t/o/"))
        .expect("an open pixel");
    let unsubscribe = first.unsubscribe();
    std::thread::sleep(Duration::from_millis(600));
    let before = written(&api, "news@once");
    let mut attempts = 0;
    for (route, url) in [("/t/c/", &click), ("/t/o/", &open), ("/u/", &unsubscribe)] {
        for bad in tampered(&token_of(url, route)) {
            let methods: &[&str] = if route == "/u/" {
                &["GET", "POST"]
            } else {
                &["GET"]
            };
            for method in methods {
                let answer = api.send(method, &format!("{route}{bad}"), None, None);
                assert_eq!(answer.status, 404, "{method} {route}{bad}: {}", answer.body);
                assert_eq!(answer.location, None, "{method} {route}{bad} redirects");
                attempts += 1;
            }
        }
    }
    // Longer than two flushes: anything buffered would be written by now.
    std::thread::sleep(Duration::from_millis(1_000));
    let after = written(&api, "news@once");
    println!(
        "security: {attempts} tampered tracking/unsubscribe requests: all 404, none redirected; figures before {} after {}",
        before.0, after.0
    );
    assert_eq!(before, after, "a tampered token wrote something");
    assert!(
        !daemon
            .log()
            .lines()
            .any(|l| l.starts_with("FORGED-LOG-LINE")),
        "a request forged a log line"
    );
    // The control: the genuine click redirects and is counted.
    let genuine = api.send(
        "GET",
        &format!("/t/c/{}", token_of(&click, "/t/c/")),
        None,
        None,
    );
    assert_eq!(genuine.status, 302);
    assert_eq!(
        genuine.location.as_deref(),
        Some("https://shop.example/sale")
    );
    api.wait(&run_path("news@once"), Duration::from_secs(10), |r| {
        r["kpi"]["clicked"] == 1
    });

    // Hostile templates: the include reads nothing, the loop is stopped.
    for (run, expected) in [("include@once", 3), ("forever@once", 3)] {
        let kpi = api.get(&run_path(run))["kpi"].clone();
        println!(
            "security: {run}: delivered {} bounces_errors {}",
            kpi["delivered"], kpi["bounces_errors"]
        );
        assert_eq!(kpi["bounces_errors"], expected, "{run}: {kpi}");
        assert_eq!(kpi["delivered"], 0, "{run}: {kpi}");
    }
    for file in crate::outbox_files(&bed.path("outbox")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains("root:x:0:0"),
            "{} holds /etc/passwd",
            file.display()
        );
    }

    // Oversized, malformed and ill-shaped bodies.
    let big = format!(
        r#"{{"event": "stop", "run_id": "{}"}}"#,
        "a".repeat(1024 * 1024 + 1024)
    );
    let answer = api.send(
        "POST",
        "/api/v1/feedback",
        Some(ADMIN),
        Some(big.into_bytes()),
    );
    assert_eq!(answer.status, 413, "{}", answer.body);
    let answer = api.send(
        "POST",
        "/api/v1/feedback",
        Some(ADMIN),
        Some(b"{\"event\": ".to_vec()),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.json()["error"].is_string(), "{}", answer.body);
    let answer = api.send(
        "POST",
        "/api/v1/feedback",
        Some(ADMIN),
        Some(b"{\"event\": 5}".to_vec()),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    let answer = api.send(
        "POST",
        "/api/v1/feedback",
        Some(ADMIN),
        Some(vec![0xff, 0xfe, 0x00, 0x7b]),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);

    // G2: a viewer's confirm is refused, and nothing of the pending run was
    // sent during the many scheduler ticks of this test.
    let refused = api.send(
        "POST",
        "/api/v1/runs/held%40once/confirm",
        Some(VIEWER),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.json()["error"],
        "You do not have the start_deliveries role: only users who hold it can confirm a send."
    );
    let guessed = api.send(
        "POST",
        "/api/v1/runs/held%40once/confirm",
        Some("guess"),
        None,
    );
    assert_eq!(guessed.status, 401, "{}", guessed.body);
    let held = api.get(&run_path("held@once"));
    let leaked = eml::of_run(&bed.path("outbox"), "held@once").len();
    println!(
        "G2: held@once pending for {:?} with a viewer's 403 and a guessed 401: state {}, sent {}, {leaked} messages written",
        pending_since.elapsed(),
        held["state"],
        held["kpi"]["sent"]
    );
    assert_eq!(held["state"], "pending");
    assert_eq!(leaked, 0, "messages of a run nobody confirmed");
    assert!(daemon.is_running(), "the daemon died:\n{}", daemon.log());
}

#[test]
fn line_breaks_in_recipient_data_never_become_headers_at_the_smtp_sink() {
    let bed = Bed::new();
    let redis = RedisServer::start();
    let sink = SmtpSink::start();
    let evil = "evil@attacker.example";
    let yaml = format!(
        r#"channel: email
audience:
  recipients:
    - {{ id: plain, email: "plain@test.example", name: "Ana", tag: "t1" }}
    - {{ id: subject, email: "subject@test.example", name: "Ana\r\nBcc: {evil}", tag: "t2" }}
    - {{ id: header, email: "header@test.example", name: "Ana", tag: "t3\r\nX-Injected: yes" }}
    - {{ id: lf, email: "lf@test.example", name: "Ana\nBcc: {evil}", tag: "t4" }}
    - {{ id: address, email: "address@test.example\r\nBcc: {evil}", name: "Ana", tag: "t5" }}
    - {{ id: body, email: "body@test.example", name: "Ana", tag: "t6", note: "line\r\nX-Injected: yes\r\n\r\nBcc: {evil}" }}
content:
  from: "Shop <news@shop.example>"
  subject: "Hello {{{{ name }}}}"
  text: "Note: {{{{ note | default('none') }}}}"
  headers:
    X-Tag: "{{{{ tag }}}}"
tracking: {{ opens: false, clicks: false }}
"#
    );
    bed.deliver("inject.yaml", yaml);
    let config = bed.config(
        &format!("  kind: redis\n  url: {}\n", redis.url()),
        &sink.email_plugin(),
        "",
    );
    let daemon = Daemon::start(bed.dir.path(), &config);
    let api = Api::new(&daemon);
    let run = api.wait(&run_path("inject@once"), Duration::from_secs(30), |r| {
        r["state"] == "sent"
    });
    let kpi = &run["kpi"];
    let messages = sink.messages();
    println!(
        "security: CR/LF: targeted {} excluded {} delivered {} bounces_errors {}; the sink got {} messages for {:?}",
        kpi["targeted"],
        kpi["excluded"],
        kpi["delivered"],
        kpi["bounces_errors"],
        messages.len(),
        sink.per_address().keys().collect::<Vec<_>>()
    );
    assert!(
        !sink.per_address().contains_key(evil),
        "a header injection reached {evil}"
    );
    for message in &messages {
        let text = String::from_utf8_lossy(&message.data);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        for line in head.lines() {
            let name = line
                .split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                name != "bcc" && name != "x-injected",
                "an injected header in the message to {:?}:\n{head}",
                message.to
            );
        }
    }
    // Plain and body-only data are sent; header values with CR or LF are
    // refused (failed), the broken address is excluded.
    let to: Vec<String> = sink.per_address().into_keys().collect();
    assert_eq!(to, ["body@test.example", "plain@test.example"], "{to:?}");
    assert_eq!(kpi["delivered"], 2, "{kpi}");
    assert_eq!(kpi["bounces_errors"], 3, "{kpi}");
    assert_eq!(kpi["excluded"], 1, "{kpi}");
}
