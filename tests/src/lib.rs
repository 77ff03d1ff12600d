//! End-to-end test harness: builds the real `apiserver` binary, starts it on a free port with a
//! throw-away data directory, and drives it with the real kubectl binaries (1.27–1.33) from
//! `/usr/lib/google-cloud-sdk/bin`.
//!
//! Everything goes through kubectl, as a user would; raw requests use `kubectl get --raw` and
//! `kubectl create --raw`, so the harness needs no TLS client of its own.
//!
//! Missing kubectl binaries are a test *failure* (with a message naming the missing file), never
//! a skip.

use std::io::{BufRead, BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the versioned kubectl binaries live (`kubectl.1.27` … `kubectl.1.33`).
pub const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// Every kubectl minor version the server must work with, oldest first.
pub const KUBECTL_VERSIONS: [&str; 7] = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"];

/// The newest supported kubectl, used by the harness itself (readiness, raw requests).
pub const NEWEST_KUBECTL: &str = KUBECTL_VERSIONS[KUBECTL_VERSIONS.len() - 1];

/// How long the server may take to write its kubeconfig and answer `/readyz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How many bytes of server output to keep for failure messages.
const LOG_LIMIT: usize = 256 * 1024;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().expect("tests/ has a parent").to_path_buf()
}

/// The Cargo target directory: `$CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// How to build the server binary.
#[derive(Debug, Default, Clone)]
pub struct BuildOptions {
    /// `--target-dir` (default: Cargo's own choice, i.e. [`target_dir`]).
    pub target_dir: Option<PathBuf>,
    /// `SPEC_DIR` for the `generated` crate's build script (default: inherited, i.e. `spec/`).
    pub spec_dir: Option<PathBuf>,
}

/// Runs `cargo build -p server --bin apiserver` and returns the path of the binary.
///
/// Panics with Cargo's output when the build fails.
pub fn build_server(options: &BuildOptions) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "-p", "server", "--bin", "apiserver", "--message-format=json-render-diagnostics"])
        .stdin(Stdio::null());
    // `cargo test` describes this test package in CARGO_* variables; passed on, they would make
    // build scripts that watch them (ring's) run again and rebuild what depends on them.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("CARGO_") && !matches!(k, "CARGO_HOME" | "CARGO_TARGET_DIR")) {
            command.env_remove(&key);
        }
    }
    if let Some(dir) = &options.target_dir {
        command.arg("--target-dir").arg(dir);
    }
    if let Some(spec) = &options.spec_dir {
        command.env("SPEC_DIR", spec);
    }
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`cargo build -p server --bin apiserver` failed ({}) with options {options:?}:\n{stderr}",
        output.status
    );
    eprintln!("[e2e] built apiserver ({options:?}) in {:.1?}", started.elapsed());
    // Cargo names the executable in its `compiler-artifact` message; fall back to the usual place.
    let from_messages = stdout.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()).find_map(|msg| {
        let is_bin = msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "apiserver";
        if is_bin {
            msg["executable"].as_str().map(PathBuf::from)
        } else {
            None
        }
    });
    let binary = from_messages.unwrap_or_else(|| {
        let base = options.target_dir.clone().unwrap_or_else(target_dir);
        base.join("debug").join(format!("apiserver{}", std::env::consts::EXE_SUFFIX))
    });
    assert!(binary.is_file(), "cargo reported success but {} does not exist", binary.display());
    binary
}

/// The server binary built from the workspace's `spec/`, built once per test process.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = BINARY.get_or_init(|| catch_unwind(|| build_server(&BuildOptions::default())).map_err(|e| panic_message(e.as_ref())));
    match result {
        Ok(path) => path,
        Err(message) => panic!("building the server failed (the build runs once per test process):\n{message}"),
    }
}

