//! The email plugin against a real SMTP server (mailin-embedded) on loopback.

#[path = "support/pipelining_proxy.rs"]
mod pipelining_proxy;

use herald_email::EmailChannel;
use herald_plugin_api::{Batch, BounceKind, Channel, Message, SendStatus, WIRE_VERSION};
use mailin_embedded::response::{OK, START_DATA};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message as the server received it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// Replies by recipient: `later@` gets 451 at RCPT, `nobody@` 550 5.1.1 at
/// RCPT, `badsender@` Postfix's delayed sender refusal (553 5.1.8) at
/// RCPT, `spam@` 554 5.7.1 and `content@` a bare 550 to DATA; anyone else
/// is queued. With
/// `per_connection` set, MAIL gets 421 and the connection is closed once
/// that many messages went over it, as servers capping messages per
/// connection do.
///
/// The DATA refusal answers the DATA command rather than the final dot:
/// mailin 0.6 stays in its data state after refusing at the dot and would
/// swallow the client's QUIT.
#[derive(Clone, Default)]
struct ScriptedServer {
    received: Arc<Mutex<Vec<Received>>>,
    logins: Arc<Mutex<Vec<String>>>,
    queued: Arc<AtomicUsize>,
    /// Connections greeted (first EHLO on each).
    connections: Arc<AtomicUsize>,
    greeted: bool,
    per_connection: Option<usize>,
    /// Messages queued over this connection (mailin clones the handler per connection).
    queued_here: usize,
    current: Option<Received>,
}

impl Handler for ScriptedServer {
    fn auth_plain(&mut self, _authorization_id: &str, user: &str, password: &str) -> Response {
        if user == "herald" && password == "hunter2" {
            self.logins.lock().unwrap().push(user.to_owned());
            Response::custom(235, "2.7.0 Authentication successful".into())
        } else {
            Response::custom(535, "5.7.8 Authentication credentials invalid".into())
        }
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        if self.per_connection.is_some_and(|n| self.queued_here >= n) {
            // mailin closes the connection after a 421.
            return Response::custom(421, "4.7.0 Too many messages on this connection".into());
        }
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match to.split('@').next() {
            Some("later") => Response::custom(451, "4.3.0 Try again later".into()),
            Some("nobody") => Response::custom(550, "5.1.1 No such user here".into()),
            Some("badsender") => Response::custom(
                553,
                "5.1.8 <news@shop.example>: Sender address rejected: Domain not found".into(),
            ),
            _ => OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        if to.iter().any(|to| to.starts_with("spam@")) {
            return Response::custom(554, "5.7.1 Message rejected as spam".into());
        }
        if to.iter().any(|to| to.starts_with("content@")) {
            return Response::custom(550, "Message content rejected".into());
        }
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
        });
        START_DATA
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let Some(current) = self.current.take() else {
            return Response::custom(554, "5.5.1 No transaction".into());
        };
        self.received.lock().unwrap().push(current);
        self.queued_here += 1;
        let n = self.queued.fetch_add(1, Ordering::SeqCst);
        Response::custom(250, format!("2.0.0 Ok: queued as Q{n:04}"))
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        if !std::mem::replace(&mut self.greeted, true) {
            self.connections.fetch_add(1, Ordering::SeqCst);
        }
        OK
    }
}

/// What the server queued.
type Inbox = Arc<Mutex<Vec<Received>>>;
/// Who logged in.
type Logins = Arc<Mutex<Vec<String>>>;

/// Starts the scripted server on a free loopback port; it runs until the test process ends.
fn start_server() -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let (addr, received, _) = start_server_with(ScriptedServer::default(), |_| {});
    (addr, received)
}

/// Starts a server offering STARTTLS (certificate for 127.0.0.1 from
/// `tests/fixtures`) and AUTH PLAIN for `herald` / `hunter2`.
fn start_tls_server() -> (SocketAddr, Inbox, Logins) {
    start_server_with(ScriptedServer::default(), |server| {
        let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        server
            .with_ssl(SslConfig::SelfSigned {
                cert_path: fixture("server.pem"),
                key_path: fixture("server.key"),
            })
            .unwrap()
            .with_auth(AuthMechanism::Plain);
    })
}

