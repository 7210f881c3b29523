//! JSON-RPC and PubSub under load, through the real servers on loopback:
//! - `getAccountInfo` and `getMultipleAccounts` (100 keys) requests per second from many
//!   concurrent keep-alive HTTP clients, each asking for random funded accounts;
//! - the latency from a slot becoming confirmed (durable: the commit's fdatasync returned) to
//!   the `signatureSubscribe` notification of a transaction in it reaching a WebSocket client,
//!   while transfers arrive at a steady rate ("half load": by default 10,000 tx/s, about half
//!   of what the 2-core dev VM commits with these servers and clients in the same process;
//!   at 20,000 tx/s transactions are already dropped there).
//!
//! The clients run in the same process on the same cores as the node: on a small machine they
//! take CPU the servers would otherwise have, so the request rates are a floor.

use super::{Line, Plot, Report, Rows, median, percentile, pipeline, workload};
use clap::Args;
use solana_signer::Signer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct RpcArgs {
    /// Concurrent HTTP clients (keep-alive connections), each one request at a time.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds each request rate is measured for.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Transfers per second while notifications are timed.
    #[arg(long, default_value_t = 10_000)]
    pub tps: u64,
    /// Transactions whose signature is subscribed (spread over the load, 1,000 per WebSocket).
    #[arg(long, default_value_t = 2_000)]
    pub subscriptions: usize,
    /// Runs; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long)]
    pub json: bool,
}

/// Funded accounts the readers ask for.
const READ_ACCOUNTS: usize = 10_000;
const SUBSCRIPTIONS_PER_SOCKET: usize = 1_000;

struct Run {
    get_account_info_rps: f64,
    get_multiple_accounts_rps: f64,
    /// Notifications at `--tps`.
    main: Notified,
    /// At a fifth and a half of `--tps` (last run only).
    sweep: Vec<Notified>,
}

/// One keep-alive HTTP/1.1 connection posting JSON-RPC bodies.
struct HttpClient {
    stream: BufReader<TcpStream>,
    host: String,
}

impl HttpClient {
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(s),
            host: addr.to_string(),
        })
    }

    /// Posts `body`; the response body.
    fn post(&mut self, body: &str) -> std::io::Result<Vec<u8>> {
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes())?;
        let mut len = None;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let mut out = vec![0; len.ok_or(std::io::ErrorKind::InvalidData)?];
        self.stream.read_exact(&mut out)?;
        Ok(out)
    }
}

/// Requests per second `clients` connections complete in `seconds`, each body from `body(i)`.
fn request_rate(
    addr: SocketAddr,
    clients: usize,
    seconds: u64,
    body: impl Fn(u64) -> String + Sync,
) -> anyhow::Result<f64> {
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (done, failed, body) = (&done, &failed, &body);
            s.spawn(move || {
                let Ok(mut http) = HttpClient::connect(addr) else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let mut i = c as u64 * 7919;
                while Instant::now() < deadline {
                    i += 1;
                    match http.post(&body(i)) {
                        Ok(r) if !r.windows(8).any(|w| w == b"\"error\":") => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
    let failed = failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} clients failed");
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

fn ws_connect(addr: SocketAddr) -> anyhow::Result<tungstenite::WebSocket<TcpStream>> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let (ws, _) = tungstenite::client::client(format!("ws://{addr}/"), stream)
        .map_err(|e| anyhow::anyhow!("WebSocket handshake: {e}"))?;
    Ok(ws)
}

/// Subscribes `sigs` (confirmed) on one WebSocket, then reads notifications until `stop`,
/// recording for each the microseconds since its slot became durable.
fn subscriber(
    addr: SocketAddr,
    sigs: Vec<String>,
    chain: Arc<runtime::chain::ChainState>,
    ready: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<u64>>>,
) -> anyhow::Result<()> {
    let mut ws = ws_connect(addr)?;
    for (i, sig) in sigs.iter().enumerate() {
        let req = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"signatureSubscribe","params":["{sig}",{{"commitment":"confirmed"}}]}}"#
        );
        ws.send(tungstenite::Message::text(req))?;
    }
    let mut acked = 0;
    while acked < sigs.len() {
        if let tungstenite::Message::Text(t) = ws.read()? {
            anyhow::ensure!(!t.contains("\"error\""), "subscription refused: {t}");
            acked += 1;
        }
    }
    ready.fetch_add(1, Ordering::Relaxed);
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut got = Vec::new();
    while !stop.load(Ordering::Relaxed) && got.len() < sigs.len() {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let now = dataplane::monotonic_ns();
        let tungstenite::Message::Text(t) = msg else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&t)?;
        if let Some(slot) = v
            .pointer("/params/result/context/slot")
            .and_then(serde_json::Value::as_u64)
            && let Some(durable) = chain.durable_at(slot)
        {
            got.push(now.saturating_sub(durable) / 1_000);
        }
    }
    out.lock().expect("not poisoned").extend(got);
    Ok(())
}

