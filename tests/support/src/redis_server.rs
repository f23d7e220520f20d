//! A private `redis-server` process for one test.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` bound to 127.0.0.1 on a free port, persisting with
/// `appendonly yes` into its own temporary folder. Killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    tls: bool,
    /// Extra `redis-server` arguments (cluster mode, `--replicaof`, ...).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed or does not answer in time:
    /// the message says how to fix it.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (such as
    /// `--cluster-enabled yes` or `--replicaof 127.0.0.1 <port>`), kept
    /// across restarts, and waits until it answers PING.
    ///
    /// # Panics
    ///
    /// Like [`start`](Self::start).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("herald-redis-")
            .tempdir()
            .expect("cannot create a temporary folder for redis-server");
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            tls: false,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.start_on_a_free_port();
        server
    }

    /// Starts a server that only speaks TLS, with a certificate for
    /// 127.0.0.1 signed by a fresh test CA ([`ca_file`](Self::ca_file)).
    ///
    /// # Panics
    ///
    /// When `openssl` or `redis-server` (built with TLS) is missing.
    pub fn start_tls() -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("herald-redis-tls-")
            .tempdir()
            .expect("cannot create a temporary folder for redis-server");
        make_certificates(dir.path());
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            tls: true,
            extra: Vec::new(),
        };
        server.start_on_a_free_port();
        server
    }

    /// `redis://127.0.0.1:<port>/0`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The folder holding its append-only file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it cleanly (SIGTERM) and waits for the process to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open but nothing answers,
    /// like a hung or partitioned server. [`thaw`](Self::thaw) resumes it.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    /// Kills it without warning (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same folder, so what was
    /// persisted in the append-only file survives. Stops it first if it runs.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Spawns it on a free port, and again on another when it exits at
    /// once: between the pick and the server's bind another process may
    /// take the port (a client's connection gets one from the same range),
    /// or, for a cluster node, the bus port 10,000 above it.
    fn start_on_a_free_port(&mut self) {
        let cluster = self.extra.iter().any(|a| a == "--cluster-enabled");
        for attempt in 1..=5 {
            self.port = if cluster {
                free_cluster_port()
            } else {
                free_port()
            };
            match self.try_spawn() {
                Ok(()) => return,
                Err(Start::Exited(message)) if attempt < 5 => {
                    eprintln!("{message}; trying another port");
                    if !self.tls {
                        // What the failed start wrote (a cluster node's
                        // nodes.conf names its port) must not be read again.
                        self.dir = tempfile::Builder::new()
                            .prefix("herald-redis-")
                            .tempdir()
                            .expect("cannot create a temporary folder for redis-server");
                    }
                }
                Err(Start::Exited(message) | Start::Silent(message)) => panic!("{message}"),
            }
        }
    }

    fn spawn(&mut self) {
        if let Err(Start::Exited(message) | Start::Silent(message)) = self.try_spawn() {
            panic!("{message}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), Start> {
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1", "--port"]);
        if self.tls {
            let file = |name: &str| self.dir.path().join(name);
            command
                .args(["0", "--tls-auth-clients", "no", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(file("server.pem"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.pem"));
        } else {
            command.arg(self.port.to_string());
        }
        let child = command
            .args(["--save", "", "--appendonly", "yes", "--dir"])
            .arg(self.dir.path())
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `redis-server` ({e}); install it (Debian: `apt-get install redis-server`) and make sure it is on PATH"
                )
            });
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), Start> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // A TLS server cannot be pinged in plain text: accepting
            // connections is its sign of life.
            let alive = if self.tls {
                TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            } else {
                ping(self.port)
            };
            if alive {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(Start::Exited(format!(
                    "redis-server on port {} exited at start with {status}; is the port taken?",
                    self.port
                )));
            }
            if Instant::now() > deadline {
                return Err(Start::Silent(format!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A frozen process ignores nothing but SIGKILL; thaw for tidiness.
        self.thaw();
        self.kill();
    }
}

/// Writes `ca.pem`, `server.pem` and `server.key` (for 127.0.0.1) into `dir`.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `openssl` ({e}); install it (Debian: `apt-get install openssl`)")
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=herald test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("cannot write the certificate extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

/// Why a server did not start.
enum Start {
    /// It exited at once (its port was taken, most likely).
    Exited(String),
    /// It ran but never answered.
    Silent(String),
}

/// A free loopback port for a cluster node: at most 55,535, whose cluster
/// bus port (10,000 above) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55_535 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a free port");
    listener
        .local_addr()
        .expect("bound socket has an address")
        .port()
}

/// Whether a server on `port` answers `PING` with `+PONG`.
pub(crate) fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_then_survives_a_restart_on_the_same_port() {
        let mut server = RedisServer::start();
        let port = server.port();
        assert!(ping(port));
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/0"));
        server.stop();
        assert!(!ping(port));
        server.restart();
        assert!(ping(port));
        assert_eq!(server.port(), port);
    }

    #[test]
    fn tls_server_accepts_connections_on_its_tls_port() {
        let server = RedisServer::start_tls();
        assert!(server.url().starts_with("rediss://127.0.0.1:"));
        assert!(server.ca_file().is_file());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, server.port())).is_ok());
        assert!(!ping(server.port()), "plain text is refused");
    }

    #[test]
    fn a_frozen_server_answers_again_once_thawed() {
        let server = RedisServer::start();
        server.freeze();
        assert!(!ping(server.port()));
        server.thaw();
        assert!(ping(server.port()));
    }

    #[test]
    fn killed_server_stops_answering() {
        let mut server = RedisServer::start();
        let port = server.port();
        server.kill();
        assert!(!ping(port));
    }

    #[test]
    fn dropping_the_server_ends_the_process() {
        let server = RedisServer::start();
        let port = server.port();
        drop(server);
        assert!(!ping(port));
    }
}
