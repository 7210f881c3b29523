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

/// A node on loopback (port 0) in a temporary data directory, its genesis funding `payers`
/// new keypairs with [`PAYER_LAMPORTS`] each. Fields drop in order: the node before its
/// directory.
pub struct FundedNode {
    pub node: appliance::node::Node,
    pub payers: Vec<Keypair>,
    _dir: tempfile::TempDir,
}

/// Starts a [`FundedNode`]; `adjust` changes the configuration first.
pub fn funded_node(
    payers: usize,
    adjust: impl FnOnce(&mut appliance::config::Config),
) -> anyhow::Result<FundedNode> {
    let payers: Vec<Keypair> = (0..payers).map(|_| Keypair::new()).collect();
    funded_node_with(payers, Vec::new(), adjust)
}

/// Starts a [`FundedNode`] whose genesis funds `payers` with [`PAYER_LAMPORTS`] each and
/// `extra` with the lamports given.
pub fn funded_node_with(
    payers: Vec<Keypair>,
    extra: Vec<(Pubkey, u64)>,
    adjust: impl FnOnce(&mut appliance::config::Config),
) -> anyhow::Result<FundedNode> {
    let dir = tempfile::tempdir()?;
    let mut cfg = appliance::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    cfg.net.bind = "127.0.0.1:0".parse()?;
    adjust(&mut cfg);
    let funded = payers
        .iter()
        .map(|p| (p.pubkey(), PAYER_LAMPORTS))
        .chain(extra)
        .collect();
    let node = appliance::node::Node::start_with_genesis(cfg, funded)?;
    Ok(FundedNode {
        node,
        payers,
        _dir: dir,
    })
}

/// The newest processed slot's blockhash.
pub fn latest_blockhash(node: &appliance::node::Node) -> anyhow::Result<Hash> {
    Ok(node
        .runtime
        .chain
        .latest_header(runtime::chain::Commitment::Processed)
        .ok_or_else(|| anyhow::anyhow!("no slot"))?
        .blockhash)
}

/// What a sender of the mixed workload sends, by its index: among any 100 consecutive senders
/// exactly 2 overdraw their balance (the transfer fails, the fee is charged), 5 pay one of
/// [`HOT_WALLETS`] hot wallets, 5 send tokens to one of the [`MINTS`] hot token accounts, 20
/// send tokens to a random holder of their mint, and 68 pay a random other sender.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Overdraft,
    HotSystem,
    HotToken,
    ColdToken,
    ColdSystem,
}

impl Kind {
    pub fn of(sender: usize) -> Self {
        match (sender * 37) % 100 {
            0..2 => Self::Overdraft,
            2..7 => Self::HotSystem,
            7..12 => Self::HotToken,
            12..32 => Self::ColdToken,
            _ => Self::ColdSystem,
        }
    }

    pub fn holds_tokens(self) -> bool {
        matches!(self, Self::HotToken | Self::ColdToken)
    }
}

/// Hot System accounts (an exchange's deposit wallets, say) of the mixed workload.
pub const HOT_WALLETS: usize = 4;
/// SPL Token mints of the mixed workload; each has one hot token account.
pub const MINTS: usize = 4;
/// The compute-unit limit a wallet sets on a token transfer after simulating it (SPL Token
/// 3.5's Transfer consumes ~4,650).
pub const TOKEN_TRANSFER_CU: u32 = 6_000;
/// Token accounts created per set-up transaction (what fits in 1,232 bytes).
const SETUP_ACCOUNTS_PER_TX: usize = 5;
/// Compute units a set-up transaction asks for per account it creates, initialises and mints
/// to.
const SETUP_CU_PER_ACCOUNT: u32 = 15_000;
const FUNDER_LAMPORTS: u64 = 1 << 50;
const TOKENS_PER_HOLDER: u64 = 1 << 40;

/// One signed transaction and whether it should succeed.
pub struct SignedTx {
    pub signature: solana_signature::Signature,
    pub wire: Vec<u8>,
    pub expect_ok: bool,
}

impl SignedTx {
    fn new(tx: &Transaction, expect_ok: bool) -> Self {
        Self {
            signature: tx.signatures[0],
            wire: bincode::serialize(tx).expect("serializes"),
            expect_ok,
        }
    }
}