/// Latencies of one notification phase (µs, durable -> client), sorted.
struct Notified {
    latencies: Vec<u64>,
    /// Notified of subscribed.
    fraction: f64,
    /// Transfers committed per second over the phase.
    load_tps: f64,
}

impl Notified {
    fn percentile(&self, q: f64) -> f64 {
        percentile(&mut self.latencies.clone(), q)
    }
}

/// Subscribes to a sample of `payers`' transfers, sends the transfers at `tps` and collects
/// each notification's latency from its slot becoming durable.
fn notify_phase(
    node: &appliance::node::Node,
    pubsub: SocketAddr,
    payers: &[solana_keypair::Keypair],
    tps: u64,
    subscriptions: usize,
) -> anyhow::Result<Notified> {
    let n = payers.len();
    let txs = pipeline::signed(payers, workload::latest_blockhash(node)?);
    let every = (n / subscriptions.max(1)).max(1);
    let sampled: Vec<String> = txs
        .iter()
        .step_by(every)
        .map(|t| bs58::encode(&t[1..65]).into_string())
        .collect();
    let subscribed = sampled.len();
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let subscribers: Vec<_> = sampled
        .chunks(SUBSCRIPTIONS_PER_SOCKET)
        .map(|part| {
            let (chain, ready, stop, out) = (
                node.runtime.chain.clone(),
                ready.clone(),
                stop.clone(),
                latencies.clone(),
            );
            let part = part.to_vec();
            std::thread::spawn(move || subscriber(pubsub, part, chain, ready, stop, out))
        })
        .collect();
    let sockets = subscribers.len() as u64;
    let wait = Instant::now() + Duration::from_secs(30);
    while ready.load(Ordering::Relaxed) < sockets && Instant::now() < wait {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rt = node.runtime.counters;
    let committed_before = rt.committed.load(Ordering::Relaxed);
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(node.tpu_addr)?;
    let start = Instant::now();
    for (i, burst) in txs.chunks(16).enumerate() {
        let due = start + Duration::from_secs_f64((i * 16) as f64 / tps as f64);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        pipeline::send_burst(&sock, burst)?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while rt.committed.load(Ordering::Relaxed) - committed_before < n as u64
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let load_tps = (rt.committed.load(Ordering::Relaxed) - committed_before) as f64
        / start.elapsed().as_secs_f64();
    // The last notifications follow the last commit within a slot or two.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for s in subscribers {
        s.join()
            .map_err(|_| anyhow::anyhow!("subscriber panicked"))??;
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    latencies.sort_unstable();
    Ok(Notified {
        fraction: latencies.len() as f64 / subscribed.max(1) as f64,
        latencies,
        load_tps,
    })
}

fn one_run(a: &RpcArgs, last: bool) -> anyhow::Result<Run> {
    // Payers for the transfers of the phase at `--tps` and, in the last run, at a fifth and a
    // half of it; the first READ_ACCOUNTS of them are also what the readers ask for.
    let n = (a.tps * a.seconds) as usize * 17 / 10 + 2;
    let health = telemetry::Health::new();
    let _scope = health.enter();
    let funded = workload::funded_node(n.max(READ_ACCOUNTS), |cfg| {
        cfg.rpc.bind = "127.0.0.1:0".parse().expect("address");
        cfg.pubsub.bind = "127.0.0.1:0".parse().expect("address");
        cfg.metrics.enabled = false;
        cfg.faucet.enabled = false;
    })?;
    let (node, payers) = (funded.node, funded.payers);
    let rpc = Arc::new(rpc::Rpc::for_node(&node, health.clone()));
    let c = &node.config;
    let server = rpc::RpcServer::start(rpc, c.rpc.bind, c.rpc.threads, c.rpc.limits())?;
    let pubsub = rpc::PubSubServer::start(
        node.runtime.chain.clone(),
        node.runtime.db.clone(),
        node.metrics,
        &c.pubsub,
        &c.rpc,
        node.runtime.preconf_feed.clone(),
        None,
    )?;
    let keys: Vec<String> = payers[..READ_ACCOUNTS]
        .iter()
        .map(|p| p.pubkey().to_string())
        .collect();

    let get_account_info_rps = request_rate(server.addr, a.clients, a.seconds, |i| {
        let k = &keys[(i.wrapping_mul(2654435761) % READ_ACCOUNTS as u64) as usize];
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"getAccountInfo","params":["{k}",{{"encoding":"base64"}}]}}"#
        )
    })?;
    let get_multiple_accounts_rps = request_rate(server.addr, a.clients, a.seconds, |i| {
        let start = (i.wrapping_mul(2654435761) % (READ_ACCOUNTS as u64 - 100)) as usize;
        let list = keys[start..start + 100]
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"getMultipleAccounts","params":[[{list}],{{"encoding":"base64"}}]}}"#
        )
    })?;

    // Notifications under a steady transfer load: the figures at `--tps`; in the last run also
    // at a fifth and a half of it, for the latency-vs-load chart.
    let mut payers = &payers[..];
    let mut phase = |tps: u64| -> anyhow::Result<Notified> {
        let n = (tps * a.seconds) as usize;
        let (mine, rest) = payers
            .split_at_checked(n)
            .ok_or_else(|| anyhow::anyhow!("{n} payers wanted, {} left", payers.len()))?;
        payers = rest;
        notify_phase(&node, pubsub.addr, mine, tps, a.subscriptions)
    };
    let main = phase(a.tps)?;
    let sweep = if last {
        vec![phase((a.tps / 5).max(1))?, phase((a.tps / 2).max(1))?]
    } else {
        Vec::new()
    };
    let run = Run {
        get_account_info_rps,
        get_multiple_accounts_rps,
        main,
        sweep,
    };
    pubsub.shutdown();
    server.shutdown();
    node.shutdown();
    Ok(run)
}

