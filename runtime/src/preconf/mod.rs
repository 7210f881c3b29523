//! Bayesian execution pre-confirmations: within microseconds of admitting a transaction the
//! bank predicts what will happen to it (succeeds, fails with its fee charged, or is not
//! included), by which slot, and the probability that this promise holds; the preconf tile
//! signs the promise with the appliance's identity key and delivers it. Every outcome the
//! bank later sees updates the model and the calibration counters.
//!
//! Three stages, each a promise with a probability:
//! - `admitted` (from [`Predictor::admitted`]): two probit models (`model.rs`) over the
//!   admission-time features (`features.rs`): P(included by the deadline) and
//!   P(succeeds | included). The promise is the most probable of the three outcomes.
//! - `executed` (from [`Predictor::processed`]): the real result, promised to commit with
//!   its slot; a Beta rate of slots that closed as promised.
//! - `rejected` (from [`Predictor::rejected`]): refused at admission, promised not to land
//!   before its blockhash could have expired; a Beta rate per reason.
//!
//! The bank owns the predictor (no locks); drafts go to the preconf tile over a bounded
//! link that never blocks the bank (a full link drops the draft and counts it).

pub mod board;
pub mod calibration;
pub mod features;
pub mod model;
pub mod tile;

use crate::chain::{ChainState, TxStatus};
use crate::metrics::RuntimeDrop;
use crate::sequencer::PreparedTx;
use ahash::HashMap;
use calibration::{BUCKETS, BetaRate, Calibration};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use dataplane::frame::Peer;
pub use dataplane::preconf::{Body, Outcome, Stage};
use dataplane::reply::PortDatagram;
use dataplane::{Packet, Source};
use model::{Active, ProbitConfig, ProbitModel};
use serde::{Deserialize, Serialize};
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use telemetry::LatencyHistogram;
use telemetry::config::{InvalidConfig, ensure};

/// The `[preconf]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreconfConfig {
    /// Predict, sign and deliver pre-confirmations.
    pub enabled: bool,
    /// Slots after the expected slot that an included outcome may still take and hold.
    pub slack_slots: u64,
    /// σ0², β² and δ² of the probit models (`runtime/README.md`, "Pre-confirmation model").
    pub prior_variance: f64,
    pub noise_variance: f64,
    pub drift_per_slot: f64,
    /// Resolutions the calibration gauges (ECE, Brier) are computed over.
    pub calibration_window: usize,
    /// Drafts waiting for the preconf tile before new ones are dropped (counted).
    pub queue_depth: usize,
    /// Replies per second to one IP address (a reflection bound); 0: no replies.
    pub max_replies_per_peer_per_s: u32,
}

impl Default for PreconfConfig {
    fn default() -> Self {
        let m = ProbitConfig::default();
        Self {
            enabled: true,
            slack_slots: 2,
            prior_variance: m.prior_variance,
            noise_variance: m.noise_variance,
            drift_per_slot: m.drift_per_epoch,
            calibration_window: 10_000,
            queue_depth: 16_384,
            max_replies_per_peer_per_s: 20_000,
        }
    }
}

impl PreconfConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        ensure(
            positive(self.prior_variance) && positive(self.noise_variance),
            || "preconf.prior_variance and preconf.noise_variance must be finite and > 0".into(),
        )?;
        ensure(
            self.drift_per_slot.is_finite() && self.drift_per_slot >= 0.0,
            || "preconf.drift_per_slot must be finite and >= 0".into(),
        )?;
        ensure((1..=1_000_000).contains(&self.calibration_window), || {
            "preconf.calibration_window must be 1..=1000000".into()
        })?;
        ensure((1..=1 << 20).contains(&self.queue_depth), || {
            "preconf.queue_depth must be 1..=1048576".into()
        })
    }

    fn model(&self) -> ProbitConfig {
        ProbitConfig {
            table_bits: 16,
            prior_variance: self.prior_variance,
            noise_variance: self.noise_variance,
            drift_per_epoch: self.drift_per_slot,
        }
    }
}

/// Entries of the board the RPC reads pre-confirmations from (about 32 MiB: one datagram each).
pub const BOARD_SLOTS: usize = 65_536;

/// Signed pre-confirmations for the PubSub endpoint (`preconfirmationSubscribe`): the
/// preconf tile sends each datagram while `listeners` is non-zero, without waiting (a full
/// link drops it, counted in `pubsub_dropped`).
#[derive(Clone)]
pub struct Feed {
    pub rx: Receiver<Vec<u8>>,
    /// Subscriptions that want them (kept by the PubSub registry).
    pub listeners: Arc<AtomicUsize>,
}

