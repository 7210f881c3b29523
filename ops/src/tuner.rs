//! `gigacompute tuner status`: what the self-tuning runtime is doing and why. Reads the running
//! appliance's metrics region (the knobs now, the reward estimates the last choice rested on)
//! and `DATA_DIR/tuner/` (what it learnt per kind of workload, every change and its measured
//! effect); with the node stopped, the files alone.

use appliance::Config;
use appliance::metrics::MetricsRegion;
use runtime::tuner::metrics::{EstimateGauges, TunerState};
use runtime::tuner::{Knob, Knobs, files, window};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// Change records shown.
const CHANGES_SHOWN: usize = 20;

pub fn status(cfg: &Config, region: Option<&MetricsRegion>, as_json: bool) -> String {
    let dir = cfg.data_dir.join("tuner");
    let configured = Knobs::configured(&cfg.runtime, &cfg.scheduler);
    let policy: Option<Value> = files::load_policy(&dir)
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok());
    let changes = files::read_changes(&dir, CHANGES_SHOWN);
    let live = region.map(|r| live_json(&r.runtime.tuner));
    let learnt = policy.as_ref().map(|p| learnt_json(p, &configured));
    let doc = json!({
        "mode": cfg.tuner.mode.name(),
        "running": region.is_some(),
        "live": live,
        "policy": learnt,
        "changes": changes,
        "restart_only": { "workers": cfg.runtime.workers, "verify_tiles": cfg.verify.tiles, "slot_ms": cfg.runtime.slot_ms },
    });
    if as_json {
        return doc.to_string();
    }
    text(&doc)
}

fn estimate(e: &EstimateGauges) -> Value {
    if e.n.get() <= 0.0 {
        return Value::Null;
    }
    json!({ "mean": e.mean.get(), "sd": e.sd.get(), "n": e.n.get() })
}

fn live_json(t: &runtime::tuner::metrics::TunerCounters) -> Value {
    let state = t.state.load(Relaxed) as usize;
    let knobs: Vec<Value> = Knob::ALL
        .iter()
        .map(|k| {
            let g = t.knob(*k);
            json!({
                "knob": k.name(), "value": g.value.get(), "default": g.default.get(),
                "enabled": g.enabled.load(Relaxed) == 1,
                "current": estimate(&g.current), "lower": estimate(&g.lower), "higher": estimate(&g.higher),
            })
        })
        .collect();
    let cluster = t.cluster.load(Relaxed) as usize;
    json!({
        "state": TunerState::NAMES.get(state).copied().unwrap_or("unknown"),
        "cluster": window::cluster_name(cluster),
        "window_reward_cu_per_s": t.window_reward.load(Relaxed),
        "default_reward_cu_per_s": t.default_reward.load(Relaxed),
        "window_p99_us": t.window_p99_us.load(Relaxed),
        "windows": {
            "explore": t.windows_explore.load(Relaxed), "exploit": t.windows_exploit.load(Relaxed),
            "hold": t.windows_hold.load(Relaxed), "idle": t.windows_idle.load(Relaxed),
            "anchor": t.windows_anchor.load(Relaxed),
        },
        "changes": t.changes.load(Relaxed),
        "reverts": { "reward": t.reverts_reward.load(Relaxed), "latency": t.reverts_latency.load(Relaxed) },
        "policy_writes": t.policy_writes.load(Relaxed),
        "policy_rejected": t.policy_rejected.load(Relaxed),
        "io_dropped": t.io_dropped.load(Relaxed),
        "knobs": knobs,
    })
}

/// The saved policy per kind of workload: the best setting found, as knob values.
fn learnt_json(p: &Value, configured: &Knobs) -> Value {
    let names: Vec<&str> = p["knobs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let values = |levels: &Value| -> Value {
        let mut m = serde_json::Map::new();
        for (name, level) in names.iter().zip(levels.as_array().into_iter().flatten()) {
            if let (Some(k), Some(i)) = (Knob::from_name(name), level.as_u64()) {
                let (lattice, _) = k.lattice(configured);
                if let Some(v) = lattice.get(i as usize) {
                    m.insert(k.name().into(), json!(v));
                }
            }
        }
        Value::Object(m)
    };
    let pol = &p["policy"];
    let clusters: Vec<Value> = pol["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "cluster": window::cluster_name(c["cluster"].as_u64().unwrap_or(0) as usize),
                "windows": c["windows"], "default_reward_cu_per_s": c["mu_default"],
                "best": values(&c["incumbent"]),
                "settings_measured": c["settings"].as_array().map_or(0, Vec::len),
            })
        })
        .collect();
    json!({
        "saved_unix_ms": p["saved_unix_ms"], "windows": pol["windows"],
        "current": values(&pol["current"]), "clusters": clusters,
    })
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x}"),
        Some(x) => format!("{x:.3}"),
        None => "-".into(),
    }
}

fn est(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    format!(
        "x{:.2}±{:.2} ({:.1})",
        v["mean"].as_f64().unwrap_or(0.0),
        v["sd"].as_f64().unwrap_or(0.0),
        v["n"].as_f64().unwrap_or(0.0)
    )
}