pub fn run(a: &RpcArgs) -> anyhow::Result<Report> {
    let runs_n = a.runs.max(1);
    let runs: Vec<Run> = (0..runs_n)
        .map(|i| one_run(a, i + 1 == runs_n))
        .collect::<anyhow::Result<_>>()?;
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let sweep = &runs[runs_n - 1].sweep;
    let sweep_p99 = |i: usize| sweep.get(i).map_or(f64::NAN, |s| s.percentile(0.99));
    let rows: Rows = vec![
        (
            "get_account_info_rps",
            m(&|r| r.get_account_info_rps),
            "req/s",
        ),
        (
            "get_multiple_accounts_rps",
            m(&|r| r.get_multiple_accounts_rps),
            "req/s (100 keys)",
        ),
        (
            "notify_p50_us",
            m(&|r| r.main.percentile(0.50)),
            "µs durable → client",
        ),
        (
            "notify_p99_us",
            m(&|r| r.main.percentile(0.99)),
            "µs durable → client",
        ),
        (
            "notified_fraction",
            m(&|r| r.main.fraction),
            "of subscribed",
        ),
        ("load_tps", m(&|r| r.main.load_tps), "tx/s committed"),
        (
            "notify_p99_us_fifth_load",
            sweep_p99(0),
            "µs at a fifth of --tps (last run)",
        ),
        (
            "notify_p99_us_half_load",
            sweep_p99(1),
            "µs at half of --tps (last run)",
        ),
        ("clients", a.clients as f64, "connections"),
    ];
    let last = &runs[runs_n - 1];
    let mut by_load: Vec<&Notified> = sweep.iter().chain([&last.main]).collect();
    by_load.sort_by(|x, y| x.load_tps.total_cmp(&y.load_tps));
    let vs_load = |q: f64| -> Vec<(f64, f64)> {
        by_load
            .iter()
            .map(|p| (p.load_tps, p.percentile(q)))
            .collect()
    };
    let cdf: Vec<(f64, f64)> = (0..=100)
        .map(|i| {
            let q = i as f64 / 100.0;
            (last.main.percentile(q.max(0.001)) / 1_000.0, q)
        })
        .collect();
    Ok(Report {
        rows,
        plots: vec![
            Plot {
                id: "notify-vs-load",
                title: "signatureSubscribe: durable → client latency vs load".into(),
                x_label: "transfers committed per second",
                y_label: "latency (µs)",
                lines: vec![
                    Line {
                        label: "p50".into(),
                        points: vs_load(0.50),
                    },
                    Line {
                        label: "p99".into(),
                        points: vs_load(0.99),
                    },
                ],
            },
            Plot {
                id: "notify-cdf",
                title: format!(
                    "signatureSubscribe latency CDF at {:.0} tx/s (last run)",
                    last.main.load_tps
                ),
                x_label: "latency, durable → client (ms)",
                y_label: "fraction of notifications",
                lines: vec![Line {
                    label: "notifications".into(),
                    points: cdf,
                }],
            },
        ],
    })
}
