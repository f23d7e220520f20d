//! The confirm page in headless Chromium: a confirmer confirms (accepting
//! the "OK?" dialog) and the run moves on, and cancels another; a viewer
//! sees the 403 message; the Deployment view shows the KPIs and follows a
//! throttled run while it sends, without a reload. Screenshots of both
//! views land in `target/screenshots/`.

use super::webdriver::Browser;
use super::*;

async fn sign_in(browser: &Browser, daemon: &Daemon, token: &str) {
    browser.goto(&format!("{}/", daemon.url())).await;
    let input = browser.find("#token").await;
    browser.type_into(&input, token).await;
    let submit = browser.find("#login button[type=submit]").await;
    browser.click(&submit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmer_confirms_on_the_page_and_a_viewer_sees_the_403_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded_store(dir.path());
    confirmed_delivery(dir.path(), "promo", 3);
    confirmed_delivery(dir.path(), "digest", 2);
    throttled_delivery(dir.path(), "slow", 60, 8);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, SMALL_BATCHES));
    let api = Api::new(&daemon);
    api.wait_run("promo@once", |r| r["state"] == "pending")
        .await;
    api.wait_run("digest@once", |r| r["state"] == "pending")
        .await;
    api.wait_run("slow@once", |r| r["state"] == "pending").await;
    let shots = screenshots();

    // A viewer may look, but the server refuses the confirmation.
    let browser = Browser::start().await;
    sign_in(&browser, &daemon, VIEWER).await;
    let button = browser
        .find(r#"tr[data-run-id="digest@once"] button.confirm"#)
        .await;
    browser
        .screenshot(&shots.join("confirm-page-viewer.png"))
        .await;
    browser.click(&button).await;
    assert_eq!(browser.alert_text().await, "OK?");
    browser.accept_alert().await;
    let message = browser.wait_text("#message", |t| !t.is_empty()).await;
    assert_eq!(
        message,
        "You do not have the start_deliveries role: only users who hold it can confirm a send."
    );
    browser
        .screenshot(&shots.join("confirm-page-viewer-refused.png"))
        .await;
    let (_, run) = api.call("GET", "/api/v1/runs/digest%40once", VIEWER).await;
    assert_eq!(run["state"], "pending");
    browser.quit().await;

    // A confirmer confirms; the run leaves pending and is sent.
    let browser = Browser::start().await;
    sign_in(&browser, &daemon, CONFIRMER).await;
    // Delivery with its label, channel, scheduled instant, to_send, preview.
    let row = browser
        .wait_text(r#"#pending tr[data-run-id="promo@once"]"#, |t| {
            t.contains("promo (Winter promo)")
        })
        .await;
    let (_, run) = api.call("GET", "/api/v1/runs/promo%40once", VIEWER).await;
    let year = &run["scheduled_for"].as_str().unwrap()[..4];
    assert!(row.contains("outbox") && row.contains(year), "{row}");
    let preview = browser
        .wait_text(r#"tr[data-run-id="promo@once"] .preview"#, |t| {
            !t.is_empty()
        })
        .await;
    assert!(preview.contains("Hello Name1"), "{preview}");
    let to_send = browser
        .wait_text(r#"tr[data-run-id="promo@once"] .to-send"#, |t| {
            !t.is_empty()
        })
        .await;
    assert_eq!(to_send, "3");
    browser
        .screenshot(&shots.join("confirm-page-pending.png"))
        .await;
    // Cancel asks first, then the run is cancelled by its user.
    let button = browser
        .find(r#"tr[data-run-id="digest@once"] button.cancel"#)
        .await;
    browser.click(&button).await;
    assert_eq!(browser.alert_text().await, "Cancel digest@once?");
    browser.accept_alert().await;
    browser
        .wait_text("#message", |t| t == "Run digest@once is now cancelled.")
        .await;
    let (_, run) = api.call("GET", "/api/v1/runs/digest%40once", VIEWER).await;
    assert_eq!(
        (run["state"].as_str(), run["cancelled_by"].as_str()),
        (Some("cancelled"), Some("alice"))
    );

    let button = browser
        .find(r#"tr[data-run-id="promo@once"] button.confirm"#)
        .await;
    browser.click(&button).await;
    assert_eq!(browser.alert_text().await, "OK?");
    browser.accept_alert().await;
    browser
        .wait_text("#message", |t| t.starts_with("Run promo@once is now"))
        .await;
    let run = api.wait_run("promo@once", |r| r["state"] == "sent").await;
    assert_eq!(run["confirmed_by"], "alice");
    // The Deployment view shows the finished run with the figures of kpis.md.
    let row = r#"#deployment tr[data-run-id="promo@once"]"#;
    browser
        .wait_text(&format!("{row} .sent"), |t| t == "3")
        .await;
    for (column, expected) in [
        ("targeted", "3"),
        ("excluded", "0"),
        ("to-send", "3"),
        ("remaining", "0"),
        ("delivered", "3 (100.0 %)"),
        ("bounces-errors", "0 (0.0 %)"),
        ("cancelled", "0"),
        ("opened", "-"),
        ("unsubscribed", "0"),
    ] {
        let shown = browser
            .wait_text(&format!("{row} .{column}"), |_| true)
            .await;
        assert_eq!(shown, expected, "{column}");
    }
    assert_eq!(progress(&browser, "promo@once").await.1, 100.0);

    // A throttled run: the view refreshes by itself while it sends.
    browser.script("window.heraldNotReloaded = true;").await;
    let button = browser
        .find(r#"tr[data-run-id="slow@once"] button.confirm"#)
        .await;
    browser.click(&button).await;
    browser.accept_alert().await;
    let mut seen: Vec<f64> = Vec::new();
    let mut shot = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (state, share) = progress(&browser, "slow@once").await;
        if seen.last() != Some(&share) {
            seen.push(share);
        }
        if state == "sending" && share > 0.0 && share < 100.0 && !shot {
            browser
                .screenshot(&shots.join("confirm-page-deployment-sending.png"))
                .await;
            shot = true;
        }
        if state == "sent" && share == 100.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slow@once never showed sent: {state} {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let between: Vec<&f64> = seen.iter().filter(|s| **s > 0.0 && **s < 100.0).collect();
    assert!(
        between.len() >= 2,
        "the bar moved only through {seen:?} while the run sent"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {seen:?}"
    );
    assert_eq!(
        browser
            .script("return window.heraldNotReloaded === true;")
            .await,
        true,
        "the page was reloaded"
    );
    browser
        .wait_text(r#"#deployment tr[data-run-id="slow@once"] .sent"#, |t| {
            t == "60"
        })
        .await;
    browser
        .screenshot(&shots.join("confirm-page-deployment.png"))
        .await;
    browser.quit().await;
}

/// The state and the progress bar's value (percent) of `run` in the
/// Deployment view; `("", -1.0)` while the run is not shown there.
async fn progress(browser: &Browser, run: &str) -> (String, f64) {
    let script = format!(
        r#"const row = document.querySelector('#deployment tr[data-run-id="{run}"]');
           if (!row) return ["", "-1"];
           return [row.querySelector(".state").textContent,
                   row.querySelector("[role=progressbar]").getAttribute("aria-valuenow")];"#
    );
    let value = browser.script(&script).await;
    let state = value[0].as_str().unwrap_or_default().to_owned();
    let share = value[1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    (state, share)
}
