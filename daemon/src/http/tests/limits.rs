//! Request limits: oversized bodies, malformed JSON, unknown routes.

use super::*;

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413() {
    let h = Harness::new().await;
    let big = format!(r#"{{"addresses": ["{}"]}}"#, "a".repeat(1024 * 1024 + 10));
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/deliveries/promo/proof",
            Some(CONFIRMER),
            Some(&big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
}

#[tokio::test]
async fn every_route_refuses_a_body_over_one_mebibyte_even_one_it_would_not_read() {
    let h = Harness::new().await;
    let id = h.pending_run("promo", 2).await;
    for (method, path, token) in [
        ("POST", action_path(&id, "confirm"), CONFIRMER),
        ("POST", action_path(&id, "cancel"), CONFIRMER),
        ("POST", action_path(&id, "pause"), CONFIRMER),
        ("POST", action_path(&id, "resume"), CONFIRMER),
        (
            "POST",
            "/api/v1/deliveries/promo/statistics".to_owned(),
            CONFIRMER,
        ),
        ("DELETE", "/api/v1/profiles/c1".to_owned(), ADMIN),
        ("GET", "/api/v1/runs".to_owned(), VIEWER),
        ("POST", "/api/v1/feedback".to_owned(), FEEDBACK),
        ("GET", "/api/v1/nothing".to_owned(), VIEWER),
    ] {
        assert_too_large(router(h.state.clone()), method, &path, Some(token)).await;
    }
    let run = h.store.run(&id).await.unwrap().unwrap();
    assert_eq!(
        run.state,
        crate::runs::RunState::Pending,
        "nothing was done"
    );
}

#[tokio::test]
async fn malformed_json_gets_400_with_the_parsers_message() {
    let h = Harness::new().await;
    let (status, body) = h
        .call(
            "POST",
            "/api/v1/deliveries/promo/proof",
            Some(CONFIRMER),
            Some(r#"{"addresses": [}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("malformed") && message.contains("line 1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_cursor_no_page_gave_gets_400_naming_the_parameter() {
    let h = Harness::new().await;
    h.pending_run("daily", 1).await;
    for path in [
        "/api/v1/runs?cursor=garbage",
        "/api/v1/runs?delivery=daily&cursor=abc%7Cdef",
        "/api/v1/profiles/c1/messages?cursor=garbage",
    ] {
        let (status, body) = h.call("GET", path, Some(VIEWER), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("`cursor`") && error.contains("`next_cursor` of a previous page"),
            "{path}: {error}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let h = Harness::new().await;
    let (status, body) = h.call("GET", "/api/v1/nothing", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("openapi.json"));
}

#[tokio::test]
async fn the_confirm_page_is_served_without_a_token_and_cannot_be_framed() {
    let h = Harness::new().await;
    let request = Request::builder().uri("/").body(Body::empty()).unwrap();
    let response = router(h.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let html = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(html.contains(r#"window.confirm("OK?")"#));
    assert!(html.contains("sessionStorage"));
}

use crate::http::{Timeouts, router_with, serve};
use axum::body::Bytes;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A proof request whose body sends its first bytes and then nothing.
fn stalled_proof() -> Request<Body> {
    let first = futures_util::stream::once(async {
        Ok::<_, std::convert::Infallible>(Bytes::from_static(br#"{"addresses": ["#))
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    Request::builder()
        .method("POST")
        .uri("/api/v1/deliveries/promo/proof")
        .header("authorization", format!("Bearer {CONFIRMER}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

async fn answer(router: axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/json");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_a_json_408() {
    let h = Harness::new().await;
    let timeouts = Timeouts {
        body: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let started = Instant::now();
    let (status, body) = answer(router_with(h.state.clone(), timeouts), stalled_proof()).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("stopped arriving"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_request_not_answered_in_time_gets_a_json_408() {
    let h = Harness::new().await;
    // The whole-request limit fires first: axum's empty 408 becomes JSON.
    let timeouts = Timeouts {
        body: Duration::from_secs(30),
        request: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let (status, body) = answer(router_with(h.state.clone(), timeouts), stalled_proof()).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("too long"),
        "{body}"
    );
}

#[tokio::test]
async fn clients_slow_to_send_their_headers_are_disconnected() {
    let h = Harness::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(serve(
        listener,
        router(h.state.clone()),
        Duration::from_millis(300),
        async move { stopped.cancelled().await },
    ));

    // A well-behaved client is served.
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // Half a request line and headers, then silence; and no byte at all.
    for opening in [&b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[..], b""] {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(opening).await.unwrap();
        let started = Instant::now();
        let mut reply = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "the connection was kept open for 5 s");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
            "closed after {elapsed:?}"
        );
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "{reply}"
        );
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops when asked")
        .unwrap();
}

#[tokio::test]
async fn every_error_under_the_api_is_json_even_from_axum_itself() {
    let h = Harness::new().await;
    // 405 from the router, 400 from a path that does not decode, 400 from a bad query.
    for (method, path, status, words) in [
        (
            "DELETE",
            "/api/v1/runs/x%40once",
            StatusCode::METHOD_NOT_ALLOWED,
            "openapi.json",
        ),
        (
            "GET",
            "/api/v1/runs/%FF%FE",
            StatusCode::BAD_REQUEST,
            "UTF-8",
        ),
        (
            "GET",
            "/api/v1/runs?limit=many",
            StatusCode::BAD_REQUEST,
            "limit",
        ),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {VIEWER}"))
            .body(Body::empty())
            .unwrap();
        let (got, body) = answer(router(h.state.clone()), request).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(words), "{method} {path}: {error}");
    }
}
