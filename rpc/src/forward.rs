//! Scale-out for JSON-RPC: a call about accounts another node owns is answered by that node.
//!
//! - Writes (`sendTransaction`, `simulateTransaction`, `requestAirdrop`) go to the owner of
//!   the accounts the transaction must own ([`dataplane::parse::TxDescriptor::owned_keys`]);
//!   the owner runs the preflight and answers, so its errors reach the client unchanged. A
//!   transaction whose accounts are split between nodes is refused with the nodes named.
//! - Account reads (`getBalance`, `getAccountInfo`, `getMultipleAccounts` split by owner)
//!   go to the owner; signature reads (`getSignatureStatuses`, `getTransaction`) are answered
//!   here and, for what this node does not know, by the other live nodes.
//!
//! A forwarded call goes to the peer's [`FORWARDED_PATH`]: a node answers it from its own
//! state and never forwards it again, so a call makes at most one hop even while two nodes
//! disagree about a map that is changing.

use super::methods::Rpc;
use super::params::Call;
use super::server::{RpcError, RpcResult};
use ::cluster::{ClusterView, NodeRecord, Route};
use base64::Engine;
use serde_json::{Value, json};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// The path peers post forwarded calls to.
pub use ::cluster::peer::FORWARDED_PATH;
/// The node's refusal code when the cluster cannot serve a call (Agave's "node unhealthy").
const UNAVAILABLE: i64 = crate::framing::NODE_UNHEALTHY;

