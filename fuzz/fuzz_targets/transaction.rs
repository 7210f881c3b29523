//! dataplane::parse_transaction and every TxDescriptor accessor. No input may panic; an
//! accepted transaction must lie within the buffer, and the parser must agree with the
//! reference decoder (bincode/wincode `VersionedTransaction`, what Agave's TPU uses): whatever
//! the fast parser accepts, the reference decodes to the same signatures, keys, blockhash and
//! instructions.
#![no_main]
use dataplane::parse::MessageVersion;
use libfuzzer_sys::fuzz_target;
use solana_transaction::versioned::VersionedTransaction;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = dataplane::parse_transaction(data) else {
        return;
    };
    assert!(usize::from(d.len) <= data.len());
    let sigs: Vec<_> = d.signatures(data).collect();
    assert_eq!(sigs.len(), usize::from(d.num_signatures));
    if d.num_signatures > 0 {
        assert_eq!(d.first_signature(data), sigs[0]);
    }
    let msg = d.message(data);
    let keys: Vec<_> = d.static_keys(data).collect();
    assert_eq!(keys.len(), usize::from(d.num_static_keys));
    for i in 0..keys.len() {
        assert_eq!(d.static_key(data, i), keys[i]);
        let _ = d.is_static_writable(i);
    }
    let _ = d.fee_payer(data);
    let bh = d.recent_blockhash(data);
    assert!(d.total_keys() >= keys.len());
    let ixs: Vec<_> = d.instructions(data).collect();
    assert_eq!(ixs.len(), usize::from(d.num_instructions));
    let lookups: Vec<_> = d.lookups(data).collect();
    assert_eq!(lookups.len(), usize::from(d.num_lookups));

    // Differential check against the reference decoder on the accepted prefix.
    let tx: VersionedTransaction = match bincode::deserialize(&data[..usize::from(d.len)]) {
        Ok(tx) => tx,
        Err(e) => panic!("fast parser accepted what the reference decoder rejects: {e}"),
    };
    assert_eq!(tx.signatures.len(), sigs.len());
    for (a, b) in tx.signatures.iter().zip(&sigs) {
        assert_eq!(a.as_ref(), &b[..]);
    }
    let m = &tx.message;
    assert_eq!(
        matches!(d.version, MessageVersion::Legacy),
        matches!(m, solana_message::VersionedMessage::Legacy(_))
    );
    assert_eq!(m.recent_blockhash().as_ref(), &bh[..]);
    assert_eq!(m.static_account_keys().len(), keys.len());
    for (a, b) in m.static_account_keys().iter().zip(&keys) {
        assert_eq!(a.as_ref(), &b[..]);
    }
    let h = m.header();
    assert_eq!(h.num_required_signatures, d.num_required_signatures);
    assert_eq!(h.num_readonly_signed_accounts, d.num_readonly_signed);
    assert_eq!(h.num_readonly_unsigned_accounts, d.num_readonly_unsigned);
    assert_eq!(m.instructions().len(), ixs.len());
    for (a, b) in m.instructions().iter().zip(&ixs) {
        assert_eq!(a.program_id_index, b.program_id_index);
        assert_eq!(a.accounts, b.accounts);
        assert_eq!(a.data, b.data);
    }
    let lk = m.address_table_lookups().unwrap_or(&[]);
    assert_eq!(lk.len(), lookups.len());
    for (a, b) in lk.iter().zip(&lookups) {
        assert_eq!(a.account_key.as_ref(), &b.table[..]);
        assert_eq!(a.writable_indexes, b.writable_indexes);
        assert_eq!(a.readonly_indexes, b.readonly_indexes);
    }
    // The message the signatures cover is the serialized message.
    assert_eq!(msg, &bincode::serialize(m).unwrap()[..]);
});
