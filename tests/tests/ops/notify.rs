//! sd_notify as systemd sees it: a datagram socket owned by the test stands
//! in for `NOTIFY_SOCKET`; the daemon's messages, their order, and the
//! watchdog period are checked, with the embedded store and with a Redis
//! that goes away.

use crate::support::{
    Herald, add_delivery, embedded_config, files_starting, unsubscribe_path, wait_for,
};
use herald_test_support::{Daemon, RedisServer};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

/// `WATCHDOG_USEC` given to the daemon: pings are expected every second.
const WATCHDOG_USEC: &str = "2000000";

/// The socket systemd would own, and what arrived on it with arrival times.
struct NotifySocket {
    socket: UnixDatagram,
    path: String,
    seen: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket {
            socket,
            path: path.display().to_string(),
            seen: Vec::new(),
        }
    }

    /// Reads for `how_long`, keeping every message.
    fn collect(&mut self, how_long: Duration) {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            self.read_one();
        }
    }

    /// Reads what queued up while the test was busy elsewhere, so that the
    /// arrival times taken afterwards are the times the daemon sent them.
    fn drain(&mut self) {
        self.socket.set_nonblocking(true).unwrap();
        while self.read_one().is_some() {}
        self.socket.set_nonblocking(false).unwrap();
        self.socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }

    fn read_one(&mut self) -> Option<String> {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        self.seen.push((Instant::now(), text.clone()));
        Some(text)
    }

    /// Reads until a message other than `WATCHDOG=1` arrives.
    fn next_state(&mut self, within: Duration) -> String {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(text) = self.read_one()
                && text != "WATCHDOG=1\n"
            {
                return text;
            }
        }
        panic!(
            "no state message within {within:?}; seen: {:?}",
            self.texts()
        );
    }

    fn texts(&self) -> Vec<&str> {
        self.seen.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// Gaps between the watchdog pings received after `from`.
    fn watchdog_gaps(&self, from: Instant) -> Vec<Duration> {
        let pings: Vec<Instant> = self
            .seen
            .iter()
            .filter(|(at, text)| *at >= from && text == "WATCHDOG=1\n")
            .map(|(at, _)| *at)
            .collect();
        pings.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn env(socket: &NotifySocket) -> [(&str, &str); 2] {
    env_with(socket, WATCHDOG_USEC)
}

fn env_with<'a>(socket: &'a NotifySocket, watchdog_usec: &'a str) -> [(&'a str, &'a str); 2] {
    [
        ("NOTIFY_SOCKET", socket.path.as_str()),
        ("WATCHDOG_USEC", watchdog_usec),
    ]
}

/// A config on the Redis at `url`, the outbox serving `email` into `var/outbox`.
fn redis_config(url: &str, key_prefix: &str) -> String {
    format!(
        "deliveries_dir: deliveries\nstore:\n  kind: redis\n  url: {url}\n  key_prefix: {key_prefix}\nhttp:\n  listen: \"{{listen}}\"\nplugins:\n  - path: {}\n    config:\n      dir: var/outbox\n      channels: [email]\n",
        Daemon::plugin("herald_outbox").display()
    )
}

/// Every gap is about half of `WATCHDOG_USEC` (1 s): never a busy loop,
/// and never as late as the 2 s after which systemd would kill the daemon
/// (the slack above 1 s is for a loaded CI machine).
fn assert_watchdog_period(gaps: &[Duration], min_pings: usize) {
    eprintln!("watchdog gaps: {gaps:?}");
    assert!(
        gaps.len() + 1 >= min_pings,
        "expected at least {min_pings} pings, got gaps {gaps:?}"
    );
    for gap in gaps {
        assert!(
            *gap >= Duration::from_millis(800) && *gap < Duration::from_millis(1900),
            "a watchdog gap of {gap:?} is not about half of 2 s: {gaps:?}"
        );
    }
}

#[test]
fn ready_reloading_ready_stopping_in_order_with_watchdog_at_half_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "hello", 10, 1000);
    let mut socket = NotifySocket::bind(dir.path());
    let mut herald = Herald::start(dir.path(), &embedded_config(), &[], &env(&socket));

    let ready = socket.next_state(Duration::from_secs(30));
    assert_eq!(ready, "READY=1\n");
    // READY=1 comes once the listener is up and the deliveries are loaded.
    let (status, _) = herald
        .get("/healthz")
        .expect("the listener is up at READY=1");
    assert_eq!(status, 200);
    assert!(
        herald.log().contains("Deliveries loaded."),
        "READY=1 before the deliveries were loaded:\n{}",
        herald.log()
    );

    let steady = Instant::now();
    socket.collect(Duration::from_millis(4200));
    assert_watchdog_period(&socket.watchdog_gaps(steady), 4);

    herald.signal("HUP");
    let reloading = socket.next_state(Duration::from_secs(10));
    assert!(
        reloading.starts_with("RELOADING=1\n") && reloading.contains("MONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(socket.next_state(Duration::from_secs(10)), "READY=1\n");

    herald.signal("TERM");
    assert_eq!(socket.next_state(Duration::from_secs(10)), "STOPPING=1\n");
    let status = herald.stop();
    assert!(status.success(), "exit status {status}:\n{}", herald.log());
    eprintln!("notify messages: {:?}", socket.texts());
}

#[test]
fn watchdog_pings_go_on_while_the_redis_store_is_down() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deliveries")).unwrap();
    let config = redis_config(&redis.url(), "ops-watchdog");
    let mut socket = NotifySocket::bind(dir.path());
    let mut herald = Herald::start(dir.path(), &config, &[], &env(&socket));
    assert_eq!(socket.next_state(Duration::from_secs(30)), "READY=1\n");
    herald.wait_ready();

    redis.stop();
    socket.drain();
    let outage = Instant::now();
    socket.collect(Duration::from_millis(6200));
    let gaps = socket.watchdog_gaps(outage);
    eprintln!(
        "pings during a {:?} Redis outage: {}",
        outage.elapsed(),
        gaps.len() + 1
    );
    assert_watchdog_period(&gaps, 6);

    let (status, reason) = herald.get("/readyz").unwrap();
    assert_eq!(status, 503, "readyz during the outage: {reason}");
    assert!(reason.contains("store"), "{reason}");
    assert!(
        herald
            .log()
            .contains("Store unavailable; the scheduler will retry."),
        "{}",
        herald.log()
    );

    redis.restart();
    wait_for(
        Duration::from_secs(20),
        "readyz back to 200 after Redis returns",
        || herald.get("/readyz").is_some_and(|(code, _)| code == 200),
    );
    assert!(herald.stop().success());
}

