//! The harness runs end to end against a debug build of the server with 50 objects and tiny
//! measurement windows: every request kind succeeds, every watcher sees every write, the restart
//! finds every object, and the results render. Nothing here looks at a timing.

use bench::{Backend, Config};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_runs_end_to_end_with_50_objects() {
    let server_binary = bench::server::build(false).expect("build the apiserver (debug)");
    let work = tempfile::tempdir().unwrap();
    let config = Config {
        backends: vec![Backend::Memory, Backend::Embedded],
        sizes: vec![50],
        concurrency: vec![1, 4],
        ops: bench::scenarios::Op::ALL.to_vec(),
        watchers: vec![5],
        watch_writes: 3,
        duration: Duration::from_millis(100),
        load_concurrency: 8,
        server_binary,
        work_dir: Some(work.path().to_path_buf()),
        quiet: true,
    };
    let report = bench::run(&config).await.expect("the benchmark runs");
    assert_eq!(report.runs.len(), 2);
    assert!(report.object_json_bytes > 100, "a stored Foo has some JSON: {}", report.object_json_bytes);
    for run in &report.runs {
        assert_eq!(run.load.objects, 50);
        // Both ceilings (a Foo, and a body as large as the list) at both concurrencies.
        assert_eq!(run.ceiling.len(), 4);
        let list_ceiling = run.ceiling.iter().find(|o| o.operation == bench::LIST_CEILING).expect("a LIST-sized ceiling");
        let list = run.operations.iter().find(|o| o.operation == "list").unwrap();
        assert_eq!(list_ceiling.mean_response_bytes, list.mean_response_bytes, "the LIST-sized ceiling answers the list's bytes");
        assert_eq!(run.operations.len(), bench::scenarios::Op::ALL.len() * 2, "every kind at every concurrency");
        for op in &run.operations {
            assert_eq!(op.errors, 0, "{} {} c={}: {:?}", run.backend, op.operation, op.concurrency, op.first_error);
            assert!(op.requests > 0, "{} {} c={} made no request", run.backend, op.operation, op.concurrency);
            // The 1 MiB apply has no ratio: the ceiling answers one small Foo.
            assert_eq!(op.ratio_to_ceiling.is_some(), op.operation != "apply_1mib", "{}", op.operation);
        }
        let list = run.operations.iter().find(|o| o.operation == "list").unwrap();
        assert!(list.mean_response_bytes > 50.0 * 100.0, "a LIST returns the 50 objects");
        assert_eq!(run.watch.len(), 1);
        assert_eq!(run.watch[0].incomplete, 0, "every watcher got every write");
        assert!(run.memory.rss_loaded_bytes > 0);
        match run.backend.as_str() {
            "embedded" => assert!(run.startup.as_ref().is_some_and(|s| s.objects >= 50)),
            _ => assert!(run.startup.is_none()),
        }
    }
    let out = tempfile::tempdir().unwrap();
    let markdown = bench::write_results(&report, out.path()).expect("results are written");
    assert!(markdown.contains("| memory | 50 | GET one |"), "{markdown}");
    assert!(markdown.contains("| memory | 50 | ceiling, LIST-sized body (axum) |"), "{markdown}");
    let svg = std::fs::read_to_string(out.path().join("latest.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Throughput"), "an SVG chart");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("latest.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][1]["backend"], "embedded");
}
