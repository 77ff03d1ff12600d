//! Crash safety of the embedded backend, through the real server binary: several clients create,
//! update and delete Foos over HTTPS while the server is killed with SIGKILL at random moments
//! and restarted on the same data directory. After every restart:
//!
//! - every write a client got a success for is there (or was later deleted by an acknowledged
//!   delete), with the uid, content and resourceVersion it was acknowledged with;
//! - a write whose answer was lost in the crash is either fully there or not at all;
//! - every stored object parses and belongs to some client;
//! - resourceVersions only move forward: the list's is at least every acknowledged one, and every
//!   write after the restart gets a larger one.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;
use support::client_tls;

const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";
const CLIENTS: usize = 4;
const CRASHES: usize = 6;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server, killed when dropped.
struct Server {
    child: Child,
    address: String,
    tls: Arc<rustls::ClientConfig>,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, run: usize) -> Server {
        let log = dir.join(format!("server-{run}.log"));
        let out = File::create(&log).unwrap();
        let _ = std::fs::remove_file(dir.join("kubeconfig"));
        let child = Command::new(env!("CARGO_BIN_EXE_apiserver"))
            .args(["--storage", "embedded", "--secure-port", "0", "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the apiserver binary");
        let mut server = Server { child, address: String::new(), tls: Arc::new(client_tls(dir)), log };
        server.address = support::wait_until_serving(&mut server.child, &server.log, &format!(" at start {run}"));
        // The kubeconfig is written before the server says it is serving; read its credentials.
        server.tls = Arc::new(client_tls(dir));
        server
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// TLS settings from the kubeconfig the server wrote: its CA, and the admin client certificate.
/// One HTTP/1.1 connection over TLS.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(address: &str, tls: Arc<rustls::ClientConfig>) -> Result<Connection, String> {
        let tcp = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        let host = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls).connect(host, tcp).await.map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Watches from `after` and collects events until one at resourceVersion `until`.
    async fn watch_until(&mut self, after: u64, until: u64) -> Vec<Value> {
        let request = http::Request::builder()
            .uri(format!("{FOOS}?watch=true&resourceVersion={after}"))
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let collect = async {
            self.sender.ready().await.unwrap();
            let response = self.sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            let (mut buffer, mut events) = (Vec::new(), Vec::new());
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    buffer.extend_from_slice(&data);
                }
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let event: Value = serde_json::from_slice(&line).unwrap();
                    let rv = event["object"]["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
                    events.push(event);
                    if rv == until.to_string() {
                        return events;
                    }
                }
            }
            panic!("the watch ended before resourceVersion {until}: {events:?}");
        };
        tokio::time::timeout(REQUEST_TIMEOUT, collect).await.expect("watch events arrive")
    }

    /// Sends a request; `Err` when no answer came (the server died or hung).
    async fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
            .unwrap();
        let answer = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let response = self.sender.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            let value =
                serde_json::from_slice(&bytes).map_err(|e| format!("unparsable answer ({e}): {}", String::from_utf8_lossy(&bytes)))?;
            Ok((status, value))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, answer).await.map_err(|_| "timed out".to_string())?
    }
}

/// An object as acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Obj {
    uid: String,
    msg: String,
    rv: u64,
}

impl Obj {
    fn parse(v: &Value) -> Obj {
        assert_eq!(v["apiVersion"], "hello.zeng.dev/v1", "{v}");
        assert_eq!(v["kind"], "Foo", "{v}");
        let rv = v["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok());
        Obj {
            uid: v["metadata"]["uid"].as_str().filter(|u| !u.is_empty()).unwrap_or_else(|| panic!("no uid: {v}")).to_string(),
            msg: v["spec"]["msg"].as_str().unwrap_or_else(|| panic!("no spec.msg: {v}")).to_string(),
            rv: rv.unwrap_or_else(|| panic!("bad resourceVersion: {v}")),
        }
    }
}

/// A write whose answer was lost: it happened entirely or not at all.
#[derive(Debug, Clone)]
enum Doubt {
    Created { msg: String },
    Updated { msg: String },
    Deleted,
}

/// What one client knows about one of its names.
#[derive(Debug, Clone, Default)]
struct Tracked {
    known: Option<Obj>,
    doubt: Option<Doubt>,
}

/// One client's names and their expected state.
#[derive(Debug, Default)]
struct Model {
    client: usize,
    names: BTreeMap<String, Tracked>,
    next: usize,
    /// Acknowledged writes over the whole test.
    acked: usize,
}

/// Runs writes until the server stops answering. Every acknowledged create/update must get a
/// resourceVersion above `floor` and above the client's previous one.
async fn load(mut model: Model, address: String, tls: Arc<rustls::ClientConfig>, floor: u64, seed: u64) -> (Model, u64) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut last_rv = floor;
    let Ok(mut conn) = Connection::open(&address, tls).await else { return (model, last_rv) };
    loop {
        let live: Vec<String> = model.names.iter().filter(|(_, t)| t.known.is_some()).map(|(n, _)| n.clone()).collect();
        let pick = rng.random_range(0..100);
        let msg = format!("m{}", rng.random::<u32>());
        let (name, doubt, result) = if live.len() < 5 || pick < 40 {
            let name = format!("c{}-{}", model.client, model.next);
            model.next += 1;
            let body = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name}, "spec": {"msg": msg}});
            let result = conn.call("POST", FOOS, Some(&body)).await;
            (name, Doubt::Created { msg }, result)
        } else {
            let name = live[rng.random_range(0..live.len())].clone();
            let known = model.names[&name].known.clone().unwrap();
            let path = format!("{FOOS}/{name}");
            if pick < 80 {
                let body = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                    "metadata": {"name": name, "resourceVersion": known.rv.to_string(), "uid": known.uid}, "spec": {"msg": msg}});
                let result = conn.call("PUT", &path, Some(&body)).await;
                (name, Doubt::Updated { msg }, result)
            } else {
                let body = json!({"preconditions": {"resourceVersion": known.rv.to_string()}});
                let result = conn.call("DELETE", &path, Some(&body)).await;
                (name, Doubt::Deleted, result)
            }
        };
        let tracked = model.names.entry(name.clone()).or_default();
        match result {
            Ok((200 | 201, body)) => {
                model.acked += 1;
                match doubt {
                    Doubt::Deleted => tracked.known = None,
                    Doubt::Created { msg } | Doubt::Updated { msg } => {
                        let obj = Obj::parse(&body);
                        assert_eq!(obj.msg, msg, "{name}: the answer carries what was written");
                        if let Some(before) = &tracked.known {
                            assert_eq!(obj.uid, before.uid, "{name}: an update keeps the uid");
                        }
                        assert!(obj.rv > last_rv, "{name}: resourceVersion {} after {last_rv}: not moving forward", obj.rv);
                        last_rv = obj.rv;
                        tracked.known = Some(obj);
                    }
                }
            }
            // No answer: the server died, and the outcome is unknown. (A SIGKILLed server
            // answers nothing, so any status, 5xx included, is checked below.)
            Err(_) => {
                tracked.doubt = Some(doubt);
                return (model, last_rv);
            }
            Ok((status, body)) => panic!("{name}: unexpected {status} for {doubt:?}: {body}"),
        }
    }
}

