//! A counting SMTP sink (mailin-embedded on loopback): every message
//! accepted is counted per recipient address with its arrival instant, so
//! a duplicate send is seen even when the content is identical; the raw
//! messages are kept too, so a test can read the headers as sent.

use mailin_embedded::response::{OK, START_DATA};
use mailin_embedded::{Handler, Response, Server};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What the sink received, per recipient address: the arrival instants.
pub type Received = Arc<Mutex<BTreeMap<String, Vec<SystemTime>>>>;

/// The raw messages received (DATA as sent, dot-unstuffed), in order.
pub type Raw = Arc<Mutex<Vec<RawMessage>>>;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message: headers, blank line, body.
    pub data: Vec<u8>,
}

#[derive(Clone, Default)]
struct Counter {
    received: Received,
    raw: Raw,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Counter {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        OK
    }

    fn rcpt(&mut self, _to: &str) -> Response {
        OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        START_DATA
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let now = SystemTime::now();
        self.raw.lock().unwrap().push(RawMessage {
            to: self.to.clone(),
            data: std::mem::take(&mut self.data),
        });
        let mut received = self.received.lock().unwrap();
        for to in self.to.drain(..) {
            received.entry(to.to_lowercase()).or_default().push(now);
        }
        OK
    }
}

/// A running sink; it serves until the test process ends.
pub struct SmtpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it received.
    pub received: Received,
    /// The raw messages it received.
    pub raw: Raw,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub fn start() -> SmtpSink {
        let counter = Counter::default();
        let received = counter.received.clone();
        let raw = counter.raw.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server::new(counter);
        // mailin serves one connection per thread, and every daemon keeps
        // its pooled connections open: 6 daemons × pool 4 fit in 64.
        server
            .with_name("sink.test")
            .with_tcp_listener(listener)
            .with_num_threads(64);
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                panic!("the test SMTP sink stopped: {e}");
            }
        });
        SmtpSink {
            addr,
            received,
            raw,
        }
    }

    /// Messages received in all.
    pub fn total(&self) -> usize {
        self.received.lock().unwrap().values().map(Vec::len).sum()
    }

    /// Messages received per address.
    pub fn per_address(&self) -> BTreeMap<String, usize> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<RawMessage> {
        self.raw.lock().unwrap().clone()
    }

    /// The earliest arrival, if any.
    pub fn first_arrival(&self) -> Option<SystemTime> {
        self.received
            .lock()
            .unwrap()
            .values()
            .flatten()
            .min()
            .copied()
    }

    /// The `plugins` list item for the email plugin sending to this sink.
    pub fn email_plugin(&self) -> String {
        format!(
            "  - path: {}\n    config: {{ smtp_url: \"smtp://{}\", pool_size: 4, timeout: 10s }}\n",
            crate::Daemon::plugin("herald_email").display(),
            self.addr
        )
    }
}