/// The path of `kubectl.<version>`; panics (fails the test) when it is not installed.
pub fn kubectl_path(version: &str) -> PathBuf {
    let path = Path::new(KUBECTL_DIR).join(format!("kubectl.{version}"));
    assert!(
        path.is_file(),
        "kubectl {version} is not installed: {} is missing. The end-to-end tests need every version in {KUBECTL_VERSIONS:?} \
         under {KUBECTL_DIR} (they are part of the Google Cloud SDK's kubectl component).",
        path.display()
    );
    path
}

/// Runs `f` for every kubectl version, even after one fails, then fails with every version's
/// failure message (so one broken version does not hide the state of the others).
pub fn for_each_kubectl(mut f: impl FnMut(&str)) {
    let mut failures = Vec::new();
    for version in KUBECTL_VERSIONS {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(version))) {
            failures.push(format!("--- kubectl {version} ---\n{}", panic_message(e.as_ref())));
        }
    }
    assert!(
        failures.is_empty(),
        "failed for {} of {} kubectl versions:\n{}",
        failures.len(),
        KUBECTL_VERSIONS.len(),
        failures.join("\n\n")
    );
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// A command line and its result, for assertion messages.
pub fn describe(command: &str, output: &Output) -> String {
    format!(
        "`{command}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `check` every 50–500 ms until it returns `Ok`, or panics after `timeout` with `what`
/// and the last `Err` (a description of the state seen).
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let last = match check() {
            Ok(value) => return value,
            Err(state) => state,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{last}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Keeps the last [`LOG_LIMIT`] bytes of a stream in a shared buffer, on a thread.
fn drain(mut stream: impl Read + Send + 'static, buffer: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut b = buffer.lock().unwrap_or_else(|e| e.into_inner());
                    b.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if b.len() > LOG_LIMIT {
                        let mut cut = b.len() - LOG_LIMIT / 2;
                        while !b.is_char_boundary(cut) {
                            cut += 1;
                        }
                        b.replace_range(..cut, "[…]");
                    }
                }
            }
        }
    });
}

/// A running `apiserver` with its own data directory; killed when dropped.
pub struct Server {
    child: Mutex<Child>,
    data_dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    url: String,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Builds (once) and starts the server compiled from the workspace's `spec/`.
    pub fn start() -> Server {
        Server::start_binary(server_binary())
    }

    /// Starts the given server binary with `--data-dir <temp> --secure-port 0` and waits until
    /// it has written its kubeconfig and answers `/readyz` over HTTPS.
    pub fn start_binary(binary: &Path) -> Server {
        // Fail early and clearly when the harness's own kubectl is missing.
        kubectl_path(NEWEST_KUBECTL);
        let data_dir = tempfile::Builder::new().prefix("e2e-apiserver-").tempdir().expect("a temporary data directory");
        let mut child = Command::new(binary)
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--secure-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let output = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().expect("piped stdout"), output.clone());
        drain(child.stderr.take().expect("piped stderr"), output.clone());
        let kubeconfig = data_dir.path().join("kubeconfig");
        let mut server = Server { child: Mutex::new(child), data_dir, kubeconfig, url: String::new(), output };

        // 1. "Serving on https://…" and the kubeconfig file.
        let url = wait_until(STARTUP_TIMEOUT, "the server to print `Serving on https://…` and write its kubeconfig", || {
            server.assert_running("starting");
            let out = server.output();
            match out.lines().find_map(|l| l.strip_prefix("Serving on ")) {
                Some(url) if server.kubeconfig.is_file() => Ok(url.trim().to_string()),
                _ => Err(server.describe_state()),
            }
        });
        server.url = url;

