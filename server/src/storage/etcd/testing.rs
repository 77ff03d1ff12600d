//! Test support: a throw-away etcd server on 127.0.0.1 with a temporary data directory.
//!
//! Used by the backend's unit tests and (through `#[path]`) by `server/tests/etcd.rs`, so it
//! needs nothing but `std` and `tempfile`. etcd must be installed (Debian's `etcd-server`;
//! `scripts/test.sh` installs it): without it the tests fail with a message that says so,
//! rather than skip. `ETCD=/path/to/etcd` picks another binary.
//!
//! etcd runs under a small `sh` guard that reads its standard input, a pipe from this process:
//! when the pipe closes — [`Etcd::stop`], or this process exiting in any way, even killed — the
//! guard stops etcd. So a shared server kept in a `static` (which is never dropped) still goes
//! away with the test process.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long etcd may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The guard: starts etcd (`$1`, with the remaining arguments) in the background, writes its pid
/// to `$ETCD_PID_FILE`, and stops it when its standard input reaches end-of-file.
/// With `$ETCD_REMOVE_DIR` set, it removes that directory afterwards (for the shared server,
/// whose `TempDir` is never dropped).
const GUARD: &str = r#"bin="$1"; shift; "$bin" "$@" & pid=$!; echo "$pid" > "$ETCD_PID_FILE"; read _ignored; kill "$pid" 2>/dev/null; wait "$pid"; if [ -n "$ETCD_REMOVE_DIR" ]; then rm -rf "$ETCD_REMOVE_DIR"; fi"#;

/// A running (or stopped) test etcd.
pub struct Etcd {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    process: Option<Guarded>,
    /// Whether the guard removes the directory when etcd stops.
    remove_dir: bool,
}

struct Guarded {
    child: Child,
    /// Closing it stops etcd.
    stdin: Option<ChildStdin>,
}

/// The etcd binary, or a panic that says how to install it.
fn binary() -> String {
    let bin = std::env::var("ETCD").unwrap_or_else(|_| "etcd".to_string());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        Ok(out) => panic!(
            "`{bin} --version` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "etcd is not installed ({bin}: {e}). The etcd storage tests start their own etcd: install Debian's \
             etcd-server package (`apt-get update && apt-get install -y etcd-server`; scripts/test.sh does this), \
             or point ETCD at an etcd 3.4+ binary."
        ),
    }
}

/// A port that was free a moment ago.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

impl Etcd {
    /// Starts a new etcd with an empty data directory and waits until it is healthy.
    pub fn start() -> Etcd {
        Self::start_with(false)
    }

    fn start_with(remove_dir: bool) -> Etcd {
        let dir = tempfile::Builder::new().prefix("etcd-test-").tempdir().expect("create a temporary directory");
        let (client_port, peer_port) = free_ports();
        let mut etcd = Etcd { dir, client_port, peer_port, process: None, remove_dir };
        etcd.resume();
        etcd
    }

    /// The one etcd shared by the tests of this process (each test uses its own key prefix). It
    /// stops, and its directory goes, when the process exits.
    pub fn shared() -> &'static Etcd {
        static SHARED: OnceLock<Etcd> = OnceLock::new();
        SHARED.get_or_init(|| Etcd::start_with(true))
    }

    /// The client URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// etcd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts etcd again after [`Etcd::stop`], on the same ports and data.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "etcd is already running");
        let bin = binary();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open the etcd log");
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("sh")
            .arg(&bin)
            .args(["--name", "default", "--data-dir"])
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}"), "--initial-cluster-state", "new"])
            .args(["--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"])
            // Idle watches hear from etcd every second, so resumption after a progress
            // notification is exercised in a test's lifetime.
            .args(["--experimental-watch-progress-notify-interval", "1s"])
            .env("ETCD_PID_FILE", self.dir.path().join("etcd.pid"))
            .env("ETCD_REMOVE_DIR", if self.remove_dir { self.dir.path().as_os_str() } else { "".as_ref() })
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("run sh to start etcd");
        let stdin = child.stdin.take();
        self.process = Some(Guarded { child, stdin });
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if health(self.client_port) {
                return;
            }
            if let Some(status) = self.process.as_mut().and_then(|p| p.child.try_wait().ok().flatten()) {
                panic!("etcd exited ({status}) before it became healthy; its log:\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!("etcd did not become healthy within {START_TIMEOUT:?}; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops etcd (SIGTERM) and waits for it to exit; the data stays for [`Etcd::resume`].
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else { return };
        drop(process.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while process.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                // etcd ignores SIGTERM: kill it, then the guard ends.
                if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("etcd.pid")) {
                    let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
                }
                let _ = process.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The port must be free before etcd can be resumed on it.
        while TcpStream::connect(("127.0.0.1", self.client_port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether etcd is running.
    pub fn running(&self) -> bool {
        self.process.is_some()
    }

    /// The directory holding data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether etcd's `/health` answers `{"health":"true"}`.
fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.replace(' ', "").contains("\"health\":\"true\"")
}