thread_local! {
    /// Set while an RPC tile answers a call a peer forwarded (the tile answers one call at a
    /// time on its thread).
    static FROM_PEER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calls answered while it lives as forwarded by a peer.
pub struct FromPeer(bool);

impl FromPeer {
    pub fn enter(yes: bool) -> Self {
        Self(FROM_PEER.with(|f| f.replace(yes)))
    }
}

impl Drop for FromPeer {
    fn drop(&mut self) {
        FROM_PEER.with(|f| f.set(self.0));
    }
}

fn from_peer() -> bool {
    FROM_PEER.with(Cell::get)
}

/// One JSON-RPC call to a peer's [`FORWARDED_PATH`], over HTTP/1.1 (one connection per
/// call); its answer bounded by `max_bytes`.
pub fn post(
    view: &ClusterView,
    addr: SocketAddr,
    method: &str,
    params: &Value,
    max_bytes: usize,
) -> Result<Value, ::cluster::peer::PeerError> {
    let path = view
        .peer_path()
        .unwrap_or_else(|| FORWARDED_PATH.to_string());
    ::cluster::peer::call(addr, &path, method, params, max_bytes)
}

/// In a peer's refusal of a call about accounts that left it: the asking node retries once
/// its map caught up.
const MOVED: &str = "moved while this call was forwarded";
/// How long a node waits for its map to catch up with a move a peer reported.
const MAP_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(1);

/// Where a call about particular accounts goes (`None`: a call answered here).
fn route_of(view: &ClusterView, call: &Call) -> Option<Route> {
    Some(match call {
        Call::SendTransaction { tx, .. } | Call::SimulateTransaction { tx, .. } => {
            let desc = tx.desc.as_ref().expect("parsed");
            view.route(desc.owned_keys(tx.bytes()))
        }
        Call::RequestAirdrop { to, .. } => view.route([&to.to_bytes()]),
        Call::GetBalance { key, .. } | Call::GetAccountInfo { key, .. } => {
            view.read_route([&key.to_bytes()])
        }
        // The mint's supply is in the mint. Its largest holders are those the mint's
        // owner holds (cluster/README.md, "Not built yet"); token accounts by mint are
        // listed from every owner (`accounts_everywhere`).
        Call::GetTokenSupply { mint, .. } | Call::GetTokenLargestAccounts { mint, .. } => {
            view.read_route([&mint.to_bytes()])
        }
        _ => return None,
    })
}

fn map_epoch(view: &ClusterView) -> Option<u64> {
    view.snapshot().map.as_ref().map(|m| m.epoch)
}

/// Whether this node's map moves past `epoch` within [`MAP_CATCH_UP`].
fn map_changes(view: &ClusterView, epoch: Option<u64>) -> bool {
    let deadline = std::time::Instant::now() + MAP_CATCH_UP;
    while std::time::Instant::now() < deadline {
        if map_epoch(view) != epoch {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}

fn unavailable(why: String) -> RpcError {
    RpcError::new(UNAVAILABLE, why)
}

impl Rpc {
    /// `clusterExportPage [partition, drained slot, page]`: a page of the partition this node
    /// is moving out, for its destination. Peers only (on [`FORWARDED_PATH`]); to anyone else
    /// the method does not exist.
    pub(crate) fn export_page(&self, p: &[Value]) -> RpcResult {
        let (Some(view), true) = (self.cluster.as_deref(), from_peer()) else {
            return Err(RpcError::new(-32601, "Method not found"));
        };
        let arg = |i: usize| p.get(i).and_then(Value::as_u64);
        let (Some(partition), Some(drained), Some(page)) = (arg(0), arg(1), arg(2)) else {
            return Err(RpcError::invalid_params(
                "expected [partition, drained slot, page]",
            ));
        };
        let page = u16::try_from(partition)
            .ok()
            .zip(i64::try_from(drained).ok())
            .and_then(|(part, rev)| view.export_page(part, rev, page as usize));
        match page {
            Some(bytes) => Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            )),
            None => Err(unavailable(format!(
                "no export of partition {partition} drained at slot {drained}, page {}",
                arg(2).unwrap_or(0)
            ))),
        }
    }

    /// Whether a preflight of the transaction can run on this node: every account it writes is
    /// this node's (or there is no cluster). Not so for a transaction over several nodes'
    /// accounts (no node holds them all until they gather), nor for one a peer forwarded from
    /// a stale map after its partition moved away from here (this node's copy is gone: a
    /// preflight would fail with AccountNotFound although the owner would run it).
    pub(crate) fn preflight_here(&self, packet: &dataplane::Packet) -> bool {
        let (Some(view), Some(desc)) = (self.cluster.as_deref(), packet.desc.as_ref()) else {
            return true;
        };
        matches!(
            view.read_route(desc.owned_keys(packet.bytes())),
            Route::Local
        )
    }

    /// The answer of another node, when `call` is about accounts this node does not own;
    /// `None`: answer here.
    pub(crate) fn forwarded(&self, call: &Call, method: &str, p: &[Value]) -> Option<RpcResult> {
        let view = self.cluster.as_deref()?;
        if from_peer() {
            return self.moved_while_forwarded(view, call);
        }
        let route = match call {
            Call::GetMultipleAccounts { keys, .. } => return self.multiple_accounts(view, keys, p),
            Call::GetSignatureStatuses { signatures } => {
                return self.signature_statuses_everywhere(view, signatures, p);
            }
            Call::GetTransaction { signature, .. } => {
                return self.transaction_anywhere(view, signature, method, p);
            }
            _ => route_of(view, call)?,
        };
        self.follow(view, call, method, p, route, true)
    }

    /// Answers `call` as `route` says; `retry`: once more if the owner the route names had
    /// just handed the accounts on (this node's map was a moment old).
    fn follow(
        &self,
        view: &ClusterView,
        call: &Call,
        method: &str,
        p: &[Value],
        route: Route,
        retry: bool,
    ) -> Option<RpcResult> {
        let counters = &view.counters;
        match route {
            Route::Local => None,
            Route::Forward(node) => {
                counters.forwarded_rpc.fetch_add(1, Ordering::Relaxed);
                let epoch = map_epoch(view);
                let r = self.post_to(view, &node, method, &Value::Array(p.to_vec()));
                let moved =
                    matches!(&r, Err(e) if e.code == UNAVAILABLE && e.message.contains(MOVED));
                if retry && moved && map_changes(view, epoch) {
                    // Local now: answered here (`None`).
                    return self.follow(view, call, method, p, route_of(view, call)?, false);
                }
                Some(r)
            }
            // Held here while its partitions gather on one node (`cluster::colocate`).
            Route::Split(_)
                if view.colocate.enabled() && matches!(call, Call::SendTransaction { .. }) =>
            {
                None
            }
            Route::Split(nodes) => {
                counters.cross_partition.fetch_add(1, Ordering::Relaxed);
                Some(Err(RpcError::invalid_params(format!(
                    "the transaction's accounts are owned by different cluster nodes ({}): \
                     this cluster executes a transaction only where all its accounts live",
                    nodes.join(", ")
                ))))
            }
            Route::OwnerDown(node) => {
                counters.owner_down.fetch_add(1, Ordering::Relaxed);
                Some(Err(unavailable(format!(
                    "the cluster node that owns these accounts ({node}) is down"
                ))))
            }
            Route::NotServing => {
                counters.not_serving.fetch_add(1, Ordering::Relaxed);
                Some(Err(unavailable(
                    "this node is not serving: its cluster lease is not confirmed".into(),
                )))
            }
        }
    }

    /// A peer forwards only once (no loops while two maps disagree). A simulation it forwarded
    /// from a map a moment old, of accounts that left this node, is refused (retry) rather
    /// than run against a wiped copy; a send goes on through the ingress, without preflight
    /// (`preflight_here`).
    fn moved_while_forwarded(&self, view: &ClusterView, call: &Call) -> Option<RpcResult> {
        let route = match call {
            Call::SimulateTransaction { tx, .. } => {
                let desc = tx.desc.as_ref().expect("parsed");
                view.read_route(desc.owned_keys(tx.bytes()))
            }
            // A read of an account this node no longer owns would answer from a wiped copy
            // (a balance of 0); the asking peer retries once its map caught up.
            Call::GetBalance { key, .. } | Call::GetAccountInfo { key, .. } => {
                view.read_route([&key.to_bytes()])
            }
            Call::GetTokenSupply { mint, .. } | Call::GetTokenLargestAccounts { mint, .. } => {
                view.read_route([&mint.to_bytes()])
            }
            _ => return None,
        };
        match route {
            Route::Forward(node) => Some(Err(unavailable(format!(
                "the accounts {MOVED} (now on cluster node {}): retry",
                node.id
            )))),
            Route::Split(nodes) => Some(Err(unavailable(format!(
                "some of the accounts {MOVED} (now on {}): retry",
                nodes.join(", ")
            )))),
            _ => None,
        }
    }

    /// Each `(node, params)` call of `method` at once, one thread each: a fan-out waits for
    /// its slowest peer (each within the peer timeout), not for the sum of them. The answers
    /// come in the order of `calls`.
    fn post_each(
        &self,
        view: &ClusterView,
        method: &str,
        calls: &[(&NodeRecord, Value)],
    ) -> Vec<RpcResult> {
        view.counters
            .forwarded_rpc
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        if let [(node, params)] = calls {
            return vec![self.post_to(view, node, method, params)];
        }
        std::thread::scope(|s| {
            let running: Vec<_> = calls
                .iter()
                .map(|(node, params)| s.spawn(move || self.post_to(view, node, method, params)))
                .collect();
            running
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(RpcError::internal("a peer call panicked")))
                })
                .collect()
        })
    }

    fn post_to(
        &self,
        view: &ClusterView,
        node: &NodeRecord,
        method: &str,
        params: &Value,
    ) -> RpcResult {
        post(view, node.rpc, method, params, self.max_response_bytes).map_err(|e| {
            if e.unreachable {
                view.counters.forward_errors.fetch_add(1, Ordering::Relaxed);
            }
            RpcError {
                code: e.code,
                message: e.message,
                data: e.data,
            }
        })
    }

    /// A list over the accounts of every partition (`getProgramAccounts`,
    /// `getTokenAccountsByOwner`/`ByDelegate` by program): this node's share (the accounts it
    /// owns, and the accounts every node keeps, once) followed by each live peer's share,
    /// asked on the peers' path with the same parameters, sorted by key. A peer that does not answer, or a
    /// partition whose owner is down, fails the call (-32005) rather than leave accounts out;
    /// the whole answer stays within `rpc.max_response_bytes`.
    pub(crate) fn accounts_everywhere(
        &self,
        view: &ClusterView,
        method: &str,
        p: &[Value],
        local: RpcResult,
    ) -> RpcResult {
        let mut answer = local?;
        let me = view.me();
        let peer = from_peer();
        let owns = |key: &[u8; 32]| {
            if view.is_global(key) {
                !peer
            } else {
                view.is_local(key) || view.read_route([key]) == Route::Local
            }
        };
        let Some(items) = listed_accounts(&mut answer) else {
            return Ok(answer);
        };
        items.retain(|item| {
            item.get("pubkey")
                .and_then(Value::as_str)
                .and_then(|k| bs58::decode(k).into_vec().ok())
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .is_some_and(|k| owns(&k))
        });
        if peer {
            return Ok(answer);
        }
        let snap = view.snapshot();
        if let Some(map) = &snap.map
            && let Some(down) = map.owners.iter().find(|o| !snap.nodes.contains_key(*o))
        {
            return Err(unavailable(format!(
                "the cluster node {down} that owns some of these accounts is down"
            )));
        }
        let mut bytes = crate::methods::json_len(&answer);
        // Only nodes that own partitions have a share (an emptied node may be stopping).
        let owners: std::collections::BTreeSet<&str> = snap
            .map
            .as_ref()
            .map(|m| m.owners.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let calls: Vec<(&NodeRecord, Value)> = snap
            .nodes
            .values()
            .filter(|n| n.id != me && owners.contains(n.id.as_str()))
            .map(|n| (n, Value::Array(p.to_vec())))
            .collect();
        let answers = self.post_each(view, method, &calls);
        for ((node, _), theirs) in calls.iter().zip(answers) {
            let mut theirs = theirs?;
            bytes += crate::methods::json_len(&theirs);
            if bytes > self.max_response_bytes {
                return Err(crate::methods::response_too_large(self.max_response_bytes));
            }
            let (Some(mine), Some(more)) =
                (listed_accounts(&mut answer), listed_accounts(&mut theirs))
            else {
                return Err(unavailable(format!(
                    "cluster node {} answered {method} with no list",
                    node.id
                )));
            };
            mine.append(more);
        }
        // In one order whatever the owners (Agave's sortResults order: by key), each account
        // once (around a move, two maps can both claim a partition for a moment).
        if let Some(items) = listed_accounts(&mut answer) {
            let key = |item: &Value| {
                item.get("pubkey")
                    .and_then(Value::as_str)
                    .and_then(|k| bs58::decode(k).into_vec().ok())
            };
            items.sort_by_cached_key(key);
            items.dedup_by(|a, b| key(a) == key(b));
        }
        Ok(answer)
    }

    /// getMultipleAccounts with accounts on several nodes: each owner answers for its own,
    /// in the order asked.
    fn multiple_accounts(
        &self,
        view: &ClusterView,
        keys: &[solana_pubkey::Pubkey],
        p: &[Value],
    ) -> Option<RpcResult> {
        let mut remote: Vec<(NodeRecord, Vec<usize>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match view.read_route([&k.to_bytes()]) {
                Route::Local => {}
                Route::Forward(n) => match remote.iter_mut().find(|(r, _)| r.id == n.id) {
                    Some((_, idx)) => idx.push(i),
                    None => remote.push((*n, vec![i])),
                },
                Route::OwnerDown(n) => {
                    return Some(Err(unavailable(format!(
                        "the cluster node that owns {k} ({n}) is down"
                    ))));
                }
                Route::Split(_) | Route::NotServing => {}
            }
        }
        if remote.is_empty() {
            return None;
        }
        let _here = FromPeer::enter(true);
        let mut answer = match self.call("getMultipleAccounts", p) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let config = p.get(1).cloned().unwrap_or(Value::Null);
        let calls: Vec<(&NodeRecord, Value)> = remote
            .iter()
            .map(|(node, idx)| {
                let subset: Vec<String> = idx.iter().map(|&i| keys[i].to_string()).collect();
                (node, with_config(json!(subset), &config))
            })
            .collect();
        let answers = self.post_each(view, "getMultipleAccounts", &calls);
        for ((_, idx), theirs) in remote.iter().zip(answers) {
            let theirs = match theirs {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            let Some(values) = theirs.get("value").and_then(Value::as_array) else {
                return Some(Err(RpcError::internal(
                    "a cluster peer answered without a value",
                )));
            };
            for (j, &i) in idx.iter().enumerate() {
                answer["value"][i] = values.get(j).cloned().unwrap_or(Value::Null);
            }
        }
        Some(Ok(answer))
    }

    /// getSignatureStatuses: what this node does not know, the other live nodes are asked.
    fn signature_statuses_everywhere(
        &self,
        view: &ClusterView,
        signatures: &[solana_signature::Signature],
        p: &[Value],
    ) -> Option<RpcResult> {
        let peers = view.peers();
        if peers.is_empty() {
            return None;
        }
        let _here = FromPeer::enter(true);
        let mut answer = match self.call("getSignatureStatuses", p) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let config = p.get(1).cloned().unwrap_or(Value::Null);
        // Unknown here, or known only as another node's transaction whose record is not yet
        // durable here (a replica being written: the node that holds it durably says more).
        let processed_elsewhere = |i: usize| {
            self.chain.status(&signatures[i]).is_none()
                && self
                    .chain
                    .foreign_status(&signatures[i])
                    .is_some_and(|(_, c)| c == runtime::chain::Commitment::Processed)
        };
        let missing: Vec<usize> = (0..signatures.len())
            .filter(|&i| answer["value"][i].is_null() || processed_elsewhere(i))
            .collect();
        if missing.is_empty() {
            return Some(Ok(answer));
        }
        let subset: Vec<String> = missing.iter().map(|&i| signatures[i].to_string()).collect();
        let params = with_config(json!(subset), &config);
        let calls: Vec<(&NodeRecord, Value)> = peers.iter().map(|n| (n, params.clone())).collect();
        // A peer that cannot answer leaves its statuses unknown (null), as a lagging node's are.
        for theirs in self.post_each(view, "getSignatureStatuses", &calls) {
            let Some(values) = theirs.ok().and_then(|t| t.get("value").cloned()) else {
                continue;
            };
            for (j, &i) in missing.iter().enumerate() {
                if let Some(v) = values.get(j).filter(|v| v.is_object())
                    && durability(v) > durability(&answer["value"][i])
                {
                    answer["value"][i] = v.clone();
                }
            }
        }
        Some(Ok(answer))
    }

    /// getTransaction: here, else from the first live node that has it.
    fn transaction_anywhere(
        &self,
        view: &ClusterView,
        _signature: &solana_signature::Signature,
        method: &str,
        p: &[Value],
    ) -> Option<RpcResult> {
        let peers = view.peers();
        if peers.is_empty() {
            return None;
        }
        let _here = FromPeer::enter(true);
        match self.call(method, p) {
            Ok(Value::Null) => {}
            other => return Some(other),
        }
        let calls: Vec<(&NodeRecord, Value)> = peers
            .iter()
            .map(|n| (n, Value::Array(p.to_vec())))
            .collect();
        let found = self
            .post_each(view, method, &calls)
            .into_iter()
            .find_map(|r| r.ok().filter(|v| !v.is_null()));
        Some(Ok(found.unwrap_or(Value::Null)))
    }
}

/// How far a status got: unknown (null) < processed < confirmed or finalized.
fn durability(status: &Value) -> u8 {
    match status.get("confirmationStatus").and_then(Value::as_str) {
        None => 0,
        Some("processed") => 1,
        Some(_) => 2,
    }
}

/// `[first, config]`, or `[first]` without a config.
fn with_config(first: Value, config: &Value) -> Value {
    if config.is_null() {
        json!([first])
    } else {
        json!([first, config])
    }
}

/// The list of keyed accounts in a list answer: the answer itself, or its `value` (with
/// `withContext`, and the token methods).
fn listed_accounts(answer: &mut Value) -> Option<&mut Vec<Value>> {
    if answer.is_array() {
        return answer.as_array_mut();
    }
    answer.get_mut("value")?.as_array_mut()
}
