//! The thin router (`gigacompute route`): a cluster entry point with no state. It holds no
//! account, runs no bank and checks no signature; it reads the cluster (map and live nodes)
//! from etcd every `poll_ms` and passes each transaction, datagram or JSON-RPC call, to the
//! node that executes it, in one hop:
//!
//! - a transaction (UDP datagram, `sendTransaction`, `simulateTransaction`) to the owner of
//!   the lowest-numbered partition among the accounts it must own: its owner when one node
//!   owns them all, its gathering node when they are split (`cluster::colocate`, where it is
//!   held until they gather), so the router needs no rule of its own;
//! - a call about one account (`getBalance`, `getAccountInfo`, `requestAirdrop`) to that
//!   account's owner;
//! - any other call to a live node, round-robin; a node answers cluster-wide calls
//!   (`getSignatureStatuses`, `getMultipleAccounts`, ...) by asking its peers itself.
//!
//! Calls go to a node's public RPC port, not the peers' path: a node whose map is newer than
//! the router's forwards once more rather than answering from a copy it no longer owns.
//! What the router cannot place (no map yet, the owner down, a datagram that does not parse)
//! is refused (RPC, -32005) or dropped and counted (UDP). WebSocket connections to `[pubsub]
//! bind` are passed whole to a live node's PubSub endpoint ([`crate::router_pubsub`]).
//! `GET /health` answers "ok" while the router knows a map and a live node;
//! `GET /metrics`, its counters (`gigacompute_router_*`).

use crate::framing::{self, RpcError, RpcResult, response};
use anyhow::{Context, Result};
use appliance::http::{Handler, HttpCounters, HttpServer, Method, Request, Response};
use base64::Engine;
use cluster::map::partition_of;
use cluster::{ClusterView, NodeRecord, Snapshot};
use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// JSON-RPC's "node is unhealthy" code, which clients retry.
const UNAVAILABLE: i64 = crate::framing::NODE_UNHEALTHY;
/// Largest datagram taken (Solana's packet size).
const MAX_DATAGRAM: usize = 1232;

#[derive(Default)]
pub struct RouterCounters {
    pub datagrams: AtomicU64,
    pub datagrams_forwarded: AtomicU64,
    /// Datagrams that do not parse as a transaction (or are larger than a packet).
    pub datagrams_unparsable: AtomicU64,
    /// Datagrams and calls with no live node to take them (no map, owner down).
    pub unplaced: AtomicU64,
    pub calls: AtomicU64,
    /// Calls a node did not answer (unreachable, timed out): refused with -32005.
    pub call_failures: AtomicU64,
    /// etcd reads that failed (the router keeps its last view meanwhile).
    pub etcd_errors: AtomicU64,
    /// WebSocket connections passed to a node's PubSub endpoint.
    pub pubsub_connections: AtomicU64,
    /// WebSocket connections closed on accept: over `[pubsub] max_connections` (per IP or in all).
    pub pubsub_refused: AtomicU64,
    /// WebSocket connections closed: no live node took them (none known, connect failed).
    pub pubsub_unplaced: AtomicU64,
}

/// Where the router sends things: the cluster as last read.
pub struct Router {
    view: Arc<ClusterView>,
    /// When etcd last answered (ms since `started`); the view is stale beyond `stale_after`.
    read_ok_ms: AtomicU64,
    started: std::time::Instant,
    stale_after: Duration,
    next: AtomicUsize,
    pub counters: RouterCounters,
    max_response_bytes: usize,
}

impl Router {
    pub fn new(max_response_bytes: usize, stale_after: Duration) -> Self {
        let global = runtime::svm::global_accounts()
            .into_iter()
            .map(|k| k.to_bytes());
        Self {
            // A node id no map can name ("" fails `check_node_id`): nothing is local here.
            view: Arc::new(ClusterView::new(String::new(), global, [])),
            read_ok_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
            stale_after,
            next: AtomicUsize::new(0),
            counters: RouterCounters::default(),
            max_response_bytes,
        }
    }

    pub fn publish(&self, snap: Snapshot) {
        self.view.publish(snap);
        self.read_ok_ms
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
    }

    /// Whether the view is older than `stale_after` (etcd has not answered since): nodes'
    /// leases may have expired and partitions moved meanwhile.
    fn stale(&self) -> bool {
        let age = (self.started.elapsed().as_millis() as u64)
            .saturating_sub(self.read_ok_ms.load(Relaxed));
        age > self.stale_after.as_millis() as u64
    }

