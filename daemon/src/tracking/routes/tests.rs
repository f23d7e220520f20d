//! The public routes in-process, over a real embedded store.

use super::*;
use crate::store::embedded::EmbeddedStore;
use crate::store::{RecipientOutcome, SuppressionList};
use crate::tracking::token::Signer;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

struct Harness {
    _dir: tempfile::TempDir,
    state: PublicState,
    /// The same store as `state.store`, for what only the embedded one does.
    embedded: EmbeddedStore,
    run: RunId,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path().join("db")).await.unwrap();
    let store: SharedStore = Arc::new(embedded.clone());
    let new = crate::store::conformance::new_run("d", 60, false);
    let run = new.id.clone();
    store.create_run(&new).await.unwrap();
    let at = crate::store::conformance::t(0);
    store
        .record_outcomes(
            &run,
            &[RecipientOutcome {
                recipient_id: "c1".into(),
                address: "ana@x.example".into(),
                outcome: crate::runs::Outcome::Delivered,
                reason: None,
                provider_message_id: None,
                detail: None,
                at,
            }],
        )
        .await
        .unwrap();
    let tracking = Arc::new(Tracking::new(Signer::new(vec![5; 32]), "http://t.example"));
    Harness {
        _dir: dir,
        state: PublicState {
            tracking,
            store,
            clock: Clock::fake(at),
        },
        embedded,
        run,
    }
}

impl Harness {
    fn path(&self, kind: LinkKind, recipient: &str, url: &str) -> String {
        let link = self
            .state
            .tracking
            .link(kind, self.run.as_str(), recipient, url)
            .expect("the harness's tracking has its key");
        link.strip_prefix("http://t.example").unwrap().to_owned()
    }

    async fn call(&self, method: &str, path: &str) -> Response {
        public_routes(self.state.clone())
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::from("List-Unsubscribe=One-Click"))
                    .unwrap(),
            )
            .await
            .unwrap()
    }

    /// No open, click or unsubscribe was counted, and the address is on no list.
    async fn assert_nothing_recorded(&self) {
        assert!(self.state.tracking.buffer().is_empty());
        let c = self.flushed().await;
        assert_eq!((c.opened, c.clicked, c.unsubscribed), (0, 0, 0));
        let listed = self
            .state
            .store
            .suppressed(&["ana@x.example".to_owned()])
            .await
            .unwrap();
        assert_eq!(listed, vec![None]);
    }

    async fn flushed(&self) -> crate::store::Counters {
        self.state.tracking.buffer().flush(&self.state.store).await;
        self.state
            .store
            .run(&self.run)
            .await
            .unwrap()
            .unwrap()
            .counters
    }
}

fn tamper(path: &str) -> String {
    let mut bytes = path.as_bytes().to_vec();
    let i = bytes.len() - 3;
    bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn a_click_redirects_to_the_signed_url_and_counts_an_open_too() {
    let h = harness().await;
    let path = h.path(LinkKind::Click, "c1", "https://shop.example/x?y=1");
    for _ in 0..3 {
        let answer = h.call("GET", &path).await;
        assert_eq!(answer.status(), StatusCode::FOUND);
        assert_eq!(
            answer.headers()[header::LOCATION],
            "https://shop.example/x?y=1"
        );
    }
    let c = h.flushed().await;
    assert_eq!((c.opened, c.clicked), (1, 1));
}

#[tokio::test]
async fn the_pixel_is_a_gif_and_counts_one_unique_open() {
    let h = harness().await;
    let path = h.path(LinkKind::Open, "c1", "");
    let answer = h.call("GET", &path).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()[header::CONTENT_TYPE], "image/gif");
    let body = axum::body::to_bytes(answer.into_body(), 1024)
        .await
        .unwrap();
    assert!(body.starts_with(b"GIF89a"));
    h.call("GET", &path).await;
    assert_eq!(h.flushed().await.opened, 1);
}

#[tokio::test]
async fn tampered_tokens_get_404_never_redirect_and_never_write() {
    let h = harness().await;
    let click = h.path(LinkKind::Click, "c1", "https://shop.example/");
    let open = h.path(LinkKind::Open, "c1", "");
    let unsubscribe = h.path(LinkKind::Unsubscribe, "c1", "");
    for (method, path) in [
        ("GET", tamper(&click)),
        ("GET", tamper(&open)),
        ("GET", tamper(&unsubscribe)),
        ("POST", tamper(&unsubscribe)),
        // A valid token on the route of another kind.
        ("GET", click.replace("/t/c/", "/t/o/")),
        ("POST", open.replace("/t/o/", "/u/")),
    ] {
        let answer = h.call(method, &path).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert!(answer.headers().get(header::LOCATION).is_none());
    }
    h.assert_nothing_recorded().await;
}

#[tokio::test]
async fn the_unsubscribe_page_only_asks_and_the_post_denylists_the_address() {
    let h = harness().await;
    let path = h.path(LinkKind::Unsubscribe, "c1", "");
    let page = h.call("GET", &path).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = axum::body::to_bytes(page.into_body(), 10_000)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("<form method=\"post\""));
    let address = vec!["ana@x.example".to_owned()];
    assert_eq!(
        h.state.store.suppressed(&address).await.unwrap(),
        vec![None]
    );

    let done = h.call("POST", &path).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        h.state.store.suppressed(&address).await.unwrap(),
        vec![Some(SuppressionList::Denylist)]
    );
    assert_eq!(h.flushed().await.unsubscribed, 1);
}

