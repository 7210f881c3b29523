//! What a slot record contributes to the indexes, read from its transactions: each one's
//! signature and account keys (static and loaded from lookup tables, as Agave's
//! address-signatures index has them), and its memo for getSignaturesForAddress.

use runtime::chain::TxStatus;
use solana_message::VersionedMessage;
use solana_pubkey::Pubkey;
use solana_transaction::versioned::VersionedTransaction;

/// The SPL Memo programs whose instruction data is a transaction's memo (v1 and v3).
const MEMO_PROGRAMS: [Pubkey; 2] = [
    Pubkey::from_str_const("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),
    Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
];

/// The key the signature index uses: the signature's first 16 bytes. A match is confirmed
/// against the stored record, so a coincidence costs a read, never a wrong answer.
pub fn sig_key(sig: &solana_signature::Signature) -> u128 {
    let b: &[u8] = sig.as_ref();
    u128::from_le_bytes(b[..16].try_into().expect("64-byte signature"))
}

/// The transaction a status carries, if it decodes (statuses are written by this node, so
/// it always should).
pub fn transaction(st: &TxStatus) -> Option<VersionedTransaction> {
    bincode::deserialize(&st.transaction).ok()
}

/// Every account key of the transaction, each once: static keys, then loaded writable, then
/// loaded read-only.
pub fn account_keys(st: &TxStatus, tx: Option<&VersionedTransaction>) -> Vec<Pubkey> {
    let mut keys: Vec<Pubkey> = tx
        .map(|t| t.message.static_account_keys().to_vec())
        .unwrap_or_default();
    for k in st.loaded_writable.iter().chain(&st.loaded_readonly) {
        if !keys.contains(k) {
            keys.push(*k);
        }
    }
    keys
}

/// The memo as Agave reports it: each top-level Memo-program instruction's data as
/// `[len] text` (`(unparseable)` when not UTF-8), joined by `; `; `None` without one.
pub fn memo(tx: &VersionedTransaction) -> Option<String> {
    let m: &VersionedMessage = &tx.message;
    let keys = m.static_account_keys();
    let memos: Vec<String> = m
        .instructions()
        .iter()
        .filter(|ix| {
            keys.get(usize::from(ix.program_id_index))
                .is_some_and(|p| MEMO_PROGRAMS.contains(p))
        })
        .map(|ix| {
            let text = std::str::from_utf8(&ix.data).unwrap_or("(unparseable)");
            format!("[{}] {text}", ix.data.len())
        })
        .collect();
    (!memos.is_empty()).then(|| memos.join("; "))
}