    /// The node that takes a transaction or call naming `keys` (the accounts it must own):
    /// the owner of the lowest-numbered partition among them; any live node when all are
    /// kept by every node (global accounts) or there are none.
    pub fn node_for<'a>(&self, keys: impl IntoIterator<Item = &'a [u8; 32]>) -> Option<NodeRecord> {
        if self.stale() {
            return None;
        }
        let s = self.view.snapshot();
        let map = s.map.as_ref()?;
        let partitions = u16::try_from(map.owners.len()).ok()?;
        let lowest = keys
            .into_iter()
            .filter(|k| !self.view.is_global(k))
            .map(|k| partition_of(k, partitions))
            .min();
        match lowest {
            Some(p) => s.nodes.get(map.owner(p)?).cloned(),
            None => self.any_node(&s),
        }
    }

    /// A live node's PubSub endpoint, round-robin.
    pub fn pubsub_target(&self) -> Option<SocketAddr> {
        if self.stale() {
            return None;
        }
        let s = self.view.snapshot();
        let with: Vec<SocketAddr> = s.nodes.values().filter_map(|n| n.pubsub).collect();
        if with.is_empty() {
            return None;
        }
        Some(with[self.next.fetch_add(1, Relaxed) % with.len()])
    }

    fn any_node(&self, s: &Snapshot) -> Option<NodeRecord> {
        let n = s.nodes.len();
        if n == 0 {
            return None;
        }
        s.nodes
            .values()
            .nth(self.next.fetch_add(1, Relaxed) % n)
            .cloned()
    }

    /// Where a datagram goes; `None`: dropped (counted).
    pub fn datagram_target(&self, tx: &[u8]) -> Option<SocketAddr> {
        let Ok(desc) = dataplane::parse::parse_transaction(tx) else {
            self.counters.datagrams_unparsable.fetch_add(1, Relaxed);
            return None;
        };
        match self.node_for(desc.owned_keys(tx)) {
            Some(n) => Some(n.tpu),
            None => {
                self.counters.unplaced.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// One JSON-RPC call, answered by the node that should answer it (its answer at most
    /// `max_bytes`).
    pub fn call(&self, method: &str, params: &[Value], max_bytes: usize) -> RpcResult {
        self.counters.calls.fetch_add(1, Relaxed);
        let node = match method {
            "sendTransaction" | "simulateTransaction" => {
                let tx = transaction_param(params)?;
                let desc = dataplane::parse::parse_transaction(&tx)
                    .map_err(|e| RpcError::invalid_params(format!("invalid transaction: {e}")))?;
                self.node_for(desc.owned_keys(&tx))
            }
            "getBalance" | "getAccountInfo" | "requestAirdrop" => {
                let key = pubkey_param(params)?;
                self.node_for([&key])
            }
            _ if self.stale() => None,
            _ => self.any_node(&self.view.snapshot()),
        };
        let Some(node) = node else {
            self.counters.unplaced.fetch_add(1, Relaxed);
            return Err(RpcError::new(
                UNAVAILABLE,
                "the router knows no live cluster node for this call yet",
            ));
        };
        let params = Value::Array(params.to_vec());
        cluster::peer::call(node.rpc, "/", method, &params, max_bytes).map_err(|e| {
            if e.unreachable {
                self.counters.call_failures.fetch_add(1, Relaxed);
                RpcError::new(
                    UNAVAILABLE,
                    format!("cluster node {}: {}", node.id, e.message),
                )
            } else {
                RpcError {
                    code: e.code,
                    message: e.message,
                    data: e.data,
                }
            }
        })
    }

    /// Whether the router can place anything: it knows a map and a live node.
    pub fn health(&self) -> Result<(), String> {
        let s = self.view.snapshot();
        if s.map.is_some() && self.stale() {
            return Err(format!(
                "etcd has not answered for over {} s: the cluster view is stale",
                self.stale_after.as_secs()
            ));
        }
        match (&s.map, s.nodes.len()) {
            (None, _) => Err("no cluster map read from etcd yet".into()),
            (_, 0) => Err("no live cluster node".into()),
            _ => Ok(()),
        }
    }

    fn metrics(&self) -> String {
        let c = &self.counters;
        let s = self.view.snapshot();
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP gigacompute_router_{name} {help}\n# TYPE gigacompute_router_{name} counter\ngigacompute_router_{name} {v}\n"
            ));
        };
        counter(
            "datagrams_total",
            "Datagrams received.",
            c.datagrams.load(Relaxed),
        );
        counter(
            "datagrams_forwarded_total",
            "Datagrams sent on to a node.",
            c.datagrams_forwarded.load(Relaxed),
        );
        counter(
            "datagrams_unparsable_total",
            "Datagrams dropped: not a transaction.",
            c.datagrams_unparsable.load(Relaxed),
        );
        counter(
            "unplaced_total",
            "Datagrams dropped and calls refused: no live node to take them.",
            c.unplaced.load(Relaxed),
        );
        counter("calls_total", "JSON-RPC calls.", c.calls.load(Relaxed));
        counter(
            "call_failures_total",
            "Calls a node did not answer (refused with -32005).",
            c.call_failures.load(Relaxed),
        );
        counter(
            "etcd_errors_total",
            "Failed reads of the cluster from etcd.",
            c.etcd_errors.load(Relaxed),
        );
        counter(
            "pubsub_connections_total",
            "WebSocket connections passed to a node's PubSub endpoint.",
            c.pubsub_connections.load(Relaxed),
        );
        counter(
            "pubsub_refused_total",
            "WebSocket connections closed on accept: over [pubsub] max_connections.",
            c.pubsub_refused.load(Relaxed),
        );
        counter(
            "pubsub_unplaced_total",
            "WebSocket connections closed: no live node took them.",
            c.pubsub_unplaced.load(Relaxed),
        );
        out.push_str(&format!(
            "# HELP gigacompute_router_nodes Live cluster nodes known.\n# TYPE gigacompute_router_nodes gauge\ngigacompute_router_nodes {}\n",
            s.nodes.len()
        ));
        out.push_str(&format!(
            "# HELP gigacompute_router_map_epoch The partition map's epoch known.\n# TYPE gigacompute_router_map_epoch gauge\ngigacompute_router_map_epoch {}\n",
            s.map.as_ref().map_or(0, |m| m.epoch)
        ));
        out
    }
}

