//! The results: a serde model written as JSON, rendered as Markdown tables and as an SVG chart.

use crate::progress::thousands;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Everything one run measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// How it ran.
    pub settings: Settings,
    /// The JSON size of one stored Foo as the server returns it (also the ceiling's body).
    pub object_json_bytes: usize,
    /// One entry per backend and object count.
    pub runs: Vec<RunResult>,
}

/// The machine.
#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// Physical memory, GiB.
    pub memory_gib: f64,
    /// `/proc/cpuinfo`'s model name.
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// `/proc/loadavg`'s 1-minute load when the run started: other work on the machine skews
    /// every figure.
    pub load_average_at_start: f64,
}

/// The settings of the run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Backends measured.
    pub backends: Vec<String>,
    /// Object counts.
    pub sizes: Vec<usize>,
    /// Client concurrencies.
    pub concurrency: Vec<usize>,
    /// Watcher counts.
    pub watchers: Vec<usize>,
    /// Writes measured per watch fan-out.
    pub watch_writes: usize,
    /// Seconds each request kind runs for, per concurrency.
    pub seconds_per_measurement: f64,
    /// Concurrent writers while loading.
    pub load_concurrency: usize,
    /// The apiserver binary measured.
    pub server_binary: String,
}

/// One backend at one object count.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// `memory` or `embedded`.
    pub backend: String,
    /// Objects stored while reading and updating.
    pub objects: usize,
    /// `/proc/loadavg`'s 1-minute load when this run started and when it ended (the
    /// benchmark's own load included): other work on the machine skews the figures.
    #[serde(default)]
    pub load_average: (f64, f64),
    /// The initial load.
    pub load: LoadResult,
    /// The ceiling, measured right before this run's requests.
    pub ceiling: Vec<OpResult>,
    /// Every request kind at every concurrency.
    pub operations: Vec<OpResult>,
    /// Watch fan-out.
    pub watch: Vec<WatchResult>,
    /// Resident memory.
    pub memory: MemoryResult,
    /// Restart with the objects stored (durable backends only).
    pub startup: Option<StartupResult>,
}

/// Loading N objects.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadResult {
    /// Objects created.
    pub objects: usize,
    /// Concurrent writers.
    pub concurrency: usize,
    /// How long it took.
    pub seconds: f64,
    /// Creates per second.
    pub per_second: f64,
}

/// One request kind at one concurrency.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpResult {
    /// Machine-readable kind (`get`, `list`, …, or `ceiling`).
    pub operation: String,
    /// Human-readable kind.
    pub title: String,
    /// Concurrent clients, each on its own connection.
    pub concurrency: usize,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time.
    pub seconds: f64,
    /// Successful requests per second.
    pub per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Mean response body size.
    pub mean_response_bytes: f64,
    /// `per_second` divided by the ceiling's at the same concurrency.
    pub ratio_to_ceiling: Option<f64>,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

/// Watch fan-out with one number of watchers.
#[derive(Debug, Serialize, Deserialize)]
pub struct WatchResult {
    /// Concurrent watches, each on its own connection.
    pub watchers: usize,
    /// Writes measured.
    pub writes: usize,
    /// Writes whose event did not reach every watcher within 30 s.
    pub incomplete: usize,
    /// How long opening the watches took.
    pub connect_seconds: f64,
    /// Median delay from a write's acknowledgement to its event having reached every watcher.
    pub p50_ms: f64,
    /// 99th percentile of that delay.
    pub p99_ms: f64,
    /// Largest delay.
    pub max_ms: f64,
    /// Median delay from sending the write (so including the write itself, e.g. its fsync).
    #[serde(default)]
    pub p50_from_send_ms: f64,
    /// 99th percentile of the delay from sending the write.
    #[serde(default)]
    pub p99_from_send_ms: f64,
}

/// Resident memory of the server.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemoryResult {
    /// Right after start-up, with an empty store.
    pub rss_empty_bytes: u64,
    /// After loading N objects.
    pub rss_loaded_bytes: u64,
    /// At the end of the run.
    pub rss_end_bytes: u64,
    /// Peak resident memory over the run.
    pub rss_peak_bytes: u64,
    /// `(loaded - empty) / N`.
    pub bytes_per_object: f64,
    /// The JSON size of one object as served.
    pub object_json_bytes: usize,
    /// `bytes_per_object - object_json_bytes`.
    pub overhead_per_object: f64,
    /// After a restart that loaded the store from disk (durable backends).
    pub rss_after_restart_bytes: Option<u64>,
}