fn start_server_with(
    handler: ScriptedServer,
    setup: impl FnOnce(&mut Server<ScriptedServer>),
) -> (SocketAddr, Arc<Mutex<Vec<Received>>>, Logins) {
    let received = Arc::clone(&handler.received);
    let logins = Arc::clone(&handler.logins);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(handler);
    setup(&mut server);
    server
        .with_name("mx.test")
        .with_tcp_listener(listener)
        .with_num_threads(8);
    std::thread::spawn(move || {
        if let Err(e) = server.serve() {
            panic!("the test SMTP server stopped: {e}");
        }
    });
    (addr, received, logins)
}

fn channel(addr: SocketAddr, extra: serde_json::Value) -> EmailChannel {
    let mut config = json!({ "smtp_url": format!("smtp://{addr}"), "timeout": "5s", "helo_name": "herald.test" });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    EmailChannel::create(&config).unwrap()
}

fn message(recipient: &str, address: &str) -> Message {
    let content = [
        ("from", "Shop <news@shop.example>"),
        ("subject", "Your week, Ana"),
        ("text", "Hello Ana, see https://shop.example/w"),
        ("html", "<p>Hello <b>Ana</b></p>"),
    ];
    Message {
        message_id: format!("run-1/{recipient}"),
        run_id: "run-1".into(),
        recipient_id: recipient.into(),
        channel: "email".into(),
        address: address.into(),
        content: content
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        headers: BTreeMap::new(),
        data: BTreeMap::new(),
    }
}

/// `count` messages to distinct recipients, ids and addresses starting with `prefix`.
fn messages(prefix: &str, count: usize) -> Vec<Message> {
    (0..count)
        .map(|i| message(&format!("{prefix}{i}"), &format!("{prefix}{i}@example.org")))
        .collect()
}

fn assert_all_accepted(results: &[herald_plugin_api::MessageResult]) {
    assert!(
        results
            .iter()
            .all(|r| matches!(r.status, SendStatus::Accepted { .. })),
        "{results:?}"
    );
}

fn batch(messages: Vec<Message>) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages,
    }
}

#[test]
fn a_message_with_text_and_html_arrives_as_multipart_alternative() {
    let (addr, received) = start_server();
    let mut m = message("c1", "ana@example.org");
    m.content
        .insert("reply_to".into(), "help@shop.example".into());
    m.headers.insert(
        "List-Unsubscribe".into(),
        "<https://t.shop.example/u/tok>".into(),
    );
    m.headers.insert(
        "List-Unsubscribe-Post".into(),
        "List-Unsubscribe=One-Click".into(),
    );

    let results = channel(addr, json!({})).send_batch(&batch(vec![m]));

    assert_eq!(results.len(), 1);
    assert_eq!(results[0].message_id, "run-1/c1");
    let SendStatus::Accepted {
        provider_message_id,
    } = &results[0].status
    else {
        panic!("expected accepted, got {:?}", results[0].status);
    };
    assert_eq!(provider_message_id.as_deref(), Some("Q0000"));
    let received = received.lock().unwrap();
    let mail = &received[0];
    assert_eq!(mail.from, "news@shop.example");
    assert_eq!(mail.to, vec!["ana@example.org".to_string()]);
    let data = &mail.data;
    for expected in [
        "From: Shop <news@shop.example>",
        "To: ana@example.org",
        "Subject: Your week, Ana",
        "Reply-To: help@shop.example",
        "Message-ID: <run-1/c1@shop.example>",
        "List-Unsubscribe: <https://t.shop.example/u/tok>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "Content-Type: multipart/alternative;",
        "Content-Type: text/plain; charset=utf-8",
        "Hello Ana, see https://shop.example/w",
        "Content-Type: text/html; charset=utf-8",
        "<p>Hello <b>Ana</b></p>",
    ] {
        assert!(data.contains(expected), "missing {expected:?} in:\n{data}");
    }
    // The plain part comes first: clients show the last part they can render.
    assert!(data.find("text/plain").unwrap() < data.find("text/html").unwrap());
}

