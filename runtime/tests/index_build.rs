//! Start-up cost of the secondary account indexes: a device-array store of
//! `GC_INDEX_ACCOUNTS` accounts (default 1,000,000: 70% SPL token accounts over 1,000 mints and
//! 100,000 owners, 30% system accounts), reopened, then `AccountsDb::build_index` timed; and
//! the built index checked against what was written. Ignored by default (minutes, a large
//! device file in `GC_INDEX_DIR` or the temp dir):
//! `GC_INDEX_ACCOUNTS=1000000 cargo test --release -p runtime --test index_build -- --ignored --nocapture`

use runtime::accounts::AccountsDb;
use runtime::index::IndexKind;
use runtime::index::token::TOKEN_PROGRAM;
use solana_account::{Account, AccountSharedData};
use solana_pubkey::Pubkey;
use std::sync::Arc;
use std::time::Instant;
use storage::{AccountState, ArrayConfig, ArrayStore, DeviceSpec};

fn key(i: u64, salt: u8) -> Pubkey {
    let mut k = [salt; 32];
    k[..8].copy_from_slice(&i.to_le_bytes());
    // Spread over the index shards as real keys are.
    k[8..16].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    Pubkey::new_from_array(k)
}

fn account(i: u64) -> AccountSharedData {
    if i % 10 < 7 {
        let mut data = vec![0u8; 165];
        data[..32].copy_from_slice(key(i % 1_000, 1).as_ref());
        data[32..64].copy_from_slice(key(i % 100_000, 2).as_ref());
        data[64..72].copy_from_slice(&i.to_le_bytes());
        data[108] = 1;
        AccountSharedData::from(Account {
            lamports: 2_039_280,
            data,
            owner: TOKEN_PROGRAM,
            executable: false,
            rent_epoch: 0,
        })
    } else {
        AccountSharedData::new(1_000_000, 0, &Pubkey::default())
    }
}

#[test]
#[ignore]
fn index_build_at_start_on_a_large_store() {
    let n: u64 = std::env::var("GC_INDEX_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var("GC_INDEX_DIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let dir = tempfile::tempdir_in(base).unwrap();
    let config = ArrayConfig {
        devices: vec![DeviceSpec {
            path: dir.path().join("dev0"),
            create_bytes: (n * 512).max(64 << 20),
        }],
        io_uring: false,
        direct_io: false,
        ..ArrayConfig::default()
    };
    {
        let store = ArrayStore::open(config.clone()).unwrap();
        let started = Instant::now();
        for (slot, chunk) in (0..n).collect::<Vec<_>>().chunks(20_000).enumerate() {
            let writes: Vec<_> = chunk.iter().map(|i| (key(*i, 0), account(*i))).collect();
            store.commit_slot(slot as u64 + 1, &writes, b"").unwrap();
        }
        eprintln!("wrote {n} accounts in {:?}", started.elapsed());
    }
    let store = Arc::new(ArrayStore::open(config).unwrap());
    let db = AccountsDb::new(store, telemetry::SharedRegion::private());
    let built = db.build_index();
    let stats = db.index_stats();
    eprintln!(
        "index build: {} accounts, {} entries, {} index keys, ~{} MiB, {} ms ({:.0} accounts/s)",
        built.accounts,
        built.entries,
        stats.index_keys,
        stats.bytes >> 20,
        built.elapsed_ms,
        built.accounts as f64 / (built.elapsed_ms.max(1) as f64 / 1000.0)
    );
    assert_eq!(built.accounts as u64, n);
    assert_eq!(built.read_errors, 0);
    let tokens = (0..n).filter(|i| i % 10 < 7).count();
    assert_eq!(built.entries, n as usize + 2 * tokens);
    let mint0 = db
        .index_candidates(IndexKind::SplTokenMint, key(0, 1))
        .unwrap();
    assert_eq!(
        mint0.len(),
        (0..n).filter(|i| i % 10 < 7 && i % 1_000 == 0).count()
    );
}
