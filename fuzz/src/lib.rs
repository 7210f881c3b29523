//! Sources of the appliance that the fuzz targets compile directly, because their crates are
//! too heavy to build with coverage instrumentation (runtime, and rpc, which needs it) or keep
//! them private (storage's `record` module). Each is the file itself, not a copy: `#[path]` /
//! `include!`.

#![allow(dead_code, clippy::all)]

/// storage/src/record.rs: the log store's record format (private in `storage`).
#[path = "../../storage/src/record.rs"]
pub mod record;

/// storage/src/array/layout.rs: the device array's records, label and superblock.
#[path = "../../storage/src/array/layout.rs"]
pub mod layout;

/// runtime/src/compute_budget.rs with a shim for `solana_compute_budget`.
pub mod compute_budget {
    /// What runtime's compute_budget.rs uses of solana-compute-budget 4.2.2 (constants from
    /// solana-program-runtime 4.2.2's execution_budget.rs; struct and fee rule from
    /// compute_budget_limits.rs).
    mod solana_compute_budget {
        pub mod compute_budget_limits {
            use std::num::NonZeroU32;
            pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 1_400_000;
            pub const DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT: u32 = 200_000;
            pub const MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT: u32 = 3_000;
            pub const MAX_HEAP_FRAME_BYTES: u32 = 256 * 1024;
            pub const MIN_HEAP_FRAME_BYTES: u32 = 32 * 1024;
            pub const MAX_LOADED_ACCOUNTS_DATA_SIZE_BYTES: NonZeroU32 =
                NonZeroU32::new(64 * 1024 * 1024).unwrap();

            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct ComputeBudgetLimits {
                pub updated_heap_bytes: u32,
                pub compute_unit_limit: u32,
                pub compute_unit_price: u64,
                pub loaded_accounts_bytes: NonZeroU32,
            }

            impl ComputeBudgetLimits {
                pub fn get_prioritization_fee(&self) -> u64 {
                    (self.compute_unit_price as u128)
                        .saturating_mul(self.compute_unit_limit as u128)
                        .saturating_add(999_999)
                        .checked_div(1_000_000)
                        .and_then(|fee| u64::try_from(fee).ok())
                        .unwrap_or(u64::MAX)
                }
            }
        }
    }
    include!(concat!(env!("OUT_DIR"), "/compute_budget.rs"));
}

/// rpc/src/framing.rs: JSON-RPC 2.0 framing, batching and error envelopes without a node.
#[path = "../../rpc/src/framing.rs"]
pub mod framing;

/// rpc/src/params.rs: the methods' parameters, read without a node. It names
/// `runtime::chain::Commitment`; this crate stands in for `runtime` (`chain` below).
#[path = "../../rpc/src/params.rs"]
pub mod params;

/// rpc/src/filters.rs: getProgramAccounts' and programSubscribe's filters (params.rs reads
/// them).
#[path = "../../rpc/src/filters.rs"]
pub mod filters;

extern crate self as runtime;

/// What rpc/src/params.rs uses of runtime/src/chain.rs: the commitment levels (same variants,
/// same order, same derives).
pub mod chain {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Commitment {
        Processed,
        Confirmed,
        Finalized,
    }
}

/// runtime/src/index/token.rs: the SPL token layouts rpc/src/filters.rs matches with (as
/// `runtime::index::token`).
#[path = "../../runtime/src/index/token.rs"]
pub mod index_token;
pub mod index {
    pub use super::index_token as token;
}

/// rpc/src/proof_json.rs: the JSON form of account proofs and its check (`gigacompute proof
/// verify`).
#[path = "../../rpc/src/proof_json.rs"]
pub mod proof_json;
