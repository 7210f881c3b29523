//! Scale-out: signature subscriptions for transactions another node runs (a client subscribes
//! at the node it talks to, and the transaction goes to its accounts' owner). The notifier
//! answers what runs here; thread `gc-pubsub-peers`, every [`POLL_EVERY`], looks up the
//! signatures still awaited (at most [`MAX_PER_CALL`] a tick, a window that moves on) in this
//! node's records of other nodes' transactions (a replica, a partition moved here: after a
//! failover the node that ran them is gone), then asks the other nodes that own partitions at
//! once, one `getSignatureStatuses` call each. Each subscription is answered once its level is
//! reached (processed: any status; confirmed and finalized: a durable one), once.

use super::subscriptions::{Kind, Level, Registry, SubId};
use cluster::ClusterView;
use parking_lot::Mutex;
use runtime::chain::ChainState;
use serde_json::{Value, json};
use solana_signature::Signature;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the peers are asked: a remote answer comes at most this much after the owner's.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Signatures asked of one peer per tick, at most (Agave's getSignatureStatuses limit).
const MAX_PER_CALL: usize = 256;

/// A status a peer reported: its slot, its error as JSON, whether it is durable there.
struct Found {
    slot: u64,
    err: Value,
    durable: bool,
}

pub struct RemoteSignatures {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RemoteSignatures {
    pub fn start(
        view: Arc<ClusterView>,
        registry: Arc<Mutex<Registry>>,
        chain: Arc<ChainState>,
        max_response_bytes: usize,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gc-pubsub-peers".into())
            .spawn(move || {
                let mut poller = Poller {
                    view,
                    registry,
                    chain,
                    max_response_bytes,
                    received_sent: HashSet::new(),
                    cursor: 0,
                };
                while !s.load(Ordering::Relaxed) {
                    poller.tick();
                    std::thread::sleep(POLL_EVERY);
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for RemoteSignatures {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Poller {
    view: Arc<ClusterView>,
    registry: Arc<Mutex<Registry>>,
    chain: Arc<ChainState>,
    max_response_bytes: usize,
    /// Subscriptions sent "receivedSignature" already (they wait for a durable status).
    received_sent: HashSet<SubId>,
    cursor: usize,
}

impl Poller {
    fn tick(&mut self) {
        // Awaited: subscribed to, and not run here (the notifier answers those); beyond
        // MAX_PER_CALL, a window that moves on each tick.
        let awaited: Vec<Signature> = {
            let r = self.registry.lock();
            self.received_sent.retain(|id| r.subs.contains_key(id));
            let all: Vec<Signature> = r
                .by_signature
                .keys()
                .filter(|s| self.chain.status(s).is_none())
                .copied()
                .collect();
            let start = if all.is_empty() {
                0
            } else {
                self.cursor % all.len()
            };
            self.cursor = start + MAX_PER_CALL;
            all.iter()
                .cycle()
                .skip(start)
                .take(all.len().min(MAX_PER_CALL))
                .copied()
                .collect()
        };
        if awaited.is_empty() {
            return;
        }
        let mut found: HashMap<Signature, Found> = HashMap::new();
        for sig in &awaited {
            if let Some((f, c)) = self.chain.foreign_status(sig) {
                let durable = c != runtime::chain::Commitment::Processed;
                let err = crate::encode::tx_error(&f.err);
                found.insert(
                    *sig,
                    Found {
                        slot: f.slot,
                        err,
                        durable,
                    },
                );
            }
        }
        let ask: Vec<String> = awaited
            .iter()
            .filter(|s| !found.get(s).is_some_and(|f| f.durable))
            .map(ToString::to_string)
            .collect();
        // The nodes that own partitions: one of them ran it, or holds it since a failover.
        let snap = self.view.snapshot();
        let owners: std::collections::BTreeSet<&str> = snap
            .map
            .as_ref()
            .map(|m| m.owners.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let peers: Vec<SocketAddr> = snap
            .nodes
            .values()
            .filter(|n| n.id != self.view.me() && owners.contains(n.id.as_str()))
            .map(|n| n.rpc)
            .collect();
        if !ask.is_empty() && !peers.is_empty() {
            let params = json!([ask]);
            let (view, max_bytes) = (&*self.view, self.max_response_bytes);
            // At once: the tick waits for its slowest peer (each within the peer timeout).
            let answers: Vec<Option<Value>> = std::thread::scope(|s| {
                let running: Vec<_> = peers
                    .iter()
                    .map(|addr| {
                        let params = &params;
                        s.spawn(move || {
                            let method = "getSignatureStatuses";
                            crate::forward::post(view, *addr, method, params, max_bytes).ok()
                        })
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|t| t.join().ok().flatten())
                    .collect()
            });
            // A peer that does not answer is asked again next tick.
            for answer in answers.into_iter().flatten() {
                let Some(values) = answer.get("value").and_then(Value::as_array) else {
                    continue;
                };
                for (sig, v) in ask.iter().zip(values) {
                    let (Ok(sig), Some(slot)) =
                        (sig.parse(), v.get("slot").and_then(Value::as_u64))
                    else {
                        continue;
                    };
                    let durable = matches!(
                        v.get("confirmationStatus").and_then(Value::as_str),
                        Some("confirmed" | "finalized")
                    );
                    if found.get(&sig).is_some_and(|f| f.durable || !durable) {
                        continue;
                    }
                    let err = v.get("err").cloned().unwrap_or(Value::Null);
                    found.insert(sig, Found { slot, err, durable });
                }
            }
        }
        if !found.is_empty() {
            self.answer(&found);
        }
    }

    fn answer(&mut self, found: &HashMap<Signature, Found>) {
        let mut r = self.registry.lock();
        for (sig, f) in found {
            let Some(ids) = r.by_signature.get(sig) else {
                continue; // unsubscribed meanwhile
            };
            let context = format!(r#"{{"slot":{}}}"#, f.slot);
            let result = format!(r#"{{"context":{context},"value":{{"err":{}}}}}"#, f.err);
            let ids: Vec<SubId> = ids.iter().copied().collect();
            for id in ids {
                let Some((_, sub)) = r.subs.get(&id) else {
                    continue;
                };
                let Kind::Signature { received, .. } = sub.kind else {
                    continue;
                };
                let done = sub.level == Level::Processed || f.durable;
                if received && self.received_sent.insert(id) {
                    r.notify(
                        id,
                        &format!(r#"{{"context":{context},"value":"receivedSignature"}}"#),
                    );
                }
                if done {
                    r.notify(id, &result);
                    r.remove(id);
                    self.received_sent.remove(&id);
                }
            }
        }
    }
}
