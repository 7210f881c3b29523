//! Parsed packets into the verify tiles. Both the UDP net tile and the RPC submit through
//! [`Ingress`], so RPC transactions take exactly the path UDP ones do.
//!
//! Routing is by a hash of the first signature: every copy of a transaction reaches the same
//! verify tile, whose dedup table therefore sees all of them.

use crate::counters::DataplaneCounters;
use crate::packet::{PacketBox, PacketPool, Source, monotonic_ns};
use crate::parse::{ParseError, TxDescriptor, parse_transaction};
use crate::recent::RecentFilter;
use crate::ring::Ring;
use crate::verified::VerifiedTx;
use std::sync::atomic::Ordering;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("malformed transaction: {0}")]
    Parse(ParseError),
    #[error("ingest queue full")]
    QueueFull,
    #[error("no free packet buffer")]
    PoolExhausted,
    #[error("same bytes as a recent transaction")]
    Duplicate,
}

#[derive(Clone)]
pub struct Ingress {
    pub pool: PacketPool,
    verify: Vec<Ring<PacketBox>>,
    pub counters: &'static DataplaneCounters,
    hasher: ahash::RandomState,
}

impl Ingress {
    pub fn new(
        pool: PacketPool,
        verify: Vec<Ring<PacketBox>>,
        counters: &'static DataplaneCounters,
    ) -> Self {
        assert!(!verify.is_empty());
        Self {
            pool,
            verify,
            counters,
            hasher: ahash::RandomState::new(),
        }
    }

    /// Parse a packet in place and route it; drops are counted and the buffer goes back to
    /// the pool.
    pub fn route(&self, p: PacketBox) -> Result<(), SubmitError> {
        self.forward(self.parse(p)?)
    }

    /// A received packet: parse in place, drop it if the receiving core's `recent` filter
    /// saw the same bytes lately, else route it.
    pub fn admit(&self, p: PacketBox, recent: &mut RecentFilter) -> Result<(), SubmitError> {
        let p = self.parse(p)?;
        if recent.insert(recent.tag(p.bytes())) {
            self.counters.rx_duplicates.fetch_add(1, Ordering::Relaxed);
            self.pool.give(p);
            return Err(SubmitError::Duplicate);
        }
        self.forward(p)
    }

    /// Set the packet's descriptor, or count the drop and give the packet back.
    fn parse(&self, mut p: PacketBox) -> Result<PacketBox, SubmitError> {
        match parse_transaction(p.bytes()) {
            Ok(d) => {
                p.desc = Some(d);
                Ok(p)
            }
            Err(e) => {
                self.counters.parse_drop(e);
                self.pool.give(p);
                Err(SubmitError::Parse(e))
            }
        }
    }

    /// Route a packet already parsed (its `desc` set) by a backend that parses in place.
    pub fn forward(&self, p: PacketBox) -> Result<(), SubmitError> {
        let Some(desc) = p.desc else {
            self.pool.give(p);
            return Err(SubmitError::Parse(ParseError::Empty));
        };
        let tile =
            (self.hasher.hash_one(desc.first_signature(p.bytes())) as usize) % self.verify.len();
        match self.verify[tile].push(p) {
            Ok(()) => Ok(()),
            Err(p) => {
                self.counters
                    .verify_ring_full
                    .fetch_add(1, Ordering::Relaxed);
                self.pool.give(p);
                Err(SubmitError::QueueFull)
            }
        }
    }

    /// A transaction from the RPC whose signatures the RPC checked (it answers a bad one with
    /// its own error) and which it already parsed and decoded for preflight: the copy goes
    /// through dedup in its verify tile without a second check, parse or decode.
    pub fn submit_checked(
        &self,
        bytes: &[u8],
        desc: TxDescriptor,
        verified: Box<VerifiedTx>,
    ) -> Result<(), SubmitError> {
        let mut p = self.take_for_rpc(bytes)?;
        p.desc = Some(desc);
        p.verified = Some(verified);
        p.signatures_checked = true;
        self.forward(p)
    }

    /// A pool packet holding a copy of `bytes`, stamped as an RPC submission.
    fn take_for_rpc(&self, bytes: &[u8]) -> Result<PacketBox, SubmitError> {
        let Some(mut p) = self.pool.take() else {
            self.counters.pool_exhausted.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::PoolExhausted);
        };
        if !p.fill(bytes) {
            self.counters.parse_drop(ParseError::Oversize);
            self.pool.give(p);
            return Err(SubmitError::Parse(ParseError::Oversize));
        }
        p.source = Source::Rpc;
        p.received_ns = monotonic_ns();
        self.counters.rpc_submitted.fetch_add(1, Ordering::Relaxed);
        Ok(p)
    }

    /// A transaction from the RPC, checked like one from the network (e.g. an airdrop).
    pub fn submit(&self, bytes: &[u8]) -> Result<(), SubmitError> {
        let p = self.take_for_rpc(bytes)?;
        self.route(p)
    }
}
