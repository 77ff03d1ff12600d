//! The progress line on stderr: what is running, how far it is, and how fast it goes.
//!
//! On a terminal the line is redrawn in place five times a second; otherwise (CI logs, pipes)
//! a line is printed every five seconds, so long phases still show they are alive.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Phase {
    label: String,
    total: Option<u64>,
    started: Instant,
}

struct Inner {
    phase: Mutex<Option<Phase>>,
    done: AtomicU64,
    tty: bool,
    quiet: bool,
    stop: AtomicBool,
}

/// A shared progress reporter; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

impl Progress {
    /// Starts the reporter (a background thread). `quiet` prints nothing at all.
    pub fn new(quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let inner = Arc::new(Inner { phase: Mutex::new(None), done: AtomicU64::new(0), tty, quiet, stop: AtomicBool::new(false) });
        if !quiet {
            let weak = Arc::downgrade(&inner);
            std::thread::spawn(move || {
                let period = if tty { Duration::from_millis(200) } else { Duration::from_secs(5) };
                loop {
                    std::thread::sleep(period);
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Some(line) = inner.render() {
                        let mut err = std::io::stderr().lock();
                        if inner.tty {
                            let _ = write!(err, "\r\x1b[2K{line}");
                        } else {
                            let _ = writeln!(err, "{line}");
                        }
                        let _ = err.flush();
                    }
                }
            });
        }
        Progress { inner }
    }

    /// Starts a phase named `label`, of `total` steps if known.
    pub fn phase(&self, label: impl Into<String>, total: Option<u64>) {
        self.inner.done.store(0, Ordering::Relaxed);
        *self.inner.phase.lock().expect("progress lock") = Some(Phase { label: label.into(), total, started: Instant::now() });
    }

    /// Counts `n` more steps of the current phase.
    pub fn add(&self, n: u64) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Ends the current phase and prints `text` as a permanent line.
    pub fn line(&self, text: impl AsRef<str>) {
        *self.inner.phase.lock().expect("progress lock") = None;
        if self.inner.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.inner.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{}", text.as_ref());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if Arc::strong_count(&self.inner) == 1 {
            self.inner.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Inner {
    fn render(&self) -> Option<String> {
        let phase = self.phase.lock().expect("progress lock");
        let phase = phase.as_ref()?;
        let done = self.done.load(Ordering::Relaxed);
        let seconds = phase.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 { done as f64 / seconds } else { 0.0 };
        Some(match phase.total {
            Some(total) if total > 0 => format!(
                "{}: {}/{} ({:.0}%), {}/s, {seconds:.1} s",
                phase.label,
                thousands(done as f64),
                thousands(total as f64),
                100.0 * done as f64 / total as f64,
                thousands(rate)
            ),
            _ => format!("{}: {} done, {}/s, {seconds:.1} s", phase.label, thousands(done as f64), thousands(rate)),
        })
    }
}

/// `12345.6` → `"12,346"`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
