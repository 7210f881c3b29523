//! The notifier tile: turns the chain's events into notifications. A closed slot notifies
//! the processed-level subscriptions (slot, signatures, logs, accounts and programs it wrote)
//! and waits in `pending` until it is durable; a durable slot notifies the confirmed and
//! finalized ones from the same record, and the root subscriptions. Notifications go to
//! each connection's outbox without waiting: a connection whose outbox is over its bound is
//! kicked (counted) and loses its subscriptions, so no subscriber can slow this tile, and
//! this tile cannot slow the chain (its input drops when full, counted by the chain).

use super::subscriptions::{AccountFormat, Kind, Level, Registry, SubId, encode_account, passes};
use crate::encode;
use crate::framing::RpcError;
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use runtime::accounts::AccountsDb;
use runtime::chain::{ChainState, SlotHeader, TxStatus};
use runtime::events::ChainEvent;
use serde_json::json;
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
    /// Signed pre-confirmations from the preconf tile (`[preconf]` enabled).
    pub preconf: Option<Receiver<Vec<u8>>>,
    pub registry: Arc<Mutex<Registry>>,
    pub chain: Arc<ChainState>,
    /// Where jsonParsed notifications read a token account's mint (and the Clock).
    pub db: Arc<AccountsDb>,
    pub metrics: &'static appliance::metrics::MetricsRegion,
    pub pending: VecDeque<Slot>,
    pub last_root: u64,
    /// The last closed slot announced; a gap means events were lost.
    pub last_processed: u64,
    /// Events were lost since the last durable slot: answer signatures from the chain.
    pub lost_events: bool,
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
        let e = match &self.preconf {
            None => match next_input(&self.events, clock) {
                Ok(e) => e,
                Err(turn) => return turn,
            },
            Some(preconf) => {
                let got = crossbeam_channel::select! {
                    recv(self.events) -> e => e.map(Ok),
                    recv(preconf) -> d => d.map(Err),
                    default(telemetry::lifecycle::INPUT_WAIT) => {
                        clock.idle();
                        return Turn::Continue;
                    }
                };
                clock.idle();
                match got {
                    Ok(Ok(e)) => e,
                    Ok(Err(datagram)) => {
                        self.notify_preconfirmation(&datagram);
                        clock.busy();
                        return Turn::Continue;
                    }
                    Err(_) => return Turn::Done,
                }
            }
        };
        self.metrics.pubsub_notifier.add_in(1);
        match e {
            ChainEvent::Processed {
                header,
                statuses,
                accounts,
            } => {
                if self.last_processed != 0 && header.slot > self.last_processed + 1 {
                    self.lost_events = true;
                }
                self.last_processed = header.slot;
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
                if self.lost_events {
                    self.lost_events = false;
                    self.recover_signatures(slot);
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
    /// Queue `result` (JSON text) for subscription `id`; a connection that cannot take it
    /// (not reading) is disconnected, counted.
    fn send(&self, r: &mut Registry, id: SubId, result: &str) {
        let e = &self.metrics.endpoints;
        if r.notify(id, result) {
            e.pubsub_notifications.fetch_add(1, Ordering::Relaxed);
        } else if let Some(conn) = r.conn_of(id) {
            e.pubsub_slow_disconnects.fetch_add(1, Ordering::Relaxed);
            r.disconnect(conn);
        }
    }

    /// A signed pre-confirmation: to every `all` subscription and those of its signature
    /// (which end with its final stage). Encoded once.
    fn notify_preconfirmation(&self, datagram: &[u8]) {
        let Some(bytes) = datagram.get(8..72) else {
            return;
        };
        let sig = solana_signature::Signature::from(<[u8; 64]>::try_from(bytes).expect("64 bytes"));
        let mut r = self.registry.lock();
        let mut ids: Vec<SubId> = r.preconf_all.iter().copied().collect();
        let by_sig: Vec<SubId> = r
            .preconf_by_signature
            .get(&sig)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        ids.extend(&by_sig);
        if ids.is_empty() {
            return;
        }
        let value = encode::preconfirmation(datagram);
        let result = json!({
            "context": {"slot": value["issuedSlot"]},
            "value": value,
        })
        .to_string();
        for id in ids {
            self.send(&mut r, id, &result);
        }
        // `admitted` is followed by `executed` (or nothing, if never included); `rejected`
        // and `executed` are final.
        if value["stage"] != "admitted" {
            for id in by_sig {
                r.remove(id);
            }
        }
    }

    fn notify_slot(&self, s: &Slot, level: Level) {
        let mut r = self.registry.lock();
        let slot = s.header.slot;
        if level == Level::Processed {
            r.processed_through = r.processed_through.max(slot);
        }
        if r.is_empty() {
            return;
        }
        let context = format!(r#"{{"slot":{slot}}}"#);
        if level == Level::Processed && !r.slots.is_empty() {
            let info = json!({"parent": slot.saturating_sub(1), "root": self.chain.durable_slot(), "slot": slot})
                .to_string();
            for id in r.slots.iter().copied().collect::<Vec<_>>() {
                self.send(&mut r, id, &info);
            }
        }
        for st in &s.statuses {
            self.signature(&mut r, st, level, &context);
        }
        if !r.logs_all.is_empty() || !r.logs_mentions.is_empty() {
            for st in &s.statuses {
                self.logs(&mut r, st, level, &context);
            }
        }
        if !r.by_account.is_empty() || !r.by_program.is_empty() {
            for (key, account) in s.accounts.iter() {
                self.account(&mut r, s, key, account, level, &context);
            }
        }
    }

    fn at_level(r: &Registry, ids: impl IntoIterator<Item = SubId>, level: Level) -> Vec<SubId> {
        ids.into_iter()
            .filter(|id| r.subs.get(id).is_some_and(|(_, s)| s.level == level))
            .collect()
    }

    /// A signature's subscriptions: "receivedSignature" (if asked) when it is first processed,
    /// then its result at the subscription's level, after which the subscription ends.
    fn signature(&self, r: &mut Registry, st: &TxStatus, level: Level, context: &str) {
        let Some(ids) = r.by_signature.get(&st.signature) else {
            return;
        };
        let ids: Vec<SubId> = ids.iter().copied().collect();
        let result = format!(
            r#"{{"context":{context},"value":{{"err":{}}}}}"#,
            encode::tx_error(&st.err)
        );
        let received = format!(r#"{{"context":{context},"value":"receivedSignature"}}"#);
        for id in ids {
            let Some((_, sub)) = r.subs.get(&id) else {
                continue;
            };
            let Kind::Signature {
                received: wants_received,
                ..
            } = sub.kind
            else {
                continue;
            };
            let sub_level = sub.level;
            if wants_received && level == Level::Processed {
                self.send(r, id, &received);
            }
            if sub_level == level {
                self.send(r, id, &result);
                r.remove(id); // one-shot, as Agave's
            }
        }
    }

    fn logs(&self, r: &mut Registry, st: &TxStatus, level: Level, context: &str) {
        let mut ids = Self::at_level(r, r.logs_all.iter().copied(), level);
        if !r.logs_mentions.is_empty() {
            for k in mentioned(st) {
                if let Some(set) = r.logs_mentions.get(&k) {
                    ids.extend(Self::at_level(r, set.iter().copied(), level));
                }
            }
            ids.sort_unstable();
            ids.dedup();
        }
        if ids.is_empty() {
            return;
        }
        let value = format!(
            r#"{{"context":{context},"value":{}}}"#,
            json!({
                "signature": st.signature.to_string(),
                "err": encode::tx_error(&st.err),
                "logs": st.logs,
            })
        );
        for id in ids {
            self.send(r, id, &value);
        }
    }

    /// Account and program subscriptions on one written account; each distinct format is
    /// encoded once.
    fn account(
        &self,
        r: &mut Registry,
        slot: &Slot,
        key: &Pubkey,
        a: &AccountSharedData,
        level: Level,
        context: &str,
    ) {
        // A mint (or the Clock) as of this slot: written in it, else the store at the level.
        let lookup = |k: &Pubkey| -> Result<Option<AccountSharedData>, RpcError> {
            if let Some((_, m)) = slot.accounts.iter().find(|(w, _)| w == k) {
                return Ok(Some(m.clone()));
            }
            match level {
                Level::Processed => self.db.get(k).map(|v| v.map(|(m, _)| m)),
                Level::Durable => self.db.get_durable(k),
            }
            .map_err(|e| RpcError::internal(format!("account {k} unreadable: {e}")))
        };
        let mut encoded: Vec<(AccountFormat, String)> = Vec::new();
        let mut encode = |f: &AccountFormat| -> String {
            if let Some((_, v)) = encoded.iter().find(|(g, _)| g == f) {
                return v.clone();
            }
            let v = encode_account(key, f, a, &lookup).to_string();
            encoded.push((*f, v.clone()));
            v
        };
        if let Some(set) = r.by_account.get(key) {
            for id in Self::at_level(r, set.iter().copied(), level) {
                let Some((_, sub)) = r.subs.get(&id) else {
                    continue;
                };
                let Kind::Account(_, format) = sub.kind else {
                    continue;
                };
                let v = encode(&format);
                self.send(r, id, &format!(r#"{{"context":{context},"value":{v}}}"#));
            }
        }
        if a.lamports() == 0 {
            return; // closed: no longer the program's
        }
        let Some(set) = r.by_program.get(a.owner()) else {
            return;
        };
        let pubkey = key.to_string();
        for id in Self::at_level(r, set.iter().copied(), level) {
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
            let v = encode(format);
            self.send(
                r,
                id,
                &format!(
                    r#"{{"context":{context},"value":{{"pubkey":"{pubkey}","account":{v}}}}}"#
                ),
            );
        }
    }

    /// After lost events, signature subscriptions still get their answer: every one whose
    /// transaction is in the chain at or before the durable slot is answered from its status.
    fn recover_signatures(&self, durable: u64) {
        let mut r = self.registry.lock();
        let sigs: Vec<_> = r.by_signature.keys().copied().collect();
        for sig in sigs {
            let Some(st) = self.chain.status(&sig) else {
                continue;
            };
            if st.slot > durable {
                continue;
            }
            let result = format!(
                r#"{{"context":{{"slot":{}}},"value":{{"err":{}}}}}"#,
                st.slot,
                encode::tx_error(&st.err)
            );
            let ids: Vec<SubId> = r
                .by_signature
                .get(&sig)
                .into_iter()
                .flatten()
                .copied()
                .collect();
            for id in ids {
                self.send(&mut r, id, &result);
                r.remove(id);
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
            let root = root.to_string();
            for &id in &ids {
                self.send(&mut r, id, &root);
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