/// http-api.md: tracking requests do not block on the store. An
/// unsubscribe answers within its short wait while a long write holds the
/// store, and its denylist entry and count follow once the store answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_does_not_wait_for_a_busy_store_and_lands_after() {
    let h = harness().await;
    let path = h.path(LinkKind::Unsubscribe, "c1", "");
    let address = vec!["ana@x.example".to_owned()];
    let busy = h.embedded.hold_writes();
    let answer = tokio::time::timeout(STORE_WAIT * 10, h.call("POST", &path))
        .await
        .expect("the unsubscribe waited for the busy store");
    assert_eq!(answer.status(), StatusCode::OK);
    tokio::time::sleep(STORE_WAIT).await;
    assert_eq!(
        h.state.store.suppressed(&address).await.unwrap(),
        vec![None],
        "the write waits for the store"
    );
    drop(busy);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while h.state.store.suppressed(&address).await.unwrap() != vec![Some(SuppressionList::Denylist)]
    {
        assert!(std::time::Instant::now() < deadline, "never denylisted");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The count follows the write, from the task that waited for it.
    while h.state.tracking.buffer().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(h.flushed().await.unsubscribed, 1);
}

/// An unsubscribe whose write fails waits in the buffer; the next flush
/// puts the address on the denylist and counts it.
#[tokio::test]
async fn a_deferred_unsubscribe_is_written_and_counted_by_the_flush() {
    let h = harness().await;
    let buffer = h.state.tracking.buffer();
    let at = h.state.clock.now();
    buffer.defer_unsubscribe(h.run.clone(), "c1", at);
    buffer.defer_unsubscribe(h.run.clone(), "c1", at);
    buffer.defer_unsubscribe(h.run.clone(), "nobody", at);
    assert_eq!(buffer.len(), 2);
    let c = h.flushed().await;
    assert!(buffer.is_empty());
    assert_eq!((c.unsubscribed, c.opened), (1, 1));
    let listed = h
        .state
        .store
        .suppressions(SuppressionList::Denylist, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].address, "ana@x.example");
    assert_eq!(listed.items[0].since, at);
}

#[tokio::test]
async fn an_unsubscribe_for_a_recipient_without_an_outcome_is_not_found() {
    let h = harness().await;
    let path = h.path(LinkKind::Unsubscribe, "nobody", "");
    assert_eq!(h.call("POST", &path).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_public_router_serves_nothing_but_tracking_routes() {
    let h = harness().await;
    for path in [
        "/",
        "/healthz",
        "/metrics",
        "/api/v1/runs",
        "/api/v1/openapi.json",
    ] {
        assert_eq!(
            h.call("GET", path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

/// Tracking as a daemon started while its store was down has it: no key
/// yet, the store to get it from.
fn keyless(store: &SharedStore) -> Arc<Tracking> {
    Arc::new(Tracking {
        signer: std::sync::OnceLock::new(),
        store: Some(store.clone()),
        public_url: "http://t.example".to_owned(),
        buffer: Default::default(),
    })
}

#[tokio::test]
async fn links_answer_503_until_the_key_comes_from_the_store_then_work() {
    // Without the key a link can be neither trusted nor refused: "try again".
    let h = harness().await;
    let signed = h.path(LinkKind::Open, "c1", "");
    let waiting = Harness {
        _dir: tempfile::tempdir().unwrap(),
        state: PublicState {
            tracking: keyless(&h.state.store),
            ..h.state.clone()
        },
        embedded: h.embedded.clone(),
        run: h.run.clone(),
    };
    for (method, path) in [
        ("GET", signed.clone()),
        ("POST", signed.replace("/t/o/", "/u/")),
    ] {
        let answer = waiting.call(method, &path).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{method}");
        assert_eq!(answer.headers()[header::RETRY_AFTER], "60");
    }
    assert_eq!(waiting.flushed().await.opened, 0);

    waiting.state.tracking.load_key().await.unwrap();
    let fresh = waiting.path(LinkKind::Open, "c1", "");
    assert_eq!(waiting.call("GET", &fresh).await.status(), StatusCode::OK);
    assert_eq!(waiting.flushed().await.opened, 1);
    // The key is the store's: another instance asking gets the same one.
    let other = keyless(&h.state.store);
    other.load_key().await.unwrap();
    assert_eq!(
        other.link(LinkKind::Open, h.run.as_str(), "c1", ""),
        waiting
            .state
            .tracking
            .link(LinkKind::Open, h.run.as_str(), "c1", "")
    );
}

#[tokio::test]
async fn the_public_routes_refuse_a_body_over_one_mebibyte() {
    let h = harness().await;
    for (method, kind) in [
        ("GET", LinkKind::Open),
        ("GET", LinkKind::Click),
        ("GET", LinkKind::Unsubscribe),
        ("POST", LinkKind::Unsubscribe),
    ] {
        let path = h.path(kind, "c1", "https://shop.example/");
        let routes = public_routes(h.state.clone());
        crate::http::tests::assert_too_large(routes, method, &path, None).await;
    }
    h.assert_nothing_recorded().await;
}
