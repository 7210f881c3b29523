//! Admission: from a verified packet to a prepared transaction, or the reason it is dropped.
//! Checks the blockhash's age (one map lookup), that the signature is not queued, in flight
//! or processed, then prepares it (compute budget, lookups, sanitization) and checks that the
//! fee payer can pay its maximum fee. Owns the recent
//! blockhashes, SlotHashes and the pending-signature set; no channels, no sequencer.

use crate::accounts::AccountsDb;
use crate::chain::ChainState;
use crate::metrics::RuntimeDrop;
use crate::prepare::{Prepared, Rejection, prepare};
use crate::svm::SvmEnv;
use ahash::{HashMap, HashSet};
use dataplane::Packet;
use solana_account::ReadableAccount;
use solana_clock::Slot;
use solana_hash::Hash;
use solana_signature::Signature;
use solana_slot_hashes::SlotHashes;

/// An admitted transaction: prepared, with the slot of its blockhash.
pub struct Admitted {
    pub prepared: Prepared,
    pub blockhash_slot: Slot,
    /// The fee payer's balance when admitted.
    pub payer_lamports: u64,
}

pub struct Admission {
    /// The open slot.
    slot: Slot,
    /// Slots a blockhash stays valid for.
    validity_slots: Slot,
    /// Blockhash → its slot, for the recent slots.
    blockhash_slots: HashMap<[u8; 32], Slot>,
    slot_hashes: SlotHashes,
    /// Signatures queued, in flight, or processed in the open slot: a second copy is a
    /// duplicate even before the first reaches the status cache.
    pending: HashSet<Signature>,
}

impl Admission {
    pub fn new(validity_slots: Slot) -> Self {
        Self {
            slot: 0,
            validity_slots,
            blockhash_slots: HashMap::default(),
            slot_hashes: SlotHashes::default(),
            pending: HashSet::default(),
        }
    }

    /// A new slot opens; `recent` holds the recent (slot, blockhash) pairs, oldest first,
    /// ending with its parent.
    pub fn open_slot(&mut self, slot: Slot, recent: &[(Slot, Hash)]) {
        self.slot = slot;
        self.blockhash_slots = recent.iter().map(|(s, h)| (h.to_bytes(), *s)).collect();
        self.slot_hashes = SlotHashes::new(&recent.iter().rev().copied().collect::<Vec<_>>());
    }

    /// The slot of a blockhash still within the validity window (one map lookup: this runs
    /// for every admitted transaction).
    pub fn blockhash_slot(&self, h: &[u8; 32]) -> Option<Slot> {
        self.blockhash_slots
            .get(h)
            .copied()
            .filter(|s| s + self.validity_slots >= self.slot)
    }

    /// Admit a verified packet (its decoded transaction is taken out of it). On success its
    /// signature is pending until [`Admission::forget`].
    pub fn admit(
        &mut self,
        env: &SvmEnv,
        db: &AccountsDb,
        chain: &ChainState,
        p: &mut Packet,
    ) -> Result<Admitted, RuntimeDrop> {
        let desc = p.desc.expect("verified packets carry a descriptor");
        // The verify tile deserialized it and hashed its message; admission does neither.
        let verified = p.verified.take().ok_or(RuntimeDrop::Sanitize)?;
        let buf = p.bytes();
        let blockhash_slot = self
            .blockhash_slot(desc.recent_blockhash(buf))
            .ok_or(RuntimeDrop::BlockhashNotFound)?;
        let sig = Signature::from(*desc.first_signature(buf));
        if self.pending.contains(&sig) || chain.status(&sig).is_some() || chain.is_foreign(&sig) {
            return Err(RuntimeDrop::AlreadyProcessed);
        }
        let prepared = prepare(env, db, &desc, buf, *verified, self.slot, &self.slot_hashes)
            .map_err(|r| match r {
                Rejection::BlockhashNotFound => RuntimeDrop::BlockhashNotFound,
                Rejection::AlreadyProcessed => RuntimeDrop::AlreadyProcessed,
                Rejection::ComputeBudget(_) => RuntimeDrop::ComputeBudget,
                Rejection::Lookup(_) => RuntimeDrop::Lookup,
                Rejection::Sanitize(_) => RuntimeDrop::Sanitize,
            })?;
        // Before it takes queue space: the payer must be able to pay the most this transaction
        // can cost in fees (a flood from unfunded keys is otherwise free to send).
        let payer = prepared.sanitized.message().fee_payer();
        let payer_lamports = match db.get(payer) {
            Ok(Some((account, _))) if account.lamports() >= prepared.budget.total_fee() => {
                account.lamports()
            }
            Ok(_) => return Err(RuntimeDrop::FeePayerCannotPay),
            Err(_) => return Err(RuntimeDrop::FeePayerUnreadable),
        };
        self.pending.insert(sig);
        Ok(Admitted {
            prepared,
            blockhash_slot,
            payer_lamports,
        })
    }

