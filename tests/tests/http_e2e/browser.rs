//! The confirm page in headless Chromium: a confirmer confirms (accepting
//! the "OK?" dialog) and the run moves on; a viewer sees the 403 message.

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
    let store = format!(
        "  kind: embedded\n  path: {}\n",
        dir.path().join("herald.db").display()
    );
    confirmed_delivery(dir.path(), "promo", 3);
    confirmed_delivery(dir.path(), "digest", 2);
    let daemon = Daemon::start(dir.path(), &config(dir.path(), &store, ""));
    let api = Api::new(&daemon);
    api.wait_run("promo@once", |r| r["state"] == "pending")
        .await;
    api.wait_run("digest@once", |r| r["state"] == "pending")
        .await;
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
    // The Deployment view shows the finished run with its figures.
    browser
        .wait_text(r#"#deployment tr[data-run-id="promo@once"] .sent"#, |t| {
            t == "3"
        })
        .await;
    browser
        .screenshot(&shots.join("confirm-page-deployment.png"))
        .await;
    browser.quit().await;
}