/// Checks the server's objects against every client's model, settles doubts, and returns the
/// list's resourceVersion. A watch from `previous` (the resourceVersion of the last check, before
/// the crash) must replay every write since, one event per revision.
async fn verify(server: &Server, models: &mut [Model], max_acked: u64, previous: u64) -> u64 {
    let mut conn = Connection::open(&server.address, server.tls.clone()).await.expect("connect after restart");
    let (status, list) = conn.call("GET", FOOS, None).await.expect("list after restart");
    assert_eq!(status, 200, "{list}");
    let list_rv: u64 = list["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(list_rv >= max_acked, "list resourceVersion {list_rv} is behind an acknowledged write at {max_acked}");
    // (resourceVersion 0 would mean "the current state, then changes": nothing to resume.)
    if previous > 0 && list_rv > previous {
        // Every write of this test is a Foo in the watched namespace, so the history has one
        // event for each revision in between, in order.
        let events = conn.watch_until(previous, list_rv).await;
        let revisions: Vec<u64> =
            events.iter().map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(revisions, (previous + 1..=list_rv).collect::<Vec<_>>(), "watch resumed from {previous} after a restart");
    }
    let mut seen: BTreeMap<String, Obj> = BTreeMap::new();
    for item in list["items"].as_array().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap().to_string();
        let obj = Obj::parse(item);
        assert!(obj.rv <= list_rv, "{name} at {} is newer than its list at {list_rv}", obj.rv);
        seen.insert(name, obj);
    }
    for model in models.iter_mut() {
        for (name, tracked) in model.names.iter_mut() {
            let now = seen.remove(name);
            match (tracked.doubt.take(), &tracked.known) {
                (None, known) => assert_eq!(now.as_ref(), known.as_ref(), "{name}: an acknowledged write was lost or changed"),
                (Some(Doubt::Created { msg }), None) => {
                    assert!(now.as_ref().is_none_or(|o| o.msg == msg), "{name}: half a create: {now:?}");
                }
                (Some(Doubt::Updated { msg }), Some(before)) => {
                    let now = now.as_ref().unwrap_or_else(|| panic!("{name}: lost by an unfinished update"));
                    assert!(
                        now == before || (now.uid == before.uid && now.msg == msg && now.rv > before.rv),
                        "{name}: {before:?} became {now:?}"
                    );
                }
                (Some(Doubt::Deleted), Some(before)) => {
                    assert!(now.as_ref().is_none_or(|o| o == before), "{name}: {before:?} became {now:?}");
                }
                (doubt, known) => panic!("{name}: inconsistent model {doubt:?} {known:?}"),
            }
            tracked.known = now;
        }
    }
    assert!(seen.is_empty(), "objects nobody wrote: {:?}", seen.keys().collect::<Vec<_>>());
    list_rv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut models: Vec<Model> = (0..CLIENTS).map(|client| Model { client, ..Model::default() }).collect();
    let (mut max_acked, mut floor) = (0, 0);
    let mut server = Server::start(dir.path(), 0);
    for crash in 0..=CRASHES {
        floor = verify(&server, &mut models, max_acked, floor).await;
        if crash == CRASHES {
            break;
        }
        let clients: Vec<_> = std::mem::take(&mut models)
            .into_iter()
            .map(|model| tokio::spawn(load(model, server.address.clone(), server.tls.clone(), floor, rng.random())))
            .collect();
        // Let the load run, then pull the plug in the middle of it.
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        let log = server.log_text();
        server.kill();
        for client in clients {
            let (model, last) = client.await.expect("client task");
            max_acked = max_acked.max(last);
            models.push(model);
        }
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
        server = Server::start(dir.path(), crash + 1);
    }
    let acked: usize = models.iter().map(|m| m.acked).sum();
    let stored: usize = models.iter().map(|m| m.names.values().filter(|t| t.known.is_some()).count()).sum();
    eprintln!("{acked} acknowledged writes across {CRASHES} SIGKILLs; {stored} objects stored at the end");
    assert!(acked >= CRASHES * CLIENTS, "too little load to mean anything: {acked} writes");
}