    /// The transaction signed `sig` left the pipeline (dropped, or its slot closed and the
    /// status cache has it).
    pub fn forget(&mut self, sig: &Signature) {
        self.pending.remove(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{GenesisConfig, bootstrap};
    use dataplane::PacketBox;
    use dataplane::dedup::MAX_PROCESSING_AGE_SLOTS;
    use solana_keypair::Keypair;
    use solana_signer::Signer;
    use std::sync::Arc;
    use storage::{LogStore, LogStoreConfig};

    struct Setup {
        _dir: tempfile::TempDir,
        env: SvmEnv,
        db: AccountsDb,
        chain: ChainState,
        payer: Keypair,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LogStore::open(dir.path(), LogStoreConfig::default()).unwrap());
        let env = SvmEnv::new();
        let db = AccountsDb::new(store, telemetry::SharedRegion::private());
        let payer = Keypair::new();
        let cfg = GenesisConfig {
            faucet: None,
            fee_collector: solana_pubkey::Pubkey::new_unique(),
            accounts: vec![(payer.pubkey(), 1_000_000_000)],
        };
        let (chain, _) =
            bootstrap(&env, &db, &cfg, crate::chain::StatusRetention::slots(1024)).unwrap();
        Setup {
            _dir: dir,
            env,
            db,
            chain,
            payer,
        }
    }

    fn packet(payer: &Keypair, blockhash: Hash, lamports: u64) -> PacketBox {
        let ix = solana_system_interface::instruction::transfer(
            &payer.pubkey(),
            &solana_pubkey::Pubkey::new_unique(),
            lamports,
        );
        let tx = solana_transaction::Transaction::new(
            &[payer],
            solana_message::Message::new(&[ix], Some(&payer.pubkey())),
            blockhash,
        );
        let mut p = PacketBox::new(Packet::zeroed());
        assert!(p.fill_verified(&bincode::serialize(&tx).unwrap()));
        p
    }

    #[test]
    fn admits_once_within_the_blockhash_window() {
        let s = setup();
        let genesis = s.chain.genesis_hash();
        let mut a = Admission::new(MAX_PROCESSING_AGE_SLOTS);
        let recent = [(0, genesis)];
        a.open_slot(1, &recent);

        let mut p = packet(&s.payer, genesis, 1);
        let ok = a.admit(&s.env, &s.db, &s.chain, &mut p).expect("admitted");
        assert_eq!(ok.blockhash_slot, 0);
        assert!(
            p.verified.is_none(),
            "the decoded transaction moved into the prepared one"
        );
        let sig = *ok.prepared.sanitized.signature();

        // The same transaction again, while pending: a duplicate.
        let copy = |bytes: &[u8]| {
            let mut q = PacketBox::new(Packet::zeroed());
            assert!(q.fill_verified(bytes));
            q
        };
        let mut again = copy(p.bytes());
        assert_eq!(
            a.admit(&s.env, &s.db, &s.chain, &mut again).err(),
            Some(RuntimeDrop::AlreadyProcessed)
        );
        // Once forgotten (dropped unexecuted) it may come again.
        a.forget(&sig);
        assert!(
            a.admit(&s.env, &s.db, &s.chain, &mut copy(p.bytes()))
                .is_ok()
        );

        // An unknown blockhash, and one older than the window.
        let mut unknown = packet(&s.payer, Hash::new_from_array([9; 32]), 2);
        assert_eq!(
            a.admit(&s.env, &s.db, &s.chain, &mut unknown).err(),
            Some(RuntimeDrop::BlockhashNotFound)
        );
        a.open_slot(MAX_PROCESSING_AGE_SLOTS + 1, &recent);
        let mut old = packet(&s.payer, genesis, 3);
        assert_eq!(
            a.admit(&s.env, &s.db, &s.chain, &mut old).err(),
            Some(RuntimeDrop::BlockhashNotFound)
        );
        assert!(a.blockhash_slot(&genesis.to_bytes()).is_none());

        // A packet nobody decoded never reaches preparation.
        let mut undecoded = packet(&s.payer, genesis, 4);
        undecoded.verified = None;
        a.open_slot(1, &recent);
        assert_eq!(
            a.admit(&s.env, &s.db, &s.chain, &mut undecoded).err(),
            Some(RuntimeDrop::Sanitize)
        );
    }

    /// A transaction whose fee payer does not exist, or cannot pay its fee, takes no queue
    /// space; one that can is admitted.
    #[test]
    fn a_fee_payer_that_cannot_pay_is_dropped_at_admission() {
        let s = setup();
        let genesis = s.chain.genesis_hash();
        let mut a = Admission::new(MAX_PROCESSING_AGE_SLOTS);
        a.open_slot(1, &[(0, genesis)]);
        let stranger = Keypair::new();
        let mut unfunded = packet(&stranger, genesis, 1);
        assert_eq!(
            a.admit(&s.env, &s.db, &s.chain, &mut unfunded).err(),
            Some(RuntimeDrop::FeePayerCannotPay)
        );
        // 4,999 lamports cannot pay a one-signature fee of 5,000.
        let poor = Keypair::new();
        s.db.write(
            poor.pubkey(),
            solana_account::AccountSharedData::new(4_999, 0, &solana_sdk_ids::system_program::ID),
            1,
        );
        let mut p = packet(&poor, genesis, 1);
        assert_eq!(
            a.admit(&s.env, &s.db, &s.chain, &mut p).err(),
            Some(RuntimeDrop::FeePayerCannotPay)
        );
        let mut funded = packet(&s.payer, genesis, 1);
        assert!(a.admit(&s.env, &s.db, &s.chain, &mut funded).is_ok());
    }
}
