//! Figures for the embedded storage backend (not a test; nothing here is asserted):
//! write throughput with many concurrent writers (group commit) and with one, and the start-up
//! time and memory of a store holding N objects, after a clean shutdown and after a crash.
//!
//! ```text
//! cargo run --release -p server --example storage_bench -- [objects, default 100000]
//! ```
//!
//! Each start-up is measured in a fresh process (this program re-runs itself), so that the
//! memory figure is that of a server that just loaded the store.

use bytes::Bytes;
use server::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use server::storage::{ListOptions, Storage};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Writers in the concurrent phase.
const WRITERS: usize = 64;

fn object(i: usize) -> Bytes {
    // About 1 KiB, the size of a small custom resource with some metadata.
    let padding = "x".repeat(700);
    Bytes::from(format!(
        r#"{{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{{"name":"foo-{i:06}","namespace":"default","uid":"{:08x}-0000-4000-8000-000000000000","resourceVersion":"","creationTimestamp":"2025-01-01T00:00:00Z","labels":{{"app":"bench","shard":"{}"}}}},"spec":{{"msg":"{padding}","msg1":"hello"}}}}"#,
        i,
        i % 16
    ))
}

fn key(i: usize) -> String {
    format!("/hello.zeng.dev/foos/default/foo-{i:06}")
}

/// Peak and current resident memory of this process, from /proc (Linux).
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_string()).unwrap_or_default();
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

async fn fill(dir: &Path, objects: usize) {
    let store = Arc::new(EmbeddedStorage::open(dir, EmbeddedOptions::default()).expect("open"));
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (w..objects).step_by(WRITERS) {
                    store.create(&key(i), object(i)).await.expect("create");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    println!(
        "{objects} creates from {WRITERS} concurrent writers: {:.2} s, {:.0} writes/s, {} commits ({:.1} writes per commit)",
        elapsed.as_secs_f64(),
        objects as f64 / elapsed.as_secs_f64(),
        stats.commits,
        stats.writes as f64 / stats.commits.max(1) as f64
    );
    let single = 500.min(objects);
    let started = Instant::now();
    for i in 0..single {
        let current = store.get(&key(i)).await.unwrap().unwrap();
        store.update(&key(i), object(i), current.mod_revision).await.expect("update");
    }
    let elapsed = started.elapsed();
    println!(
        "{single} updates from one writer: {:.0} writes/s ({:.2} ms each: one fsync per write)",
        single as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / single as f64
    );
    let size = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    println!("file size: {:.1} MiB", size as f64 / (1 << 20) as f64);
}

async fn open(dir: &Path, verify: bool) {
    let started = Instant::now();
    let store = EmbeddedStorage::open(dir, EmbeddedOptions { verify_on_open: verify, ..Default::default() }).expect("open");
    let elapsed = started.elapsed();
    let count = store.list("/", ListOptions::default()).await.unwrap().items.len();
    println!("  open with {count} objects (verify pages: {verify}): {:.2} s, {}", elapsed.as_secs_f64(), memory());
}

fn rerun(args: &[&str]) {
    let me = std::env::current_exe().unwrap();
    let status = std::process::Command::new(me).args(args).status().unwrap();
    assert!(status.success());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("open") => return open(Path::new(&args[2]), args[3] == "true").await,
        Some("crash") => {
            // Open, write one more object, and die without closing the file.
            let store = EmbeddedStorage::open(Path::new(&args[2]), EmbeddedOptions::default()).unwrap();
            store.create("/crash", Bytes::from_static(b"{}")).await.unwrap();
            std::process::exit(0);
        }
        _ => {}
    }
    let objects: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    fill(dir.path(), objects).await;
    println!("start-up after a clean shutdown:");
    rerun(&["open", path, "true"]);
    rerun(&["open", path, "false"]);
    println!("start-up after a crash (the file needs repair):");
    rerun(&["crash", path]);
    rerun(&["open", path, "true"]);
}