/// The transaction of a `sendTransaction`/`simulateTransaction` call, decoded as the node
/// will decode it (base58 unless `encoding` says base64).
fn transaction_param(params: &[Value]) -> Result<Vec<u8>, RpcError> {
    let data = params
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("the first parameter must be a transaction"))?;
    let encoding = params
        .get(1)
        .and_then(|c| c.get("encoding"))
        .and_then(Value::as_str)
        .unwrap_or("base58");
    // The node's own limits, checked before decoding (base58 decodes in quadratic time).
    let limit = match encoding {
        "base58" => crate::params::MAX_BASE58_TX_CHARS,
        _ => crate::params::MAX_BASE64_TX_CHARS,
    };
    if data.len() > limit {
        return Err(RpcError::invalid_params(format!(
            "{encoding} encoded transaction too large: {} characters (max {limit})",
            data.len()
        )));
    }
    let bytes = match encoding {
        "base58" => bs58::decode(data).into_vec().ok(),
        "base64" => base64::engine::general_purpose::STANDARD.decode(data).ok(),
        other => {
            return Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}"
            )));
        }
    };
    bytes.ok_or_else(|| RpcError::invalid_params(format!("invalid {encoding} transaction")))
}

fn pubkey_param(params: &[Value]) -> Result<[u8; 32], RpcError> {
    params
        .first()
        .and_then(Value::as_str)
        .and_then(|s| bs58::decode(s).into_vec().ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| RpcError::invalid_params("the first parameter must be a base58 pubkey"))
}

struct RouterHandler {
    router: Arc<Router>,
}

impl Handler for RouterHandler {
    fn handle(&self, req: Request) -> Response {
        let r = &self.router;
        match (req.method, req.path.as_str()) {
            (Method::POST, _) => {
                // A call, or a batch's calls together, share one response budget (as a node
                // answers them): each is asked for at most what is left of it, and once it is
                // spent the rest are refused, so a batch holds at most one budget in memory.
                let max = r.max_response_bytes;
                let mut spent = 0usize;
                let body = framing::handle_body(&req.body, &mut |one| {
                    let left = max.saturating_sub(spent);
                    let v = if left == 0 {
                        let id = one.get("id").cloned().unwrap_or(Value::Null);
                        response(id, Err(crate::methods::response_too_large(max)))
                    } else {
                        framing::handle_one(one, &mut |method, params| r.call(method, params, left))
                    };
                    spent += crate::methods::json_len(&v);
                    v
                });
                Response::new(200, JSON, body.to_string())
            }
            (_, "/health") => match r.health() {
                Ok(()) => Response::new(200, "text/plain", "ok"),
                Err(e) => Response::new(503, "text/plain", format!("unhealthy: {e}")),
            },
            (_, "/metrics") => Response::new(200, "text/plain; version=0.0.4", r.metrics()),
            _ => {
                let body = response(Value::Null, Err(RpcError::invalid_request("use POST")));
                Response::new(405, JSON, body.to_string())
            }
        }
    }

