//! The whole story of issue 8, item 7.

use super::*;
use herald_test_support::eml;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const RECIPIENTS: usize = 1000;

/// Writes the `story` delivery: an e-mail to 1,000 recipients at `at`.
fn write_delivery(dir: &Path, at: chrono::DateTime<chrono::Utc>) {
    let deliveries = dir.join("deliveries");
    let audience = deliveries.join("audience.csv");
    if !audience.exists() {
        let mut csv = String::from("id,email,first_name\n");
        for n in 1..=RECIPIENTS {
            csv.push_str(&format!("r{n},u{n}@test.example,Name{n}\n"));
        }
        std::fs::write(&audience, csv).unwrap();
    }
    let yaml = format!(
        r#"id: story
channel: email
audience:
  file: audience.csv
content:
  from: "Shop <news@shop.example>"
  subject: "Hello {{{{ first_name }}}}"
  text: "Hello {{{{ first_name }}}}"
  html: |
    <html><body>
    <p>Hello {{{{ first_name }}}}</p>
    <p><a href="https://shop.example/p/{{{{ recipient_id }}}}?a=1&amp;b=2">Your page</a></p>
    <p><a href="mailto:help@shop.example">Help</a></p>
    </body></html>
schedule:
  at: {at}
"#,
        at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    std::fs::write(deliveries.join("story.yaml"), yaml).unwrap();
}

fn soon() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now() + chrono::Duration::seconds(2);
    chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap()
}

fn run_id(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("story@{}", at.format("%Y%m%dT%H%M%SZ"))
}

