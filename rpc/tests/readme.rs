//! README.md's method table is the API as built: every method of Agave's HTTP API that is not
//! deprecated is listed, and a method is marked supported exactly when `rpc::params::parse`
//! knows it.

use rpc::params::METHODS;
use std::collections::BTreeSet;

/// Agave's HTTP API, deprecated methods left out (solana.com/docs/rpc/http).
const AGAVE: &[&str] = &[
    "getAccountInfo",
    "getBalance",
    "getBlock",
    "getBlockCommitment",
    "getBlockHeight",
    "getBlockProduction",
    "getBlocks",
    "getBlocksWithLimit",
    "getBlockTime",
    "getClusterNodes",
    "getEpochInfo",
    "getEpochSchedule",
    "getFeeForMessage",
    "getFirstAvailableBlock",
    "getGenesisHash",
    "getHealth",
    "getHighestSnapshotSlot",
    "getIdentity",
    "getInflationGovernor",
    "getInflationRate",
    "getInflationReward",
    "getLargestAccounts",
    "getLatestBlockhash",
    "getLeaderSchedule",
    "getMaxRetransmitSlot",
    "getMaxShredInsertSlot",
    "getMinimumBalanceForRentExemption",
    "getMultipleAccounts",
    "getProgramAccounts",
    "getRecentPerformanceSamples",
    "getRecentPrioritizationFees",
    "getSignaturesForAddress",
    "getSignatureStatuses",
    "getSlot",
    "getSlotLeader",
    "getSlotLeaders",
    "getStakeMinimumDelegation",
    "getSupply",
    "getTokenAccountBalance",
    "getTokenAccountsByDelegate",
    "getTokenAccountsByOwner",
    "getTokenLargestAccounts",
    "getTokenSupply",
    "getTransaction",
    "getTransactionCount",
    "getVersion",
    "getVoteAccounts",
    "isBlockhashValid",
    "minimumLedgerSlot",
    "requestAirdrop",
    "sendTransaction",
    "simulateTransaction",
];

/// This node's own methods (state proofs, pre-confirmations), not Agave's.
const OWN: &[&str] = &[
    "getSlotHeader",
    "getAccountWithProof",
    "getClusterStateRoot",
    "getClusterAccountProof",
    "getSignaturePreconfirmations",
];

#[test]
fn readme_method_table_is_the_api_as_built() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let block = readme
        .split("<!-- begin rpc-methods -->")
        .nth(1)
        .and_then(|b| b.split("<!-- end rpc-methods -->").next())
        .expect("README.md has the rpc-methods block");
    let mut listed = BTreeSet::new();
    let mut supported = BTreeSet::new();
    for row in block.lines().filter(|l| l.starts_with("| ")).skip(1) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (method, yes) = (cells[1], cells[2]);
        if method.starts_with("---") {
            continue;
        }
        listed.insert(method);
        if yes == "yes" {
            supported.insert(method);
        }
    }
    let agave: BTreeSet<&str> = AGAVE.iter().copied().collect();
    assert_eq!(agave.len(), 52);
    assert_eq!(listed, agave, "the table lists Agave's methods, each once");
    let built: BTreeSet<&str> = METHODS
        .iter()
        .copied()
        .filter(|m| !OWN.contains(m))
        .collect();
    assert_eq!(
        supported, built,
        "README marks supported exactly the methods rpc::params::parse answers"
    );
}
