//! What is measured: loading N Foos, each request kind, watch fan-out, and start-up.

use crate::client::{Endpoint, Request, Response};
use crate::measure::{self, quantile_us, Sample, Work};
use crate::progress::Progress;
use crate::report::{LoadResult, OpResult, WatchResult};
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The collection every scenario works on.
pub const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";
/// What kubectl sends to get a Table.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";
/// Labels on the large object server-side apply works on: with the long `spec.msg1` below, its
/// JSON is a little over 1 MiB, and its managedFields name every label.
const LARGE_LABELS: usize = 9_000;
/// The length of the large object's `spec.msg1`.
const LARGE_TEXT: usize = 256 * 1024;
/// Objects per page in the paginated list.
pub const PAGE: usize = 500;

/// The name of loaded object `i`.
pub fn name(i: usize) -> String {
    format!("bench-{i:06}")
}

/// A small Foo, as a client would send it: name, two labels, two short strings.
pub fn foo(name: &str, resource_version: Option<u64>, msg: &str) -> String {
    let rv = resource_version.map(|rv| format!(r#","resourceVersion":"{rv}""#)).unwrap_or_default();
    format!(
        r#"{{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{{"name":"{name}","labels":{{"app":"bench","tier":"load"}}{rv}}},"spec":{{"msg":"{msg}","msg1":"a small Foo written by the benchmark"}}}}"#
    )
}

/// The request kinds measured at each concurrency, in the order they run. Reads and in-place
/// writes work on the N loaded objects; CREATE adds new ones, which DELETE then removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Op {
    /// GET of one random loaded object.
    Get,
    /// LIST of the whole collection as JSON.
    List,
    /// LIST of the whole collection as a Table.
    ListTable,
    /// LIST pages of [`PAGE`] objects, following continue tokens (one request = one page).
    ListPaged,
    /// PUT of a whole object with its current resourceVersion.
    Update,
    /// PATCH with a JSON merge patch.
    PatchMerge,
    /// PATCH with a strategic merge patch.
    PatchStrategic,
    /// POST of a new object.
    Create,
    /// DELETE of an object CREATE made.
    Delete,
    /// Server-side apply (`kubectl apply --server-side`) of a 1 MiB Foo: each worker applies its
    /// own object again and again, changing one field. Runs last, so the large objects do not
    /// weigh on the other measurements.
    ApplyLarge,
}

impl Op {
    /// Every kind, in running order.
    pub const ALL: [Op; 10] = [
        Op::Get,
        Op::List,
        Op::ListTable,
        Op::ListPaged,
        Op::Update,
        Op::PatchMerge,
        Op::PatchStrategic,
        Op::Create,
        Op::Delete,
        Op::ApplyLarge,
    ];

    /// The machine-readable name used in the JSON results.
    pub fn id(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list",
            Op::ListTable => "list_table",
            Op::ListPaged => "list_paged",
            Op::Update => "update",
            Op::PatchMerge => "patch_merge",
            Op::PatchStrategic => "patch_strategic",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::ApplyLarge => "apply_1mib",
        }
    }

    /// The name shown in tables.
    pub fn title(self) -> &'static str {
        match self {
            Op::Get => "GET one",
            Op::List => "LIST all (JSON)",
            Op::ListTable => "LIST all (Table)",
            Op::ListPaged => "LIST, pages of 500",
            Op::Update => "UPDATE (PUT)",
            Op::PatchMerge => "PATCH (merge)",
            Op::PatchStrategic => "PATCH (strategic)",
            Op::Create => "CREATE",
            Op::Delete => "DELETE",
            Op::ApplyLarge => "APPLY 1 MiB (server-side)",
        }
    }

    /// Whether the throughput compares with the ceiling's (which answers one small Foo).
    pub fn comparable_to_ceiling(self) -> bool {
        self != Op::ApplyLarge
    }
}

/// A number never used before in this process: every write changes its object (a write that
/// changes nothing is answered without storing anything, and makes no event).
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A small fast generator (xorshift64*), seeded per worker.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

#[derive(Deserialize)]
struct Meta {
    metadata: MetaFields,
}

