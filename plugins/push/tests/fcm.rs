//! The push plugin against a local HTTP server (wiremock) standing in for
//! Google's token endpoint and FCM, with an RSA key generated per test.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use herald_plugin_api::{Batch, BounceKind, Channel, Message, SendStatus, WIRE_VERSION};
use herald_push::PushChannel;
use herald_push::token::Claims;
use serde_json::json;
use std::collections::BTreeMap;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SEND_PATH: &str = "/v1/projects/shop-app/messages:send";
const CLIENT_EMAIL: &str = "herald@shop-app.iam.gserviceaccount.com";

/// A fake Google: the token endpoint and FCM on one wiremock server, plus
/// the service-account key file pointing at it.
struct Google {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
    public_pem: String,
    _key_dir: tempfile::TempDir,
    key_file: std::path::PathBuf,
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl Google {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(MockServer::start());
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let private_pem = pem(
            "PRIVATE KEY",
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
                .unwrap()
                .as_ref(),
        );
        let public_pem = pem("PUBLIC KEY", key.public_key().as_der().unwrap().as_ref());
        let key_dir = tempfile::tempdir().unwrap();
        let key_file = key_dir.path().join("service-account.json");
        let account = json!({
            "type": "service_account", "project_id": "shop-app", "private_key_id": "k1",
            "private_key": private_pem, "client_email": CLIENT_EMAIL,
            "token_uri": format!("{}/token", server.uri()),
        });
        std::fs::write(&key_file, account.to_string()).unwrap();
        Google {
            runtime,
            server,
            public_pem,
            _key_dir: key_dir,
            key_file,
        }
    }

    fn mount(&self, mock: Mock) {
        self.runtime.block_on(mock.mount(&self.server));
    }

    fn grant(&self, access_token: &str, times: u64) {
        self.grant_for(access_token, 3599, times);
    }

    fn grant_for(&self, access_token: &str, expires_in: u64, times: u64) {
        self.mount(
            Mock::given(method("POST"))
                .and(path("/token"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": access_token, "expires_in": expires_in, "token_type": "Bearer",
                })))
                .up_to_n_times(times),
        );
    }

    fn requests_to(&self, wanted: &str) -> Vec<Request> {
        let all = self
            .runtime
            .block_on(self.server.received_requests())
            .unwrap();
        all.into_iter().filter(|r| r.url.path() == wanted).collect()
    }

    fn channel(&self) -> PushChannel {
        PushChannel::create(&json!({
            "service_account_file": self.key_file,
            "send_url": format!("{}{SEND_PATH}", self.server.uri()),
            "timeout": "5s",
        }))
        .unwrap()
    }
}

fn push(recipient: &str, token: &str) -> Message {
    Message {
        message_id: format!("run-1/{recipient}"),
        run_id: "run-1".into(),
        recipient_id: recipient.into(),
        channel: "push".into(),
        address: token.into(),
        content: BTreeMap::from([
            ("title".into(), "Your order".into()),
            ("body".into(), "It has shipped.".into()),
            ("image".into(), "https://shop.example/box.png".into()),
        ]),
        headers: BTreeMap::new(),
        data: BTreeMap::from([("order_id".into(), "A-42".into())]),
    }
}

fn batch(messages: Vec<Message>) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages,
    }
}

fn form_value(request: &Request, key: &str) -> String {
    url_form(&request.body)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no `{key}` in the form"))
}

/// Decodes `a=b&c=d` with percent escapes and `+` as space.
fn url_form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16)
                        .unwrap(),
                );
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

