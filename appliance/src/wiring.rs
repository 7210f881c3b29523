//! The topology as data: every tile of the appliance (kind, how many, where it runs, who
//! starts it) and every link between tiles (named producer_consumer, its depth from the
//! configuration, what a full link does), declared once from the configuration. The start-up
//! log and `gigacompute topology` print it, the node takes its link depths from it, and
//! ARCHITECTURE.md's tables are checked against it by a test.

use crate::config::{Config, StorageEngine};
use std::fmt::Write as _;

/// What a producer does when its output link is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Drop the item and count it under this counter.
    Drop(&'static str),
    /// Wait: backpressure to the producer.
    Block,
    /// The link has no bound (its producer is itself bounded by something else, named).
    Unbounded(&'static str),
}

impl WhenFull {
    fn describe(self) -> String {
        match self {
            WhenFull::Drop(counter) => format!("drop, count `{counter}`"),
            WhenFull::Block => "block (backpressure)".into(),
            WhenFull::Unbounded(why) => format!("unbounded: {why}"),
        }
    }
}

/// How a tile's thread is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// `telemetry::lifecycle`: one `Tile` turn loop, pinning, TileStats slot, staged stop.
    Lifecycle,
    /// The same lifecycle run loop, on an EAL lcore DPDK launched (`lifecycle::run`).
    EalLcore,
    /// A plain thread its component owns and joins (no turn loop; it only writes files).
    Thread,
}

impl Runs {
    fn describe(self) -> &'static str {
        match self {
            Runs::Lifecycle => "tile lifecycle",
            Runs::EalLcore => "tile lifecycle on an EAL lcore",
            Runs::Thread => "plain thread, joined by its owner",
        }
    }
}

/// One kind of tile.
#[derive(Debug, Clone)]
pub struct TileDecl {
    pub kind: &'static str,
    /// Instances, and the configuration key that sets how many.
    pub count: usize,
    pub count_key: &'static str,
    /// The crate (or folder) that provides it.
    pub provided_by: &'static str,
    pub runs: Runs,
    /// Core of each instance (None: unpinned).
    pub cores: Vec<Option<usize>>,
    /// How its cores are chosen, for the documentation.
    pub placement: &'static str,
    pub inputs: Vec<&'static str>,
    pub outputs: Vec<&'static str>,
}

/// One link between tiles, named producer_consumer.
#[derive(Debug, Clone)]
pub struct LinkDecl {
    pub name: &'static str,
    /// Links of this name (one per consumer instance for fan-out links).
    pub count: usize,
    /// Depth in items; None for unbounded.
    pub depth: Option<usize>,
    pub depth_key: &'static str,
    pub when_full: WhenFull,
    pub carries: &'static str,
}

/// The whole topology for one configuration.
#[derive(Debug, Clone)]
pub struct Wiring {
    pub tiles: Vec<TileDecl>,
    pub links: Vec<LinkDecl>,
}

