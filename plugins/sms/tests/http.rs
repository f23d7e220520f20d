//! The SMS plugin against a real HTTP server (wiremock) on loopback.

use herald_plugin_api::{Batch, BounceKind, Channel, Message, SendStatus, WIRE_VERSION};
use herald_sms::SmsChannel;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A wiremock server and the runtime it lives on; the plugin is driven
/// from the test's own thread, as the host drives it from a blocking thread.
struct Provider {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Provider {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(MockServer::start());
        Provider { runtime, server }
    }

    fn mount(&self, mock: Mock) {
        self.runtime.block_on(mock.mount(&self.server));
    }

    fn requests(&self) -> Vec<Request> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap()
    }
}

fn token_file(secret: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{secret}\n")).unwrap();
    file
}

fn twilio(provider: &Provider, token: &tempfile::NamedTempFile) -> SmsChannel {
    SmsChannel::create(&json!({
        "mode": "twilio", "url": provider.server.uri(), "account_sid": "AC123",
        "auth_token_file": token.path(), "timeout": "5s",
    }))
    .unwrap()
}

fn webhook(provider: &Provider, extra: serde_json::Value) -> SmsChannel {
    let mut config = json!({ "mode": "webhook", "url": format!("{}/sms", provider.server.uri()), "timeout": "5s" });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    SmsChannel::create(&config).unwrap()
}

fn sms(recipient: &str, phone: &str) -> Message {
    Message {
        message_id: format!("run-1/{recipient}"),
        run_id: "run-1".into(),
        recipient_id: recipient.into(),
        channel: "sms".into(),
        address: phone.into(),
        content: [
            ("from", "SHOP"),
            ("body", "Hi Ana, your order has shipped."),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        headers: BTreeMap::new(),
        data: BTreeMap::new(),
    }
}

fn batch(messages: Vec<Message>) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages,
    }
}

const MESSAGES_PATH: &str = "/2010-04-01/Accounts/AC123/Messages.json";

#[test]
fn twilio_mode_posts_the_form_with_basic_auth_and_keeps_the_sid() {
    let provider = Provider::start();
    provider.mount(
        Mock::given(method("POST"))
            .and(path(MESSAGES_PATH))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({ "sid": "SM0001", "status": "queued" })),
            ),
    );
    let token = token_file("s3cret");

    let results = twilio(&provider, &token).send_batch(&batch(vec![sms("c1", "+33612345678")]));

    assert_eq!(results[0].message_id, "run-1/c1");
    assert_eq!(
        results[0].status,
        SendStatus::Accepted {
            provider_message_id: Some("SM0001".into())
        }
    );
    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), MESSAGES_PATH);
    // base64("AC123:s3cret")
    assert_eq!(request.headers["authorization"], "Basic QUMxMjM6czNjcmV0");
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        String::from_utf8_lossy(&request.body),
        "To=%2B33612345678&From=SHOP&Body=Hi+Ana%2C+your+order+has+shipped."
    );
}

#[test]
fn twilio_replies_map_onto_results_in_batch_order() {
    let provider = Provider::start();
    let reply =
        |status: u16, body: serde_json::Value| ResponseTemplate::new(status).set_body_json(body);
    let cases = [
        ("To=%2B33600000001", reply(201, json!({ "sid": "SM1" }))),
        (
            "To=%2B33600000002",
            reply(
                429,
                json!({ "code": 20429, "message": "Too Many Requests" }),
            )
            .insert_header("Retry-After", "7"),
        ),
        (
            "To=%2B33600000003",
            reply(503, json!({ "message": "Service unavailable" })),
        ),
        (
            "To=%2B33600000004",
            reply(
                400,
                json!({ "code": 21211, "message": "Invalid 'To' Phone Number" }),
            ),
        ),
        (
            "To=%2B33600000005",
            reply(
                400,
                json!({ "code": 21606, "message": "The 'From' number is not a valid sender" }),
            ),
        ),
    ];
    for (to, response) in cases {
        provider.mount(
            Mock::given(method("POST"))
                .and(path(MESSAGES_PATH))
                .and(wiremock::matchers::body_string_contains(to))
                .respond_with(response),
        );
    }
    let token = token_file("s3cret");
    let messages = (1..=5)
        .map(|i| sms(&format!("c{i}"), &format!("+3360000000{i}")))
        .collect();

    let results = twilio(&provider, &token).send_batch(&batch(messages));

    let ids: Vec<_> = results.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(
        ids,
        ["run-1/c1", "run-1/c2", "run-1/c3", "run-1/c4", "run-1/c5"]
    );
    assert_eq!(
        results[0].status,
        SendStatus::Accepted {
            provider_message_id: Some("SM1".into())
        }
    );
    assert!(
        matches!(
            results[1].status,
            SendStatus::Retry {
                retry_after_ms: Some(7000),
                ..
            }
        ),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(
            results[2].status,
            SendStatus::Retry {
                retry_after_ms: None,
                ..
            }
        ),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(&results[3].status, SendStatus::Bounced { kind: BounceKind::Hard, reason } if reason.contains("Invalid 'To'")),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(results[4].status, SendStatus::Failed { .. }),
        "{:?}",
        results[4]
    );
}