#[test]
fn the_token_request_carries_a_jwt_that_verifies_with_the_public_key() {
    let google = Google::start();
    google.grant("at-1", 10);
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "name": "projects/shop-app/messages/0:1" })),
            ),
    );

    let results = google
        .channel()
        .send_batch(&batch(vec![push("c1", "tok-1")]));

    assert_eq!(
        results[0].status,
        SendStatus::Accepted {
            provider_message_id: Some("projects/shop-app/messages/0:1".into())
        }
    );
    let token_requests = google.requests_to("/token");
    assert_eq!(token_requests.len(), 1);
    let request = &token_requests[0];
    assert_eq!(
        form_value(request, "grant_type"),
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let assertion = form_value(request, "assertion");
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(google.public_pem.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let token_url = format!("{}/token", google.server.uri());
    validation.set_audience(&[&token_url]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let claims = jsonwebtoken::decode::<Claims>(&assertion, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(
        claims.scope,
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    assert_eq!(claims.exp - claims.iat, 3600);
}

#[test]
fn the_send_carries_the_bearer_token_notification_and_data() {
    let google = Google::start();
    google.grant("at-1", 10);
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(header("authorization", "Bearer at-1"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "name": "projects/shop-app/messages/0:1" })),
            ),
    );

    let results = google
        .channel()
        .send_batch(&batch(vec![push("c1", "tok-1")]));

    assert!(
        matches!(results[0].status, SendStatus::Accepted { .. }),
        "{:?}",
        results[0]
    );
    let sent: serde_json::Value = google.requests_to(SEND_PATH)[0].body_json().unwrap();
    assert_eq!(
        sent,
        json!({ "message": {
            "token": "tok-1",
            "notification": { "title": "Your order", "body": "It has shipped.", "image": "https://shop.example/box.png" },
            "data": { "order_id": "A-42" },
        } })
    );
}

#[test]
fn the_access_token_is_cached_across_batches() {
    let google = Google::start();
    google.grant("at-1", 10);
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "name": "n" }))),
    );
    let channel = google.channel();

    for i in 0..3 {
        let results = channel.send_batch(&batch(vec![
            push(&format!("a{i}"), "tok-1"),
            push(&format!("b{i}"), "tok-2"),
        ]));
        assert!(
            results
                .iter()
                .all(|r| matches!(r.status, SendStatus::Accepted { .. })),
            "{results:?}"
        );
    }

    assert_eq!(google.requests_to("/token").len(), 1);
    assert_eq!(google.requests_to(SEND_PATH).len(), 6);
}

#[test]
fn a_token_is_renewed_shortly_before_it_expires() {
    let google = Google::start();
    // A 1s token is renewed at half-life, 500ms.
    google.grant_for("at-short", 1, 1);
    google.grant("at-2", 10);
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "name": "n" }))),
    );
    let channel = google.channel();

    channel.send_batch(&batch(vec![push("c1", "tok-1")]));
    channel.send_batch(&batch(vec![push("c2", "tok-1")]));
    std::thread::sleep(std::time::Duration::from_millis(600));
    channel.send_batch(&batch(vec![push("c3", "tok-1")]));

    assert_eq!(google.requests_to("/token").len(), 2);
    let bearers: Vec<_> = google
        .requests_to(SEND_PATH)
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bearers,
        ["Bearer at-short", "Bearer at-short", "Bearer at-2"]
    );
}