impl Wiring {
    pub fn from_config(c: &Config) -> Self {
        let workers = c.runtime.workers.max(1);
        let worker_cores = (0..workers)
            .map(|i| runtime::worker_core(&c.runtime.worker_cores, i))
            .collect();
        let devices = match c.storage.engine {
            StorageEngine::Array => c.storage.device_paths(&c.data_dir).len(),
            StorageEngine::Log => 0,
        };
        let io_cores = (0..devices)
            .map(|d| {
                (!c.storage.io_cores.is_empty())
                    .then(|| c.storage.io_cores[d % c.storage.io_cores.len()])
            })
            .collect();
        let rx_lcores = if c.dpdk.enabled {
            c.dpdk.rx_lcores.iter().map(|&l| Some(l as usize)).collect()
        } else {
            Vec::new()
        };
        let unpinned = |n: usize| vec![None; n];
        let tile = |kind,
                    count: usize,
                    count_key,
                    provided_by,
                    runs,
                    cores: Vec<Option<usize>>,
                    placement,
                    inputs: &[&'static str],
                    outputs: &[&'static str]| TileDecl {
            kind,
            count,
            count_key,
            provided_by,
            runs,
            cores,
            placement,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        };
        let tiles = vec![
            tile(
                "net",
                1,
                "",
                "dataplane",
                Runs::Lifecycle,
                unpinned(1),
                "unpinned",
                &["UDP socket (recvmmsg)"],
                &["net_verify"],
            ),
            tile(
                "rx-q",
                rx_lcores.len(),
                "dpdk.rx_lcores",
                "dataplane (dpdk)",
                Runs::EalLcore,
                rx_lcores,
                "`dpdk.rx_lcores`",
                &["NIC RX queue", "preconf_port"],
                &["net_verify", "NIC TX queue"],
            ),
            tile(
                "verify",
                c.verify.tiles,
                "verify.tiles",
                "dataplane",
                Runs::Lifecycle,
                (0..c.verify.tiles)
                    .map(|i| c.verify.cores.get(i).copied())
                    .collect(),
                "`verify.cores` (default: unpinned)",
                &["net_verify", "rpc (checked submissions)"],
                &["verify_bank"],
            ),
            tile(
                "bank",
                1,
                "",
                "runtime",
                Runs::Lifecycle,
                unpinned(1),
                "unpinned",
                &["verify_bank", "worker_bank", "migrate_bank"],
                &[
                    "bank_worker",
                    "bank_commit",
                    "bank_prefetch",
                    "chain_events",
                    "bank_preconf",
                    "bank_tuner",
                ],
            ),
            tile(
                "gc-tuner-io",
                usize::from(c.tuner.mode == runtime::tuner::TunerMode::Learn),
                "tuner.mode",
                "runtime (tuner)",
                Runs::Thread,
                unpinned(usize::from(
                    c.tuner.mode == runtime::tuner::TunerMode::Learn,
                )),
                "unpinned",
                &["bank_tuner"],
                &["DATA_DIR/tuner/policy.json, changes.jsonl"],
            ),
            tile(
                "preconf",
                usize::from(c.preconf.enabled),
                "preconf.enabled",
                "runtime (preconf)",
                Runs::Lifecycle,
                unpinned(usize::from(c.preconf.enabled)),
                "unpinned",
                &["bank_preconf"],
                &[
                    "UDP socket (sendto, the TPU port)",
                    "the pre-confirmation board",
                    "preconf_pubsub",
                    "preconf_port",
                ],
            ),
            tile(
                "worker",
                workers,
                "runtime.workers",
                "runtime",
                Runs::Lifecycle,
                worker_cores,
                "`runtime.worker_cores` (default: the last cores, downwards)",
                &["bank_worker"],
                &["worker_bank"],
            ),
            tile(
                "commit",
                1,
                "",
                "runtime",
                Runs::Lifecycle,
                unpinned(1),
                "unpinned",
                &["bank_commit"],
                &[
                    "accounts engine",
                    "chain_events",
                    "commit_history",
                    "commit_replicate",
                ],
            ),
            tile(
                "history",
                usize::from(c.history.enabled),
                "history.enabled",
                "history",
                Runs::Lifecycle,
                unpinned(usize::from(c.history.enabled)),
                "unpinned",
                &["commit_history"],
                &["history segment files"],
            ),
            tile(
                "gc-prefetch",
                usize::from(devices > 0),
                "",
                "storage",
                Runs::Lifecycle,
                unpinned(usize::from(devices > 0)),
                "unpinned",
                &["bank_prefetch"],
                &["prefetch_io"],
            ),
            tile(
                "gc-io",
                devices,
                "storage.devices",
                "storage",
                Runs::Lifecycle,
                io_cores,
                "`storage.io_cores`",
                &["prefetch_io", "account reads"],
                &["device (io_uring)"],
            ),
            tile(
                "gc-compact",
                usize::from(devices > 0),
                "",
                "storage",
                Runs::Lifecycle,
                unpinned(usize::from(devices > 0)),
                "unpinned",
                &["a compaction victim"],
                &["the next commit"],
            ),
            tile(
                "rpc",
                c.rpc.threads,
                "rpc.threads",
                "rpc",
                Runs::Lifecycle,
                unpinned(c.rpc.threads),
                "unpinned",
                &["HTTP"],
                &["net_verify (Ingress)"],
            ),
            tile(
                "pubsub",
                if c.pubsub.enabled {
                    c.pubsub.threads
                } else {
                    0
                },
                "pubsub.threads",
                "rpc (pubsub)",
                Runs::Lifecycle,
                unpinned(if c.pubsub.enabled {
                    c.pubsub.threads
                } else {
                    0
                }),
                "unpinned",
                &["WebSocket", "pubsub_outbox"],
                &["WebSocket"],
            ),
            tile(
                "pubsub-notify",
                usize::from(c.pubsub.enabled),
                "pubsub.enabled",
                "rpc (pubsub)",
                Runs::Lifecycle,
                unpinned(usize::from(c.pubsub.enabled)),
                "unpinned",
                &["chain_events", "preconf_pubsub"],
                &["pubsub_outbox"],
            ),
            tile(
                "metrics",
                usize::from(c.metrics.enabled),
                "metrics.enabled",
                "appliance (metrics)",
                Runs::Lifecycle,
                unpinned(usize::from(c.metrics.enabled)),
                "unpinned",
                &["HTTP", "the metrics region"],
                &[],
            ),
            tile(
                "gc-cluster",
                usize::from(c.cluster.enabled),
                "cluster.enabled",
                "cluster (etcd agent)",
                Runs::Thread,
                unpinned(usize::from(c.cluster.enabled)),
                "unpinned",
                &["etcd (lease renewals, the cluster's keys)"],
                &["the cluster view (map, live nodes, moves, whether this node serves)"],
            ),
            tile(
                "gc-migrate",
                usize::from(c.cluster.enabled),
                "cluster.enabled",
                "appliance (scaleout)",
                Runs::Thread,
                unpinned(usize::from(c.cluster.enabled)),
                "unpinned",
                &[
                    "the cluster view (and its held cross-partition transactions)",
                    "a source's export pages (JSON-RPC)",
                ],
                &[
                    "migrate_bank",
                    "etcd (move records, the map's flip)",
                    "the ingress (parked and held transactions routed again)",
                ],
            ),
            tile(
                "gc-replicate",
                usize::from(c.cluster.enabled && c.cluster.replicate),
                "cluster.replicate",
                "appliance (scaleout)",
                Runs::Thread,
                unpinned(usize::from(c.cluster.enabled && c.cluster.replicate)),
                "unpinned",
                &["commit_replicate", "the cluster view"],
                &[
                    "the follower's replication listener (TCP)",
                    "etcd (this node's follower, failover)",
                ],
            ),
            tile(
                "gc-replica-in",
                usize::from(c.cluster.enabled && c.cluster.replicate),
                "cluster.replicate",
                "appliance (scaleout)",
                Runs::Thread,
                unpinned(usize::from(c.cluster.enabled && c.cluster.replicate)),
                "unpinned",
                &[
                    "the replication log of the nodes this one follows (TCP, a thread per connection, 16 at most)",
                ],
                &["migrate_bank"],
            ),
            tile(
                "gc-pubsub-peers",
                usize::from(c.cluster.enabled && c.pubsub.enabled),
                "cluster.enabled",
                "rpc (pubsub)",
                Runs::Thread,
                unpinned(usize::from(c.cluster.enabled && c.pubsub.enabled)),
                "unpinned",
                &[
                    "the signature subscriptions not run here",
                    "the live peers' statuses (JSON-RPC, every 100 ms)",
                ],
                &["pubsub_outbox"],
            ),
            tile(
                "nic-stats",
                usize::from(c.dpdk.enabled),
                "dpdk.enabled",
                "appliance (rawport)",
                Runs::Lifecycle,
                unpinned(usize::from(c.dpdk.enabled)),
                "unpinned",
                &["rte_eth_stats"],
                &["the metrics region"],
            ),
        ];
        let links = vec![
            LinkDecl {
                name: "net_verify",
                count: c.verify.tiles,
                depth: Some(c.net.verify_ring_depth),
                depth_key: "net.verify_ring_depth",
                when_full: WhenFull::Drop("verify_ring_full"),
                carries: "parsed packets (lock-free ring; EAL memory with DPDK)",
            },
            LinkDecl {
                name: "verify_bank",
                count: 1,
                depth: Some(c.verify.bank_ring_depth),
                depth_key: "verify.bank_ring_depth",
                when_full: WhenFull::Block,
                carries: "verified, decoded packets",
            },
            LinkDecl {
                name: "bank_worker",
                count: workers,
                depth: Some(1),
                depth_key: "",
                when_full: WhenFull::Block,
                carries: "one batch in flight per worker",
            },
            LinkDecl {
                name: "worker_bank",
                count: 1,
                depth: None,
                depth_key: "",
                when_full: WhenFull::Unbounded("at most one batch per worker is in flight"),
                carries: "batch results",
            },
            LinkDecl {
                name: "bank_commit",
                count: 1,
                depth: Some(c.runtime.commit_queue_slots.max(1)),
                depth_key: "runtime.commit_queue_slots",
                when_full: WhenFull::Block,
                carries: "closed slots (a slow disk stalls slot production)",
            },
            LinkDecl {
                name: "commit_history",
                count: usize::from(c.history.enabled),
                depth: Some(c.history.queue_slots),
                depth_key: "history.queue_slots",
                when_full: WhenFull::Block,
                carries: "durable slots' records (a slow history disk stalls commits)",
            },
            LinkDecl {
                name: "bank_preconf",
                count: usize::from(c.preconf.enabled),
                depth: Some(c.preconf.queue_depth),
                depth_key: "preconf.queue_depth",
                when_full: WhenFull::Drop("preconf_queue_full"),
                carries: "pre-confirmation drafts (the bank never waits for signing)",
            },
            LinkDecl {
                name: "preconf_pubsub",
                count: usize::from(c.preconf.enabled && c.pubsub.enabled),
                depth: Some(runtime::preconf::FEED_DEPTH),
                depth_key: "",
                when_full: WhenFull::Drop("preconf_pubsub_dropped"),
                carries: "signed pre-confirmations, only while a preconfirmationSubscribe exists",
            },
            LinkDecl {
                name: "preconf_port",
                count: if c.preconf.enabled && c.dpdk.enabled && c.dpdk.port.replies {
                    c.dpdk.rx_lcores.len()
                } else {
                    0
                },
                depth: Some(runtime::preconf::FEED_DEPTH),
                depth_key: "",
                when_full: WhenFull::Drop("preconf_port_full"),
                carries: "signed pre-confirmations for what a raw port's queue received (needs `dpdk.port.replies`)",
            },
            LinkDecl {
                name: "migrate_bank",
                count: usize::from(c.cluster.enabled),
                depth: Some(crate::scaleout::WRITES_DEPTH),
                depth_key: "",
                when_full: WhenFull::Block,
                carries: "accounts and signatures of a partition moved in (and wipes of one moved out), and the replicas of the nodes this one follows, written between batches",
            },
            LinkDecl {
                name: "commit_replicate",
                count: usize::from(c.cluster.enabled && c.cluster.replicate),
                depth: Some(crate::scaleout::replicate::TAP_DEPTH),
                depth_key: "",
                when_full: WhenFull::Drop("cluster_replica_snapshots_total"),
                carries: "each durable slot's written accounts, to ship to the follower (full: the log is dropped and the follower gets a snapshot)",
            },
            LinkDecl {
                name: "bank_tuner",
                count: usize::from(c.tuner.mode == runtime::tuner::TunerMode::Learn),
                depth: Some(runtime::tuner::files::QUEUE),
                depth_key: "",
                when_full: WhenFull::Drop("tuner_io_dropped"),
                carries: "policy snapshots and change records to save (the bank never waits on a disk)",
            },
            LinkDecl {
                name: "bank_prefetch",
                count: usize::from(devices > 0),
                depth: Some(storage::array::PREFETCH_QUEUE_DEPTH),
                depth_key: "",
                when_full: WhenFull::Drop("hints_dropped"),
                carries: "read-ahead requests (keys already marked in the cache)",
            },
            LinkDecl {
                name: "prefetch_io",
                count: devices,
                depth: None,
                depth_key: "",
                when_full: WhenFull::Unbounded("bounded by the hint queue before it"),
                carries: "read batches, one device each",
            },
            LinkDecl {
                name: "chain_events",
                count: usize::from(c.pubsub.enabled),
                depth: Some(runtime::events::EVENT_QUEUE),
                depth_key: "",
                when_full: WhenFull::Drop("pubsub_events_dropped"),
                carries: "closed slots (statuses, written accounts) and durable slots, to PubSub",
            },
            LinkDecl {
                name: "pubsub_outbox",
                count: usize::from(c.pubsub.enabled),
                depth: None,
                depth_key: "pubsub.max_queued_bytes_per_connection",
                when_full: WhenFull::Drop("pubsub_slow_subscribers_disconnected"),
                carries: "notifications, one queue per WebSocket connection, bounded by bytes (over it the connection closes)",
            },
        ];
        Self { tiles, links }
    }

    pub fn link(&self, name: &str) -> &LinkDecl {
        self.links
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no link {name} in the wiring"))
    }

    /// One line for the start-up log.
    pub fn summary(&self) -> String {
        self.tiles
            .iter()
            .filter(|t| t.count > 0)
            .map(|t| {
                let cores: Vec<String> = t
                    .cores
                    .iter()
                    .map(|c| c.map_or("-".into(), |c| c.to_string()))
                    .collect();
                format!("{} x{} [cores {}]", t.kind, t.count, cores.join(","))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The tiles as a Markdown table (ARCHITECTURE.md holds the default configuration's).
    pub fn tiles_table(&self) -> String {
        let mut out = String::from(
            "| tile | instances | provided by | runs on | placement | inputs | outputs |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for t in &self.tiles {
            let instances = if t.count_key.is_empty() {
                t.count.to_string()
            } else {
                format!("{} (`{}`)", t.count, t.count_key)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                t.kind,
                instances,
                t.provided_by,
                t.runs.describe(),
                t.placement,
                join_or_dash(&t.inputs),
                join_or_dash(&t.outputs),
            );
        }
        out
    }

    /// The links as a Markdown table.
    pub fn links_table(&self) -> String {
        let mut out =
            String::from("| link | count | depth | when full | carries |\n|---|---|---|---|---|\n");
        for l in &self.links {
            let depth = match (l.depth, l.depth_key) {
                (None, _) => "—".to_string(),
                (Some(d), "") => d.to_string(),
                (Some(d), key) => format!("{d} (`{key}`)"),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                l.name,
                l.count,
                depth,
                l.when_full.describe(),
                l.carries
            );
        }
        out
    }
}

fn join_or_dash(v: &[&str]) -> String {
    if v.is_empty() {
        "—".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_has_a_producer_and_a_consumer() {
        let mut c = Config::default();
        c.dpdk.enabled = true;
        let w = Wiring::from_config(&c);
        for l in &w.links {
            let named = |side: fn(&TileDecl) -> &Vec<&'static str>| {
                w.tiles.iter().any(|t| side(t).contains(&l.name))
            };
            assert!(named(|t| &t.outputs), "{} has no producer", l.name);
            assert!(named(|t| &t.inputs), "{} has no consumer", l.name);
        }
    }

    #[test]
    fn link_depths_follow_the_config() {
        let mut c = Config::default();
        c.net.verify_ring_depth = 123;
        c.verify.bank_ring_depth = 456;
        let w = Wiring::from_config(&c);
        assert_eq!(w.link("net_verify").depth, Some(123));
        assert_eq!(w.link("verify_bank").depth, Some(456));
        assert!(w.summary().contains("verify x2"));
    }
}
