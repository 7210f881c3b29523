//! `gigacompute nic list|stats`: the raw ports of a running appliance, read from its shared
//! metrics region (another process; the appliance does no work for it).

use appliance::metrics::MetricsRegion;
use dataplane::nic::{PortSlot, QueueCounters, get};
use serde_json::{Value, json};
use std::fmt::Write as _;
use telemetry::CounterSet;

#[derive(clap::Subcommand, Clone, Copy)]
pub enum NicCommand {
    /// Ports: name, driver, MAC, link, queues, RSS, address.
    List {
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Counters: the device's (per port) and the RX lcores' (per queue), drops by reason.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: NicCommand, r: &MetricsRegion) -> String {
    let ports = r.nic.slots();
    match cmd {
        NicCommand::List { json: true } => json!({ "ports": ports.iter().map(port_json).collect::<Vec<_>>() }).to_string(),
        NicCommand::Stats { json: true } => json!({ "ports": ports.iter().map(stats_json).collect::<Vec<_>>() }).to_string(),
        _ if ports.is_empty() => {
            "no DPDK ports: this appliance receives on its kernel UDP socket only ([dpdk] enabled = false)".into()
        }
        NicCommand::List { .. } => list_table(ports),
        NicCommand::Stats { .. } => stats_table(ports),
    }
}

fn rss_names(hf: u64) -> String {
    if hf == 0 {
        return "off".into();
    }
    let mut v = Vec::new();
    if hf & (1 << 2) != 0 {
        v.push("ipv4");
    }
    if hf & (1 << 5) != 0 {
        v.push("ipv4-udp");
    }
    let rest = hf & !((1 << 2) | (1 << 5));
    let mut s = v.join("+");
    if rest != 0 {
        let _ = write!(s, "+{rest:#x}");
    }
    s
}

fn link(p: &PortSlot) -> String {
    if get(&p.link_up) == 0 {
        return "down".into();
    }
    format!(
        "up {} Mb/s {}",
        get(&p.link_speed_mbps),
        if get(&p.link_full_duplex) == 1 {
            "full"
        } else {
            "half"
        }
    )
}

fn address(p: &PortSlot) -> String {
    let ip = std::net::Ipv4Addr::from(get(&p.ipv4) as u32);
    format!("{ip}:{}", get(&p.udp_port))
}

fn port_json(p: &PortSlot) -> Value {
    json!({
        "port_id": get(&p.port_id),
        "name": p.name.get(),
        "driver": p.driver.get(),
        "mac": p.mac_string(),
        "in_use": get(&p.in_use) == 1,
        "link_up": get(&p.link_up) == 1,
        "link_speed_mbps": get(&p.link_speed_mbps),
        "full_duplex": get(&p.link_full_duplex) == 1,
        "mtu": get(&p.mtu),
        "promiscuous": get(&p.promiscuous) == 1,
        "rx_queues": get(&p.rx_queues),
        "tx_queues": get(&p.tx_queues),
        "rx_descriptors": get(&p.rx_descriptors),
        "tx_descriptors": get(&p.tx_descriptors),
        "rss_hf": get(&p.rss_hf),
        "rss": rss_names(get(&p.rss_hf)),
        "rss_key_len": get(&p.rss_key_len),
        "address": address(p),
        "mbufs_total": get(&p.mbufs_total),
    })
}

/// (key, count) pairs as a JSON object.
fn pairs_json(pairs: impl Iterator<Item = (&'static str, u64)>) -> serde_json::Map<String, Value> {
    pairs.map(|(k, v)| (k.to_string(), json!(v))).collect()
}

/// A queue's declared counters (field names are the keys) and its drops by reason.
fn queue_json(q: &QueueCounters) -> Value {
    let mut o = pairs_json(q.fields());
    o.insert(
        "frame_drops".into(),
        pairs_json(q.frame_drops_by_reason()).into(),
    );
    o.insert(
        "parse_drops".into(),
        pairs_json(q.parse_drops_by_reason()).into(),
    );
    o.into()
}

/// A port's declared counters, its name and the stats copy's time, and its queues.
fn stats_json(p: &PortSlot) -> Value {
    let n = p.queue_count();
    let mut o = pairs_json(p.fields());
    o.insert("name".into(), json!(p.name.get()));
    o.insert("in_use".into(), json!(get(&p.in_use) == 1));
    o.insert("stats_unix_s".into(), json!(get(&p.stats_unix_s)));
    let queues: Vec<Value> = (0..n)
        .map(|i| {
            let mut q = queue_json(&p.queues[i]);
            q["index"] = json!(i);
            q["hw_packets"] = json!(get(&p.q_ipackets[i]));
            q["hw_bytes"] = json!(get(&p.q_ibytes[i]));
            q["hw_errors"] = json!(get(&p.q_errors[i]));
            q
        })
        .collect();
    o.insert("queues".into(), queues.into());
    o.into()
}

fn list_table(ports: &[PortSlot]) -> String {
    let mut s = format!(
        "{:<4} {:<20} {:<12} {:<17} {:<22} {:>3} {:>3} {:<14} {:>5}  {}\n",
        "ID", "NAME", "DRIVER", "MAC", "LINK", "RXQ", "TXQ", "RSS", "MTU", "ADDRESS"
    );
    for p in ports {
        let used = get(&p.in_use) == 1;
        let _ = writeln!(
            s,
            "{:<4} {:<20} {:<12} {:<17} {:<22} {:>3} {:>3} {:<14} {:>5}  {}",
            get(&p.port_id),
            p.name.get(),
            p.driver.get(),
            p.mac_string(),
            if used { link(p) } else { "-".into() },
            get(&p.rx_queues),
            get(&p.tx_queues),
            if used {
                rss_names(get(&p.rss_hf))
            } else {
                "-".into()
            },
            get(&p.mtu),
            if used {
                address(p)
            } else {
                "(not used)".into()
            },
        );
    }
    s
}

/// Per port: the device's declared counters on one line, then one row per queue with every
/// declared queue counter as a column, then drops by reason.
fn stats_table(ports: &[PortSlot]) -> String {
    let mut s = String::new();
    let columns = QueueCounters::COUNTERS;
    let width = |field: &str| field.len().max(9);
    for p in ports.iter().filter(|p| get(&p.in_use) == 1) {
        let _ = write!(s, "port {} ({}):", p.name.get(), p.driver.get());
        for (k, v) in p.fields() {
            let _ = write!(s, " {k} {v}");
        }
        let _ = write!(s, "\n  {:>5}", "QUEUE");
        for c in columns {
            let _ = write!(s, " {:>w$}", c.field.to_uppercase(), w = width(c.field));
        }
        let _ = writeln!(s, " {:>10} {:>10}", "FRAME_DROP", "PARSE_DROP");
        let mut reasons: Vec<(String, u64)> = Vec::new();
        for (i, q) in p.queues[..p.queue_count()].iter().enumerate() {
            let _ = write!(s, "  {i:>5}");
            for c in columns {
                let _ = write!(s, " {:>w$}", c.value(q), w = width(c.field));
            }
            let frame: u64 = q.frame_drops.iter().map(get).sum();
            let parse: u64 = q.parse_drops.iter().map(get).sum();
            let _ = writeln!(s, " {frame:>10} {parse:>10}");
            for (r, n) in q
                .frame_drops_by_reason()
                .chain(q.parse_drops_by_reason())
                .filter(|(_, n)| *n > 0)
            {
                reasons.push((format!("queue {i} {r}"), n));
            }
        }
        if !reasons.is_empty() {
            let _ = writeln!(s, "  drops by reason:");
            for (r, n) in reasons {
                let _ = writeln!(s, "    {r:<40} {n}");
            }
        }
    }
    s
}
