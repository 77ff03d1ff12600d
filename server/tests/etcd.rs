//! The etcd backend through the real server binary, over HTTPS:
//!
//! - two replicas sharing one etcd: an object created through one is read and updated through
//!   the other, a watch on one sees the writes made on the other, and concurrent updates of the
//!   same resourceVersion through both have exactly one winner and one 409 Conflict;
//! - an etcd outage: writes and reads get 503, and the same server recovers (watch included)
//!   when etcd is back.
//!
//! The tests start etcd themselves (Debian's `etcd-server`; they fail, saying so, without it).

#[path = "../src/storage/etcd/testing.rs"]
mod etcd_support;
mod support;

use bytes::Bytes;
use etcd_support::Etcd;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::client_tls;
use tokio::sync::mpsc;

const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// One server process on etcd, with its own data directory (certificates, kubeconfig); killed
/// when dropped.
struct Replica {
    child: Child,
    address: String,
    tls: Arc<rustls::ClientConfig>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn start(etcd: &Etcd, prefix: &str) -> Replica {
        let dir = tempfile::Builder::new().prefix("apiserver-etcd-").tempdir().unwrap();
        let log = dir.path().join("server.log");
        let out = File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_apiserver"))
            .args(["--storage", "etcd", "--etcd-servers", &etcd.url(), "--etcd-prefix", prefix, "--secure-port", "0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the apiserver binary");
        let mut replica = Replica { child, address: String::new(), tls: Arc::new(client_tls(dir.path())), log, _dir: dir };
        replica.address = support::wait_until_serving(&mut replica.child, &replica.log, "");
        replica.tls = Arc::new(client_tls(replica._dir.path()));
        replica
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let tcp = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        let host = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(self.tls.clone()).connect(host, tcp).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender
    }

    /// One request on a fresh connection: the status and the JSON answer.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
            .unwrap();
        let answer = async {
            let mut sender = self.connect().await;
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("unparsable answer to {method} {path} ({e}): {}", String::from_utf8_lossy(&bytes)));
            (status, value)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, answer).await.unwrap_or_else(|_| panic!("{method} {path}: no answer in time"))
    }

    /// Watches Foos from `resource_version`; events arrive on the returned channel.
    async fn watch(&self, resource_version: &str) -> mpsc::UnboundedReceiver<Value> {
        let mut sender = self.connect().await;
        let request = http::Request::builder()
            .uri(format!("{FOOS}?watch=true&resourceVersion={resource_version}"))
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let (events, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _sender = sender;
            let mut body = response.into_body();
            let mut buffer = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                }
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    if events.send(serde_json::from_slice::<Value>(&line).unwrap()).is_err() {
                        return;
                    }
                }
            }
        });
        receiver
    }
}

/// TLS settings from the kubeconfig a server wrote: its CA and the admin client certificate.
fn foo(name: &str, msg: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name}, "spec": {"msg": msg}})
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"].as_str().unwrap_or_else(|| panic!("no resourceVersion: {object}")).to_string()
}

/// The next watch event, within a few seconds.
async fn next_event(events: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(REQUEST_TIMEOUT, events.recv()).await.expect("a watch event in time").expect("the watch goes on")
}

/// Two replicas on the shared etcd, under a prefix of their own.
fn replicas(prefix: &str) -> (Replica, Replica) {
    let etcd = Etcd::shared();
    (Replica::start(etcd, prefix), Replica::start(etcd, prefix))
}

