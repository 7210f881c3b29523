//! Signed System transfers from many distinct payers, built before timing starts.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::Message;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use solana_transaction::Transaction;

/// Lamports each payer starts with.
pub const PAYER_LAMPORTS: u64 = 1_000_000_000;

pub struct Workload {
    pub payers: Vec<Pubkey>,
    /// Wire bytes of one transfer per payer.
    pub txs: Vec<Vec<u8>>,
}

/// `n` transfers, each from its own payer to a recipient funded enough to stay rent-exempt.
pub fn transfers(n: usize, blockhash: Hash) -> Workload {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    let parts: Vec<Vec<(Pubkey, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(|_| {
                            let payer = Keypair::new();
                            let ix = solana_system_interface::instruction::transfer(
                                &payer.pubkey(),
                                &Pubkey::new_unique(),
                                1_000_000,
                            );
                            let tx = Transaction::new(
                                &[&payer],
                                Message::new(&[ix], Some(&payer.pubkey())),
                                blockhash,
                            );
                            (payer.pubkey(), bincode::serialize(&tx).expect("serializes"))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signer thread"))
            .collect()
    });
    let (payers, txs) = parts.into_iter().flatten().unzip();
    Workload { payers, txs }
}