        // 2. /readyz over HTTPS with the kubeconfig's CA and client certificate.
        wait_until(STARTUP_TIMEOUT, "GET /readyz to answer `ok`", || {
            server.assert_running("waiting for /readyz");
            let out = server.kubectl(NEWEST_KUBECTL, &["get", "--raw", "/readyz"]);
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                Ok(())
            } else {
                Err(format!("last attempt: {}\n{}", describe("kubectl get --raw /readyz", &out), server.describe_state()))
            }
        });
        server
    }

    /// The server's URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Everything the server printed so far (stdout and stderr, the last 256 KiB).
    pub fn output(&self) -> String {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn describe_state(&self) -> String {
        format!("server data dir: {}\n--- server output ---\n{}", self.data_dir.path().display(), self.output())
    }

    /// Panics when the server process has exited.
    fn assert_running(&self, when: &str) {
        let exited = self.child.lock().unwrap_or_else(|e| e.into_inner()).try_wait();
        if let Ok(Some(status)) = exited {
            // Give the drain threads a moment to collect the last words.
            std::thread::sleep(Duration::from_millis(100));
            panic!("the server exited ({status}) while {when}\n{}", self.describe_state());
        }
    }

    /// A `kubectl.<version>` command pointed at this server (`KUBECONFIG`, and a cache
    /// directory private to this server so nothing is shared through `~/.kube/cache`).
    pub fn kubectl_command(&self, version: &str) -> Command {
        let mut command = Command::new(kubectl_path(version));
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.data_dir.path().join(format!("kubectl-cache-{version}")))
            .stdin(Stdio::null());
        command
    }

    /// Runs `kubectl.<version> ARGS…` to completion.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Output {
        self.kubectl_command(version).args(args).output().unwrap_or_else(|e| panic!("cannot run kubectl {version} {}: {e}", args.join(" ")))
    }

    /// Runs `kubectl.<version> ARGS…`, asserts it succeeded, and returns its stdout.
    pub fn kubectl_ok(&self, version: &str, args: &[&str]) -> String {
        let out = self.kubectl(version, args);
        assert!(out.status.success(), "{}", describe(&format!("kubectl.{version} {}", args.join(" ")), &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `kubectl.<version> ARGS…`, asserts it failed, and returns its output.
    pub fn kubectl_err(&self, version: &str, args: &[&str]) -> Output {
        let out = self.kubectl(version, args);
        assert!(
            !out.status.success(),
            "expected failure, got success:\n{}",
            describe(&format!("kubectl.{version} {}", args.join(" ")), &out)
        );
        out
    }

    /// `kubectl get --raw PATH` (newest kubectl): the response body; panics on failure.
    pub fn get_raw(&self, path: &str) -> String {
        self.kubectl_ok(NEWEST_KUBECTL, &["get", "--raw", path])
    }

    /// `kubectl get --raw PATH` parsed as JSON.
    pub fn get_raw_json(&self, path: &str) -> serde_json::Value {
        let body = self.get_raw(path);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}):\n{body}"))
    }

    /// `kubectl create --raw PATH -f <body>` (newest kubectl): a POST; returns kubectl's output.
    pub fn create_raw(&self, path: &str, body: &str) -> Output {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("body.json");
        std::fs::write(&file, body).expect("write the request body");
        self.kubectl(NEWEST_KUBECTL, &["create", "--raw", path, "-f", file.to_str().expect("UTF-8 path")])
    }

    /// Starts `kubectl.<version> ARGS…` in the background (e.g. a watch); its output is
    /// collected line by line. The process is killed when the handle is dropped.
    pub fn kubectl_spawn(&self, version: &str, args: &[&str]) -> Background {
        let command_line = format!("kubectl.{version} {}", args.join(" "));
        let mut child = self
            .kubectl_command(version)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        read_lines(child.stdout.take().expect("piped stdout"), lines.clone());
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().expect("piped stderr"), stderr.clone());
        Background { child, command_line, lines, stderr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.output();
            let mut start = out.len().saturating_sub(8192);
            while !out.is_char_boundary(start) {
                start += 1;
            }
            let tail = &out[start..];
            eprintln!("[e2e] server at {} (data dir {}) output, last 8 KiB:\n{tail}", self.url, self.data_dir.path().display());
        }
        // SIGTERM first (the server shuts down cleanly on it), then SIGKILL.
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let pid = child.id().to_string();
        let termed = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn read_lines(stdout: ChildStdout, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(line) => lines.lock().unwrap_or_else(|e| e.into_inner()).push(line),
                Err(_) => break,
            }
        }
    });
}

