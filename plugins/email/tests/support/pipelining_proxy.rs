//! A TCP proxy in front of the test SMTP server (mailin, which reads
//! pipelined commands fine but does not say so) that adds PIPELINING to its
//! EHLO reply, and holds back the server's replies after a MAIL, and after
//! a message's final dot, until the client has sent the next DATA. A client
//! that pipelines (RFC 2920) goes straight through, but for the last
//! message of a batch, which has no next one to send; one that waits for
//! each reply before the next command stalls, and every stall is counted.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a held reply waits for the client's DATA before it is let through.
const HOLD: Duration = Duration::from_millis(500);

/// The proxy's address and its count of stalled replies.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Replies held for [`HOLD`] because the client waited for them.
    pub stalls: Arc<AtomicUsize>,
}

/// Starts a proxy to `server`; it runs until the test process ends.
pub fn start(server: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stalls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&stalls);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let client = client.unwrap();
            let upstream = TcpStream::connect(server).unwrap();
            relay(client, upstream, Arc::clone(&counted));
        }
    });
    Proxy { addr, stalls }
}

/// Whether a MAIL or a final dot was forwarded without a DATA after it.
type Held = Arc<(Mutex<bool>, Condvar)>;

fn relay(client: TcpStream, server: TcpStream, stalls: Arc<AtomicUsize>) {
    let held: Held = Arc::new((Mutex::new(false), Condvar::new()));
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let watch = Arc::clone(&held);
    std::thread::spawn(move || {
        let mut commands = Commands::default();
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = from_client.read(&mut buf) {
            // Marked before forwarding, so the reply cannot overtake the mark.
            commands.feed(&buf[..n], &watch);
            if to_server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            let (lock, wake) = &*held;
            let waiting = lock.lock().unwrap();
            let (waiting, timeout) = wake.wait_timeout_while(waiting, HOLD, |w| *w).unwrap();
            if timeout.timed_out() {
                stalls.fetch_add(1, Ordering::SeqCst);
            }
            drop(waiting);
            let reply = String::from_utf8_lossy(&buf[..n])
                .replacen("250-8BITMIME", "250-PIPELINING\r\n250-8BITMIME", 1)
                .replacen("250 8BITMIME", "250-PIPELINING\r\n250 8BITMIME", 1);
            if to_client.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Write);
    });
}

/// The client's command lines, told apart from message content.
#[derive(Default)]
struct Commands {
    line: Vec<u8>,
    in_content: bool,
}

impl Commands {
    fn feed(&mut self, bytes: &[u8], held: &Held) {
        for &b in bytes {
            self.line.push(b);
            if b != b'\n' {
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end()
                .to_ascii_uppercase();
            self.line.clear();
            if self.in_content {
                if line == "." {
                    self.in_content = false;
                    *held.0.lock().unwrap() = true;
                }
            } else if line.starts_with("MAIL FROM:") {
                *held.0.lock().unwrap() = true;
            } else if line == "DATA" {
                // Content follows only once the server says 354; a client
                // that sends it otherwise is not what these tests check.
                self.in_content = true;
                *held.0.lock().unwrap() = false;
                held.1.notify_all();
            }
        }
    }
}
