//! Helpers of the ops tests: a daemon started with the environment and
//! arguments a test chooses, plain HTTP GETs, and audiences of any size.

use herald_test_support::Daemon;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `herald run` child started by a test, killed on drop.
pub struct Herald {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Herald {
    /// Writes `config` (with `{listen}` replaced) to `dir/herald.yaml` and
    /// starts `herald run --config dir/herald.yaml EXTRA...` in `dir` with `env`.
    pub fn start(dir: &Path, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Herald {
        let addr: SocketAddr = format!("127.0.0.1:{}", Daemon::free_port())
            .parse()
            .unwrap();
        let path = dir.join("herald.yaml");
        std::fs::write(&path, config.replace("{listen}", &addr.to_string())).unwrap();
        Herald::spawn(dir, &path, addr, extra, env)
    }

    /// Starts `herald run --config PATH` in `cwd`; the config listens on `addr`.
    pub fn spawn(
        cwd: &Path,
        config: &Path,
        addr: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Herald {
        let log = cwd.join("herald.log");
        let stderr = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(Daemon::binary());
        command
            .current_dir(cwd)
            .args(["run", "--config"])
            .arg(config)
            .args(extra)
            .env_remove("HERALD_CONFIG")
            .env_remove("HERALD_REDIS_URL")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("HERALD_LOG", "info,herald=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("the herald binary starts");
        Herald { child, addr, log }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on its listener.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr, path)
    }

    /// `POST path` with a form `body` on its listener.
    pub fn post(&self, path: &str, body: &str) -> Option<(u16, String)> {
        http_request(self.addr, "POST", path, body)
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&mut self) {
        let log = self.log.clone();
        wait_for(Duration::from_secs(30), "the daemon to be ready", || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "herald exited with {status}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            self.get("/readyz").is_some_and(|(code, _)| code == 200)
        });
    }

    /// Sends a signal by name (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGTERM, then waits (at most 30 s) for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "herald did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after `within`.
pub fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` over HTTP/1.1: status and body, `None` when nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path, "")
}

/// `METHOD path` with a form `body` over HTTP/1.1: status and body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Writes `count` recipients `r0..` with valid addresses to `path` as CSV.
pub fn write_audience(path: &Path, count: usize) {
    let mut csv = String::from("id,email,first_name\n");
    for i in 0..count {
        csv.push_str(&format!("r{i},r{i}@example.test,R{i}\n"));
    }
    std::fs::write(path, csv).unwrap();
}

/// The path (`/u/TOKEN`) of the `List-Unsubscribe` link of the first
/// outbox file of `dir` whose name starts with `prefix`.
pub fn unsubscribe_path(dir: &Path, prefix: &str) -> String {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no outbox file starts with {prefix}"));
    // Unfolded: a long header continues on lines starting with a space.
    let eml = std::fs::read_to_string(file.path())
        .unwrap()
        .replace("\r\n ", " ");
    let header = eml
        .lines()
        .find_map(|line| line.strip_prefix("List-Unsubscribe: "))
        .unwrap_or_else(|| panic!("no List-Unsubscribe header in {eml}"));
    let link = header.trim().trim_start_matches('<').trim_end_matches('>');
    let start = link.find("/u/").unwrap_or_else(|| panic!("{link}"));
    link[start..].to_owned()
}

/// Files of `dir` whose names start with `prefix` (outbox files of a run).
pub fn files_starting(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .count()
    })
}

/// An email delivery sent once, at once, to `audiences/{id}.csv`, throttled.
pub fn once_delivery(id: &str, per_second: u32) -> String {
    format!(
        "id: {id}\nchannel: email\naudience:\n  file: audiences/{id}.csv\ncontent:\n  from: \"Shop <hello@shop.example>\"\n  subject: \"Hello {{{{ first_name }}}}\"\n  text: \"Hi {{{{ first_name }}}}.\"\nthrottle: {per_second}/s\n"
    )
}

/// A config with the embedded store in `var/`, the outbox serving `email`
/// into `var/outbox`, and leases of a few seconds.
pub fn embedded_config() -> String {
    format!(
        "deliveries_dir: deliveries\nstore:\n  kind: embedded\n  path: var/herald.db\nhttp:\n  listen: \"{{listen}}\"\nplugins:\n  - path: {}\n    config:\n      dir: var/outbox\n      channels: [email]\nsending:\n  lease: 3s\n  shutdown_grace: 10s\n",
        Daemon::plugin("herald_outbox").display()
    )
}

/// Makes `dir/deliveries/audiences` and writes `delivery` with `count` recipients.
pub fn add_delivery(dir: &Path, id: &str, count: usize, per_second: u32) {
    let audiences = dir.join("deliveries/audiences");
    std::fs::create_dir_all(&audiences).unwrap();
    write_audience(&audiences.join(format!("{id}.csv")), count);
    std::fs::write(
        dir.join(format!("deliveries/{id}.yaml")),
        once_delivery(id, per_second),
    )
    .unwrap();
}

/// The embedded store, the outbox serving `email` into `var/outbox`, and
/// the `misbehave` test plugin (its channel `misbehave`, `concurrency`
/// calls at once) whose `sleep:MS` recipients outlast a short
/// `plugin_timeout`; `sending` adds keys to the `sending:` section.
pub fn misbehave_config(sending: &str, concurrency: u32) -> String {
    format!(
        "deliveries_dir: deliveries\nstore:\n  kind: embedded\n  path: var/herald.db\nhttp:\n  listen: \"{{listen}}\"\nplugins:\n  - path: {}\n    config:\n      dir: var/outbox\n      channels: [email]\n  - path: {}\n    config:\n      concurrency: {concurrency}\nsending:\n  lease: 3s\n  shutdown_grace: 10s\n{sending}",
        Daemon::plugin("herald_outbox").display(),
        Daemon::plugin("herald_test_misbehave").display()
    )
}

/// A one-shot delivery on the `misbehave` channel to recipients `ids`
/// (their ids are their addresses: `sleep:2500` sleeps 2.5 s).
pub fn add_misbehave_delivery(dir: &Path, id: &str, ids: &[&str]) {
    let audiences = dir.join("deliveries/audiences");
    std::fs::create_dir_all(&audiences).unwrap();
    let mut csv = String::from("id,name\n");
    for recipient in ids {
        csv.push_str(&format!("{recipient},Name\n"));
    }
    std::fs::write(audiences.join(format!("{id}.csv")), csv).unwrap();
    std::fs::write(
        dir.join(format!("deliveries/{id}.yaml")),
        format!(
            "id: {id}\nchannel: misbehave\naudience:\n  file: audiences/{id}.csv\ncontent:\n  body: \"Hello {{{{ name }}}}\"\n"
        ),
    )
    .unwrap();
}
