//! `bench`: builds and starts the release apiserver, measures it, and writes
//! `bench/results/latest.{json,md,svg}`. See `docs/benchmarks.md`.

use bench::scenarios::Op;
use bench::{Backend, Config};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Measures the apiserver: latency and throughput of every request kind, watch fan-out, memory
/// and start-up, next to a minimal axum server (the ceiling) measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "bench", about, long_about = None)]
struct Flags {
    /// Storage backends to measure (comma separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "memory,embedded")]
    backend: Vec<Backend>,
    /// Numbers of stored objects N (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    sizes: Vec<usize>,
    /// Client concurrencies (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Request kinds to measure (comma separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    ops: Vec<Op>,
    /// Numbers of concurrent watchers for the fan-out (comma separated; 0 skips the fan-out).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    watchers: Vec<usize>,
    /// Writes measured per fan-out.
    #[arg(long, default_value_t = 50)]
    watch_writes: usize,
    /// Seconds each request kind runs at each concurrency.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Concurrent writers while loading the N objects.
    #[arg(long, default_value_t = 32)]
    load_concurrency: usize,
    /// The full suite: sizes 1000,10000,100000, watchers 100,1000, 3 seconds per measurement
    /// (overrides those three flags).
    #[arg(long)]
    full: bool,
    /// The apiserver binary to measure (default: build it with `cargo build --release`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Build the apiserver without --release (for checking the harness, not for figures).
    #[arg(long)]
    debug_server: bool,
    /// Directory for the results.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// Directory for the servers' data directories (default: the system temporary directory;
    /// it should be on a disk for the embedded backend's fsyncs to mean anything).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Measure nothing: read a results JSON file and write its Markdown table and chart again
    /// (into --out, with the JSON).
    #[arg(long, value_name = "JSON")]
    render: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let mut flags = Flags::parse();
    if flags.full {
        flags.sizes = vec![1_000, 10_000, 100_000];
        flags.watchers = vec![100, 1_000];
        flags.seconds = 3.0;
    }
    if let Some(path) = &flags.render {
        let report = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<bench::report::Report>(&text).map_err(|e| e.to_string()));
        match report.and_then(|r| bench::write_results(&r, &flags.out)) {
            Ok(markdown) => println!("{markdown}"),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        return;
    }
    let server_binary = match flags.server_bin.clone() {
        Some(path) => path,
        None => {
            eprintln!("building the apiserver ({})", if flags.debug_server { "debug" } else { "release" });
            match bench::server::build(!flags.debug_server) {
                Ok(path) => path,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
    };
    let config = Config {
        backends: flags.backend,
        sizes: flags.sizes,
        concurrency: flags.concurrency,
        ops: if flags.ops.is_empty() { Op::ALL.to_vec() } else { flags.ops },
        watchers: flags.watchers,
        watch_writes: flags.watch_writes,
        duration: Duration::from_secs_f64(flags.seconds),
        load_concurrency: flags.load_concurrency,
        server_binary,
        work_dir: flags.work_dir,
        quiet: flags.quiet,
    };
    let report = match bench::run(&config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    match bench::write_results(&report, &flags.out) {
        Ok(markdown) => {
            println!("{markdown}");
            eprintln!("results: {0}/latest.json, {0}/latest.md, {0}/latest.svg", flags.out.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
