use super::*;
use proptest::prelude::*;
use solana_account::WritableAccount;
use std::collections::BTreeMap;

type State = BTreeMap<Pubkey, AccountSharedData>;

fn key(i: u8) -> Pubkey {
    // Shared prefixes, so neighbours differ only in late bytes.
    let mut k = [0u8; 32];
    k[0] = i / 16;
    k[31] = i;
    Pubkey::new_from_array(k)
}

fn account(lamports: u64, fill: u8) -> AccountSharedData {
    let mut a = AccountSharedData::new(
        lamports,
        (fill % 5) as usize,
        &Pubkey::new_from_array([3; 32]),
    );
    a.data_as_mut_slice().fill(fill);
    a
}

/// A slot: (key index, new lamports; 0 deletes).
fn slot_strategy() -> impl Strategy<Value = Vec<(u8, u64)>> {
    prop::collection::btree_map(0u8..48, prop_oneof![Just(0u64), 1u64..1000], 0..12)
        .prop_map(|m| m.into_iter().collect())
}

fn commit(c: &mut Commitment, state: &mut State, slot: u64, ops: &[(u8, u64)]) -> Staged {
    let accounts: Vec<(Pubkey, AccountSharedData)> = ops
        .iter()
        .map(|(i, l)| {
            (
                key(*i),
                if *l == 0 {
                    AccountSharedData::default()
                } else {
                    account(*l, *i)
                },
            )
        })
        .collect();
    let old = accounts
        .iter()
        .map(|(k, _)| state.get(k).cloned())
        .collect();
    for (k, a) in &accounts {
        if a.lamports() == 0 {
            state.remove(k);
        } else {
            state.insert(*k, a.clone());
        }
    }
    c.stage(slot, &accounts, old)
}

