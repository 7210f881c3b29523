//! The notifier tile: turns the chain's events into notifications. A closed slot notifies
//! the processed-level subscriptions (slot, signatures, logs, accounts and programs it wrote)
//! and waits in `pending` until it is durable; a durable slot notifies the confirmed and
//! finalized ones from the same record, and the root subscriptions. Notifications go to
//! each connection's outbox without waiting: a connection whose outbox is over its bound is
//! kicked (counted) and loses its subscriptions, so no subscriber can slow this tile, and
//! this tile cannot slow the chain (its input drops when full, counted by the chain).

use super::subscriptions::{Kind, Level, Registry, SubId, encode_account, passes};
use crate::encode;
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use runtime::chain::{ChainState, SlotHeader, TxStatus};
use runtime::events::ChainEvent;
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use telemetry::{Tile, TileClock, Turn, next_input};

/// Closed slots kept for their durable-level notifications (the commit is at most a few
/// slots behind; more means events were lost, and the oldest go).
const MAX_PENDING: usize = runtime::events::EVENT_QUEUE;

pub struct NotifierTile {
    pub events: Receiver<ChainEvent>,
    pub registry: Arc<Mutex<Registry>>,
    pub chain: Arc<ChainState>,
    pub metrics: &'static appliance::metrics::MetricsRegion,
    pub pending: VecDeque<Slot>,
    pub last_root: u64,
}

/// A closed slot's record, shared by its processed and durable notifications.
pub struct Slot {
    header: SlotHeader,
    statuses: Vec<Arc<TxStatus>>,
    accounts: Arc<Vec<(Pubkey, AccountSharedData)>>,
}

impl Tile for NotifierTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        if stopping {
            return Turn::Done;
        }
        let e = match next_input(&self.events, clock) {
            Ok(e) => e,
            Err(turn) => return turn,
        };
        self.metrics.pubsub_notifier.add_in(1);
        match e {
            ChainEvent::Processed {
                header,
                statuses,
                accounts,
            } => {
                let slot = Slot {
                    header,
                    statuses,
                    accounts,
                };
                self.notify_slot(&slot, Level::Processed);
                if self.pending.len() == MAX_PENDING {
                    self.pending.pop_front();
                }
                self.pending.push_back(slot);
            }
            ChainEvent::Durable { slot } => {
                while self.pending.front().is_some_and(|s| s.header.slot <= slot) {
                    let s = self.pending.pop_front().expect("non-empty");
                    self.notify_slot(&s, Level::Durable);
                }
                self.notify_roots(slot);
            }
        }
        if let Some(events) = self.chain.events() {
            self.metrics
                .endpoints
                .pubsub_events_dropped
                .store(events.dropped.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.metrics
            .endpoints
            .pubsub_subscriptions
            .store(self.registry.lock().len() as u64, Ordering::Relaxed);
        self.metrics.pubsub_notifier.add_out(1);
        clock.busy();
        Turn::Continue
    }
}

impl NotifierTile {
    fn send(&self, r: &mut Registry, id: SubId, result: Value) {
        let e = &self.metrics.endpoints;
        if r.notify(id, result) {
            e.pubsub_notifications.fetch_add(1, Ordering::Relaxed);
        } else if let Some((conn, _)) = r.subs.get(&id).map(|(c, s)| (*c, s.clone())) {
            // Kicked: its session closes the socket; its subscriptions end now.
            e.pubsub_slow_disconnects.fetch_add(1, Ordering::Relaxed);
            r.disconnect(conn);
        }
    }

    fn notify_slot(&self, s: &Slot, level: Level) {
        let mut r = self.registry.lock();
        if r.is_empty() {
            return;
        }
        let slot = s.header.slot;
        let context = json!({"slot": slot});
        if level == Level::Processed {
            let ids: Vec<SubId> = r.slots.iter().copied().collect();
            let info = json!({"parent": slot.saturating_sub(1), "root": self.chain.durable_slot(), "slot": slot});
            for id in ids {
                self.send(&mut r, id, info.clone());
            }
        }
        for st in &s.statuses {
            self.signature(&mut r, st, level, &context);
        }
        if !r.logs.is_empty() {
            for st in &s.statuses {
                self.logs(&mut r, st, level, &context);
            }
        }
        for (key, account) in s.accounts.iter() {
            self.account(&mut r, key, account, level, &context);
        }
    }