fn text(doc: &Value) -> String {
    let mut s = String::new();
    let live = &doc["live"];
    if live.is_null() {
        let _ = writeln!(
            s,
            "tuner: mode {} (node not running: from its files)",
            doc["mode"].as_str().unwrap_or("?")
        );
    } else {
        let w = &live["windows"];
        let _ = writeln!(
            s,
            "tuner: {}   workload {}   windows: explore {} exploit {} hold {} idle {} anchor {}",
            live["state"].as_str().unwrap_or("?"),
            live["cluster"].as_str().unwrap_or("?"),
            w["explore"],
            w["exploit"],
            w["hold"],
            w["idle"],
            w["anchor"]
        );
        let (r, d) = (
            live["window_reward_cu_per_s"].as_f64().unwrap_or(0.0),
            live["default_reward_cu_per_s"].as_f64().unwrap_or(0.0),
        );
        let ratio = if d > 0.0 {
            format!(" = x{:.2}", r / d)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "last window {r:.3e} CU/s{ratio} (configured values expected {d:.3e})   p99 {} us   changes {}   reverts: reward {} latency {}",
            live["window_p99_us"],
            live["changes"],
            live["reverts"]["reward"],
            live["reverts"]["latency"]
        );
        let _ = writeln!(
            s,
            "{:<26}{:>9}{:>9}  estimates (x configured ± sd, windows): one level lower | now | one level higher",
            "knob", "now", "default"
        );
        for k in live["knobs"].as_array().into_iter().flatten() {
            let tuned = if k["enabled"].as_bool() == Some(true) {
                ""
            } else {
                " (not tuned)"
            };
            let _ = writeln!(
                s,
                "{:<26}{:>9}{:>9}  {} | {} | {}{tuned}",
                k["knob"].as_str().unwrap_or("?"),
                num(&k["value"]),
                num(&k["default"]),
                est(&k["lower"]),
                est(&k["current"]),
                est(&k["higher"])
            );
        }
    }
    let p = &doc["policy"];
    if p.is_null() {
        let _ = writeln!(s, "no saved policy (DATA_DIR/tuner/policy.json)");
    } else {
        let _ = writeln!(
            s,
            "learnt over {} windows; best setting per workload:",
            p["windows"]
        );
        for c in p["clusters"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {:<16} {} windows, configured values earn {} CU/s, best {}",
                c["cluster"].as_str().unwrap_or("?"),
                c["windows"],
                num(&c["default_reward_cu_per_s"]),
                c["best"]
            );
        }
    }
    let changes = doc["changes"].as_array().cloned().unwrap_or_default();
    if !changes.is_empty() {
        let _ = writeln!(s, "changes (newest first)");
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let age = |c: &Value| match c["unix_ms"].as_u64() {
        Some(t) if t <= now_ms => format!("{:>7.1}s ago", (now_ms - t) as f64 / 1e3),
        _ => format!("{:>11}", "-"),
    };
    for c in changes.iter().rev() {
        if c.get("measured_change").is_some() {
            let _ = writeln!(
                s,
                "  {} w{:<6} measured: {} CU/s = x{} of configured, p99 {} us",
                age(c),
                c["window"],
                num(&c["reward_cu_per_s"]),
                num(&c["vs_default"]),
                c["p99_us"]
            );
        } else {
            let _ = writeln!(
                s,
                "  {} w{:<6} {:<14} {:<14} {} -> {}   (draw x{} vs best x{}; window before x{})",
                age(c),
                c["window"],
                c["reason"].as_str().unwrap_or("?"),
                c["cluster"].as_str().unwrap_or("?"),
                c["from"],
                c["to"],
                num(&c["sample"]),
                num(&c["incumbent_mean"]),
                num(&c["vs_default"])
            );
        }
    }
    let r = &doc["restart_only"];
    let _ = write!(
        s,
        "restart-only (out of the tuner's reach): workers {}, verify.tiles {}, slot_ms {}",
        r["workers"], r["verify_tiles"], r["slot_ms"]
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_a_region_and_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        // Nothing yet: no region, no files.
        let out = status(&cfg, None, false);
        assert!(
            out.contains("node not running") && out.contains("no saved policy"),
            "{out}"
        );
        let tdir = dir.path().join("tuner");
        std::fs::create_dir_all(&tdir).unwrap();
        files::save_policy(
            &tdir,
            r#"{"saved_unix_ms":1,"knobs":["admit_burst","batch_max"],"policy":{"windows":40,"current":[2,3],"clusters":[{"cluster":1,"mu_default":1.0e8,"windows":30,"incumbent":[2,3],"settings":[]}]}}"#,
        )
        .unwrap();
        files::append_change(&tdir, r#"{"window":7,"reason":"explore","cluster":"bpf","from":{"batch_max":64},"to":{"batch_max":128},"sample":1.1,"incumbent_mean":1.0,"vs_default":1.0}"#).unwrap();
        files::append_change(&tdir, r#"{"window":8,"measured_change":7,"reward_cu_per_s":1.1e8,"vs_default":1.1,"p99_us":900}"#).unwrap();
        let region: &'static MetricsRegion = telemetry::SharedRegion::private();
        let t = &region.runtime.tuner;
        t.set_state(TunerState::Learning);
        t.knob(Knob::BatchMax).value.set(128.0);
        t.knob(Knob::BatchMax).default.set(64.0);
        t.knob(Knob::BatchMax).current.n.set(3.0);
        t.knob(Knob::BatchMax).current.mean.set(1.1);
        let out = status(&cfg, Some(region), false);
        assert!(out.contains("tuner: learning"), "{out}");
        assert!(out.contains("x1.10±0.00 (3.0)"), "{out}");
        assert!(
            out.contains("\"admit_burst\":256.0") || out.contains("\"admit_burst\":256"),
            "{out}"
        );
        assert!(out.contains("explore") && out.contains("measured"), "{out}");
        let doc: Value = serde_json::from_str(&status(&cfg, Some(region), true)).unwrap();
        assert_eq!(doc["live"]["state"], "learning");
        assert_eq!(doc["policy"]["clusters"][0]["cluster"], "bpf");
        assert_eq!(doc["policy"]["clusters"][0]["best"]["batch_max"], 128.0);
        assert_eq!(doc["changes"].as_array().unwrap().len(), 2);
    }
}