#[test]
fn a_line_starting_with_a_dot_arrives_whole() {
    let (addr, received) = start_server();
    let mut m = message("c1", "ana@example.org");
    m.content.remove("html");
    m.content
        .insert("text".into(), "Totals\n.5 kg\n.\nend".into());

    let results = channel(addr, json!({})).send_batch(&batch(vec![m]));

    assert!(
        matches!(results[0].status, SendStatus::Accepted { .. }),
        "{:?}",
        results[0]
    );
    let data = &received.lock().unwrap()[0].data;
    assert!(data.contains("Totals\r\n.5 kg\r\n.\r\nend"), "{data:?}");
}

/// One message per reply the scripted server gives.
fn refusal_messages() -> Vec<Message> {
    vec![
        message("c1", "ana@example.org"),
        message("c2", "later@example.org"),
        message("c3", "nobody@example.org"),
        message("c4", "spam@example.org"),
        message("c5", "bo@example.org"),
    ]
}

/// The results of [`refusal_messages`]: in order, each reply mapped.
fn assert_refusals_mapped(results: &[herald_plugin_api::MessageResult]) {
    let ids: Vec<_> = results.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(
        ids,
        ["run-1/c1", "run-1/c2", "run-1/c3", "run-1/c4", "run-1/c5"]
    );
    assert!(
        matches!(results[0].status, SendStatus::Accepted { .. }),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(&results[1].status, SendStatus::Retry { reason, .. } if reason.contains("451")),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2].status, SendStatus::Bounced { kind: BounceKind::Hard, reason } if reason.contains("5.1.1")),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(&results[3].status, SendStatus::Failed { reason } if reason.contains("5.7.1")),
        "{:?}",
        results[3]
    );
    // A refusal does not spoil the pooled connection for the next message.
    assert!(
        matches!(results[4].status, SendStatus::Accepted { .. }),
        "{:?}",
        results[4]
    );
}

#[test]
fn smtp_replies_map_onto_results_in_batch_order() {
    let handler = ScriptedServer::default();
    let connections = Arc::clone(&handler.connections);
    let (addr, received, _) = start_server_with(handler, |_| {});

    let results = channel(addr, json!({ "pool_size": 1 })).send_batch(&batch(refusal_messages()));

    assert_refusals_mapped(&results);
    assert_eq!(received.lock().unwrap().len(), 2);
    // RSET after each refusal: all five went over one connection.
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn pipelining_sends_the_next_envelope_behind_each_content() {
    let (server, received) = start_server();
    let proxy = pipelining_proxy::start(server);
    let results =
        channel(proxy.addr, json!({ "pool_size": 1 })).send_batch(&batch(messages("r", 3)));

    assert_all_accepted(&results);
    // No reply was waited for between MAIL and DATA, nor between one
    // message's end and the next one's MAIL: only after the last message.
    assert_eq!(proxy.stalls.load(Ordering::SeqCst), 1);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].to, ["r2@example.org"]);
    assert!(
        received[2]
            .data
            .contains("Hello Ana, see https://shop.example/w")
    );
}

/// A refusal that blames the sender or the content fails the message
/// without bouncing (and so quarantining) the recipient's address, with or
/// without pipelining.
#[test]
fn refusals_of_the_sender_or_the_content_fail_without_a_bounce() {
    let (server, received, _) = start_server_with(ScriptedServer::default(), |_| {});
    let proxy = pipelining_proxy::start(server);
    for addr in [server, proxy.addr] {
        let results = channel(addr, json!({ "pool_size": 1 })).send_batch(&batch(vec![
            message("c1", "badsender@example.org"),
            message("c2", "content@example.org"),
            message("c3", "ana@example.org"),
        ]));
        assert!(
            matches!(&results[0].status, SendStatus::Failed { reason } if reason.contains("5.1.8")),
            "{:?}",
            results[0]
        );
        assert!(
            matches!(&results[1].status, SendStatus::Failed { reason } if reason.contains("content rejected")),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2].status, SendStatus::Accepted { .. }),
            "{:?}",
            results[2]
        );
    }
    assert_eq!(received.lock().unwrap().len(), 2);
}

