//! `gigacompute`: the command line. Each command is a call into a crate: `run` starts the
//! appliance's node (`appliance`) with the RPC (`rpc`) and the metrics endpoint beside it;
//! `configure`, `monitor`, `nic` and `tuner` are `ops`; `bench` is `bench`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Result;
use appliance::{Config, config, hwtopo, metrics, wiring};
use clap::{Parser, Subcommand};
use ops::{configure, monitor, nic};
use rpc::proof_json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Parser)]
#[command(name = "gigacompute", version, about = "SVM execution appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance.
    Run {
        /// Configuration file (TOML). Without it, the documented defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory; overrides the config's data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Live view of a running appliance's perf counters (attach from another terminal).
    Monitor {
        /// The running appliance's config file (to find its data dir).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The running appliance's data dir (overrides the config's).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Stop after this many refreshes (scripts, tests).
        #[arg(long)]
        frames: Option<u64>,
    },
    /// Raw (DPDK) ports of a running appliance: `nic list`, `nic stats`.
    Nic {
        #[command(subcommand)]
        command: nic::NicCommand,
        /// The running appliance's config file (to find its data dir).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The running appliance's data dir (overrides the config's).
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// The self-tuning runtime: `tuner status` shows each knob's value, what it was chosen
    /// over and why, what was learnt per workload, and every change with its measured effect.
    Tuner {
        #[command(subcommand)]
        command: TunerCommand,
        /// The appliance's config file (its data dir and configured knob values).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The appliance's data dir (overrides the config's).
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// Scale-out: `cluster init` creates a cluster in etcd, `cluster status` shows its nodes,
    /// leases, partition map and epoch.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
        /// A node's config file: its `[cluster]` name and etcd endpoints (and for `init`,
        /// `runtime.slot_ms`).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// The thin router: no state, no bank; takes transactions (UDP at `[net] bind`) and
    /// JSON-RPC calls (`[rpc] bind`) and passes each to the cluster node that executes or
    /// answers it, as the map in etcd (`[cluster] etcd`, `name`) says.
    Route {
        /// Configuration file: its `[cluster]`, `[net] bind`, `[rpc]` and `[pubsub]` sections.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Prepare the host: hugepages, cpu, nic, limits, sysctl.
    Configure {
        #[command(subcommand)]
        action: configure::Action,
        /// Configuration file whose settings the checks follow.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// The tiles and links this config wires, the machine (hwloc: packages, NUMA nodes,
    /// cores, caches) and where the appliance's threads go on it.
    Topology {
        /// Configuration file. Without it, the documented defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print only the tile and link tables (Markdown, as in ARCHITECTURE.md).
        #[arg(long)]
        tables: bool,
    },
    /// Light-client tools for state proofs.
    Proof {
        #[command(subcommand)]
        command: ProofCommand,
    },
    /// Client tools for signed pre-confirmations.
    Preconf {
        #[command(subcommand)]
        command: PreconfCommand,
    },
    /// Benchmarks: print a table; with --json, one JSON object as the last line.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum ProofCommand {
    /// Check a getAccountWithProof response against a state root you trust (from
    /// getSlotHeader). Exit 0 verified, 1 rejected (the reason is printed).
    Verify {
        /// The slot's state root, 64 hex digits.
        #[arg(long)]
        root: String,
        /// The JSON-RPC response (or its `value`); `-` reads stdin.
        #[arg(long)]
        proof: PathBuf,
    },
    /// Check a getClusterAccountProof response against a cluster root you trust (from
    /// getClusterStateRoot): the owner's path to the root, its claim on the account's
    /// partition, and the account's proof. Exit 0 verified, 1 rejected.
    VerifyCluster {
        /// The slot's cluster root, 64 hex digits.
        #[arg(long)]
        root: String,
        /// The JSON-RPC response (or its `value`); `-` reads stdin.
        #[arg(long)]
        proof: PathBuf,
    },
}

#[derive(Subcommand)]
enum PreconfCommand {
    /// Check a pre-confirmation (the `message` of getSignaturePreconfirmations, base64)
    /// against the appliance's identity (getIdentity). Exit 0 verified (its fields are
    /// printed as JSON), 1 rejected (the reason is printed).
    Verify {
        /// The appliance's identity, base 58.
        #[arg(long)]
        identity: String,
        /// The signed pre-confirmation, base 64.
        message: String,
    },
}

#[derive(Subcommand)]
enum TunerCommand {
    /// Live state (when the node runs), the saved policy and the change history.
    Status {
        /// One JSON object instead of the text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Create the cluster: its spec (slot length, blockhash seed) and the first partition
    /// map, the partitions dealt round-robin over --nodes. Fails if it exists.
    Init {
        /// Node ids, comma-separated, in the order partitions are dealt.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// Hash partitions (default 64).
        #[arg(long)]
        partitions: Option<u16>,
    },
    /// Move one partition to another live node, live: the owner drains it, ships its accounts
    /// and recent signatures, the map flips in one etcd transaction, the new owner serves it.
    Move {
        #[arg(long)]
        partition: u16,
        /// The node that will own it.
        #[arg(long)]
        to: String,
        /// Return once requested, without waiting for the flip.
        #[arg(long)]
        no_wait: bool,
    },
    /// Scale-in: move every partition of a node to the other live nodes, one at a time.
    Drain {
        #[arg(long)]
        node: String,
    },
    /// Nodes (addresses, lease left, partitions owned), map epoch, partitions whose owner is
    /// down, moves in flight.
    Status {
        /// One JSON object instead of the text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the documented default configuration.
    Default,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run { config, data_dir } => run(load_config(config, data_dir)?),
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", config::DEFAULT_TOML);
            }
            Ok(())
        }
        Command::Bench { command } => bench::run(command),
        Command::Topology { config, tables } => {
            let cfg = load_config(config, None)?;
            let wiring = wiring::Wiring::from_config(&cfg);
            if !tables {
                let machine = hwtopo::Machine::discover()?;
                let placement = hwtopo::Placement::new(&cfg, &machine);
                #[allow(clippy::print_stdout)]
                for line in placement.describe(&cfg, &machine) {
                    println!("{line}");
                }
            }
            #[allow(clippy::print_stdout)]
            {
                println!("\n{}\n{}", wiring.tiles_table(), wiring.links_table());
            }
            Ok(())
        }
        Command::Proof {
            command: ProofCommand::Verify { root, proof },
        } => verify_proof(&root, &proof, false),
        Command::Proof {
            command: ProofCommand::VerifyCluster { root, proof },
        } => verify_proof(&root, &proof, true),
        Command::Preconf {
            command: PreconfCommand::Verify { identity, message },
        } =>
        {
            #[allow(clippy::print_stdout)]
            match rpc::encode::verify_preconfirmation(&message, &identity) {
                Ok(v) => {
                    println!("{v}");
                    Ok(())
                }
                Err(e) => {
                    println!("rejected: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::Configure { action, config } => {
            let cfg = match config {
                Some(p) => Config::load(&p)?,
                None => Config::default(),
            };
            let code = configure::run(action, &cfg)?;
            std::process::exit(code);
        }
        Command::Monitor {
            config,
            data_dir,
            frames,
        } => {
            let cfg = load_config(config, data_dir)?;
            monitor::run(metrics::MetricsRegion::open(&cfg.data_dir)?, frames)
        }
        Command::Tuner {
            command: TunerCommand::Status { json },
            config,
            data_dir,
        } => {
            let cfg = load_config(config, data_dir)?;
            // A stopped node has no region: the files alone tell what was learnt.
            let region = metrics::MetricsRegion::open(&cfg.data_dir).ok();
            let text = ops::tuner::status(&cfg, region, json);
            #[allow(clippy::print_stdout)]
            {
                println!("{text}");
            }
            Ok(())
        }
        Command::Route { config } => route(load_config(config, None)?),
        Command::Cluster { command, config } => {
            let cfg = load_config(config, None)?;
            let text = match command {
                ClusterCommand::Init { nodes, partitions } => {
                    ops::cluster::init(&cfg, &nodes, partitions)?
                }
                ClusterCommand::Status { json } => ops::cluster::status(&cfg, json)?,
                ClusterCommand::Move {
                    partition,
                    to,
                    no_wait,
                } => ops::cluster::move_partition(&cfg, partition, &to, !no_wait, "operator")?,
                ClusterCommand::Drain { node } => ops::cluster::drain_node(&cfg, &node)?,
            };
            #[allow(clippy::print_stdout)]
            {
                println!("{}", text.trim_end());
            }
            Ok(())
        }
        Command::Nic {
            command,
            config,
            data_dir,
        } => {
            let cfg = load_config(config, data_dir)?;
            let text = nic::run(command, metrics::MetricsRegion::open(&cfg.data_dir)?);
            #[allow(clippy::print_stdout)]
            {
                println!("{text}");
            }
            Ok(())
        }
    }
}

/// The config file (or the defaults), with `--data-dir` taking precedence over its data_dir.
fn load_config(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<Config> {
    let mut cfg = match config {
        Some(p) => Config::load(&p)?,
        None => Config::default(),
    };
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    Ok(cfg)
}

fn verify_proof(root: &str, path: &std::path::Path, in_cluster: bool) -> Result<()> {
    use anyhow::Context;
    let root = proof_json::parse_hash(root).context("--root")?;
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let doc: serde_json::Value = serde_json::from_str(&text).context("proof file is not JSON")?;
    let verified = if in_cluster {
        proof_json::verify_cluster(&root, &doc).map(|c| {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "verified: partition {} is {}'s at map epoch {}, and its state root leads to the cluster root",
                    c.partition, c.owner, c.epoch
                );
            }
            c.account
        })
    } else {
        proof_json::verify(&root, &doc)
    };
    #[allow(clippy::print_stdout)]
    match verified {
        Ok(v) => {
            match v.account {
                Some((lamports, owner, len)) => println!(
                    "verified: {} holds {lamports} lamports, owner {owner}, {len} data bytes at slot {}",
                    v.pubkey, v.slot
                ),
                None => println!("verified: {} does not exist at slot {}", v.pubkey, v.slot),
            }
            Ok(())
        }
        Err(e) => {
            println!("rejected: {e:#}");
            std::process::exit(1);
        }
    }
}

/// `gigacompute route`: runs until SIGINT or SIGTERM.
fn route(cfg: Config) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let health = telemetry::Health::new();
    let _scope = health.enter();
    exit_on_panic(health.clone());
    let router = rpc::router::start(&cfg)?;
    while !stop.load(Ordering::Relaxed) && health.failure().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    router.shutdown();
    Ok(())
}

fn run(cfg: Config) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let rpc_config = cfg.rpc.clone();
    let pubsub_config = cfg.pubsub.clone();
    // Every tile started from here on (the node's, the RPC's, the metrics endpoint's) reports
    // its death to `health`, and so does a panic on any thread.
    let health = telemetry::Health::new();
    let _scope = health.enter();
    exit_on_panic(health.clone());
    let node = appliance::Node::start(cfg)?;
    let rpc = Arc::new(rpc::Rpc::for_node(&node, health.clone()));
    let metrics_server = if node.config.metrics.enabled {
        Some(metrics::server::MetricsServer::start_with_cluster(
            node.metrics,
            node.config.metrics.bind,
            node.cluster.clone(),
        )?)
    } else {
        None
    };
    let server = rpc::RpcServer::start(
        rpc.clone(),
        rpc_config.bind,
        rpc_config.threads,
        rpc_config.limits(),
    )?;
    let pubsub = if pubsub_config.enabled {
        Some(rpc::PubSubServer::start(
            node.runtime.chain.clone(),
            node.runtime.db.clone(),
            node.metrics,
            &pubsub_config,
            &rpc_config,
            node.runtime.preconf_feed.clone(),
            node.cluster.clone(),
        )?)
    } else {
        None
    };
    let _ = rpc.node.rpc.set(server.addr);
    if let Some(p) = &pubsub {
        let _ = rpc.node.pubsub.set(p.addr);
    }
    tracing::info!(
        tpu = %node.tpu_addr,
        rpc = %server.addr,
        pubsub = ?pubsub.as_ref().map(|p| p.addr),
        metrics = ?metrics_server.as_ref().map(|m| m.addr),
        "gigacompute running"
    );
    let failure = loop {
        if stop.load(Ordering::Relaxed) {
            break None;
        }
        if let Some(why) = health.failure() {
            break Some(why.to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    match &failure {
        None => tracing::info!("shutting down: committing the current slot"),
        Some(why) => {
            tracing::error!(
                "tile {why}: the node is unhealthy; refusing new work and stopping what is left"
            );
            // What is already durable stays durable (commits are fdatasync'd); a pipeline
            // with a tile missing may not stop cleanly, so do not wait for it forever.
            std::thread::spawn(|| {
                std::thread::sleep(FAILED_STOP_GRACE);
                eprintln!("stopping after a tile failure took too long: exiting");
                std::process::exit(1);
            });
        }
    }
    server.shutdown();
    if let Some(p) = pubsub {
        p.shutdown();
    }
    if let Some(m) = metrics_server {
        m.shutdown();
    }
    let slot = node.runtime.chain.processed_slot();
    node.shutdown();
    if let Some(why) = failure {
        anyhow::bail!("stopped because tile {why}");
    }
    tracing::info!(last_slot = slot, "stopped");
    Ok(())
}

/// How long a node whose tile died may take to stop the rest before it exits anyway.
const FAILED_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A panic on any thread fails the node (the run loop then stops it and exits non-zero), as
/// Agave's validator exits on any panic: half a pipeline must not keep accepting work. The
/// default hook still prints the message and location first.
fn exit_on_panic(health: Arc<telemetry::Health>) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let thread = std::thread::current();
        let why = format!(
            "panicked: {}",
            telemetry::health::panic_message(info.payload())
        );
        health.fail(thread.name().unwrap_or("(unnamed thread)"), &why);
    }));
}