/// Restarting the server on its data directory.
#[derive(Debug, Serialize, Deserialize)]
pub struct StartupResult {
    /// Objects stored.
    pub objects: usize,
    /// From process start to the `Serving on` line.
    pub serving_ms: f64,
    /// From process start to `/readyz` answering 200.
    pub ready_ms: f64,
    /// From process start to a LIST returning every object.
    pub list_ms: f64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn ratio(value: Option<f64>) -> String {
    match value {
        Some(r) if r >= 0.1 => format!("{r:.2}"),
        Some(r) if r >= 0.001 => format!("{r:.3}"),
        Some(_) => "<0.001".into(),
        None => "–".into(),
    }
}

impl Report {
    /// Two compact tables at the highest concurrency: throughput with its ratio to the ceiling,
    /// and p99 latency, one row per backend and N, one column per request kind.
    pub fn summary_markdown(&self) -> String {
        let mut out = String::new();
        let c = self.settings.concurrency.iter().copied().max().unwrap_or(1);
        let mut kinds: Vec<(&str, &str)> = Vec::new();
        for op in self.runs.iter().flat_map(|r| &r.operations) {
            if !kinds.iter().any(|(id, _)| *id == op.operation) {
                kinds.push((&op.operation, &op.title));
            }
        }
        let list_ceiling = self.runs.iter().flat_map(|r| &r.ceiling).any(|o| o.operation == crate::LIST_CEILING);
        if list_ceiling {
            kinds.insert(0, (crate::LIST_CEILING, crate::LIST_CEILING_TITLE));
        }
        let header = |out: &mut String, first: &str| {
            let _ = write!(out, "| backend | N | {first} |");
            for (_, title) in &kinds {
                let _ = write!(out, " {title} |");
            }
            let _ = write!(out, "\n|---|--:|--:|");
            for _ in &kinds {
                out.push_str("--:|");
            }
            out.push('\n');
        };
        fn find<'a>(run: &'a RunResult, id: &str, c: usize) -> Option<&'a OpResult> {
            let list = if id == crate::LIST_CEILING { &run.ceiling } else { &run.operations };
            list.iter().find(|o| o.operation == id && o.concurrency == c)
        }
        fn find_ceiling(run: &RunResult, c: usize) -> Option<&OpResult> {
            run.ceiling.iter().find(|o| o.operation == "ceiling" && o.concurrency == c)
        }
        let _ = writeln!(
            out,
            "Requests per second at concurrency {c} (in brackets: the ratio to the ceiling, an axum server answering a fixed Foo; for LIST all (JSON), to the same server answering a fixed body as large as the list):\n"
        );
        header(&mut out, "ceiling");
        for run in &self.runs {
            let ceiling = find_ceiling(run, c).map_or("–".into(), |o| thousands(o.per_second));
            let _ = write!(out, "| {} | {} | {ceiling} |", run.backend, thousands(run.objects as f64));
            for (id, _) in &kinds {
                match find(run, id, c) {
                    Some(o) => {
                        let _ = write!(out, " {} ({}) |", thousands(o.per_second), ratio(o.ratio_to_ceiling));
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        let _ = writeln!(out, "\np99 latency in milliseconds at concurrency {c}:\n");
        header(&mut out, "ceiling");
        for run in &self.runs {
            let ceiling = find_ceiling(run, c).map_or("–".into(), |o| ms(o.p99_ms));
            let _ = write!(out, "| {} | {} | {ceiling} |", run.backend, thousands(run.objects as f64));
            for (id, _) in &kinds {
                match find(run, id, c) {
                    Some(o) => {
                        let _ = write!(out, " {} |", ms(o.p99_ms));
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// The Markdown tables.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), {:.0} GiB, Linux {} (load average {:.1} at the start). Run {}; {} s per measurement; one Foo is {} bytes of JSON.\n",
            m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.load_average_at_start, self.started, self.settings.seconds_per_measurement, self.object_json_bytes
        );
        out.push_str(&self.summary_markdown());
        out.push_str("\nEvery request kind at every concurrency:\n\n");
        let conc = &self.settings.concurrency;
        let _ = write!(out, "| backend | N | request |");
        for c in conc {
            let _ = write!(out, " c={c} req/s | ×ceiling | p50 ms | p99 ms |");
        }
        let _ = write!(out, "\n|---|--:|---|");
        for _ in conc {
            let _ = write!(out, "--:|--:|--:|--:|");
        }
        out.push('\n');
        for run in &self.runs {
            let mut rows: Vec<(&str, &str)> = vec![("ceiling", "ceiling (axum, fixed body)")];
            if run.ceiling.iter().any(|o| o.operation == crate::LIST_CEILING) {
                rows.push((crate::LIST_CEILING, crate::LIST_CEILING_TITLE));
            }
            for op in &run.operations {
                if !rows.iter().any(|(id, _)| *id == op.operation) {
                    rows.push((&op.operation, &op.title));
                }
            }
            for (id, title) in rows {
                let _ = write!(out, "| {} | {} | {} |", run.backend, thousands(run.objects as f64), title);
                for c in conc {
                    let found = run.ceiling.iter().chain(&run.operations).find(|o| o.operation == id && o.concurrency == *c);
                    match found {
                        Some(o) => {
                            let errors = if o.errors > 0 { format!(" ({} errors)", o.errors) } else { String::new() };
                            let _ = write!(
                                out,
                                " {}{errors} | {} | {} | {} |",
                                thousands(o.per_second),
                                ratio(o.ratio_to_ceiling),
                                ms(o.p50_ms),
                                ms(o.p99_ms)
                            );
                        }
                        None => out.push_str(" – | – | – | – |"),
                    }
                }
                out.push('\n');
            }
        }

        out.push_str("\nWatch fan-out: delay from a write's acknowledgement (its answer) to its event having reached every watcher; the last two columns count from sending the write instead.\n\n");
        out.push_str("| backend | N | watchers | writes | p50 ms | p99 ms | max ms | incomplete | from send p50 ms | from send p99 ms |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for run in &self.runs {
            for w in &run.watch {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    run.backend,
                    thousands(run.objects as f64),
                    thousands(w.watchers as f64),
                    w.writes,
                    ms(w.p50_ms),
                    ms(w.p99_ms),
                    ms(w.max_ms),
                    w.incomplete,
                    ms(w.p50_from_send_ms),
                    ms(w.p99_from_send_ms)
                );
            }
        }

        out.push_str("\nMemory (resident, from /proc/<pid>/status) and loading; the load average of the machine at the start and end of each run.\n\n");
        out.push_str("| backend | N | load/s | RSS empty MiB | RSS loaded MiB | bytes/object | beyond JSON | RSS end MiB | peak MiB | RSS after restart MiB | load average |\n");
        out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for run in &self.runs {
            let mem = &run.memory;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} → {:.1} |",
                run.backend,
                thousands(run.objects as f64),
                thousands(run.load.per_second),
                mib(mem.rss_empty_bytes),
                mib(mem.rss_loaded_bytes),
                thousands(mem.bytes_per_object),
                thousands(mem.overhead_per_object),
                mib(mem.rss_end_bytes),
                mib(mem.rss_peak_bytes),
                mem.rss_after_restart_bytes.map(mib).unwrap_or_else(|| "–".into()),
                run.load_average.0,
                run.load_average.1
            );
        }

        let startups: Vec<_> = self.runs.iter().filter_map(|r| r.startup.as_ref().map(|s| (r, s))).collect();
        if !startups.is_empty() {
            out.push_str("\nStart-up with N objects stored (restart on the same data directory).\n\n");
            out.push_str("| backend | N | serving ms | /readyz ms | LIST returns N ms |\n|---|--:|--:|--:|--:|\n");
            for (run, s) in startups {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    run.backend,
                    thousands(s.objects as f64),
                    ms(s.serving_ms),
                    ms(s.ready_ms),
                    ms(s.list_ms)
                );
            }
        }
        let failures: Vec<_> =
            self.runs.iter().flat_map(|r| r.operations.iter().map(move |o| (r, o))).filter(|(_, o)| o.errors > 0).collect();
        if !failures.is_empty() {
            out.push_str("\nErrors:\n\n");
            for (run, o) in failures {
                let _ = writeln!(
                    out,
                    "- {} N={} {} c={}: {}",
                    run.backend,
                    run.objects,
                    o.title,
                    o.concurrency,
                    o.first_error.as_deref().unwrap_or("")
                );
            }
        }
        out
    }
}
