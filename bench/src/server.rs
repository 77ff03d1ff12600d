//! The apiserver under test: built with Cargo, started as a child process on loopback with a
//! chosen backend and data directory, observed through /proc, and stopped.

use crate::client::{tls_from_kubeconfig, Endpoint, Request};
use crate::Backend;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ has a parent").to_path_buf()
}

/// Builds the `apiserver` binary with `cargo build [--release] -p server --bin apiserver` (in
/// the target directory Cargo picks from the environment, i.e. the one this program was built
/// in) and returns its path.
pub fn build(release: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(workspace_root()).args(["build", "-p", "server", "--bin", "apiserver", "--message-format=json-render-diagnostics"]);
    if release {
        command.arg("--release");
    }
    // `cargo run` and `cargo test` describe this package in the environment; ring's build script
    // tracks CARGO_MANIFEST_DIR, so passing them on would rebuild ring and everything above it
    // each time the two builds alternate.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let describes_this_package = key.starts_with("CARGO_PKG_")
            || ["CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"]
                .contains(&key.as_ref());
        if describes_this_package {
            command.env_remove(key.as_ref());
        }
    }
    let output = command.stdin(Stdio::null()).stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("building the apiserver failed ({})", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|msg| {
            let is_bin = msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "apiserver";
            is_bin.then(|| msg["executable"].as_str().map(PathBuf::from)).flatten()
        })
        .ok_or_else(|| "cargo did not name the apiserver executable".to_string())
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// `VmRSS`, bytes.
    pub current: u64,
    /// `VmHWM` (peak resident), bytes.
    pub peak: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn rss(pid: u32) -> Rss {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Rss { current: field("VmRSS:"), peak: field("VmHWM:") }
}

/// A running apiserver, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Its address and the kubeconfig's credentials.
    pub endpoint: Endpoint,
    /// Its process id.
    pub pid: u32,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `binary` with `backend` on `data_dir` and a free loopback port, and waits until it
    /// prints `Serving on https://…`. Returns the server and how long that took.
    pub async fn start(binary: &Path, backend: Backend, data_dir: &Path, run: usize) -> Result<(ServerProcess, Duration), String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let log = data_dir.join(format!("server-{run}.log"));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let kubeconfig = data_dir.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["--storage", backend.flag(), "--secure-port", "0", "--bind-address", "127.0.0.1", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let address = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(at) = text.find("Serving on https://") {
                let rest = &text[at + "Serving on https://".len()..];
                if let Some(line) = rest.lines().next().filter(|_| rest.contains('\n')) {
                    break line.trim().to_string();
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the apiserver exited with {status}:\n{text}"));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                return Err(format!("the apiserver did not start in {START_TIMEOUT:?}:\n{text}"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let serving = started.elapsed();
        let tls = tls_from_kubeconfig(&kubeconfig)?;
        let pid = child.id();
        Ok((ServerProcess { child, endpoint: Endpoint { address, tls }, pid, log }, serving))
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.endpoint.send_once(&Request::get("/readyz")).await {
                Ok(r) if r.ok() => return Ok(()),
                _ if Instant::now() > deadline => return Err(format!("/readyz did not answer 200:\n{}", self.log_text())),
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    /// Its resident memory now.
    pub fn rss(&self) -> Rss {
        rss(self.pid)
    }

    /// What it printed.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with SIGTERM (a clean shutdown), or SIGKILL after 10 seconds.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