    fn refusal(&self, status: u16, reason: &str) -> Response {
        let body = response(Value::Null, Err(RpcError::invalid_request(reason)));
        Response::new(status, JSON, body.to_string())
    }
}

const JSON: &str = "application/json";

/// A running router: its RPC endpoint, UDP port, PubSub port and etcd reader.
pub struct RouterHandle {
    pub router: Arc<Router>,
    pub rpc_addr: SocketAddr,
    pub udp_addr: SocketAddr,
    pub pubsub_addr: Option<SocketAddr>,
    http: HttpServer,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts a router on `config`'s `[net] bind` (UDP), `[rpc] bind` and `[pubsub] bind` (when
/// enabled), reading `[cluster]` `name` from its `etcd` endpoints.
pub fn start(config: &appliance::Config) -> Result<RouterHandle> {
    let c = &config.cluster;
    anyhow::ensure!(
        !c.etcd.is_empty(),
        "the router needs the cluster's etcd endpoints ([cluster] etcd)"
    );
    // A view older than a lease may name nodes that stopped serving since.
    let router = Arc::new(Router::new(
        config.rpc.max_response_bytes,
        Duration::from_secs(c.lease_ttl_s),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let udp = UdpSocket::bind(config.net.bind)
        .with_context(|| format!("binding the router's UDP port {}", config.net.bind))?;
    udp.set_read_timeout(Some(Duration::from_millis(100)))?;
    let udp_addr = udp.local_addr()?;
    let mut threads = Vec::new();
    {
        let (router, stop) = (router.clone(), stop.clone());
        let (endpoints, name) = (c.etcd.clone(), c.name.clone());
        let poll = Duration::from_millis(c.poll_ms);
        threads.push(
            std::thread::Builder::new()
                .name("gc-route-etcd".into())
                .spawn(move || read_cluster(&router, &endpoints, &name, poll, &stop))?,
        );
    }
    {
        let (router, stop) = (router.clone(), stop.clone());
        let out = UdpSocket::bind(SocketAddr::new(udp_addr.ip(), 0))?;
        threads.push(
            std::thread::Builder::new()
                .name("gc-route-udp".into())
                .spawn(move || forward_datagrams(&router, &udp, &out, &stop))?,
        );
    }
    let http = HttpServer::start(
        "route-rpc",
        config.rpc.bind,
        config.rpc.threads,
        config.rpc.limits(),
        Arc::new(RouterHandler {
            router: router.clone(),
        }),
        Arc::new(telemetry::TileStats::default()),
        Box::leak(Box::new(HttpCounters::default())),
    )?;
    let rpc_addr = http.addr;
    let pubsub_addr = if config.pubsub.enabled {
        let (addr, t) = crate::router_pubsub::start(router.clone(), &config.pubsub, stop.clone())?;
        threads.push(t);
        Some(addr)
    } else {
        None
    };
    tracing::info!(%rpc_addr, %udp_addr, ?pubsub_addr, cluster = %c.name, "router running");
    Ok(RouterHandle {
        router,
        rpc_addr,
        udp_addr,
        pubsub_addr,
        http,
        stop,
        threads,
    })
}

impl RouterHandle {
    pub fn shutdown(self) {
        self.stop.store(true, Relaxed);
        self.http.shutdown();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Reads the cluster every `poll` (one connection, made again after an error); the view
/// keeps the last good read while etcd does not answer.
fn read_cluster(
    router: &Router,
    endpoints: &[String],
    name: &str,
    poll: Duration,
    stop: &AtomicBool,
) {
    cluster::etcd::block_on(async {
        let mut client = None;
        while !stop.load(Relaxed) {
            if client.is_none() {
                client = cluster::etcd::connect(endpoints).await.ok();
            }
            let read = match client.as_mut() {
                Some(c) => cluster::etcd::read(c, name).await.ok(),
                None => None,
            };
            match read {
                Some((snap, _)) => router.publish(snap),
                None => {
                    router.counters.etcd_errors.fetch_add(1, Relaxed);
                    client = None;
                }
            }
            tokio::time::sleep(poll).await;
        }
    });
}

fn forward_datagrams(router: &Router, udp: &UdpSocket, out: &UdpSocket, stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    while !stop.load(Relaxed) {
        let Ok((n, _)) = udp.recv_from(&mut buf) else {
            continue;
        };
        router.counters.datagrams.fetch_add(1, Relaxed);
        if n > MAX_DATAGRAM {
            router.counters.datagrams_unparsable.fetch_add(1, Relaxed);
            continue;
        }
        if let Some(to) = router.datagram_target(&buf[..n])
            && out.send_to(&buf[..n], to).is_ok()
        {
            router.counters.datagrams_forwarded.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::PartitionMap;

    fn key_in(p: u16) -> [u8; 32] {
        (0u32..)
            .map(|i| {
                let mut k = [7u8; 32];
                k[..4].copy_from_slice(&i.to_le_bytes());
                k
            })
            .find(|k| partition_of(k, 4) == p)
            .unwrap()
    }

    fn record(id: &str, port: u16) -> NodeRecord {
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        NodeRecord {
            id: id.into(),
            rpc: at(port),
            tpu: at(port + 1),
            forward: at(port + 2),
            replica: None,
            pubsub: None,
            identity: String::new(),
            started_unix_ms: 0,
            version: String::new(),
        }
    }

    /// Partitions 0 and 2 on a, 1 and 3 on b; `live` registered.
    fn router(live: &[&str]) -> Router {
        let r = Router::new(1 << 20, Duration::from_secs(60));
        r.publish(Snapshot {
            map: Some(PartitionMap::initial(4, &["a".into(), "b".into()]).unwrap()),
            nodes: live
                .iter()
                .enumerate()
                .map(|(i, id)| (id.to_string(), record(id, 9000 + 10 * i as u16)))
                .collect(),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_transaction_goes_to_the_owner_of_its_lowest_partition() {
        let r = router(&["a", "b"]);
        let id = |keys: &[[u8; 32]]| r.node_for(keys.iter()).map(|n| n.id);
        assert_eq!(id(&[key_in(1), key_in(3)]).as_deref(), Some("b"));
        assert_eq!(id(&[key_in(2)]).as_deref(), Some("a"));
        // Split: its gathering node, the owner of the lowest-numbered partition.
        assert_eq!(id(&[key_in(3), key_in(2)]).as_deref(), Some("a"));
        assert_eq!(id(&[key_in(1), key_in(2)]).as_deref(), Some("b"));
        // Only global accounts (the System Program's): any live node.
        let system = solana_pubkey::Pubkey::default().to_bytes();
        assert!(id(&[system]).is_some());
    }

    #[test]
    fn nothing_is_placed_on_a_dead_owner_or_without_a_map() {
        let r = router(&["a"]);
        assert!(r.node_for([&key_in(1)]).is_none());
        assert!(
            r.call(
                "getBalance",
                &[Value::from("11111111111111111111111111111112")],
                1 << 20
            )
            .is_err()
        );
        let empty = Router::new(1 << 20, Duration::from_secs(60));
        assert!(empty.health().is_err());
        assert!(empty.node_for([&key_in(0)]).is_none());
        assert!(r.health().is_ok());
    }

    #[test]
    fn bad_parameters_are_refused_by_the_router() {
        let r = router(&["a", "b"]);
        for params in [
            vec![],
            vec![Value::from("not base58!")],
            vec![
                Value::from("AAAA"),
                serde_json::json!({"encoding": "base64"}),
            ],
            vec![Value::from("abc"), serde_json::json!({"encoding": "hex"})],
        ] {
            let e = r.call("sendTransaction", &params, 1 << 20).unwrap_err();
            assert_eq!(e.code, -32602, "{params:?}: {}", e.message);
        }
        let e = r
            .call("getAccountInfo", &[Value::from(1)], 1 << 20)
            .unwrap_err();
        assert_eq!(e.code, -32602);
        let huge = "1".repeat(50_000);
        let e = r
            .call("sendTransaction", &[Value::from(huge)], 1 << 20)
            .unwrap_err();
        assert!(e.message.contains("too large"), "{}", e.message);
        // A view etcd has not refreshed for longer than a lease places nothing.
        let stale = Router::new(1 << 20, Duration::ZERO);
        stale.publish(Snapshot {
            map: Some(PartitionMap::initial(4, &["a".into()]).unwrap()),
            nodes: [("a".to_string(), record("a", 9000))].into(),
            ..Default::default()
        });
        std::thread::sleep(Duration::from_millis(5));
        assert!(stale.node_for([&key_in(0)]).is_none());
        assert!(stale.health().is_err());
        assert_eq!(e.code, -32602);
        // An unparsable datagram is counted, not forwarded.
        assert!(r.datagram_target(b"\x01\x02").is_none());
        assert_eq!(r.counters.datagrams_unparsable.load(Relaxed), 1);
    }
}
