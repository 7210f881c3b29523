//! The router's PubSub port (`[pubsub] bind`, where clients look for it: web3.js takes the
//! RPC port + 1). Each WebSocket connection is passed, as bytes, to one live node's PubSub
//! endpoint (round-robin over the nodes that advertise one), which serves it whole: a node
//! answers signature subscriptions for transactions run anywhere in the cluster
//! (`pubsub::remote`), while account, program and logs subscriptions see what runs on that
//! node. The router reads none of it; the node's limits, pings and timeouts apply. Bounded by
//! `[pubsub] max_connections` and `max_connections_per_ip` per client address at the router; a
//! connection no node takes is closed and counted. A node sees the router's address, not the
//! client's: set its `[pubsub] max_connections_per_ip` (and `max_subscriptions_per_ip`) for
//! the clients of every router in front of it.

use crate::router::Router;
use anyhow::{Context, Result};
use appliance::config::PubSubConfig;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a node may take to accept a connection passed to it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Open connections, by source address and in all.
#[derive(Default)]
struct Open {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// One open connection's place in [`Open`], given back when it closes.
struct Slot {
    open: Arc<parking_lot::Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock();
        o.total -= 1;
        if let Some(n) = o.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Binds `cfg.bind` and passes its connections on, on thread `gc-route-ws`, until `stop`.
pub fn start(
    router: Arc<Router>,
    cfg: &PubSubConfig,
    stop: Arc<AtomicBool>,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind(cfg.bind)
        .with_context(|| format!("binding the router's PubSub port {}", cfg.bind))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (max_total, max_per_ip) = (cfg.max_connections, cfg.max_connections_per_ip);
    let thread = std::thread::Builder::new()
        .name("gc-route-ws".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("the router's PubSub runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("the router's PubSub listener: {e}");
                        return;
                    }
                };
                let open = Arc::new(parking_lot::Mutex::new(Open::default()));
                while !stop.load(Relaxed) {
                    let (client, peer) =
                        match tokio::time::timeout(STOP_POLL, listener.accept()).await {
                            Ok(Ok(accepted)) => accepted,
                            Ok(Err(e)) => {
                                // Out of descriptors, say: not a loop at full speed.
                                tracing::warn!("the router's PubSub accept: {e}");
                                tokio::time::sleep(STOP_POLL).await;
                                continue;
                            }
                            Err(_) => continue,
                        };
                    let slot = {
                        let mut o = open.lock();
                        let here = o.by_ip.get(&peer.ip()).copied().unwrap_or(0);
                        if o.total >= max_total || here >= max_per_ip {
                            router.counters.pubsub_refused.fetch_add(1, Relaxed);
                            continue; // dropped: closed
                        }
                        o.total += 1;
                        *o.by_ip.entry(peer.ip()).or_default() += 1;
                        Slot {
                            open: open.clone(),
                            ip: peer.ip(),
                        }
                    };
                    let Some(node) = router.pubsub_target() else {
                        router.counters.pubsub_unplaced.fetch_add(1, Relaxed);
                        continue;
                    };
                    let router = router.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        let mut client = client;
                        let connected = tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            tokio::net::TcpStream::connect(node),
                        )
                        .await;
                        let Ok(Ok(mut upstream)) = connected else {
                            router.counters.pubsub_unplaced.fetch_add(1, Relaxed);
                            return;
                        };
                        router.counters.pubsub_connections.fetch_add(1, Relaxed);
                        let _ = client.set_nodelay(true);
                        let _ = upstream.set_nodelay(true);
                        // Ends, both ways, as soon as either side ends (the node closes idle
                        // and bad sessions): a half-closed pair would hold its slot forever.
                        let (mut from_client, mut to_client) = client.split();
                        let (mut from_node, mut to_node) = upstream.split();
                        tokio::select! {
                            _ = tokio::io::copy(&mut from_client, &mut to_node) => {}
                            _ = tokio::io::copy(&mut from_node, &mut to_client) => {}
                        }
                    });
                }
            });
        })?;
    Ok((addr, thread))
}