#[test]
fn ready_comes_while_redis_is_down_at_start_and_the_run_sends_once_it_returns() {
    // Whether the store answers is /readyz's business, not READY=1's: a
    // daemon that exited here would be restarted until systemd gave up.
    let mut redis = RedisServer::start();
    redis.stop();
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "late-store", 5, 1000);
    let mut socket = NotifySocket::bind(dir.path());
    let config = redis_config(&redis.url(), "ops-late");
    let mut herald = Herald::start(dir.path(), &config, &[], &env(&socket));

    let started = Instant::now();
    assert_eq!(
        socket.next_state(Duration::from_secs(30)),
        "READY=1\n",
        "{}",
        herald.log()
    );
    println!(
        "READY=1 {:?} after the start, Redis down",
        started.elapsed()
    );
    assert_eq!(herald.get("/healthz").unwrap(), (200, "ok".to_owned()));
    let (status, reason) = herald.get("/readyz").unwrap();
    assert_eq!(
        (status, reason.as_str()),
        (503, "the store does not answer")
    );
    let down = Instant::now();
    socket.collect(Duration::from_millis(3200));
    assert_watchdog_period(&socket.watchdog_gaps(down), 3);

    redis.restart();
    wait_for(
        Duration::from_secs(20),
        "readyz 200 once Redis is up",
        || herald.get("/readyz").is_some_and(|(code, _)| code == 200),
    );
    let outbox = dir.path().join("var/outbox");
    wait_for(Duration::from_secs(30), "the 5 messages", || {
        files_starting(&outbox, "late-store%40once") == 5
    });
    // The links' key came from the store after all: the link of a sent
    // message is checked and its page served.
    let (status, page) = herald
        .get(&unsubscribe_path(&outbox, "late-store%40once"))
        .unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Unsubscribe"), "{page}");
    assert!(herald.stop().success(), "{}", herald.log());
}

#[test]
fn watchdog_pings_go_on_while_a_frozen_redis_lets_every_command_time_out() {
    // SIGSTOP: connections stay open and nothing answers, as in a network
    // partition. Each store call waits out its timeout (2 s); the pings
    // must still come within WatchdogSec (here 6 s, pings every 3 s).
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    add_delivery(dir.path(), "frozen", 3, 1000);
    let mut socket = NotifySocket::bind(dir.path());
    let config = redis_config(&redis.url(), "ops-frozen");
    let mut herald = Herald::start(dir.path(), &config, &[], &env_with(&socket, "6000000"));
    assert_eq!(socket.next_state(Duration::from_secs(30)), "READY=1\n");
    // Read the socket all along, so arrival times are sending times, and
    // count the gap that spans the freeze too.
    let ready = Instant::now();
    socket.collect(Duration::from_millis(3500));
    assert_eq!(herald.get("/readyz").unwrap().0, 200, "{}", herald.log());

    redis.freeze();
    socket.collect(Duration::from_millis(12_500));
    let gaps = socket.watchdog_gaps(ready);
    let times: Vec<String> = socket
        .seen
        .iter()
        .filter(|(at, _)| *at >= ready)
        .map(|(at, text)| format!("{:.2} {}", (*at - ready).as_secs_f64(), text.trim()))
        .collect();
    eprintln!("after READY=1, frozen at 3.50: {times:?}");
    eprintln!("watchdog gaps with Redis frozen: {gaps:?}");
    // A pass that meets the frozen store waits out one command timeout
    // (2 s) before the loop pings again: a gap may reach 3 s + 2 s, never
    // the 6 s after which systemd would kill the daemon.
    assert!(gaps.len() >= 3, "too few pings: {gaps:?}\n{}", herald.log());
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_millis(2400) && *gap < Duration::from_millis(5500),
            "a gap of {gap:?} is not within half of 6 s plus one store timeout: {gaps:?}"
        );
    }
    let (status, _) = herald.get("/readyz").unwrap();
    assert_eq!(status, 503, "readyz with Redis frozen");

    redis.thaw();
    wait_for(
        Duration::from_secs(30),
        "readyz back to 200 after the thaw",
        || herald.get("/readyz").is_some_and(|(code, _)| code == 200),
    );
    assert!(herald.stop().success(), "{}", herald.log());
}