/// A token with one character of its signature changed.
fn tamper(url: &str) -> String {
    let mut bytes = url.as_bytes().to_vec();
    let i = bytes.len() - 4;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn n(recipient: &str) -> usize {
    recipient[1..].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_feedback_and_suppressions_tell_the_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let public_port = Daemon::free_port();
    let public_url = format!("http://127.0.0.1:{public_port}");
    let http =
        format!("  public_listen: \"127.0.0.1:{public_port}\"\n  public_url: \"{public_url}\"\n");
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &http));
    let first_at = soon();
    write_delivery(dir.path(), first_at);
    let api = Api::new(&daemon.url());
    let public = Api::new(&public_url);
    let first = run_id(first_at);
    let started = Instant::now();
    api.wait(&run_path(&first), Duration::from_secs(60), |r| {
        r["state"] == "sent"
    })
    .await;
    println!(
        "run 1 sent {RECIPIENTS} messages in {:?}",
        started.elapsed()
    );

    // ----- what the written messages carry -----
    let outbox = dir.path().join("outbox");
    let messages = eml::of_run(&outbox, &first);
    assert_eq!(messages.len(), RECIPIENTS);
    let m1 = &messages["r1"];
    assert_eq!(
        m1.headers["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
    assert!(
        m1.unsubscribe().starts_with(&format!("{public_url}/u/")),
        "{}",
        m1.unsubscribe()
    );
    let hrefs = m1.attributes("href");
    assert_eq!(hrefs.len(), 2, "{hrefs:?}");
    assert!(
        hrefs[0].starts_with(&format!("{public_url}/t/c/")),
        "{hrefs:?}"
    );
    assert_eq!(
        hrefs[1], "mailto:help@shop.example",
        "only web links are tracked"
    );
    assert!(
        !m1.raw.contains("https://shop.example/p/"),
        "the original URL is only inside the signed token"
    );
    let pixels: Vec<String> = m1
        .attributes("src")
        .into_iter()
        .filter(|s| s.contains("/t/o/"))
        .collect();
    assert_eq!(pixels.len(), 1);

    // ----- a tampered token gets 404 and writes nothing -----
    let bystander = &messages["r999"];
    for url in [
        tamper(&bystander.attributes("href")[0]),
        tamper(
            &bystander
                .attributes("src")
                .into_iter()
                .find(|s| s.contains("/t/o/"))
                .unwrap(),
        ),
    ] {
        let answer = public.http.get(&url).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{url}");
        assert!(answer.headers().get("location").is_none());
    }
    let answer = public
        .http
        .post(tamper(&bystander.unsubscribe()))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);

    // ----- the public listener serves only /t and /u; the API listener not those -----
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/runs",
        "/api/v1/openapi.json",
    ] {
        let (status, _) = public.call("GET", path, ADMIN, None).await;
        assert_eq!(status, 404, "public {path}");
    }
    let (status, _) = public
        .call(
            "POST",
            "/api/v1/feedback",
            ADMIN,
            Some(json!({"event": "stop", "provider_message_id": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let on_api = pixels[0].replace(&public_url, &daemon.url());
    assert_eq!(api.http.get(&on_api).send().await.unwrap().status(), 404);

    // ----- opens and clicks through the real endpoints -----
    let mut opened = BTreeSet::new();
    let mut clicked = BTreeSet::new();
    for (recipient, message) in &messages {
        let k = n(recipient);
        if k <= 300 {
            let pixel = message
                .attributes("src")
                .into_iter()
                .find(|s| s.contains("/t/o/"))
                .unwrap();
            // Some open twice: still one unique open.
            for _ in 0..(1 + k % 2) {
                let answer = public.http.get(&pixel).send().await.unwrap();
                assert_eq!(answer.status(), 200);
                assert_eq!(answer.headers()["content-type"], "image/gif");
            }
            opened.insert(k);
        }
        if (201..=400).contains(&k) {
            let link = &message.attributes("href")[0];
            let answer = public.http.get(link).send().await.unwrap();
            assert_eq!(answer.status(), 302);
            assert_eq!(
                answer.headers()["location"],
                format!("https://shop.example/p/{recipient}?a=1&b=2").as_str()
            );
            clicked.insert(k);
            opened.insert(k);
        }
    }

    // ----- unsubscribes: the page asks, the one-click POST acts -----
    let mut unsubscribed = BTreeSet::new();
    for k in 971..=980 {
        let url = messages[&format!("r{k}")].unsubscribe();
        let page = public.http.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("<form method=\"post\""));
        let done = public
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
        unsubscribed.insert(k);
        // A tracked action: it counts as an open too (kpis.md, `opened`).
        opened.insert(k);
    }

    // ----- feedback: bounces, complaints, unknown ids -----
    let by_provider = |k: usize| messages[&format!("r{k}")].provider_id.clone();
    let mut events = Vec::new();
    let hard: BTreeSet<usize> = (901..=950).collect();
    let soft: BTreeSet<usize> = (951..=960).collect();
    let complained: BTreeSet<usize> = (961..=970).collect();
    for k in &hard {
        events.push(
            json!({"event": "bounced", "kind": "hard", "provider_message_id": by_provider(*k)}),
        );
    }
    for k in &soft {
        events.push(
            json!({"event": "bounced", "kind": "soft", "provider_message_id": by_provider(*k)}),
        );
    }
    for k in &complained {
        events
            .push(json!({"event": "complained", "run_id": first, "recipient_id": format!("r{k}")}));
    }
    events.push(json!({"event": "delivered", "provider_message_id": by_provider(1)}));
    for k in 0..5 {
        events.push(json!({"event": "bounced", "kind": "hard", "provider_message_id": format!("unknown-{k}")}));
    }
    events.push(json!({"event": "stop", "run_id": first, "recipient_id": "nobody"}));
    let batch = json!({ "events": events });
    let (status, body) = api
        .call("POST", "/api/v1/feedback", VIEWER, Some(batch.clone()))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = api
        .call("POST", "/api/v1/feedback", FEEDER, Some(batch))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"applied": 71, "unknown": 6}));
    // A single event (not a batch) is accepted too; a repeat changes nothing.
    let one = json!({"event": "bounced", "kind": "hard", "provider_message_id": by_provider(901)});
    let (status, body) = api.call("POST", "/api/v1/feedback", ADMIN, Some(one)).await;
    assert_eq!((status, body), (200, json!({"applied": 1, "unknown": 0})));

    // ----- the KPIs equal the test's own count -----
    let sent = RECIPIENTS as u64;
    let bounces = (hard.len() + soft.len()) as u64;
    let delivered = sent - bounces;
    let expected = json!({
        "targeted": sent, "excluded": 0, "to_send": sent, "sent": sent, "remaining": 0,
        "delivered": delivered, "bounces_errors": bounces, "cancelled": 0,
        "opened": opened.len(), "clicked": clicked.len(), "unsubscribed": unsubscribed.len(),
        "delivered_rate": delivered as f64 / sent as f64,
        "bounce_error_rate": bounces as f64 / sent as f64,
        "open_rate": opened.len() as f64 / delivered as f64,
        "click_rate": clicked.len() as f64 / delivered as f64,
        "excluded_by_reason": {},
    });
    let kpi_matches = |run: &Value| {
        expected
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| run["kpi"][k] == *v)
    };
    let run = api
        .wait(&run_path(&first), Duration::from_secs(15), |r| {
            kpi_matches(r)
        })
        .await;
    println!(
        "run 1: sent {sent}, delivered {delivered}, bounces {bounces}, opened {}, clicked {}, unsubscribed {}",
        opened.len(),
        clicked.len(),
        unsubscribed.len()
    );
    assert!(kpi_matches(&run), "{}", run["kpi"]);
    // Computing statistics from the records gives the same figures.
    let (status, body) = api
        .call("POST", "/api/v1/deliveries/story/statistics", STARTER, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, run) = api.call("GET", &run_path(&first), VIEWER, None).await;
    assert!(kpi_matches(&run), "after recount: {}", run["kpi"]);

    // ----- suppressions as the API lists them -----
    let listed = |list: &'static str| {
        let api = &api;
        async move {
            let (status, page) = api
                .call(
                    "GET",
                    &format!("/api/v1/suppressions?list={list}&limit=1000"),
                    VIEWER,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["address"].as_str().unwrap().to_owned(),
                        e["reason"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<BTreeMap<String, String>>()
        }
    };
    let quarantine = listed("quarantine").await;
    let denylist = listed("denylist").await;
    let address = |k: &usize| format!("u{k}@test.example");
    assert_eq!(
        quarantine.keys().cloned().collect::<BTreeSet<_>>(),
        hard.iter().map(address).collect::<BTreeSet<_>>()
    );
    let mut denied: BTreeSet<String> = complained.iter().map(address).collect();
    denied.extend(unsubscribed.iter().map(address));
    assert_eq!(denylist.keys().cloned().collect::<BTreeSet<_>>(), denied);
    assert_eq!(denylist[&address(&971)], "unsubscribed");
    assert_eq!(denylist[&address(&961)], "complained");

    // ----- the profile history shows the bounce -----
    let (status, history) = api
        .call("GET", "/api/v1/profiles/r901/messages", VIEWER, None)
        .await;
    assert_eq!(status, 200, "{history}");
    let entries = history["messages"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["run_id"] == first.as_str() && e["outcome"] == "bounced"),
        "{history}"
    );

    // ----- the next run excludes the quarantined and denylisted addresses -----
    let second_at = soon();
    assert_ne!(second_at, first_at);
    write_delivery(dir.path(), second_at);
    let second = run_id(second_at);
    let run = api
        .wait(&run_path(&second), Duration::from_secs(60), |r| {
            r["state"] == "sent"
        })
        .await;
    let excluded = (hard.len() + complained.len() + unsubscribed.len()) as u64;
    let kpi = &run["kpi"];
    println!(
        "run 2: targeted {}, excluded {}, delivered {}",
        kpi["targeted"], kpi["excluded"], kpi["delivered"]
    );
    assert_eq!(kpi["targeted"], sent);
    assert_eq!(kpi["excluded"], excluded);
    assert_eq!(
        kpi["excluded_by_reason"],
        json!({"quarantined": hard.len(), "denylisted": complained.len() + unsubscribed.len()})
    );
    assert_eq!(kpi["delivered"], sent - excluded);
    let written: BTreeSet<usize> = eml::of_run(&outbox, &second).keys().map(|r| n(r)).collect();
    assert_eq!(written.len() as u64, sent - excluded);
    for k in hard.iter().chain(&complained).chain(&unsubscribed) {
        assert!(!written.contains(k), "r{k} was sent again");
    }
    // One soft bounce is under the threshold: those addresses still get mail.
    assert!(soft.iter().all(|k| written.contains(k)));
}