    fn matching(r: &Registry, ids: Option<&ahash::HashSet<SubId>>, level: Level) -> Vec<SubId> {
        ids.into_iter()
            .flatten()
            .copied()
            .filter(|id| r.subs.get(id).is_some_and(|(_, s)| s.level == level))
            .collect()
    }

    fn signature(&self, r: &mut Registry, st: &TxStatus, level: Level, context: &Value) {
        let Some(ids) = r.by_signature.get(&st.signature) else {
            return;
        };
        let ids: Vec<SubId> = ids.iter().copied().collect();
        for id in ids {
            let Some((_, sub)) = r.subs.get(&id) else {
                continue;
            };
            let (sub_level, received) = match sub.kind {
                Kind::Signature { received, .. } => (sub.level, received),
                _ => continue,
            };
            if sub_level == level {
                self.send(
                    r,
                    id,
                    json!({"context": context, "value": {"err": encode::tx_error(&st.err)}}),
                );
                r.remove(id); // one-shot, as Agave's
            } else if received && level == Level::Processed {
                self.send(
                    r,
                    id,
                    json!({"context": context, "value": "receivedSignature"}),
                );
            }
        }
    }

    fn logs(&self, r: &mut Registry, st: &TxStatus, level: Level, context: &Value) {
        let ids = Self::matching(r, Some(&r.logs), level);
        if ids.is_empty() {
            return;
        }
        let keys = mentioned(st);
        let value = json!({"context": context, "value": {
            "signature": st.signature.to_string(),
            "err": encode::tx_error(&st.err),
            "logs": st.logs,
        }});
        for id in ids {
            let wanted = match r.subs.get(&id).map(|(_, s)| &s.kind) {
                Some(Kind::Logs(None)) => true,
                Some(Kind::Logs(Some(k))) => keys.contains(k),
                _ => false,
            };
            if wanted {
                self.send(r, id, value.clone());
            }
        }
    }

    fn account(
        &self,
        r: &mut Registry,
        key: &Pubkey,
        a: &AccountSharedData,
        level: Level,
        context: &Value,
    ) {
        for id in Self::matching(r, r.by_account.get(key), level) {
            let Some((_, sub)) = r.subs.get(&id) else {
                continue;
            };
            let Kind::Account(_, format) = sub.kind else {
                continue;
            };
            // An encoding error (base58 of large data) was the client's choice: nothing sent.
            if let Ok(v) = encode_account(&format, a) {
                self.send(r, id, json!({"context": context, "value": v}));
            }
        }
        if a.lamports() == 0 {
            return; // closed: no longer the program's
        }
        for id in Self::matching(r, r.by_program.get(a.owner()), level) {
            let Some((_, sub)) = r.subs.get(&id) else {
                continue;
            };
            let Kind::Program {
                format, filters, ..
            } = &sub.kind
            else {
                continue;
            };
            if !passes(filters, a) {
                continue;
            }
            if let Ok(v) = encode_account(format, a) {
                self.send(
                    r,
                    id,
                    json!({"context": context, "value": {"pubkey": key.to_string(), "account": v}}),
                );
            }
        }
    }

    fn notify_roots(&mut self, durable: u64) {
        let first = (self.last_root + 1).max(durable.saturating_sub(MAX_PENDING as u64 - 1));
        self.last_root = self.last_root.max(durable);
        let mut r = self.registry.lock();
        if r.roots.is_empty() {
            return;
        }
        let ids: Vec<SubId> = r.roots.iter().copied().collect();
        for root in first..=durable {
            for &id in &ids {
                self.send(&mut r, id, json!(root));
            }
        }
    }
}

/// Every account key a transaction names (static and loaded), for `mentions`.
fn mentioned(st: &TxStatus) -> Vec<Pubkey> {
    let mut keys: Vec<Pubkey> = match dataplane::parse_transaction(&st.transaction) {
        Ok(d) => d
            .static_keys(&st.transaction)
            .map(|k| Pubkey::new_from_array(*k))
            .collect(),
        Err(_) => Vec::new(),
    };
    keys.extend(st.loaded_writable.iter().chain(&st.loaded_readonly));
    keys
}
