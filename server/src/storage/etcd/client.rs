//! A thin etcd v3 gRPC client: unary KV calls bounded by a deadline, and watch streams, over
//! one lazily (re)connecting `tonic` channel.

use super::proto::{self, path};
use futures::channel::mpsc;
use http::uri::PathAndQuery;
use std::time::Duration;
use tonic::client::Grpc;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};
use tonic_prost::ProstCodec;

/// Connection settings.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// How long one call may take before it fails as unavailable.
    pub request_timeout: Duration,
    /// How long connecting to a server may take.
    pub dial_timeout: Duration,
}

/// A cheap-to-clone handle on the connection to the etcd cluster.
#[derive(Clone)]
pub(super) struct Client {
    channel: Channel,
    request_timeout: Duration,
}

impl Client {
    /// A client for `servers` (`http://host:port` each). Nothing is dialled until the first
    /// call, and a lost connection is dialled again on the next one, so the client outlives
    /// etcd restarts. Must be called within a Tokio runtime when there is more than one server.
    pub fn new(servers: &[String], settings: &Settings) -> Result<Client, String> {
        if servers.is_empty() {
            return Err("no etcd servers given (--etcd-servers)".to_string());
        }
        let mut endpoints = Vec::new();
        for server in servers {
            let uri: http::Uri = server.parse().map_err(|e| format!("invalid etcd server URL {server:?}: {e}"))?;
            match uri.scheme_str() {
                Some("http") => {}
                Some("https") => {
                    return Err(format!("etcd server {server:?}: TLS to etcd is not supported yet; use an http:// client URL"))
                }
                _ => return Err(format!("etcd server {server:?}: expected a URL such as http://127.0.0.1:2379")),
            }
            if uri.host().is_none() {
                return Err(format!("etcd server {server:?}: the URL has no host"));
            }
            let endpoint = Endpoint::from(uri)
                .connect_timeout(settings.dial_timeout)
                .tcp_nodelay(true)
                // Pings find a dead connection (etcd killed, network gone) even while a watch
                // only waits, so the watch reconnects instead of hanging.
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true);
            endpoints.push(endpoint);
        }
        let channel = if endpoints.len() == 1 { endpoints.remove(0).connect_lazy() } else { Channel::balance_list(endpoints.into_iter()) };
        Ok(Client { channel, request_timeout: settings.request_timeout })
    }

    fn grpc(&self) -> Grpc<Channel> {
        // kube-apiserver lifts gRPC's 4 MiB receive limit too: a page of a large list, or a watch
        // response batching many events, can be bigger than that.
        Grpc::new(self.channel.clone()).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX)
    }

    async fn unary<Req, Resp>(&self, path: &'static str, message: Req) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let call = async {
            let mut grpc = self.grpc();
            grpc.ready().await.map_err(|e| Status::unavailable(describe_error(&e)))?;
            let mut request = Request::new(message);
            // Tells etcd too, so that it stops working on an answer nobody waits for.
            request.set_timeout(self.request_timeout);
            grpc.unary(request, PathAndQuery::from_static(path), ProstCodec::<Req, Resp>::default()).await.map(|r| r.into_inner())
        };
        match tokio::time::timeout(self.request_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Status::deadline_exceeded(format!("no answer from etcd within {:?}", self.request_timeout))),
        }
    }

    pub async fn range(&self, request: proto::RangeRequest) -> Result<proto::RangeResponse, Status> {
        self.unary(path::RANGE, request).await
    }

    pub async fn txn(&self, request: proto::TxnRequest) -> Result<proto::TxnResponse, Status> {
        self.unary(path::TXN, request).await
    }

    pub async fn compact(&self, request: proto::CompactionRequest) -> Result<proto::CompactionResponse, Status> {
        self.unary(path::COMPACT, request).await
    }

    pub async fn status(&self) -> Result<proto::StatusResponse, Status> {
        self.unary(path::STATUS, proto::StatusRequest {}).await
    }

    /// Opens a watch stream: etcd reads `requests` (the stream ends when the sender is dropped)
    /// and answers on the returned stream. Only opening it is bounded by the request timeout.
    pub async fn watch(&self, requests: mpsc::UnboundedReceiver<proto::WatchRequest>) -> Result<Streaming<proto::WatchResponse>, Status> {
        let open = async {
            let mut grpc = self.grpc();
            grpc.ready().await.map_err(|e| Status::unavailable(describe_error(&e)))?;
            grpc.streaming(
                Request::new(requests),
                PathAndQuery::from_static(path::WATCH),
                ProstCodec::<proto::WatchRequest, proto::WatchResponse>::default(),
            )
            .await
            .map(|r| r.into_inner())
        };
        match tokio::time::timeout(self.request_timeout, open).await {
            Ok(result) => result,
            Err(_) => Err(Status::deadline_exceeded(format!("etcd did not open a watch within {:?}", self.request_timeout))),
        }
    }
}

/// An error with its chain of causes, which is where transport errors say what went wrong
/// ("Connection refused").
pub(super) fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A failed call in words: the status message and its cause.
pub(super) fn describe_status(status: &Status) -> String {
    let mut text = if status.message().is_empty() { format!("{:?}", status.code()) } else { status.message().to_string() };
    if let Some(source) = std::error::Error::source(status) {
        let cause = describe_error(source);
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