/// Sign `f(i)` for every `i` in `range` on all cores, in order.
pub fn sign_parallel(
    range: std::ops::Range<usize>,
    f: impl Fn(usize) -> SignedTx + Sync,
) -> Vec<SignedTx> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = range.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = range
            .clone()
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    (start..(start + chunk).min(range.end))
                        .map(f)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signer thread"))
            .collect::<Vec<SignedTx>>()
    })
}

/// Sign `make(i)` for every `i` below `n` on every core, in order, serialized.
pub fn sign_all(n: usize, make: impl Fn(usize) -> Transaction + Sync) -> Vec<Vec<u8>> {
    sign_parallel(0..n, |i| SignedTx::new(&make(i), true))
        .into_iter()
        .map(|t| t.wire)
        .collect()
}

/// The first signature of a serialized transaction.
pub fn signature(wire: &[u8]) -> solana_signature::Signature {
    // One signature count byte, then the first signature.
    solana_signature::Signature::from(
        <[u8; 64]>::try_from(&wire[1..65]).expect("a signed transaction"),
    )
}

/// A row name made at run time (rows are named by `&'static str`).
pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The mixed workload: System and SPL Token transfers over hot and cold accounts, a few of
/// them failing (see [`Kind`]). Token accounts are created by set-up transactions the node
/// executes before anything is timed.
pub struct Mixed {
    pub senders: Vec<Keypair>,
    /// One per mint: pays the set-up, is the mint authority and the seed base of its accounts.
    funders: Vec<Keypair>,
    hot_wallets: Vec<Pubkey>,
    mints: Vec<Pubkey>,
    hot_token: Vec<Pubkey>,
    /// Each sender's token account (token kinds only).
    token_account: Vec<Option<Pubkey>>,
    /// Token accounts by mint: cold destinations.
    holders: Vec<Vec<Pubkey>>,
}

fn seeded(base: &Pubkey, seed: &str) -> Pubkey {
    Pubkey::create_with_seed(base, seed, &super::spl::TOKEN).expect("short seed")
}

impl Mixed {
    /// `senders` new keypairs and the accounts around them.
    pub fn new(senders: usize) -> Self {
        let funders: Vec<Keypair> = (0..MINTS).map(|_| Keypair::new()).collect();
        let mints = funders
            .iter()
            .map(|f| seeded(&f.pubkey(), "mint"))
            .collect();
        let hot_token = funders.iter().map(|f| seeded(&f.pubkey(), "hot")).collect();
        let token_account: Vec<Option<Pubkey>> = (0..senders)
            .map(|i| {
                Kind::of(i)
                    .holds_tokens()
                    .then(|| seeded(&funders[i % MINTS].pubkey(), &format!("t{i}")))
            })
            .collect();
        let mut holders = vec![Vec::new(); MINTS];
        for (i, a) in token_account.iter().enumerate() {
            if let Some(a) = a {
                holders[i % MINTS].push(*a);
            }
        }
        Self {
            senders: (0..senders).map(|_| Keypair::new()).collect(),
            funders,
            hot_wallets: (0..HOT_WALLETS).map(|_| Pubkey::new_unique()).collect(),
            mints,
            hot_token,
            token_account,
            holders,
        }
    }

    /// Accounts genesis must fund besides the senders.
    pub fn genesis_extra(&self) -> Vec<(Pubkey, u64)> {
        self.funders
            .iter()
            .map(|f| (f.pubkey(), FUNDER_LAMPORTS))
            .chain(self.hot_wallets.iter().map(|w| (*w, PAYER_LAMPORTS)))
            .collect()
    }