/// A kubectl process running in the background; killed on drop.
pub struct Background {
    child: Child,
    command_line: String,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Background {
    /// The stdout lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The command, its stdout lines and stderr, for assertion messages.
    pub fn describe(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited with {status}"),
            _ => "still running".to_string(),
        };
        format!("`{}` ({status})\n--- stdout ---\n{}\n--- stderr ---\n{}", self.command_line, self.lines().join("\n"), self.stderr())
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits up to `timeout` for a stdout line matching `predicate` and returns it, or `None`.
    pub fn wait_for_line(&mut self, timeout: Duration, predicate: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| predicate(l)) {
                return Some(line);
            }
            if Instant::now() >= deadline || self.has_exited() {
                // One last look: the reader thread may have caught up after the exit.
                std::thread::sleep(Duration::from_millis(50));
                return self.lines().into_iter().find(|l| predicate(l));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary directory for manifests.
pub struct Manifests {
    dir: tempfile::TempDir,
}

impl Default for Manifests {
    fn default() -> Self {
        Manifests::new()
    }
}

impl Manifests {
    /// A fresh, empty directory.
    pub fn new() -> Manifests {
        Manifests { dir: tempfile::Builder::new().prefix("e2e-manifests-").tempdir().expect("a temporary directory") }
    }

    /// Writes (or overwrites) `name` and returns its path as a string, for kubectl's `-f`.
    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_str().expect("UTF-8 temp path").to_string()
    }
}

/// kubectl's human-readable table output: header cells and rows, split on whitespace (fine for
/// the values these tests use, which contain no spaces).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The header cells (`NAME`, `MESSAGE`, …).
    pub header: Vec<String>,
    /// Each row's cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses kubectl's table output; panics (showing the text) when there is no header.
    pub fn parse(text: &str) -> Table {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .unwrap_or_else(|| panic!("expected a table, got no output:\n{text}"))
            .split_whitespace()
            .map(String::from)
            .collect();
        let rows = lines.map(|l| l.split_whitespace().map(String::from).collect()).collect();
        Table { header, rows }
    }

    /// The row whose `column` cell is `value`.
    pub fn row_where(&self, column: &str, value: &str) -> Option<&Vec<String>> {
        let i = self.header.iter().position(|h| h == column)?;
        self.rows.iter().find(|r| r.get(i).map(String::as_str) == Some(value))
    }

    /// The cell of `row` under `column`.
    pub fn cell<'a>(&self, row: &'a [String], column: &str) -> Option<&'a str> {
        let i = self.header.iter().position(|h| h == column)?;
        row.get(i).map(String::as_str)
    }
}

/// Whether `s` looks like a kubectl age (`0s`, `5s`, `2m1s`, `3h`, `4d`).
pub fn looks_like_age(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit()) && s.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c))
}

/// Whether `s` is an RFC 3339 UTC timestamp with second precision (`2024-01-02T03:04:05Z`),
/// the form Kubernetes uses for `metadata.creationTimestamp`.
pub fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Whether `s` is a UUID in its usual text form.
pub fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables() {
        let t = Table::parse("NAME    MESSAGE   AGE\nfoo     hello     5s\n");
        assert_eq!(t.header, ["NAME", "MESSAGE", "AGE"]);
        let row = t.row_where("NAME", "foo").unwrap();
        assert_eq!(t.cell(row, "MESSAGE"), Some("hello"));
        assert!(t.row_where("NAME", "bar").is_none());
    }

    #[test]
    fn recognises_formats() {
        assert!(looks_like_age("0s") && looks_like_age("2m1s") && !looks_like_age("<none>") && !looks_like_age(""));
        assert!(looks_like_timestamp("2026-11-25T16:44:49Z") && !looks_like_timestamp("2026-11-25 16:44:49"));
        assert!(looks_like_uuid("037c5027-4948-490d-87ad-6645abb4acdf") && !looks_like_uuid("1"));
    }
}