#[test]
fn pipelined_refusals_map_as_unpipelined_ones() {
    let handler = ScriptedServer::default();
    let connections = Arc::clone(&handler.connections);
    let (server, received, _) = start_server_with(handler, |_| {});
    let proxy = pipelining_proxy::start(server);

    let results =
        channel(proxy.addr, json!({ "pool_size": 1 })).send_batch(&batch(refusal_messages()));

    assert_refusals_mapped(&results);
    assert_eq!(received.lock().unwrap().len(), 2);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.stalls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_parked_connection_carries_the_next_batch() {
    let handler = ScriptedServer::default();
    let connections = Arc::clone(&handler.connections);
    let (addr, received, _) = start_server_with(handler, |_| {});
    let channel = channel(addr, json!({ "pool_size": 1 }));

    for round in 0..2 {
        let results = channel.send_batch(&batch(messages(&format!("b{round}m"), 2)));
        assert_all_accepted(&results);
    }

    assert_eq!(received.lock().unwrap().len(), 4);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn a_connection_closed_by_the_server_at_mail_is_replaced_without_a_retry() {
    // The pool reuses a parked connection without a NOOP first; a server
    // that has closed it (here with 421 at MAIL, after two messages) took
    // nothing, so the message goes over a new connection at once.
    let handler = ScriptedServer {
        per_connection: Some(2),
        ..ScriptedServer::default()
    };
    let connections = Arc::clone(&handler.connections);
    let (addr, received, _) = start_server_with(handler, |_| {});
    let results = channel(addr, json!({ "pool_size": 1 })).send_batch(&batch(messages("r", 5)));

    assert_all_accepted(&results);
    assert_eq!(received.lock().unwrap().len(), 5);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[test]
fn a_header_with_a_line_break_fails_without_reaching_the_server() {
    let (addr, received) = start_server();
    let mut injected = message("c1", "ana@example.org");
    injected.headers.insert(
        "X-Campaign".into(),
        "spring\r\nBcc: victim@example.org".into(),
    );

    let results = channel(addr, json!({}))
        .send_batch(&batch(vec![injected, message("c2", "bo@example.org")]));

    assert!(
        matches!(&results[0].status, SendStatus::Failed { reason } if reason.contains("line break")),
        "{:?}",
        results[0]
    );
    assert!(matches!(results[1].status, SendStatus::Accepted { .. }));
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert!(!received[0].data.contains("victim"));
}

#[test]
fn an_unreachable_server_means_retry() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);

    let results =
        channel(addr, json!({})).send_batch(&batch(vec![message("c1", "ana@example.org")]));

    assert!(
        matches!(results[0].status, SendStatus::Retry { .. }),
        "{:?}",
        results[0]
    );
}

#[test]
fn a_server_that_never_replies_means_retry_after_the_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    // Accept and hold the connection without a greeting.
    let holder = std::thread::spawn(move || silent.accept().map(|(stream, _)| stream));
    let channel = channel(addr, json!({ "timeout": "300ms" }));
    let started = Instant::now();

    let results = channel.send_batch(&batch(vec![message("c1", "ana@example.org")]));

    assert!(
        matches!(&results[0].status, SendStatus::Retry { reason, .. } if reason.contains("300ms")),
        "{:?}",
        results[0]
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(holder);
}

fn tls_channel(addr: SocketAddr, password: &str) -> (EmailChannel, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let config = json!({
        "smtp_url": format!("smtp://{addr}?tls=required"),
        "tls_ca_file": format!("{}/tests/fixtures/ca.pem", env!("CARGO_MANIFEST_DIR")),
        "username": "herald",
        "password_file": password_file,
        "timeout": "10s",
    });
    (EmailChannel::create(&config).unwrap(), dir)
}

#[test]
fn starttls_then_auth_plain_delivers_the_message() {
    let (addr, received, logins) = start_tls_server();
    let (channel, _dir) = tls_channel(addr, "hunter2");

    let results = channel.send_batch(&batch(vec![message("c1", "ana@example.org")]));

    assert!(
        matches!(results[0].status, SendStatus::Accepted { .. }),
        "{:?}",
        results[0]
    );
    assert_eq!(*logins.lock().unwrap(), ["herald"]);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[test]
fn refused_credentials_mean_retry_naming_the_keys() {
    let (addr, received, _) = start_tls_server();
    let (channel, _dir) = tls_channel(addr, "wrong");

    let results = channel.send_batch(&batch(vec![message("c1", "ana@example.org")]));

    assert!(
        matches!(&results[0].status, SendStatus::Retry { reason, .. } if reason.contains("`password_file`")),
        "{:?}",
        results[0]
    );
    assert!(received.lock().unwrap().is_empty());
}

#[test]
fn tls_required_refuses_a_server_without_starttls() {
    let (addr, received) = start_server();
    let config = json!({ "smtp_url": format!("smtp://{addr}?tls=required"), "timeout": "5s" });

    let results = EmailChannel::create(&config)
        .unwrap()
        .send_batch(&batch(vec![message("c1", "ana@example.org")]));

    assert!(
        matches!(results[0].status, SendStatus::Retry { .. }),
        "{:?}",
        results[0]
    );
    assert!(received.lock().unwrap().is_empty());
}

#[test]
fn the_rate_limit_spaces_sends_across_threads() {
    let (addr, received) = start_server();
    let channel = Arc::new(channel(addr, json!({ "rate": "20/s", "pool_size": 3 })));
    let started = Instant::now();

    let threads: Vec<_> = (0..3)
        .map(|t| {
            let channel = Arc::clone(&channel);
            std::thread::spawn(move || channel.send_batch(&batch(messages(&format!("t{t}m"), 3))))
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    // 9 sends at 20/s: the first is free, the other 8 are 50ms apart.
    assert!(
        started.elapsed() >= Duration::from_millis(8 * 50),
        "{:?}",
        started.elapsed()
    );
    assert_all_accepted(&results);
    assert_eq!(received.lock().unwrap().len(), 9);
}

#[test]
fn describe_serves_email_with_tracking_and_the_pool_size_as_concurrency() {
    let (addr, _) = start_server();
    let description = channel(addr, json!({ "pool_size": 3 })).describe();
    assert_eq!(description.concurrency, 3);
    let info = &description.channels[0];
    assert_eq!(info.name, "email");
    assert_eq!(info.address_column.as_deref(), Some("email"));
    assert!(info.tracking);
}

/// A TLS front (socat) on a free loopback port for the plain server at
/// `plain`: implicit TLS (`smtps://`) from the first byte, with the
/// certificate for 127.0.0.1 from `tests/fixtures`. Killed on drop.
struct ImplicitTlsFront {
    port: u16,
    socat: std::process::Child,
}

impl ImplicitTlsFront {
    fn start(plain: SocketAddr) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let socat = std::process::Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
                fixture("server.pem"),
                fixture("server.key")
            ))
            .arg(format!("TCP:{plain}"))
            // The readiness probe below closes without a handshake.
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "socat runs the implicit-TLS front; .ci/run installs it (apt-get install socat)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        ImplicitTlsFront { port, socat }
    }
}

impl Drop for ImplicitTlsFront {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
    }
}