#[test]
fn a_number_that_is_not_e164_bounces_without_a_request() {
    let provider = Provider::start();
    let token = token_file("s3cret");

    let results = twilio(&provider, &token).send_batch(&batch(vec![sms("c1", "06 12 34 56 78")]));

    assert!(
        matches!(&results[0].status, SendStatus::Bounced { kind: BounceKind::Hard, reason } if reason.contains("E.164")),
        "{:?}",
        results[0]
    );
    assert!(provider.requests().is_empty());
}

#[test]
fn webhook_mode_posts_json_with_the_configured_headers_and_token() {
    let provider = Provider::start();
    provider.mount(
        Mock::given(method("POST"))
            .and(path("/sms"))
            .and(header("x-tenant", "shop"))
            .and(header("authorization", "Bearer hook-token"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "id": "wh-77" }))),
    );
    let token = token_file("hook-token");
    let channel = webhook(
        &provider,
        json!({ "headers": { "X-Tenant": "shop" }, "auth_token_file": token.path() }),
    );

    let results = channel.send_batch(&batch(vec![sms("c1", "+33612345678")]));

    assert_eq!(
        results[0].status,
        SendStatus::Accepted {
            provider_message_id: Some("wh-77".into())
        }
    );
    let body: serde_json::Value = provider.requests()[0].body_json().unwrap();
    assert_eq!(
        body,
        json!({ "to": "+33612345678", "from": "SHOP", "body": "Hi Ana, your order has shipped.", "message_id": "run-1/c1" })
    );
}

#[test]
fn webhook_replies_map_onto_results() {
    let provider = Provider::start();
    for (to, status) in [
        ("+33600000001", 200),
        ("+33600000002", 404),
        ("+33600000003", 500),
        ("+33600000004", 403),
    ] {
        provider.mount(
            Mock::given(method("POST"))
                .and(path("/sms"))
                .and(wiremock::matchers::body_partial_json(json!({ "to": to })))
                .respond_with(ResponseTemplate::new(status)),
        );
    }
    let messages = (1..=4)
        .map(|i| sms(&format!("c{i}"), &format!("+3360000000{i}")))
        .collect();

    let results = webhook(&provider, json!({})).send_batch(&batch(messages));

    assert_eq!(
        results[0].status,
        SendStatus::Accepted {
            provider_message_id: None
        }
    );
    assert!(
        matches!(
            results[1].status,
            SendStatus::Bounced {
                kind: BounceKind::Hard,
                ..
            }
        ),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[2].status, SendStatus::Retry { .. }),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(results[3].status, SendStatus::Failed { .. }),
        "{:?}",
        results[3]
    );
}

#[test]
fn the_rate_limit_spaces_requests() {
    let provider = Provider::start();
    provider.mount(Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)));
    let channel = webhook(&provider, json!({ "rate": "10/s" }));
    let messages = (0..4)
        .map(|i| sms(&format!("c{i}"), "+33612345678"))
        .collect();
    let started = Instant::now();

    let results = channel.send_batch(&batch(messages));

    // 4 sends at 10/s: the first is free, the other 3 are 100ms apart.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results.len(), 4);
    assert_eq!(provider.requests().len(), 4);
}

#[test]
fn an_unreachable_provider_means_retry() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sms", closed.local_addr().unwrap());
    drop(closed);
    let channel =
        SmsChannel::create(&json!({ "mode": "webhook", "url": url, "timeout": "2s" })).unwrap();

    let results = channel.send_batch(&batch(vec![sms("c1", "+33612345678")]));

    assert!(
        matches!(results[0].status, SendStatus::Retry { .. }),
        "{:?}",
        results[0]
    );
}