#[test]
fn a_401_refreshes_the_token_and_sends_again_once() {
    let google = Google::start();
    google.grant("at-revoked", 1);
    google.grant("at-2", 10);
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(header("authorization", "Bearer at-revoked"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error": { "code": 401, "status": "UNAUTHENTICATED", "message": "Request had invalid authentication credentials." } }))),
    );
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .and(header("authorization", "Bearer at-2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "name": "projects/shop-app/messages/0:2" })),
            ),
    );

    let results = google
        .channel()
        .send_batch(&batch(vec![push("c1", "tok-1")]));

    assert_eq!(
        results[0].status,
        SendStatus::Accepted {
            provider_message_id: Some("projects/shop-app/messages/0:2".into())
        }
    );
    assert_eq!(google.requests_to("/token").len(), 2);
    assert_eq!(google.requests_to(SEND_PATH).len(), 2);
}

#[test]
fn a_second_401_leaves_the_message_for_a_later_retry() {
    let google = Google::start();
    google.grant("at-bad", 10);
    google.mount(
        Mock::given(method("POST"))
            .and(path(SEND_PATH))
            .respond_with(ResponseTemplate::new(401)),
    );

    let results = google
        .channel()
        .send_batch(&batch(vec![push("c1", "tok-1")]));

    assert!(
        matches!(&results[0].status, SendStatus::Retry { reason, .. } if reason.contains("401")),
        "{:?}",
        results[0]
    );
    assert_eq!(google.requests_to(SEND_PATH).len(), 2);
}

#[test]
fn fcm_replies_map_onto_results_in_batch_order() {
    let google = Google::start();
    google.grant("at-1", 10);
    let fcm_error = |status: u16, code: &str, error_code: &str, message: &str| {
        ResponseTemplate::new(status).set_body_json(json!({ "error": {
            "code": status, "status": code, "message": message,
            "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code }],
        } }))
    };
    let cases = [
        (
            "ok",
            ResponseTemplate::new(200)
                .set_body_json(json!({ "name": "projects/shop-app/messages/1" })),
        ),
        (
            "gone",
            fcm_error(
                404,
                "NOT_FOUND",
                "UNREGISTERED",
                "Requested entity was not found.",
            ),
        ),
        (
            "bad",
            fcm_error(
                400,
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
            ),
        ),
        (
            // The generic message, the token named only in a BadRequest detail.
            "malformed",
            ResponseTemplate::new(400).set_body_json(json!({ "error": {
                "code": 400, "status": "INVALID_ARGUMENT", "message": "Request contains an invalid argument.",
                "details": [
                    { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT" },
                    { "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{ "field": "message.token", "description": "Invalid registration token" }] },
                ],
            } })),
        ),
        (
            "busy",
            fcm_error(
                429,
                "RESOURCE_EXHAUSTED",
                "QUOTA_EXCEEDED",
                "Quota exceeded.",
            )
            .insert_header("Retry-After", "3"),
        ),
        (
            "down",
            fcm_error(
                503,
                "UNAVAILABLE",
                "UNAVAILABLE",
                "The service is currently unavailable.",
            ),
        ),
        (
            "other",
            fcm_error(
                403,
                "PERMISSION_DENIED",
                "SENDER_ID_MISMATCH",
                "SenderId mismatch",
            ),
        ),
    ];
    for (token, response) in cases {
        google.mount(
            Mock::given(method("POST"))
                .and(path(SEND_PATH))
                .and(body_partial_json(json!({ "message": { "token": token } })))
                .respond_with(response),
        );
    }
    let messages = ["ok", "gone", "bad", "malformed", "busy", "down", "other"]
        .iter()
        .map(|t| push(t, t))
        .collect();

    let results = google.channel().send_batch(&batch(messages));

    let ids: Vec<_> = results.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "run-1/ok",
            "run-1/gone",
            "run-1/bad",
            "run-1/malformed",
            "run-1/busy",
            "run-1/down",
            "run-1/other"
        ]
    );
    assert!(
        matches!(results[0].status, SendStatus::Accepted { .. }),
        "{:?}",
        results[0]
    );
    for bounced in &results[1..4] {
        assert!(
            matches!(
                bounced.status,
                SendStatus::Bounced {
                    kind: BounceKind::Hard,
                    ..
                }
            ),
            "{bounced:?}"
        );
    }
    assert!(
        matches!(
            results[4].status,
            SendStatus::Retry {
                retry_after_ms: Some(3000),
                ..
            }
        ),
        "{:?}",
        results[4]
    );
    assert!(
        matches!(results[5].status, SendStatus::Retry { .. }),
        "{:?}",
        results[5]
    );
    assert!(
        matches!(&results[6].status, SendStatus::Failed { reason } if reason.contains("SENDER_ID_MISMATCH")),
        "{:?}",
        results[6]
    );
}

#[test]
fn a_refused_token_request_means_retry() {
    let google = Google::start();
    google.mount(
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({ "error": "invalid_grant", "error_description": "Invalid JWT Signature." }),
            )),
    );

    let results = google
        .channel()
        .send_batch(&batch(vec![push("c1", "tok-1")]));

    assert!(
        matches!(&results[0].status, SendStatus::Retry { reason, .. } if reason.contains("invalid_grant")),
        "{:?}",
        results[0]
    );
    assert!(google.requests_to(SEND_PATH).is_empty());
}

#[test]
fn describe_serves_push_addressed_by_token() {
    let google = Google::start();
    let description = google.channel().describe();
    let info = &description.channels[0];
    assert_eq!(info.name, "push");
    assert_eq!(info.address_column.as_deref(), Some("push_token"));
    assert_eq!(info.normalise, herald_plugin_api::Normalisation::Token);
}