#[tokio::test]
async fn an_object_created_through_one_replica_is_read_and_updated_through_the_other() {
    let (a, b) = replicas("/registry-read-update");
    let (status, created) = a.call("POST", FOOS, Some(&foo("shared", "from a"))).await;
    assert_eq!(status, 201, "{created}");

    let (status, read) = b.call("GET", &format!("{FOOS}/shared"), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(rv(&read), rv(&created));
    assert_eq!(read["spec"]["msg"], "from a");

    let mut change = read.clone();
    change["spec"]["msg"] = json!("from b");
    let (status, updated) = b.call("PUT", &format!("{FOOS}/shared"), Some(&change)).await;
    assert_eq!(status, 200, "{updated}");
    assert!(rv(&updated).parse::<u64>().unwrap() > rv(&created).parse::<u64>().unwrap());

    let (status, list) = a.call("GET", FOOS, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["spec"]["msg"], "from b");
    assert_eq!(rv(&list["items"][0]), rv(&updated));

    // A stale update through a: the write b made is seen there as a conflict.
    let (status, stale) = a.call("PUT", &format!("{FOOS}/shared"), Some(&read)).await;
    assert_eq!(status, 409, "{stale}");
    assert_eq!(stale["reason"], "Conflict");

    let (status, _) = a.call("DELETE", &format!("{FOOS}/shared"), None).await;
    assert_eq!(status, 200);
    let (status, gone) = b.call("GET", &format!("{FOOS}/shared"), None).await;
    assert_eq!(status, 404, "{gone}");
}

#[tokio::test]
async fn a_watch_on_one_replica_sees_writes_made_on_the_other() {
    let (a, b) = replicas("/registry-watch");
    let (status, list) = b.call("GET", FOOS, None).await;
    assert_eq!(status, 200);
    let mut events = b.watch(&rv(&list)).await;

    let (status, created) = a.call("POST", FOOS, Some(&foo("watched", "1"))).await;
    assert_eq!(status, 201, "{created}");
    let mut change = created.clone();
    change["spec"]["msg"] = json!("2");
    let (status, updated) = a.call("PUT", &format!("{FOOS}/watched"), Some(&change)).await;
    assert_eq!(status, 200, "{updated}");
    let (status, _) = a.call("DELETE", &format!("{FOOS}/watched"), None).await;
    assert_eq!(status, 200);

    let added = next_event(&mut events).await;
    assert_eq!(added["type"], "ADDED", "{added}");
    assert_eq!(rv(&added["object"]), rv(&created));
    let modified = next_event(&mut events).await;
    assert_eq!(modified["type"], "MODIFIED", "{modified}");
    assert_eq!(rv(&modified["object"]), rv(&updated));
    assert_eq!(modified["object"]["spec"]["msg"], "2");
    let deleted = next_event(&mut events).await;
    assert_eq!(deleted["type"], "DELETED", "{deleted}");
    assert!(rv(&deleted["object"]).parse::<u64>().unwrap() > rv(&updated).parse::<u64>().unwrap());
}

#[tokio::test]
async fn concurrent_conflicting_updates_through_both_replicas_have_one_winner() {
    let (a, b) = replicas("/registry-conflict");
    let (status, mut current) = a.call("POST", FOOS, Some(&foo("contended", "start"))).await;
    assert_eq!(status, 201, "{current}");
    for round in 0..10 {
        // Both replicas get an update of the same resourceVersion at the same time.
        let mut through_a = current.clone();
        through_a["spec"]["msg"] = json!(format!("a{round}"));
        let mut through_b = current.clone();
        through_b["spec"]["msg"] = json!(format!("b{round}"));
        let path = format!("{FOOS}/contended");
        let ((status_a, answer_a), (status_b, answer_b)) =
            tokio::join!(a.call("PUT", &path, Some(&through_a)), b.call("PUT", &path, Some(&through_b)));
        let mut statuses = [status_a, status_b];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}: {answer_a} / {answer_b}");
        let (winner, loser) = if status_a == 200 { (answer_a, answer_b) } else { (answer_b, answer_a) };
        assert_eq!(loser["reason"], "Conflict", "{loser}");
        // What both replicas read now is the winner's write.
        for replica in [&a, &b] {
            let (status, read) = replica.call("GET", &path, None).await;
            assert_eq!(status, 200);
            assert_eq!(read["spec"], winner["spec"]);
            assert_eq!(rv(&read), rv(&winner));
        }
        current = winner;
    }
}

#[tokio::test]
async fn an_etcd_outage_gives_503_and_the_server_recovers_when_etcd_is_back() {
    let mut etcd = Etcd::start();
    let server = Replica::start(&etcd, "/registry");
    let (status, before) = server.call("POST", FOOS, Some(&foo("before", "1"))).await;
    assert_eq!(status, 201, "{before}");
    let mut events = server.watch(&rv(&before)).await;

    etcd.stop();
    let (status, refused) = server.call("POST", FOOS, Some(&foo("during", "1"))).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["kind"], "Status");
    assert_eq!(refused["reason"], "ServiceUnavailable", "{refused}");
    let (status, read) = server.call("GET", &format!("{FOOS}/before"), None).await;
    assert_eq!(status, 503, "{read}");

    etcd.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let (status, answer) = server.call("POST", FOOS, Some(&foo("after", "1"))).await;
        match status {
            201 => break answer,
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => panic!("the server did not recover: {status} {answer}\n{}", server.log_text()),
        }
    };
    let (status, read) = server.call("GET", &format!("{FOOS}/before"), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(rv(&read), rv(&before));
    // The watch opened before the outage goes on, with nothing lost: the write after it is the
    // next event.
    let event = next_event(&mut events).await;
    assert_eq!(event["type"], "ADDED", "{event}");
    assert_eq!(event["object"]["metadata"]["name"], "after");
    assert_eq!(rv(&event["object"]), rv(&after));
}