#[test]
fn smtps_delivers_over_tls_from_the_first_byte() {
    let (plain, received) = start_server();
    let front = ImplicitTlsFront::start(plain);
    let config = json!({
        "smtp_url": format!("smtps://127.0.0.1:{}", front.port),
        "tls_ca_file": format!("{}/tests/fixtures/ca.pem", env!("CARGO_MANIFEST_DIR")),
        "timeout": "10s",
        "pool_size": 1,
    });
    let channel = EmailChannel::create(&config).unwrap();

    // Two batches: the second goes over the parked TLS connection.
    assert_all_accepted(&channel.send_batch(&batch(messages("a", 3))));
    assert_all_accepted(&channel.send_batch(&batch(messages("b", 50))));

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 53);
    assert!(
        received
            .iter()
            .any(|m| m.to.contains(&"b49@example.org".to_owned()))
    );
}

#[test]
fn smtps_to_a_server_whose_certificate_is_not_trusted_means_retry() {
    let (plain, received) = start_server();
    let front = ImplicitTlsFront::start(plain);
    // No `tls_ca_file`: the fixture's CA is not among the trusted roots.
    let config =
        json!({ "smtp_url": format!("smtps://127.0.0.1:{}", front.port), "timeout": "5s" });

    let results = EmailChannel::create(&config)
        .unwrap()
        .send_batch(&batch(vec![message("c1", "ana@example.org")]));

    assert!(
        matches!(&results[0].status, SendStatus::Retry { reason, .. } if reason.contains("certificate")),
        "{:?}",
        results[0]
    );
    assert!(received.lock().unwrap().is_empty());
}
