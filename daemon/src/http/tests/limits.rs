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