fn check_proofs(c: &Commitment, slot: u64, state: &State) {
    let root = c.header(slot).expect("retained").root;
    for i in 0..50u8 {
        let k = key(i);
        let p = c
            .prove(&k, Some(slot), |k| Ok(state.get(k).cloned()))
            .unwrap_or_else(|e| panic!("slot {slot} key {i}: {e}"));
        assert_eq!(p.root, root);
        assert_eq!(p.account.as_ref(), state.get(&k), "slot {slot} key {i}");
        let st = p.account.as_ref().map(account_state);
        stateproof::verify(&root, &k.to_bytes(), st.as_ref(), &p.proof()).expect("verifies");
        // The binary form round-trips and stays within 1 KiB.
        let bytes = p.encoded();
        assert!(bytes.len() <= 1024);
        let decoded = stateproof::Proof::decode(&bytes).expect("decodes");
        stateproof::verify(&root, &k.to_bytes(), st.as_ref(), &decoded).expect("decoded verifies");
        // The opposite claim fails.
        let other = account(7, 7);
        let wrong = match &p.account {
            Some(_) => None,
            None => Some(account_state(&other)),
        };
        assert!(stateproof::verify(&root, &k.to_bytes(), wrong.as_ref(), &p.proof()).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn proofs_round_trip_at_every_retained_slot(
        slots in prop::collection::vec(slot_strategy(), 1..14),
        rollback_at in 0usize..14,
    ) {
        let cfg = CommitmentConfig { window_slots: 8, history_bytes: 1 << 30 };
        let mut c = Commitment::new(cfg);
        let mut state = State::new();
        let mut states: Vec<(u64, State)> = Vec::new();
        for (i, ops) in slots.iter().enumerate() {
            let slot = 10 + 2 * i as u64;
            if i == rollback_at {
                // A commit that fails: everything is as before it.
                let before = c.root();
                let mut scratch = state.clone();
                let staged = commit(&mut c, &mut scratch, slot, ops);
                c.rollback(staged);
                prop_assert_eq!(c.root(), before);
            }
            let staged = commit(&mut c, &mut state, slot, ops);
            c.publish(staged);
            // Incremental root equals the root of a tree built from scratch.
            let rebuilt = StateTree::from_entries(c.tree().entries()).expect("rebuild");
            prop_assert_eq!(rebuilt.root(), c.root());
            prop_assert_eq!(c.tree().len(), state.len());
            states.push((slot, state.clone()));
        }
        for (slot, st) in states.iter().rev().take(cfg.window_slots) {
            check_proofs(&c, *slot, st);
        }
        let oldest_kept = states[states.len().saturating_sub(cfg.window_slots)].0;
        if states.len() > cfg.window_slots {
            let gone = states[0].0;
            let r = c.prove(&key(1), Some(gone), |_| Ok(None));
            let not_retained = matches!(r, Err(ProofQueryError::NotRetained { .. }));
            prop_assert!(not_retained, "slot {} should be out of the window", gone);
        }
        prop_assert_eq!(c.oldest_header(), Some(oldest_kept));
    }

    #[test]
    fn same_changes_give_the_same_roots(slots in prop::collection::vec(slot_strategy(), 1..10)) {
        let run = || {
            let mut c = Commitment::new(CommitmentConfig::default());
            let mut state = State::new();
            let mut roots = Vec::new();
            for (i, ops) in slots.iter().enumerate() {
                let staged = commit(&mut c, &mut state, i as u64 + 1, ops);
                roots.push((staged.header.root, staged.header.lattice_checksum()));
                c.publish(staged);
            }
            roots
        };
        prop_assert_eq!(run(), run());
    }
}

#[test]
fn lattice_hash_is_the_sum_over_accounts() {
    // Incremental updates equal a from-scratch sum over the final state.
    let mut c = Commitment::new(CommitmentConfig::default());
    let mut state = State::new();
    for (slot, ops) in [
        vec![(1u8, 10u64), (2, 20), (3, 30)],
        vec![(2, 0), (4, 40)],
        vec![(1, 11), (3, 0)],
    ]
    .iter()
    .enumerate()
    {
        let staged = commit(&mut c, &mut state, slot as u64 + 1, ops);
        c.publish(staged);
    }
    let mut expect = LtHash::identity();
    for (k, a) in &state {
        expect.mix_in(&lattice::account_lt_hash(k, a));
    }
    assert_eq!(*c.latest().expect("slot").lattice, expect);
}

#[test]
fn history_budget_limits_older_slot_proofs_with_a_clear_error() {
    let cfg = CommitmentConfig {
        window_slots: 100,
        history_bytes: 1,
    };
    let mut c = Commitment::new(cfg);
    let mut state = State::new();
    for slot in 1..=5 {
        let staged = commit(&mut c, &mut state, slot, &[(slot as u8, slot)]);
        c.publish(staged);
    }
    let err = c
        .prove(&key(1), Some(2), |k| Ok(state.get(k).cloned()))
        .expect_err("history dropped");
    assert!(
        matches!(
            err,
            ProofQueryError::HistoryNotHeld {
                slot: 2,
                newest: 5,
                ..
            }
        ),
        "{err}"
    );
    // The newest slot is always provable, and its header is there for all five.
    c.prove(&key(1), None, |k| Ok(state.get(k).cloned()))
        .expect("newest");
    assert!(c.header(1).is_some());
}

#[test]
fn header_encoding_round_trips() {
    let mut c = Commitment::new(CommitmentConfig::default());
    let mut state = State::new();
    let staged = commit(&mut c, &mut state, 9, &[(1, 5), (2, 6)]);
    let mut buf = Vec::new();
    staged.header.encode(&mut buf);
    buf.extend_from_slice(b"runtime");
    let (h, rest) = SlotCommitment::decode(&buf).expect("decodes");
    assert_eq!(h, staged.header);
    assert_eq!(rest, b"runtime");
    assert!(SlotCommitment::decode(&buf[..100]).is_err());
}

/// However much history memory allows, a proof replays at most MAX_PROOF_REPLAY_BYTES of it
/// (it holds the lock commits need while it does): older slots get the "no longer held" error.
#[test]
fn proofs_replay_a_bounded_amount_of_history() {
    let mut c = Commitment::new(CommitmentConfig {
        window_slots: 100,
        history_bytes: 1 << 30,
    });
    let mut state = State::new();
    let big = 9 << 20;
    for slot in 1..=12u64 {
        let mut a = AccountSharedData::new(slot, big, &Pubkey::new_from_array([3; 32]));
        a.data_as_mut_slice()[0] = slot as u8;
        let accounts = vec![(key(1), a)];
        let old = vec![state.get(&key(1)).cloned()];
        state.insert(key(1), accounts[0].1.clone());
        let staged = c.stage(slot, &accounts, old);
        c.publish(staged);
    }
    let err = c
        .prove(&key(1), Some(2), |k| Ok(state.get(k).cloned()))
        .expect_err("too far back");
    let ProofQueryError::HistoryNotHeld { oldest, newest, .. } = err else {
        panic!("{err}");
    };
    assert_eq!(newest, 12);
    // ~9 MiB of old data per slot: about seven slots fit in 64 MiB of replay.
    assert!((4..12).contains(&oldest), "{oldest}");
    let p = c
        .prove(&key(1), Some(oldest), |k| Ok(state.get(k).cloned()))
        .expect("within the budget");
    assert_eq!(p.account.expect("present").lamports(), oldest);
}
