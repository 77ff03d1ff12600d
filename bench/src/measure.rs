//! The closed-loop driver: `c` workers, each on its own connection, send one request after
//! another for a fixed time; every answer's latency is kept.

use crate::client::{Connection, Endpoint, Request, Response};
use crate::progress::Progress;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one worker sends. Workers own their state (which object is next, what was created), so
/// no two workers touch the same object unless a scenario wants them to.
pub trait Work: Send + 'static {
    /// The next request, or `None` when this worker has nothing left to do.
    fn next(&mut self) -> Option<Request>;
    /// Sees every successful (2xx) answer to the request `next` returned last.
    fn answered(&mut self, _response: &Response) {}
    /// Whether [`Work::answered`] reads the body; if not, bodies are only counted.
    fn reads_bodies(&self) -> bool {
        true
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Sample {
    /// Successful (2xx) requests.
    pub requests: u64,
    /// Failed requests: a non-2xx answer or a connection error.
    pub errors: u64,
    /// From the moment all workers were connected to the end of the last request.
    pub elapsed: Duration,
    /// Latency of every successful request, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Body bytes of all successful answers.
    pub bytes: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Sample {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// The `q` quantile (0..=1) of the latencies, in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile_us(&self.latencies_us, q) / 1000.0
    }

    /// Mean body size of a successful answer.
    pub fn mean_bytes(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.bytes as f64 / self.requests as f64
        }
    }

    fn merge(&mut self, other: WorkerSample) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The `q` quantile of `values` (sorted or not), nearest rank; 0 when empty.
pub fn quantile_us(values: &[u32], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

#[derive(Default)]
struct WorkerSample {
    requests: u64,
    errors: u64,
    bytes: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

/// Runs `workers` concurrently against `endpoint` for `limit` (a request started before the
/// limit is finished), or until every worker has nothing left to do. Connections are opened
/// before the clock starts. Returns the merged sample and the workers, with their final state.
pub async fn run<W: Work>(endpoint: &Endpoint, workers: Vec<W>, limit: Duration, progress: &Progress) -> Result<(Sample, Vec<W>), String> {
    let mut connections = Vec::with_capacity(workers.len());
    for _ in 0..workers.len() {
        connections.push(endpoint.connect().await?);
    }
    let start = Arc::new(tokio::sync::Barrier::new(workers.len() + 1));
    let tasks: Vec<_> = workers
        .into_iter()
        .zip(connections)
        .map(|(work, connection)| {
            let start = start.clone();
            let endpoint = endpoint.clone();
            let progress = progress.clone();
            tokio::spawn(worker(work, connection, endpoint, start, limit, progress))
        })
        .collect();
    start.wait().await;
    let started = Instant::now();
    let mut sample = Sample::default();
    let mut finished = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (work, result) = task.await.map_err(|e| format!("a worker panicked: {e}"))?;
        sample.merge(result);
        finished.push(work);
    }
    sample.elapsed = started.elapsed();
    Ok((sample, finished))
}

async fn worker<W: Work>(
    mut work: W,
    connection: Connection,
    endpoint: Endpoint,
    start: Arc<tokio::sync::Barrier>,
    limit: Duration,
    progress: Progress,
) -> (W, WorkerSample) {
    let mut connection = Some(connection);
    let mut result = WorkerSample { latencies_us: Vec::with_capacity(4096), ..WorkerSample::default() };
    start.wait().await;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let Some(request) = work.next() else { break };
        let conn = match connection.as_mut() {
            Some(c) => c,
            None => match endpoint.connect().await {
                Ok(c) => connection.insert(c),
                Err(e) => {
                    result.errors += 1;
                    result.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        match conn.send_keeping(&request, work.reads_bodies()).await {
            Ok(response) if response.ok() => {
                result.latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                result.requests += 1;
                result.bytes += response.length;
                work.answered(&response);
            }
            Ok(response) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{} {}: {}", request.method, request.path, response.describe()));
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{} {}: {e}", request.method, request.path));
                connection = None;
            }
        }
        progress.add(1);
    }
    (work, result)
}
