//! Joining a cluster (`[cluster] enabled`): the node's view, its etcd agent, and the cluster
//! clock it must run on, all before the runtime starts; then moving partitions in and out
//! ([`migrate`]).

pub mod colocate;
pub mod migrate;
pub mod rebalance;
pub mod replicate;

/// Writes of moved partitions waiting for the bank, at most (each can be large).
pub const WRITES_DEPTH: usize = 16;

use crate::config::Config;
use anyhow::{Context, Result, bail};
use cluster::etcd::{Agent, AgentConfig};
use cluster::{ClusterClock, ClusterView, NodeRecord};
use solana_account::{AccountSharedData, ReadableAccount, WritableAccount};
use solana_pubkey::Pubkey;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Joined {
    pub view: Arc<ClusterView>,
    pub agent: Agent,
    pub clock: ClusterClock,
    pub socket: Arc<std::net::UdpSocket>,
    /// Where the nodes this one follows send their log (`[cluster] replicate`).
    pub replica_listener: Option<std::net::TcpListener>,
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
    if c.colocate {
        view.colocate.enable();
    }
    if !c.replicate {
        view.counters
            .unreplicated
            .store(1, std::sync::atomic::Ordering::Relaxed);
    }
    let replica_listener = if c.replicate {
        Some(
            std::net::TcpListener::bind(SocketAddr::new(config.rpc.bind.ip(), 0))
                .context("binding the replication listener")?,
        )
    } else {
        None
    };
    let replica = match &replica_listener {
        Some(l) => Some(c.advertised(l.local_addr()?)),
        None => None,
    };
    let record = NodeRecord {
        id: c.node_id.clone(),
        rpc: c.advertised(config.rpc.bind),
        tpu: c.advertised(tpu),
        forward: c.advertised(socket.local_addr()?),
        replica,
        pubsub: (config.pubsub.enabled && config.pubsub.bind.port() != 0)
            .then(|| c.advertised(config.pubsub.bind)),
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
        replica_listener,
    })
}

/// One account as a partition's export pages and the replication log carry it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct WireAccount {
    pub key: [u8; 32],
    pub lamports: u64,
    pub owner: [u8; 32],
    pub executable: bool,
    pub rent_epoch: u64,
    pub data: Vec<u8>,
}

impl WireAccount {
    pub fn new(key: &Pubkey, a: &AccountSharedData) -> Self {
        Self {
            key: key.to_bytes(),
            lamports: a.lamports(),
            owner: a.owner().to_bytes(),
            executable: a.executable(),
            rent_epoch: a.rent_epoch(),
            data: a.data().to_vec(),
        }
    }

    /// Bytes it adds to a page (for page bounds).
    pub fn approx_bytes(&self) -> usize {
        self.data.len() + 128
    }

    pub fn into_account(self) -> (Pubkey, AccountSharedData) {
        let mut acct =
            AccountSharedData::new(self.lamports, 0, &Pubkey::new_from_array(self.owner));
        acct.set_data_from_slice(&self.data);
        acct.set_executable(self.executable);
        acct.set_rent_epoch(self.rent_epoch);
        (Pubkey::new_from_array(self.key), acct)
    }
}

/// How long a write of moved or replicated accounts may take to be taken by the bank, and
/// then to be durable.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `accounts` (a zero-lamport account deletes) and `signatures` (run elsewhere: not to
/// run here) through the bank, and waits until they are durable on this node's disk.
pub(crate) fn write_durably(
    writes: &crossbeam_channel::Sender<runtime::ClusterWrite>,
    chain: &runtime::chain::ChainState,
    accounts: Vec<(Pubkey, AccountSharedData)>,
    signatures: Vec<runtime::chain::ForeignSignature>,
) -> Result<()> {
    let (done, slot) = crossbeam_channel::bounded(1);
    let w = runtime::ClusterWrite {
        accounts,
        signatures,
        done,
    };
    writes
        .send_timeout(w, WRITE_TIMEOUT)
        .map_err(|_| anyhow::anyhow!("the bank did not take the writes"))?;
    let slot = slot
        .recv_timeout(WRITE_TIMEOUT)
        .map_err(|_| anyhow::anyhow!("the bank did not write them"))?;
    let deadline = Instant::now() + WRITE_TIMEOUT;
    while chain.local_durable_slot() < slot {
        if Instant::now() > deadline {
            bail!("slot {slot} with the writes did not become durable");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
