//! Benchmark suite for the apiserver: starts the real binary on loopback with a chosen backend,
//! loads N Foos, and measures every request kind at several concurrencies, watch fan-out,
//! resident memory and start-up, next to a ceiling (a minimal axum server with a fixed body,
//! measured in the same run). See `docs/benchmarks.md`.
//!
//! Nothing here asserts on timings: the suite prints figures.

pub mod ceiling;
pub mod chart;
pub mod client;
pub mod measure;
pub mod progress;
pub mod report;
pub mod scenarios;
pub mod server;

use ceiling::Ceiling;
use progress::{thousands, Progress};
use report::{MemoryResult, Report, RunResult, StartupResult};
use scenarios::Op;
use server::ServerProcess;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A storage backend of the apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// `--storage memory`.
    Memory,
    /// `--storage embedded` (durable: every acknowledged write is fsync'd).
    Embedded,
}

impl Backend {
    /// The value of `--storage`.
    pub fn flag(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Embedded => "embedded",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Backends, each measured at every size.
    pub backends: Vec<Backend>,
    /// Object counts N.
    pub sizes: Vec<usize>,
    /// Client concurrencies.
    pub concurrency: Vec<usize>,
    /// Request kinds to measure (in [`Op::ALL`]'s order whatever the order here).
    pub ops: Vec<Op>,
    /// Watcher counts W for the fan-out (0 skips).
    pub watchers: Vec<usize>,
    /// Writes per fan-out measurement.
    pub watch_writes: usize,
    /// How long each request kind runs at each concurrency.
    pub duration: Duration,
    /// Concurrent writers while loading.
    pub load_concurrency: usize,
    /// The apiserver binary.
    pub server_binary: PathBuf,
    /// Where data directories go (a temporary directory inside it, removed at the end).
    pub work_dir: Option<PathBuf>,
    /// No progress output.
    pub quiet: bool,
}

/// `/proc/loadavg`'s 1-minute figure.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

fn machine() -> report::Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_default();
    report::Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: (kib / (1024.0 * 1024.0)).round(),
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        load_average_at_start: load_average(),
    }
}

/// The id of the ceiling that answers with a whole list's bytes.
pub const LIST_CEILING: &str = "ceiling_list";
/// Its title in tables.
pub const LIST_CEILING_TITLE: &str = "ceiling, LIST-sized body (axum)";

/// Measures a ceiling server at every concurrency. `names` are the result's id and title and
/// the name in progress lines. Returns the results and the throughput per concurrency.
async fn measure_ceiling(
    endpoint: &client::Endpoint,
    (id, title, name): (&str, &str, &str),
    config: &Config,
    progress: &Progress,
    label: &str,
) -> Result<(Vec<report::OpResult>, HashMap<usize, f64>), String> {
    let mut results = Vec::new();
    let mut rate = HashMap::new();
    for &c in &config.concurrency {
        progress.phase(format!("{label} {name} c={c}"), None);
        let workers = (0..c).map(|_| scenarios::Fixed(client::Request::get("/"))).collect();
        let (s, _) = measure::run(endpoint, workers, config.duration, progress).await?;
        rate.insert(c, s.per_second());
        let result = scenarios::op_result(id, title, c, &s, None);
        progress.line(format!("{label} {name} c={c}: {}", summary(&result)));
        results.push(result);
    }
    Ok((results, rate))
}

