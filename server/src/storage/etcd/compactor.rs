//! Periodic compaction of etcd's history, as kube-apiserver does it (`storage/etcd3/compact.go`).
//!
//! Every interval each server proposes, through a transaction on the shared key
//! `compact_rev_key`, to compact up to the revision it saw one interval earlier. The
//! transaction compares the key's version (how many compactions were agreed so far), so of
//! several servers sharing one etcd only one wins each round and compacts; the others learn the
//! new count and try again next round. So about one interval of history is kept, which is what
//! watches can resume from and `continue` tokens can page through.
//!
//! The key has no prefix, like kube-apiserver's: compaction is global to the etcd cluster, so
//! every server sharing it (whatever its `--etcd-prefix`) takes part in the same rounds.

use super::client::{describe_status, Client};
use super::proto::{CompactionRequest, Compare, CompareResult, PutRequest, RangeRequest, RequestOp, TxnRequest};
use std::time::Duration;

/// The key that counts compactions (kube-apiserver's).
pub(super) const COMPACT_REV_KEY: &[u8] = b"compact_rev_key";

/// Runs compaction rounds forever, one per `interval`.
pub(super) async fn run(client: Client, interval: Duration) {
    // The round count this server last saw, and the revision it saw then.
    let mut rounds = 0;
    let mut revision = 0;
    loop {
        tokio::time::sleep(interval).await;
        match round(&client, rounds, revision).await {
            Ok((r, rev)) => (rounds, revision) = (r, rev),
            Err(why) => tracing::warn!("etcd compaction: {why}"),
        }
    }
}

/// One round: if no one else compacted since the round count `rounds`, compact to `revision`.
/// Returns the new round count and the current revision, the target of the next round.
pub(super) async fn round(client: &Client, rounds: i64, revision: i64) -> Result<(i64, i64), String> {
    let key = COMPACT_REV_KEY.to_vec();
    let request = TxnRequest {
        compare: vec![Compare::version(&key, CompareResult::Equal, rounds)],
        success: vec![RequestOp::put(PutRequest { key: key.clone(), value: revision.to_string().into(), prev_kv: false })],
        failure: vec![RequestOp::range(RangeRequest { key, ..Default::default() })],
    };
    let response = client.txn(request).await.map_err(|s| describe_status(&s))?;
    let current = response.revision();
    if !response.succeeded {
        // Another server compacted this round: take its count and try next round.
        let seen = response.range().and_then(|r| r.kvs.first()).map_or(0, |kv| kv.version);
        return Ok((seen, current));
    }
    if revision > 0 {
        match client.compact(CompactionRequest { revision, physical: false }).await {
            Ok(_) => tracing::info!(revision, "etcd history compacted"),
            // Someone compacted further already.
            Err(status) if status.message().contains("required revision has been compacted") => {}
            Err(status) => return Err(describe_status(&status)),
        }
    }
    Ok((rounds + 1, current))
}
