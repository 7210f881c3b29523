//! Joining a cluster (`[cluster] enabled`): the node's view, its etcd agent, and the cluster
//! clock it must run on, all before the runtime starts; then moving partitions in and out
//! ([`migrate`]).

pub mod migrate;
pub mod rebalance;

/// Writes of moved partitions waiting for the bank, at most (each can be large).
pub const WRITES_DEPTH: usize = 16;

use crate::config::Config;
use anyhow::{Context, Result, bail};
use cluster::etcd::{Agent, AgentConfig};
use cluster::{ClusterClock, ClusterView, NodeRecord};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Joined {
    pub view: Arc<ClusterView>,
    pub agent: Agent,
    pub clock: ClusterClock,
    pub socket: Arc<std::net::UdpSocket>,
}

/// Registers the node and waits (up to `cluster.join_timeout_s`) until it has read the
/// cluster's spec; fails if the cluster's slot length is not this node's.
pub fn join(
    config: &Config,
    identity: &solana_pubkey::Pubkey,
    local: Vec<[u8; 32]>,
    tpu: SocketAddr,
) -> Result<Joined> {
    let c = &config.cluster;
    if config.rpc.bind.port() == 0 {
        bail!("a cluster node needs a fixed rpc.bind port (other nodes forward calls to it)");
    }
    let global = runtime::svm::global_accounts()
        .into_iter()
        .map(|k| k.to_bytes());
    let view = Arc::new(ClusterView::new(c.node_id.clone(), global, local));
    // Datagrams to other nodes leave from here (peers know it, see `NodeRecord::forward`).
    let socket = std::net::UdpSocket::bind(SocketAddr::new(tpu.ip(), 0))
        .context("binding the cluster's forwarding socket")?;
    socket.set_nonblocking(true)?;
    let record = NodeRecord {
        id: c.node_id.clone(),
        rpc: c.advertised(config.rpc.bind),
        tpu: c.advertised(tpu),
        forward: c.advertised(socket.local_addr()?),
        identity: identity.to_string(),
        started_unix_ms: cluster::clock::unix_ms(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let agent = Agent::start(
        AgentConfig {
            endpoints: c.etcd.clone(),
            cluster: c.name.clone(),
            record,
            lease_ttl_s: c.lease_ttl_s,
            poll_ms: c.poll_ms,
        },
        view.clone(),
    )
    .context("starting the cluster agent thread")?;
    let deadline = Instant::now() + Duration::from_secs(c.join_timeout_s);
    let clock = loop {
        let snap = view.snapshot();
        if let (Some(clock), true) = (snap.clock, view.lease_left_ms() > 0) {
            break clock;
        }
        if Instant::now() >= deadline {
            let why = if snap.revision == 0 {
                format!(
                    "etcd at {:?} did not answer, or refused the registration",
                    c.etcd
                )
            } else {
                format!(
                    "cluster {:?} has no spec in etcd: create it with `gigacompute cluster init`",
                    c.name
                )
            };
            bail!(
                "joining cluster {:?} as {:?} within {} s: {why}",
                c.name,
                c.node_id,
                c.join_timeout_s
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if clock.slot_ms != config.runtime.slot_ms {
        bail!(
            "cluster {:?} runs {} ms slots; this node's runtime.slot_ms is {}",
            c.name,
            clock.slot_ms,
            config.runtime.slot_ms
        );
    }
    tracing::info!(cluster = %c.name, node = %c.node_id, etcd = ?c.etcd, "joined the cluster");
    Ok(Joined {
        view,
        agent,
        clock,
        socket: Arc::new(socket),
    })
}
