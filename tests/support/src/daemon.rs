//! [`Daemon`]: the built `herald` binary started as a separate process
//! with a temporary config, on a free loopback port, ready once `/readyz`
//! answers 200. Stopped with SIGTERM (then SIGKILL) when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running `herald run`.
pub struct Daemon {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    /// The `herald` binary: `HERALD_BIN`, else `target/<profile>/herald`
    /// beside the running test executable (built by `cargo test --workspace`;
    /// when testing this crate alone, `cargo build -p herald` first).
    pub fn binary() -> PathBuf {
        if let Some(bin) = std::env::var_os("HERALD_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test executable has a path");
        // target/<profile>/deps/<test> → target/<profile>/herald
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let binary = profile_dir.join("herald");
        // A test crate run alone does not build the binary: build it (once
        // per process; a no-op when fresh) so no test runs a stale one.
        cargo_build_once("herald", profile_dir);
        binary
    }

    /// A free loopback port (bound then released: a small race, acceptable in tests).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port")
    }

    /// Writes `config` (YAML, where `{listen}` stands for the address to
    /// serve on) to `dir/herald.yaml`, starts the daemon with it, and waits
    /// until `/readyz` answers 200.
    pub fn start(dir: &Path, config: &str) -> Daemon {
        Daemon::start_named(dir, "herald", config)
    }

    /// As [`Daemon::start`], with config and log files named after `name`
    /// (several daemons in one folder).
    pub fn start_named(dir: &Path, name: &str, config: &str) -> Daemon {
        let addr: SocketAddr = format!("127.0.0.1:{}", Daemon::free_port())
            .parse()
            .expect("a loopback address");
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config.replace("{listen}", &addr.to_string()))
            .expect("the config is written");
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("the log file is created");
        let binary = Daemon::binary();
        assert!(
            binary.exists(),
            "{} does not exist: run `cargo build -p herald` or set HERALD_BIN",
            binary.display()
        );
        let child = Command::new(&binary)
            .args(["run", "--config"])
            .arg(&path)
            .env("HERALD_LOG", "info,herald=debug")
            .env_remove("HERALD_CONFIG")
            .env_remove("HERALD_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the herald binary starts");
        let mut daemon = Daemon {
            child: Some(child),
            addr,
            log,
        };
        daemon.wait_ready();
        daemon
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "herald exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if get_status(self.addr, "/readyz") == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "herald was not ready within {READY_WITHIN:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon with SIGTERM and waits for it (SIGKILL after 20 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Daemon {
    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the daemon with SIGKILL (a crash: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (SIGHUP for a reload, say) without waiting.
    pub fn signal(&self, signal: i32) {
        if let Some(child) = self.child.as_ref() {
            // SAFETY: signalling our own child by its pid.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// A plugin built beside the binary: `lib{name}.so` for the package
    /// `name` (`herald_outbox`, `herald_test_count`, ...). `cargo test`
    /// compiles a cdylib without tests of its own only as a test harness,
    /// so a missing one is built here, once per process and package.
    pub fn plugin(name: &str) -> PathBuf {
        let path = Daemon::binary().with_file_name(format!("lib{name}.so"));
        cargo_build_once(name, path.parent().expect("the binary has a folder"));
        assert!(
            path.exists(),
            "{} does not exist after building it",
            path.display()
        );
        path
    }
}

/// Builds one workspace package into `profile_dir`'s target folder, once
/// per process and package.
fn cargo_build_once(package: &str, profile_dir: &Path) {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|b| b == package) {
        return;
    }
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--package", package, "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "building {package} failed");
    built.push(package.to_owned());
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The status code of `GET path`, or `None` when nothing answers.
pub fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