    /// Set-up in two waves, each to be executed before the next: the mints and hot token
    /// accounts; then every token sender's account, funded with tokens.
    pub fn setup(&self, blockhash: Hash) -> [Vec<SignedTx>; 2] {
        use super::spl;
        let create = |f: &Keypair, seed: &str, len: u64| {
            solana_system_interface::instruction::create_account_with_seed(
                &f.pubkey(),
                &seeded(&f.pubkey(), seed),
                &f.pubkey(),
                seed,
                spl::rent_exempt(len),
                len,
                &spl::TOKEN,
            )
        };
        let sign = |f: &Keypair, ixs: Vec<solana_instruction::Instruction>| {
            SignedTx::new(
                &Transaction::new(&[f], Message::new(&ixs, Some(&f.pubkey())), blockhash),
                true,
            )
        };
        let first = (0..MINTS)
            .map(|m| {
                let f = &self.funders[m];
                sign(
                    f,
                    vec![
                        spl::cu_limit(4 * SETUP_CU_PER_ACCOUNT),
                        create(f, "mint", spl::MINT_LEN),
                        spl::initialize_mint2(&self.mints[m], &f.pubkey(), 0),
                        create(f, "hot", spl::ACCOUNT_LEN),
                        spl::initialize_account3(&self.hot_token[m], &self.mints[m], &f.pubkey()),
                    ],
                )
            })
            .collect();
        let mut by_mint = vec![Vec::new(); MINTS];
        for (i, a) in self.token_account.iter().enumerate() {
            if a.is_some() {
                by_mint[i % MINTS].push(i);
            }
        }
        let chunks: Vec<(usize, &[usize])> = by_mint
            .iter()
            .enumerate()
            .flat_map(|(m, v)| v.chunks(SETUP_ACCOUNTS_PER_TX).map(move |c| (m, c)))
            .collect();
        let second = sign_parallel(0..chunks.len(), |k| {
            let (m, senders) = chunks[k];
            let f = &self.funders[m];
            let mut ixs = vec![spl::cu_limit(SETUP_CU_PER_ACCOUNT * senders.len() as u32)];
            for &i in senders {
                let account = self.token_account[i].expect("a token sender");
                ixs.push(create(f, &format!("t{i}"), spl::ACCOUNT_LEN));
                ixs.push(spl::initialize_account3(
                    &account,
                    &self.mints[m],
                    &self.senders[i].pubkey(),
                ));
                ixs.push(spl::mint_to(
                    &self.mints[m],
                    &account,
                    &f.pubkey(),
                    TOKENS_PER_HOLDER,
                ));
            }
            sign(f, ixs)
        });
        [first, second]
    }

    /// The transaction sender `i` sends as the `k`-th of this node's life (`k` makes every
    /// message distinct; the destination is drawn from `k` too).
    pub fn transaction(&self, i: usize, k: u64, blockhash: Hash) -> SignedTx {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(k ^ ((i as u64) << 32));
        let payer = &self.senders[i];
        let n = self.senders.len();
        let other = |rng: &mut rand::rngs::StdRng| {
            let j = rng.gen_range(0..n.max(2) - 1);
            self.senders[if j >= i { (j + 1) % n } else { j }].pubkey()
        };
        let kind = Kind::of(i);
        let system = |to: Pubkey, lamports: u64| {
            vec![solana_system_interface::instruction::transfer(
                &payer.pubkey(),
                &to,
                lamports,
            )]
        };
        let token = |to: Pubkey| {
            let from = self.token_account[i].expect("a token sender");
            vec![
                super::spl::cu_limit(TOKEN_TRANSFER_CU),
                super::spl::transfer(&from, &to, &payer.pubkey(), 1 + k),
            ]
        };
        let m = i % MINTS;
        let ixs = match kind {
            Kind::Overdraft => system(other(&mut rng), 2 * PAYER_LAMPORTS + k),
            Kind::HotSystem => system(self.hot_wallets[rng.gen_range(0..HOT_WALLETS)], 1 + k),
            Kind::ColdSystem => system(other(&mut rng), 1 + k),
            Kind::HotToken => token(self.hot_token[m]),
            Kind::ColdToken => {
                let own = self.token_account[i];
                let h = &self.holders[m];
                let mut to = h[rng.gen_range(0..h.len())];
                if Some(to) == own && h.len() > 1 {
                    to = self.hot_token[m];
                }
                token(to)
            }
        };
        SignedTx::new(
            &Transaction::new(
                &[payer],
                Message::new(&ixs, Some(&payer.pubkey())),
                blockhash,
            ),
            kind != Kind::Overdraft,
        )
    }
}