#[derive(Deserialize)]
struct MetaFields {
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<String>,
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

/// The `metadata.resourceVersion` of an object or list.
pub fn resource_version(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Meta>(body).ok()?.metadata.resource_version?.parse().ok()
}

fn continue_token(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Meta>(body).ok()?.metadata.continue_token.filter(|t| !t.is_empty())
}

/// The number of items of a list.
pub fn item_count(body: &[u8]) -> Option<usize> {
    #[derive(Deserialize)]
    struct Items {
        items: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Items>(body).ok().map(|l| l.items.len())
}

/// The same request again and again.
pub struct Fixed(pub Request);

impl Work for Fixed {
    fn next(&mut self) -> Option<Request> {
        Some(self.0.clone())
    }
    fn reads_bodies(&self) -> bool {
        false
    }
}

/// Creates objects `indices` (the initial load), keeping each one's resourceVersion.
struct Load {
    indices: std::iter::StepBy<std::ops::Range<usize>>,
    current: usize,
    versions: Arc<Vec<AtomicU64>>,
}

impl Work for Load {
    fn next(&mut self) -> Option<Request> {
        self.current = self.indices.next()?;
        Some(Request::with_body(Method::POST, FOOS, JSON, foo(&name(self.current), None, &format!("hello from object {}", self.current))))
    }
    fn answered(&mut self, response: &Response) {
        self.versions[self.current].store(resource_version(&response.body).unwrap_or(0), Ordering::Relaxed);
    }
}

/// GETs random loaded objects.
struct Get {
    rng: Rng,
    objects: usize,
}

impl Work for Get {
    fn next(&mut self) -> Option<Request> {
        Some(Request::get(format!("{FOOS}/{}", name(self.rng.below(self.objects)))))
    }
    fn reads_bodies(&self) -> bool {
        false
    }
}

/// Walks the collection page by page, starting over at the end.
struct Paged {
    token: Option<String>,
}

impl Work for Paged {
    fn next(&mut self) -> Option<Request> {
        Some(Request::get(match &self.token {
            Some(t) => format!("{FOOS}?limit={PAGE}&continue={t}"),
            None => format!("{FOOS}?limit={PAGE}"),
        }))
    }
    fn answered(&mut self, response: &Response) {
        self.token = continue_token(&response.body);
    }
}

/// PUTs its own share of the loaded objects (no two workers write the same one), each with the
/// resourceVersion of its last write.
struct Update {
    owned: Vec<usize>,
    position: usize,
    current: usize,
    versions: Arc<Vec<AtomicU64>>,
}

impl Work for Update {
    fn next(&mut self) -> Option<Request> {
        self.current = *self.owned.get(self.position % self.owned.len().max(1))?;
        self.position += 1;
        let rv = self.versions[self.current].load(Ordering::Relaxed);
        let body = foo(&name(self.current), Some(rv), &format!("update {}", unique()));
        Some(Request::with_body(Method::PUT, format!("{FOOS}/{}", name(self.current)), JSON, body))
    }
    fn answered(&mut self, response: &Response) {
        if let Some(rv) = resource_version(&response.body) {
            self.versions[self.current].store(rv, Ordering::Relaxed);
        }
    }
}

/// PATCHes random loaded objects' `spec.msg`.
struct Patch {
    rng: Rng,
    objects: usize,
    content_type: &'static str,
    worker: usize,
}

impl Work for Patch {
    fn next(&mut self) -> Option<Request> {
        let body = format!(r#"{{"spec":{{"msg":"patch {} by worker {}"}}}}"#, unique(), self.worker);
        let path = format!("{FOOS}/{}", name(self.rng.below(self.objects)));
        Some(Request::with_body(Method::PATCH, path, self.content_type, body))
    }
    fn reads_bodies(&self) -> bool {
        false
    }
}

/// POSTs new objects named `<prefix><n>` and remembers the ones created.
struct Create {
    prefix: String,
    sequence: u64,
    pending: String,
    created: Vec<String>,
}

impl Work for Create {
    fn next(&mut self) -> Option<Request> {
        self.sequence += 1;
        self.pending = format!("{}{}", self.prefix, self.sequence);
        Some(Request::with_body(Method::POST, FOOS, JSON, foo(&self.pending, None, "created by the benchmark")))
    }
    fn answered(&mut self, _response: &Response) {
        self.created.push(std::mem::take(&mut self.pending));
    }
}

/// DELETEs the given objects, one each.
struct Delete {
    names: Vec<String>,
}

impl Work for Delete {
    fn next(&mut self) -> Option<Request> {
        self.names.pop().map(|n| Request { method: Method::DELETE, ..Request::get(format!("{FOOS}/{n}")) })
    }
}

/// A Foo of a little over 1 MiB of JSON, as an applied configuration: many labels and a long
/// `spec.msg1`; `msg` makes each one different.
pub fn large_foo(name: &str, msg: &str) -> String {
    let labels: Vec<String> =
        (0..LARGE_LABELS).map(|i| format!(r#""label-{i:05}.bench.example/key":"value-{i:05}-{}""#, "v".repeat(50))).collect();
    format!(
        r#"{{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{{"name":"{name}","labels":{{{}}}}},"spec":{{"msg":"{msg}","msg1":"{}"}}}}"#,
        labels.join(","),
        "x".repeat(LARGE_TEXT)
    )
}

/// Applies one large object again and again (the first apply creates it).
struct ApplyLarge {
    name: String,
    template: String,
}

impl Work for ApplyLarge {
    fn next(&mut self) -> Option<Request> {
        let body = self.template.replacen("MSG-PLACEHOLDER", &format!("apply {}", unique()), 1);
        let path = format!("{FOOS}/{}?fieldManager=bench&force=true", self.name);
        Some(Request::with_body(Method::PATCH, path, APPLY_PATCH, body))
    }
}

/// Creates objects 0..n with `concurrency` writers. Returns the figures and every object's
/// resourceVersion.
pub async fn load(
    endpoint: &Endpoint,
    objects: usize,
    concurrency: usize,
    progress: &Progress,
    label: &str,
) -> Result<(LoadResult, Arc<Vec<AtomicU64>>), String> {
    let versions: Arc<Vec<AtomicU64>> = Arc::new((0..objects).map(|_| AtomicU64::new(0)).collect());
    let concurrency = concurrency.clamp(1, objects.max(1));
    let workers =
        (0..concurrency).map(|w| Load { indices: (w..objects).step_by(concurrency), current: 0, versions: versions.clone() }).collect();
    progress.phase(format!("{label} loading"), Some(objects as u64));
    let (sample, _) = measure::run(endpoint, workers, Duration::from_secs(24 * 3600), progress).await?;
    if sample.errors > 0 {
        return Err(format!("loading failed {} times; first: {}", sample.errors, sample.first_error.unwrap_or_default()));
    }
    let result = LoadResult { objects, concurrency, seconds: sample.elapsed.as_secs_f64(), per_second: sample.per_second() };
    Ok((result, versions))
}

/// Runs one request kind at one concurrency for `duration`. `created` carries the names CREATE
/// made to DELETE, per concurrency.
#[allow(clippy::too_many_arguments)]
pub async fn operation(
    endpoint: &Endpoint,
    op: Op,
    concurrency: usize,
    objects: usize,
    versions: &Arc<Vec<AtomicU64>>,
    created: &mut HashMap<usize, Vec<String>>,
    duration: Duration,
    progress: &Progress,
) -> Result<(Sample, usize), String> {
    let c = concurrency;
    let seed = |w: usize| (c * 1000 + w + 1) as u64;
    macro_rules! go {
        ($workers:expr) => {{
            measure::run(endpoint, $workers, duration, progress).await?
        }};
    }
    let mut left = 0;
    let sample = match op {
        Op::Get => go!((0..c).map(|w| Get { rng: Rng::new(seed(w)), objects }).collect::<Vec<_>>()).0,
        Op::List => go!((0..c).map(|_| Fixed(Request::get(FOOS))).collect::<Vec<_>>()).0,
        Op::ListTable => go!((0..c).map(|_| Fixed(Request { accept: Some(TABLE_ACCEPT), ..Request::get(FOOS) })).collect::<Vec<_>>()).0,
        Op::ListPaged => go!((0..c).map(|_| Paged { token: None }).collect::<Vec<_>>()).0,
        Op::Update => {
            let workers: Vec<_> = (0..c)
                .map(|w| Update { owned: (w..objects).step_by(c).collect(), position: 0, current: 0, versions: versions.clone() })
                .collect();
            go!(workers).0
        }
        Op::PatchMerge | Op::PatchStrategic => {
            let content_type = if op == Op::PatchMerge { MERGE_PATCH } else { STRATEGIC_PATCH };
            go!((0..c).map(|w| Patch { rng: Rng::new(seed(w)), objects, content_type, worker: w }).collect::<Vec<_>>()).0
        }
        Op::Create => {
            let workers: Vec<_> = (0..c)
                .map(|w| Create { prefix: format!("new-c{c}-w{w}-"), sequence: 0, pending: String::new(), created: Vec::new() })
                .collect();
            let (sample, workers) = go!(workers);
            created.insert(c, workers.into_iter().flat_map(|w| w.created).collect());
            sample
        }
        Op::Delete => {
            let mut names = created.remove(&c).unwrap_or_default();
            let mut shares: Vec<Vec<String>> = vec![Vec::new(); c];
            for (i, n) in names.drain(..).enumerate() {
                shares[i % c].push(n);
            }
            let (sample, workers) = go!(shares.into_iter().map(|names| Delete { names }).collect::<Vec<_>>());
            left = workers.iter().map(|w| w.names.len()).sum();
            sample
        }
        Op::ApplyLarge => {
            let workers: Vec<_> = (0..c)
                .map(|w| {
                    let name = format!("large-c{c}-w{w}");
                    ApplyLarge { template: large_foo(&name, "MSG-PLACEHOLDER"), name }
                })
                .collect();
            go!(workers).0
        }
    };
    Ok((sample, left))
}

/// Turns a sample into a result row, with its ratio to the ceiling's throughput.
pub fn op_result(op: &str, title: &str, concurrency: usize, sample: &Sample, ceiling_per_second: Option<f64>) -> OpResult {
    let per_second = sample.per_second();
    OpResult {
        operation: op.to_string(),
        title: title.to_string(),
        concurrency,
        requests: sample.requests,
        errors: sample.errors,
        seconds: sample.elapsed.as_secs_f64(),
        per_second,
        p50_ms: sample.quantile_ms(0.50),
        p99_ms: sample.quantile_ms(0.99),
        max_ms: sample.quantile_ms(1.0),
        mean_response_bytes: sample.mean_bytes(),
        ratio_to_ceiling: ceiling_per_second.filter(|c| *c > 0.0).map(|c| per_second / c),
        first_error: sample.first_error.clone(),
    }
}

/// The resourceVersion in one watch event line.
fn event_revision(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Event {
        object: Meta,
    }
    serde_json::from_slice::<Event>(line).ok()?.object.metadata.resource_version?.parse().ok()
}

/// Reads one watch stream, reporting each event's resourceVersion with the time its bytes
/// arrived (before parsing, so this side's parsing cost is not counted).
async fn read_watch(mut body: hyper::body::Incoming, events: tokio::sync::mpsc::UnboundedSender<(u64, Instant)>) {
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                eprintln!("watch stream error: {e}");
                return;
            }
        };
        let Ok(data) = frame.into_data() else { continue };
        let arrived = Instant::now();
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            if let Some(rv) = event_revision(&buffer[..end]) {
                if events.send((rv, arrived)).is_err() {
                    return;
                }
            }
            buffer.drain(..=end);
        }
    }
}

/// Opens `watchers` watches of the collection, then makes `writes` merge patches one after the
/// other; for each, the delay from its acknowledgement (the PATCH answer) to the moment its
/// event has reached every watcher.
pub async fn watch_fanout(
    endpoint: &Endpoint,
    watchers: usize,
    writes: usize,
    objects: usize,
    progress: &Progress,
    label: &str,
) -> Result<WatchResult, String> {
    use futures::StreamExt;
    let list = endpoint.send_once(&Request::get(format!("{FOOS}?limit=1"))).await?;
    let from = resource_version(&list.body).ok_or_else(|| format!("no resourceVersion in the list: {}", list.describe()))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    progress.phase(format!("{label} opening {watchers} watches"), Some(watchers as u64));
    let connect_started = Instant::now();
    let opened: Vec<Result<tokio::task::JoinHandle<()>, String>> = futures::stream::iter(0..watchers)
        .map(|_| {
            let tx = tx.clone();
            async move {
                let mut connection = endpoint.connect().await?;
                let request = Request::get(format!("{FOOS}?watch=true&resourceVersion={from}&timeoutSeconds=3600"));
                let (status, body) = connection.stream(&request).await?;
                if status != 200 {
                    return Err(format!("watch answered {status}"));
                }
                progress.add(1);
                Ok(tokio::spawn(async move {
                    let _connection = connection;
                    read_watch(body, tx).await
                }))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    drop(tx);
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    let mut readers = Vec::with_capacity(watchers);
    let mut failure = None;
    for o in opened {
        match o {
            Ok(handle) => readers.push(handle),
            Err(e) => failure = Some(e),
        }
    }
    let abort = |readers: &[tokio::task::JoinHandle<()>]| readers.iter().for_each(|r| r.abort());
    if let Some(e) = failure {
        abort(&readers);
        return Err(format!("opening a watch failed: {e}"));
    }

    let mut writer = endpoint.connect().await?;
    let mut pending: HashMap<u64, (usize, Instant)> = HashMap::new();
    let mut delays_us = Vec::with_capacity(writes);
    let mut from_send_us = Vec::with_capacity(writes);
    let mut lost = 0usize;
    progress.phase(format!("{label} watch fan-out to {watchers}"), Some(writes as u64));
    // One write more than measured: the first warms the streams up and is not counted.
    for k in 0..=writes {
        // Unique content: a patch that changes nothing makes no event.
        let body = format!(r#"{{"spec":{{"msg":"watched write {}"}}}}"#, unique());
        let request = Request::with_body(Method::PATCH, format!("{FOOS}/{}", name(k % objects.max(1))), MERGE_PATCH, body);
        let sent = Instant::now();
        let response = writer.send(&request).await?;
        let acknowledged = Instant::now();
        if !response.ok() {
            abort(&readers);
            return Err(format!("the watched write failed: {}", response.describe()));
        }
        let rv = resource_version(&response.body).ok_or("no resourceVersion in the PATCH answer")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let complete = loop {
            if pending.get(&rv).is_some_and(|(n, _)| *n >= watchers) {
                break true;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((event_rv, at))) => {
                    let entry = pending.entry(event_rv).or_insert((0, at));
                    entry.0 += 1;
                    entry.1 = entry.1.max(at);
                }
                Ok(None) | Err(_) => break false,
            }
        };
        let (_, last) = pending.get(&rv).copied().unwrap_or((0, acknowledged));
        if k > 0 {
            if complete {
                delays_us.push(last.saturating_duration_since(acknowledged).as_micros().min(u32::MAX as u128) as u32);
                from_send_us.push(last.saturating_duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
            } else {
                lost += 1;
                let reached = pending.get(&rv).map_or(0, |(n, _)| *n);
                progress.line(format!("{label} write {k} at revision {rv}: its event reached {reached} of {watchers} watchers in 30 s"));
            }
            progress.add(1);
        }
        // Events of this and earlier revisions are done with.
        pending.retain(|r, _| *r > rv);
    }
    abort(&readers);
    Ok(WatchResult {
        watchers,
        writes,
        incomplete: lost,
        connect_seconds,
        p50_ms: quantile_us(&delays_us, 0.50) / 1000.0,
        p99_ms: quantile_us(&delays_us, 0.99) / 1000.0,
        max_ms: quantile_us(&delays_us, 1.0) / 1000.0,
        p50_from_send_ms: quantile_us(&from_send_us, 0.50) / 1000.0,
        p99_from_send_ms: quantile_us(&from_send_us, 0.99) / 1000.0,
    })
}

/// Lists the whole collection and counts its items.
pub async fn count_objects(endpoint: &Endpoint) -> Result<usize, String> {
    let response = endpoint.send_once(&Request::get(FOOS)).await?;
    if !response.ok() {
        return Err(response.describe());
    }
    item_count(&response.body).ok_or_else(|| "the list has no items".to_string())
}

/// One GET of object 0: the JSON size of a stored Foo, and its bytes (the ceiling's body).
pub async fn sample_object(endpoint: &Endpoint) -> Result<Bytes, String> {
    let response = endpoint.send_once(&Request::get(format!("{FOOS}/{}", name(0)))).await?;
    if !response.ok() {
        return Err(response.describe());
    }
    Ok(response.body)
}