/// Datagrams that may wait for the PubSub notifier.
pub const FEED_DEPTH: usize = 4096;

/// What signing and sending pre-confirmations needs from the node.
#[derive(Clone)]
pub struct Delivery {
    /// The identity key's 32-byte ed25519 seed.
    pub identity_secret: [u8; 32],
    /// The TPU socket (replies leave from the port clients sent to); `None`: board only.
    pub socket: Option<Arc<UdpSocket>>,
    /// Per raw-port RX queue, the link to its lcore (empty without a raw port or its
    /// replies).
    pub ports: Vec<Sender<PortDatagram>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Delivery")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

pub const STAGES: usize = 3;
pub const STAGE_NAMES: [&str; STAGES] = ["rejected", "admitted", "executed"];

/// The calibration and delivery counters (shared metrics region).
#[repr(C)]
pub struct PreconfCounters {
    /// By stage, then probability bucket: promises resolved, of them held, and the sum of
    /// their probabilities ×10⁶ (mean predicted = sum / promises).
    pub promises: [[AtomicU64; BUCKETS]; STAGES],
    pub held: [[AtomicU64; BUCKETS]; STAGES],
    pub probability_micros: [[AtomicU64; BUCKETS]; STAGES],
    /// Pre-confirmations issued, by stage.
    pub issued: [AtomicU64; STAGES],
    /// Expected calibration error and Brier score ×10⁶ over the last
    /// `preconf.calibration_window` resolutions, by stage (gauges).
    pub ece_micros: [AtomicU64; STAGES],
    pub brier_micros: [AtomicU64; STAGES],
    /// Promises issued and not yet resolved (gauge).
    pub open: AtomicU64,
    /// Drafts dropped because the preconf tile's link was full.
    pub queue_full: AtomicU64,
    /// Datagrams sent to the transaction's sender, and those not sent: over the per-peer
    /// rate, or the send failed.
    pub sent_udp: AtomicU64,
    /// Handed to a raw port's RX lcore to send, and dropped because its link was full.
    pub sent_dpdk: AtomicU64,
    pub port_dropped: AtomicU64,
    pub rate_limited: AtomicU64,
    pub send_errors: AtomicU64,
    /// Signed batches (one ed25519 signature each).
    pub batches: AtomicU64,
    /// Pre-confirmations handed to the PubSub notifier, and those dropped because its link
    /// was full.
    pub sent_pubsub: AtomicU64,
    pub pubsub_dropped: AtomicU64,
    /// Receipt (net tile) to the first signed pre-confirmation (`admitted` or `rejected`)
    /// sent or posted.
    pub latency: LatencyHistogram,
}

impl PreconfCounters {
    fn resolved(&self, stage: Stage, p: f64, held: bool) {
        let s = stage as usize;
        let b = calibration::bucket(p);
        self.promises[s][b].fetch_add(1, Ordering::Relaxed);
        self.held[s][b].fetch_add(held as u64, Ordering::Relaxed);
        self.probability_micros[s][b].fetch_add((p * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Where a transaction's pre-confirmations are sent (besides the board).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Submitted over the RPC: the board and PubSub only.
    None,
    /// Received on the UDP socket: sent from it to this address.
    Socket(SocketAddr),
    /// Received on a raw port's RX queue: sent by that queue's lcore to the peer.
    Port { queue: u16, peer: Peer },
}

/// What the preconf tile signs and delivers.
#[derive(Clone, Copy, Debug)]
pub struct Draft {
    pub body: Body,
    pub reply: Reply,
    /// When the net tile received the transaction (monotonic ns).
    pub received_ns: u64,
}

/// An `admitted` promise waiting for its outcome, carried by the transaction.
#[derive(Clone, Debug)]
pub struct Ticket {
    active: Active,
    outcome: Outcome,
    probability: f64,
    deadline_slot: u64,
    payer: Pubkey,
    charge: u64,
    /// The promise went out (else only the model learns from the outcome).
    issued: bool,
}

/// The queue the transaction joins, from the bank.
#[derive(Clone, Copy, Debug)]
pub struct Queue {
    pub open_slot: u64,
    pub queued: usize,
    pub capacity: usize,
    pub lane_len: usize,
    pub validity_slots: u64,
    pub payer_lamports: u64,
}

/// A `rejected` promise: resolved once the transaction could no longer land.
struct RejectedPromise {
    signature: Signature,
    reason: RuntimeDrop,
    probability: f64,
    resolve_at: u64,
}

/// Rejected promises waiting for their resolution slot; past this no new one is made.
const REJECTED_MAX: usize = 65_536;

pub struct Predictor {
    config: PreconfConfig,
    counters: &'static PreconfCounters,
    out: Option<Sender<Draft>>,
    inclusion: ProbitModel,
    success: ProbitModel,
    executed: BetaRate,
    rejected: [BetaRate; RuntimeDrop::COUNT],
    calibration: [Calibration; STAGES],
    /// What queued transactions may still take from each payer (maximum fee and System
    /// transfers out of it); entries leave with their transactions.
    outstanding: HashMap<Pubkey, u64>,
    /// Probabilities of the open slot's `executed` promises.
    executed_open: Vec<f64>,
    rejected_open: VecDeque<RejectedPromise>,
    /// Transactions executed per slot (smoothed over slots that executed any).
    per_slot: f64,
}

impl Predictor {
    /// `out`: the preconf tile's link (`None`: predict and learn, deliver nothing).
    pub fn new(
        config: PreconfConfig,
        counters: &'static PreconfCounters,
        out: Option<Sender<Draft>>,
    ) -> Self {
        let window = config.calibration_window;
        Self {
            inclusion: ProbitModel::new(config.model()),
            success: ProbitModel::new(config.model()),
            // A closed slot is published as promised unless the node dies first.
            executed: BetaRate::new(99.0, 1.0, 0.9999),
            // A refused transaction lands later only if resent once the cause is gone.
            rejected: [BetaRate::new(19.0, 1.0, 0.999); RuntimeDrop::COUNT],
            calibration: std::array::from_fn(|_| Calibration::new(window)),
            outstanding: HashMap::default(),
            executed_open: Vec::new(),
            rejected_open: VecDeque::new(),
            per_slot: 0.0,
            config,
            counters,
            out,
        }
    }

    /// Outcomes the models learned from (the `generation` in each promise).
    pub fn generation(&self) -> u32 {
        (self.inclusion.updates() + self.success.updates()) as u32
    }

    fn send(&self, draft: Draft) -> bool {
        let Some(out) = &self.out else {
            return false;
        };
        match out.try_send(draft) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn body(
        &self,
        stage: Stage,
        outcome: Outcome,
        p: f64,
        signature: &Signature,
        open_slot: u64,
    ) -> Body {
        let mut body = Body::new(stage, outcome, p, *signature.as_array());
        body.issued_slot = open_slot;
        body.unix_us = unix_us();
        body.generation = self.generation();
        body
    }

    fn resolve(&mut self, stage: Stage, p: f64, held: bool) {
        self.counters.resolved(stage, p, held);
        self.calibration[stage as usize].resolve(p, held);
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }

    fn issued(&self, stage: Stage) {
        self.counters.issued[stage as usize].fetch_add(1, Ordering::Relaxed);
        self.counters.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Predicts an admitted transaction's outcome, before it joins the sequencer: the ticket
    /// goes into `tx`, the draft is returned for [`Predictor::issue`] once it is queued (or
    /// the ticket taken back by [`Predictor::withdraw`] if the sequencer refuses it).
    pub fn admitted(&mut self, tx: &mut PreparedTx, q: &Queue) -> Draft {
        let message = tx.sanitized.message();
        let payer = *message.fee_payer();
        let fee = tx.budget.total_fee();
        let (transfers, only_transfers) = system_transfers(tx);
        let outflow: u64 = transfers
            .iter()
            .filter(|t| t.from == 0)
            .fold(0u64, |s, t| s.saturating_add(t.lamports));
        let charge = fee.saturating_add(outflow);
        let outstanding = self.outstanding.get(&payer).copied().unwrap_or(0);
        let headroom =
            (q.payer_lamports as f64 - outstanding as f64 - charge as f64) / fee.max(1) as f64;
        let expected_wait = if self.per_slot >= 1.0 {
            (q.queued as f64 / self.per_slot) as u64
        } else {
            0
        };
        let expiry = tx.blockhash_slot.saturating_add(q.validity_slots);
        let expected_slot = q.open_slot + expected_wait;
        let deadline_slot = (expected_slot + self.config.slack_slots).min(expiry);
        let (program, discriminator) = top_level_instruction(tx);
        let context = features::Context {
            program,
            discriminator,
            instructions: message.instructions().len().min(255) as u8,
            writable: tx.locks.iter().filter(|(_, w)| *w).count().min(255) as u8,
            payer_headroom: headroom,
            priority: tx.priority,
            queued: q.queued,
            capacity: q.capacity,
            lane_len: q.lane_len,
            blockhash_slots_left: expiry.saturating_sub(q.open_slot),
            expected_wait_slots: expected_wait,
        };
        let active = features::active(&context);
        let p_included = self.inclusion.predict(&active).p;
        let p_ok = self.success.predict(&active).p;
        let (outcome, probability) = most_probable(p_included, p_ok);
        let mut body = self.body(
            Stage::Admitted,
            outcome,
            probability,
            tx.sanitized.signature(),
            q.open_slot,
        );
        body.expected_slot = expected_slot;
        body.deadline_slot = deadline_slot;
        body.fee = fee;
        if expiry <= expected_slot + self.config.slack_slots {
            body.flags |= dataplane::preconf::FLAG_BLOCKHASH_NEAR_EXPIRY;
        }
        if outcome != Outcome::NotIncluded {
            // What other programs move is not known before they run: then only the fee.
            let moves = if only_transfers { &transfers[..] } else { &[] };
            balance_changes(&mut body, fee, outcome == Outcome::Success, moves);
        }
        *self.outstanding.entry(payer).or_insert(0) += charge;
        tx.preconf = Some(Box::new(Ticket {
            active,
            outcome,
            probability,
            deadline_slot,
            payer,
            charge,
            issued: true,
        }));
        Draft {
            body,
            reply: reply_of(&tx.packet),
            received_ns: tx.packet.received_ns,
        }
    }

    /// The transaction `draft` is about is queued: the promise goes out.
    pub fn issue(&mut self, draft: Draft) {
        self.issued(Stage::Admitted);
        self.send(draft);
    }

    /// The sequencer refused `tx` before its promise went out: the model learns that it was
    /// not included, and nothing was promised.
    pub fn withdraw(&mut self, tx: &mut PreparedTx) {
        if let Some(t) = tx.preconf.take() {
            self.release(&t);
            self.inclusion.update(&t.active, false);
        }
    }

    fn release(&mut self, t: &Ticket) {
        if let Some(v) = self.outstanding.get_mut(&t.payer) {
            *v = v.saturating_sub(t.charge);
            if *v == 0 {
                self.outstanding.remove(&t.payer);
            }
        }
    }

    /// `tx` executed in `slot` with `status`: resolves its `admitted` promise, learns, and
    /// promises the result (`executed`).
    pub fn processed(&mut self, tx: &mut PreparedTx, status: &TxStatus, slot: u64) {
        if let Some(t) = tx.preconf.take() {
            self.release(&t);
            let ok = status.err.is_none();
            let by_deadline = slot <= t.deadline_slot;
            self.inclusion.update(&t.active, by_deadline);
            self.success.update(&t.active, ok);
            if t.issued {
                let held = by_deadline
                    && match t.outcome {
                        Outcome::Success => ok,
                        Outcome::Failure => !ok,
                        Outcome::NotIncluded => false,
                    };
                self.resolve(Stage::Admitted, t.probability, held);
            }
        }
        let p = self.executed.mean();
        let outcome = if status.err.is_none() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut body = self.body(Stage::Executed, outcome, p, &status.signature, slot);
        body.expected_slot = slot;
        body.deadline_slot = slot;
        body.fee = status.fee;
        for (i, (pre, post)) in status
            .pre_balances
            .iter()
            .zip(&status.post_balances)
            .enumerate()
        {
            if pre != post && i <= u8::MAX as usize {
                body.push_delta(i as u8, *post as i64 - *pre as i64);
            }
        }
        self.executed_open.push(p);
        self.issued(Stage::Executed);
        self.send(Draft {
            body,
            reply: reply_of(&tx.packet),
            received_ns: tx.packet.received_ns,
        });
    }

    /// `tx` left the sequencer without executing.
    pub fn dropped(&mut self, tx: &mut PreparedTx, why: RuntimeDrop) {
        let Some(t) = tx.preconf.take() else {
            return;
        };
        self.release(&t);
        if why == RuntimeDrop::Shutdown {
            // Says nothing about the model; the promise is left unresolved.
            if t.issued {
                self.counters.open.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        self.inclusion.update(&t.active, false);
        if t.issued {
            self.resolve(
                Stage::Admitted,
                t.probability,
                t.outcome == Outcome::NotIncluded,
            );
        }
    }

    /// A verified transaction refused at admission (or by a full sequencer): promises it
    /// will not land before `open_slot + validity_slots`, when the promise is checked.
    pub fn rejected(&mut self, p: &Packet, why: RuntimeDrop, open_slot: u64, validity_slots: u64) {
        if !promises_on_rejection(why) {
            return;
        }
        let Some(desc) = p.desc.as_ref() else {
            return;
        };
        let signature = Signature::from(*desc.first_signature(p.bytes()));
        let probability = self.rejected[why as usize].mean();
        let mut body = self.body(
            Stage::Rejected,
            Outcome::NotIncluded,
            probability,
            &signature,
            open_slot,
        );
        body.reason = why as u16 + 1;
        body.deadline_slot = open_slot + validity_slots;
        if self.rejected_open.len() == REJECTED_MAX {
            return;
        }
        self.rejected_open.push_back(RejectedPromise {
            signature,
            reason: why,
            probability,
            resolve_at: open_slot + validity_slots,
        });
        self.issued(Stage::Rejected);
        self.send(Draft {
            body,
            reply: reply_of(p),
            received_ns: p.received_ns,
        });
    }

    /// A slot closed with `executed` transactions and `open_slot` is now open: its
    /// `executed` promises held, expired `rejected` ones are checked against the chain, the
    /// models' weights drift, and the gauges are refreshed.
    pub fn slot_closed(&mut self, executed: u64, open_slot: u64, chain: &ChainState) {
        if executed > 0 {
            self.per_slot = if self.per_slot == 0.0 {
                executed as f64
            } else {
                0.8 * self.per_slot + 0.2 * executed as f64
            };
        }
        for p in std::mem::take(&mut self.executed_open) {
            self.executed.observe(true);
            self.resolve(Stage::Executed, p, true);
        }
        while self
            .rejected_open
            .front()
            .is_some_and(|r| r.resolve_at <= open_slot)
        {
            let r = self.rejected_open.pop_front().expect("non-empty");
            let held = chain.status(&r.signature).is_none();
            self.rejected[r.reason as usize].observe(held);
            self.resolve(Stage::Rejected, r.probability, held);
        }
        self.inclusion.advance_epoch();
        self.success.advance_epoch();
        for s in 0..STAGES {
            let c = &self.calibration[s];
            self.counters.ece_micros[s].store((c.ece() * 1e6) as u64, Ordering::Relaxed);
            self.counters.brier_micros[s].store((c.brier() * 1e6) as u64, Ordering::Relaxed);
        }
    }
}

/// Refusals that say something lasting about the transaction (a duplicate's original has
/// its own promise; an unreadable payer is a storage fault the client should retry).
fn promises_on_rejection(why: RuntimeDrop) -> bool {
    !matches!(
        why,
        RuntimeDrop::AlreadyProcessed
            | RuntimeDrop::FeePayerUnreadable
            | RuntimeDrop::Shutdown
            | RuntimeDrop::NotServing
            | RuntimeDrop::NotOwner
    )
}

/// The most probable of success (p_inc·p_ok), failure (p_inc·(1 − p_ok)) and not included
/// (1 − p_inc), with its probability.
pub fn most_probable(p_included: f64, p_ok: f64) -> (Outcome, f64) {
    let success = p_included * p_ok;
    let failure = p_included * (1.0 - p_ok);
    let not_included = 1.0 - p_included;
    if success >= failure && success >= not_included {
        (Outcome::Success, success)
    } else if failure >= not_included {
        (Outcome::Failure, failure)
    } else {
        (Outcome::NotIncluded, not_included)
    }
}

fn reply_of(p: &Packet) -> Reply {
    match (p.source, p.reply_port) {
        (Source::Udp(SocketAddr::V4(addr)), Some(port)) => Reply::Port {
            queue: port.queue,
            peer: Peer {
                mac: port.mac,
                addr,
            },
        },
        (Source::Udp(a), _) => Reply::Socket(a),
        (Source::Rpc, _) => Reply::None,
    }
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A System transfer between two of the message's accounts (by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub from: u8,
    pub to: u8,
    pub lamports: u64,
}

/// The transaction's System `Transfer` instructions (their lamports are known before it
/// runs), and whether every other instruction is a compute-budget one (else other programs
/// may move lamports too).
fn system_transfers(tx: &PreparedTx) -> (Vec<Transfer>, bool) {
    let message = tx.sanitized.message();
    let keys = message.account_keys();
    let mut transfers = Vec::new();
    let mut only_transfers = true;
    for ix in message.instructions() {
        let program = keys.get(usize::from(ix.program_id_index));
        let data = &ix.data;
        if program == Some(&solana_sdk_ids::system_program::ID)
            && data.len() >= 12
            && data[..4] == [2, 0, 0, 0]
            && ix.accounts.len() >= 2
        {
            transfers.push(Transfer {
                from: ix.accounts[0],
                to: ix.accounts[1],
                lamports: u64::from_le_bytes(data[4..12].try_into().unwrap()),
            });
        } else if program != Some(&solana_sdk_ids::compute_budget::ID) {
            only_transfers = false;
        }
    }
    (transfers, only_transfers)
}

/// Predicted balance changes: the fee from the payer (index 0) and, for a success, the
/// transfers given.
fn balance_changes(body: &mut Body, fee: u64, success: bool, transfers: &[Transfer]) {
    let mut deltas: Vec<(u8, i64)> = vec![(0, -(fee.min(i64::MAX as u64) as i64))];
    if success {
        for t in transfers {
            let amount = t.lamports.min(i64::MAX as u64) as i64;
            for (index, change) in [(t.from, -amount), (t.to, amount)] {
                match deltas.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, d)) => *d = d.saturating_add(change),
                    None => deltas.push((index, change)),
                }
            }
        }
    }
    for (index, change) in deltas.into_iter().filter(|(_, d)| *d != 0) {
        if !body.push_delta(index, change) {
            break;
        }
    }
}

/// The app's program (first instruction that is not a compute-budget one) and the first 8
/// bytes of its data.
fn top_level_instruction(tx: &PreparedTx) -> ([u8; 32], u64) {
    let message = tx.sanitized.message();
    let keys = message.account_keys();
    for ix in message.instructions() {
        let Some(program) = keys.get(usize::from(ix.program_id_index)) else {
            continue;
        };
        if *program == solana_sdk_ids::compute_budget::ID {
            continue;
        }
        let mut d = [0u8; 8];
        let n = ix.data.len().min(8);
        d[..n].copy_from_slice(&ix.data[..n]);
        return (program.to_bytes(), u64::from_le_bytes(d) ^ (n as u64) << 60);
    }
    ([0; 32], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_promise_is_the_most_probable_outcome() {
        assert_eq!(most_probable(0.99, 0.99).0, Outcome::Success);
        assert_eq!(most_probable(0.99, 0.1).0, Outcome::Failure);
        assert_eq!(most_probable(0.2, 0.99).0, Outcome::NotIncluded);
        for (pi, po) in [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (1.0, 0.0), (0.0, 1.0)] {
            let (_, p) = most_probable(pi, po);
            assert!((1.0 / 3.0 - 1e-9..=1.0).contains(&p), "{pi} {po} → {p}");
        }
    }

    #[test]
    fn predicted_changes_net_the_transfers_and_the_fee() {
        let mut body = Body::new(Stage::Admitted, Outcome::Success, 0.9, [0; 64]);
        let transfers = [
            Transfer {
                from: 0,
                to: 1,
                lamports: 100,
            },
            Transfer {
                from: 0,
                to: 2,
                lamports: 50,
            },
            Transfer {
                from: 2,
                to: 1,
                lamports: 50,
            },
        ];
        balance_changes(&mut body, 5_000, true, &transfers);
        assert_eq!(body.deltas(), &[(0, -5_150), (1, 150)]);
        let mut failed = Body::new(Stage::Admitted, Outcome::Failure, 0.9, [0; 64]);
        balance_changes(&mut failed, 5_000, false, &transfers);
        assert_eq!(failed.deltas(), &[(0, -5_000)]);
    }

    #[test]
    fn refusals_that_promise_nothing() {
        assert!(!promises_on_rejection(RuntimeDrop::AlreadyProcessed));
        assert!(!promises_on_rejection(RuntimeDrop::FeePayerUnreadable));
        assert!(promises_on_rejection(RuntimeDrop::FeePayerCannotPay));
        assert!(promises_on_rejection(RuntimeDrop::BlockhashNotFound));
        assert!(promises_on_rejection(RuntimeDrop::SequencerFull));
    }
}