/// Runs every backend at every size and returns the report.
pub async fn run(config: &Config) -> Result<Report, String> {
    let progress = Progress::new(config.quiet);
    let work = match &config.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            tempfile::Builder::new().prefix("bench-").tempdir_in(dir)
        }
        None => tempfile::Builder::new().prefix("bench-").tempdir(),
    }
    .map_err(|e| format!("a work directory: {e}"))?;
    let mut report = Report {
        machine: machine(),
        started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        settings: report::Settings {
            backends: config.backends.iter().map(|b| b.flag().to_string()).collect(),
            sizes: config.sizes.clone(),
            concurrency: config.concurrency.clone(),
            watchers: config.watchers.clone(),
            watch_writes: config.watch_writes,
            seconds_per_measurement: config.duration.as_secs_f64(),
            load_concurrency: config.load_concurrency,
            server_binary: config.server_binary.display().to_string(),
        },
        object_json_bytes: 0,
        runs: Vec::new(),
    };
    let mut ceiling: Option<Ceiling> = None;
    for backend in &config.backends {
        for &objects in &config.sizes {
            let dir = work.path().join(format!("{}-{objects}", backend.flag()));
            let run = run_one(config, *backend, objects, &dir, &mut ceiling, &progress).await?;
            report.object_json_bytes = run.memory.object_json_bytes;
            report.runs.push(run);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(report)
}

async fn run_one(
    config: &Config,
    backend: Backend,
    objects: usize,
    dir: &Path,
    ceiling: &mut Option<Ceiling>,
    progress: &Progress,
) -> Result<RunResult, String> {
    let label = format!("[{} N={}]", backend.flag(), thousands(objects as f64));
    let load_at_start = load_average();
    progress.line(format!("{label} starting the apiserver"));
    let (server, _) = ServerProcess::start(&config.server_binary, backend, dir, 0).await?;
    server.wait_ready().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_empty = server.rss();
    let endpoint = server.endpoint.clone();

    let (load, versions) = scenarios::load(&endpoint, objects, config.load_concurrency, progress, &label).await?;
    progress.line(format!(
        "{label} loaded {} objects in {:.1} s ({}/s)",
        thousands(objects as f64),
        load.seconds,
        thousands(load.per_second)
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_loaded = server.rss();
    let sample = scenarios::sample_object(&endpoint).await?;

    // The ceiling answers with a stored Foo's bytes; measured right before this run's requests.
    if ceiling.is_none() {
        *ceiling = Some(Ceiling::start(sample.clone())?);
    }
    let ceiling_endpoint = ceiling.as_ref().expect("started").endpoint.clone();
    let (mut ceiling_results, ceiling_rate) =
        measure_ceiling(&ceiling_endpoint, ("ceiling", "ceiling (axum, fixed body)", "ceiling"), config, progress, &label).await?;

    // For LIST all (JSON), a second ceiling answers with the bytes of the whole list: what
    // sending that many bytes over TLS costs on this machine, with no work behind it.
    let mut list_ceiling_rate = HashMap::new();
    if config.ops.contains(&Op::List) {
        let list = endpoint.send_once(&client::Request::get(scenarios::FOOS)).await?;
        if !list.ok() {
            return Err(format!("listing the loaded objects: {}", list.describe()));
        }
        let list_ceiling = Ceiling::start(list.body)?;
        let names = (LIST_CEILING, LIST_CEILING_TITLE, "ceiling (LIST-sized body)");
        let (results, rate) = measure_ceiling(&list_ceiling.endpoint, names, config, progress, &label).await?;
        ceiling_results.extend(results);
        list_ceiling_rate = rate;
    }

    let mut operations = Vec::new();
    let mut created = HashMap::new();
    for op in Op::ALL.into_iter().filter(|op| config.ops.contains(op)) {
        for &c in &config.concurrency {
            progress.phase(format!("{label} {} c={c}", op.title()), None);
            let (s, _) = scenarios::operation(&endpoint, op, c, objects, &versions, &mut created, config.duration, progress).await?;
            let ceiling = match op {
                Op::List => list_ceiling_rate.get(&c),
                _ => ceiling_rate.get(&c).filter(|_| op.comparable_to_ceiling()),
            }
            .copied();
            let result = scenarios::op_result(op.id(), op.title(), c, &s, ceiling);
            progress.line(format!("{label} {} c={c}: {}", op.title(), summary(&result)));
            operations.push(result);
        }
    }

    let mut watch = Vec::new();
    for &w in config.watchers.iter().filter(|w| **w > 0) {
        let result = scenarios::watch_fanout(&endpoint, w, config.watch_writes, objects, progress, &label).await?;
        progress.line(format!(
            "{label} watch fan-out to {w}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} incomplete; watches opened in {:.1} s)",
            result.p50_ms, result.p99_ms, result.max_ms, result.incomplete, result.connect_seconds
        ));
        watch.push(result);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_end = server.rss();

    let json_bytes = sample.len();
    let bytes_per_object = rss_loaded.current.saturating_sub(rss_empty.current) as f64 / objects.max(1) as f64;
    let mut memory = MemoryResult {
        rss_empty_bytes: rss_empty.current,
        rss_loaded_bytes: rss_loaded.current,
        rss_end_bytes: rss_end.current,
        rss_peak_bytes: rss_end.peak,
        bytes_per_object,
        object_json_bytes: json_bytes,
        overhead_per_object: bytes_per_object - json_bytes as f64,
        rss_after_restart_bytes: None,
    };
    progress.line(format!(
        "{label} memory: {:.1} MiB empty, {:.1} MiB loaded: {} bytes per object of {json_bytes} bytes of JSON",
        rss_empty.current as f64 / 1048576.0,
        rss_loaded.current as f64 / 1048576.0,
        thousands(bytes_per_object)
    ));

    let startup = match backend {
        Backend::Memory => {
            server.stop().await;
            None
        }
        Backend::Embedded => {
            let stored = scenarios::count_objects(&endpoint).await?;
            server.stop().await;
            progress.phase(format!("{label} restarting with {} objects", thousands(stored as f64)), None);
            let started = Instant::now();
            let (server, serving) = ServerProcess::start(&config.server_binary, backend, dir, 1).await?;
            server.wait_ready().await?;
            let ready = started.elapsed();
            let listed = loop {
                match scenarios::count_objects(&server.endpoint).await {
                    Ok(n) if n == stored => break started.elapsed(),
                    Ok(n) if started.elapsed() > Duration::from_secs(300) => {
                        return Err(format!("after restart the list has {n} objects, not {stored}"))
                    }
                    Err(e) if started.elapsed() > Duration::from_secs(300) => return Err(e),
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            };
            memory.rss_after_restart_bytes = Some(server.rss().current);
            server.stop().await;
            let result = StartupResult {
                objects: stored,
                serving_ms: serving.as_secs_f64() * 1000.0,
                ready_ms: ready.as_secs_f64() * 1000.0,
                list_ms: listed.as_secs_f64() * 1000.0,
            };
            progress.line(format!(
                "{label} restart with {} objects: serving after {:.0} ms, ready after {:.0} ms, full LIST after {:.0} ms",
                thousands(stored as f64),
                result.serving_ms,
                result.ready_ms,
                result.list_ms
            ));
            Some(result)
        }
    };
    Ok(RunResult {
        backend: backend.flag().to_string(),
        objects,
        load_average: (load_at_start, load_average()),
        load,
        ceiling: ceiling_results,
        operations,
        watch,
        memory,
        startup,
    })
}

fn summary(o: &report::OpResult) -> String {
    let mut text = format!("{}/s, p50 {:.2} ms, p99 {:.2} ms", thousands(o.per_second), o.p50_ms, o.p99_ms);
    if let Some(r) = o.ratio_to_ceiling {
        text.push_str(&format!(", {r:.3} × ceiling"));
    }
    if o.errors > 0 {
        text.push_str(&format!(", {} errors: {}", o.errors, o.first_error.as_deref().unwrap_or("")));
    }
    text
}

/// Writes `latest.json`, `latest.md` and `latest.svg` into `dir`; returns the Markdown.
pub fn write_results(report: &Report, dir: &Path) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    let markdown = report.markdown();
    let svg = chart::svg(report)?;
    for (name, text) in [("latest.json", json + "\n"), ("latest.md", markdown.clone()), ("latest.svg", svg)] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(markdown)
}
