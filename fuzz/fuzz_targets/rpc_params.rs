//! The JSON-RPC methods' parameter parsing (rpc/src/params.rs: everything `rpc::Rpc::call`
//! checks before it asks the node), and what methods.rs then does with a parsed transaction
//! before the node (signature, signature checks' key reads, blockhash replacement). Never
//! panics; a listed method never answers -32601 and any other always does; a parameter error
//! is -32602 "Invalid params: …"; what is accepted is within the methods' limits and is what
//! was sent (keys, signatures and transactions re-encode to the very strings of the request).
//!
//! Input: byte 0 picks the mode. Even: structured — byte 1 picks a method from
//! `params::METHODS` (or a name read from the input), then the parameters are built from the
//! rest by a small grammar biased towards what the methods read (base-58 keys and signatures,
//! base-58 / base-64 transactions, configuration keys and values; `value` below,
//! scripts/gen-fuzz-corpus.py writes seeds in it). Odd: the rest is a JSON-RPC body, run
//! through rpc/src/framing.rs as `rpc::server::handle_body` does, with `params::parse` as the
//! method.
#![no_main]
use base64::Engine;
use gigacompute_fuzz::chain::Commitment;
use gigacompute_fuzz::framing::{self, RpcError};
use gigacompute_fuzz::params::{self, Call, METHODS};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value, json};

const DICT: &[&str] = &[
    "commitment",
    "processed",
    "confirmed",
    "finalized",
    "recent",
    "single",
    "singleGossip",
    "max",
    "root",
    "minContextSlot",
    "encoding",
    "base58",
    "base64",
    "binary",
    "jsonParsed",
    "json",
    "dataSlice",
    "filters",
    "memcmp",
    "dataSize",
    "bytes",
    "tokenAccountState",
    "withContext",
    "sortResults",
    "mint",
    "programId",
    "offset",
    "length",
    "skipPreflight",
    "preflightCommitment",
    "sigVerify",
    "replaceRecentBlockhash",
    "maxSupportedTransactionVersion",
    "slot",
    "",
    "11111111111111111111111111111111",
    "base85",
];

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let t = self.take(8);
        b[..t.len()].copy_from_slice(t);
        u64::from_le_bytes(b)
    }
    fn fixed<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let t = self.take(N);
        b[..t.len()].copy_from_slice(t);
        b
    }
    fn string(&mut self) -> String {
        let n = usize::from(self.byte());
        String::from_utf8_lossy(self.take(n)).into_owned()
    }

    /// One JSON value (the grammar the seeds follow; input exhausted reads as null).
    fn value(&mut self, depth: u32) -> Value {
        match self.byte() % 13 {
            0 => Value::Null,
            1 => Value::Bool(self.byte() & 1 == 1),
            2 => json!(self.byte()),
            3 => json!(self.u64()),
            4 => json!(self.u64() as i64 | i64::MIN),
            5 => Number::from_f64(f64::from_bits(self.u64())).map_or(json!(0.5), Value::Number),
            6 => json!(DICT[usize::from(self.byte()) % DICT.len()]),
            7 => json!(self.string()),
            // A public key or blockhash, a signature.
            8 => json!(bs58::encode(self.fixed::<32>()).into_string()),
            9 => json!(bs58::encode(self.fixed::<64>()).into_string()),
            // Bytes (a transaction, a message) as base-58 or base-64.
            10 => {
                let how = self.byte();
                let n = usize::from(u16::from_le_bytes(self.fixed::<2>()));
                let b = self.take(n);
                json!(if how & 1 == 0 {
                    bs58::encode(b).into_string()
                } else {
                    base64::engine::general_purpose::STANDARD.encode(b)
                })
            }
            11 if depth < 4 => {
                let n = self.byte() % 8;
                Value::Array((0..n).map(|_| self.value(depth + 1)).collect())
            }
            12 if depth < 4 => {
                let n = self.byte() % 8;
                let mut m = Map::new();
                for _ in 0..n {
                    let k = self.byte();
                    let k = if k >= 240 {
                        self.string()
                    } else {
                        DICT[usize::from(k) % DICT.len()].to_string()
                    };
                    let v = self.value(depth + 1);
                    m.insert(k, v);
                }
                Value::Object(m)
            }
            _ => Value::Null,
        }
    }
}

/// A `Value`'s string, or panic.
fn s(v: &Value) -> &str {
    v.as_str().expect("a string parameter")
}

/// Checks one parse of `method`'s `params`; returns a summary of the call (its answer in
/// raw mode).
fn check(method: &str, p: &[Value]) -> Result<Value, RpcError> {
    let r = params::parse(method, p);
    let known = METHODS.contains(&method);
    let call = match r {
        Err(e) => {
            assert!(e.data.is_none());
            if known {
                assert_eq!(e.code, -32602, "{method}: {}", e.message);
                assert!(e.message.starts_with("Invalid params: "), "{}", e.message);
            } else {
                assert_eq!(e.code, -32601, "{method}");
            }
            return Err(e);
        }
        Ok(c) => c,
    };
    assert!(known, "{method} accepted");
    let summary = match call {
        Call::GetVersion | Call::GetHealth | Call::GetGenesisHash => json!(method),
        Call::GetSlot(at) | Call::GetEpochInfo(at) | Call::GetLatestBlockhash(at) => {
            json!([method, format!("{at:?}")])
        }
        Call::IsBlockhashValid { blockhash, at } => {
            assert_eq!(blockhash.to_string(), s(&p[0]));
            json!([blockhash.to_string(), format!("{at:?}")])
        }
        Call::GetBalance { key, at } | Call::GetTokenAccountBalance { key, at } => {
            assert_eq!(key.to_string(), s(&p[0]));
            json!([key.to_string(), format!("{at:?}")])
        }
        Call::GetAccountInfo { key, at, encoding } => {
            assert_eq!(key.to_string(), s(&p[0]));
            json!([key.to_string(), format!("{at:?} {encoding:?}")])
        }
        Call::GetMultipleAccounts { keys, at, encoding } => {
            let sent = p[0].as_array().expect("an array");
            assert!(keys.len() <= params::MAX_MULTIPLE_ACCOUNTS);
            assert_eq!(keys.len(), sent.len());
            for (k, v) in keys.iter().zip(sent) {
                assert_eq!(k.to_string(), s(v));
            }
            json!([keys.len(), format!("{at:?} {encoding:?}")])
        }
        Call::GetMinimumBalanceForRentExemption { data_len } => {
            assert!(data_len <= params::MAX_RENT_DATA_LEN);
            assert_eq!(Some(data_len), p[0].as_u64());
            json!(data_len)
        }
        Call::GetFeeForMessage { message, at } => {
            // The transaction is the message behind its signature count and zeroed
            // signatures; what methods.rs reads of it.
            let msg = base64::engine::general_purpose::STANDARD
                .decode(s(&p[0]))
                .expect("accepted base 64");
            assert!(message.tx.ends_with(&msg));
            assert_eq!(message.desc.message(&message.tx), &msg[..]);
            let _ = message.desc.recent_blockhash(&message.tx);
            json!([msg.len(), format!("{at:?}")])
        }
        Call::GetSignatureStatuses { signatures }
        | Call::GetSignaturePreconfirmations { signatures } => {
            let sent = p[0].as_array().expect("an array");
            assert!(signatures.len() <= params::MAX_SIGNATURE_STATUSES);
            assert_eq!(signatures.len(), sent.len());
            for (sig, v) in signatures.iter().zip(sent) {
                assert_eq!(sig.to_string(), s(v));
            }
            json!(signatures.len())
        }
        Call::GetTransaction {
            signature,
            commitment,
            config,
            max_version,
        } => {
            assert_eq!(signature.to_string(), s(&p[0]));
            assert_ne!(commitment, Commitment::Processed);
            json!([
                signature.to_string(),
                format!("{commitment:?}"),
                config,
                max_version
            ])
        }
        Call::GetSlotHeader { slot } => json!(slot),
        Call::GetAccountWithProof { key, slot } => {
            assert_eq!(key.to_string(), s(&p[0]));
            json!([key.to_string(), slot])
        }
        Call::GetClusterStateRoot { slot } => json!(slot),
        Call::GetClusterAccountProof { key, slot } => {
            assert_eq!(key.to_string(), s(&p[0]));
            json!([key.to_string(), slot])
        }
        Call::SendTransaction {
            tx,
            preflight,
            preconfirm,
        } => {
            let cfg = params::config(p, 1).expect("accepted");
            assert_eq!(
                preflight.is_none(),
                cfg.get("skipPreflight") == Some(&json!(true))
            );
            assert_eq!(preconfirm, cfg.get("preconfirm") == Some(&json!(true)));
            json!([transaction(tx, p, false), format!("{preflight:?}")])
        }
        Call::SimulateTransaction {
            tx,
            sig_verify,
            replace_blockhash,
            at,
        } => {
            assert!(!(sig_verify && replace_blockhash));
            json!([
                transaction(tx, p, replace_blockhash),
                sig_verify,
                format!("{at:?}")
            ])
        }
        Call::RequestAirdrop { to, lamports, at } => {
            assert_eq!(to.to_string(), s(&p[0]));
            assert_eq!(Some(lamports), p[1].as_u64());
            json!([to.to_string(), lamports, format!("{at:?}")])
        }
        Call::GetProgramAccounts(q) => {
            assert_eq!(q.program.to_string(), s(&p[0]));
            assert!(q.filters.len() <= gigacompute_fuzz::filters::MAX_FILTERS);
            json!([
                q.program.to_string(),
                format!("{:?} {:?} {:?}", q.at, q.encoding, q.filters),
                q.with_context,
                q.sort_results
            ])
        }
        Call::GetTokenAccounts {
            holder,
            key,
            filter,
            at,
            encoding,
        } => {
            assert_eq!(key.to_string(), s(&p[0]));
            json!([
                key.to_string(),
                format!("{holder:?} {filter:?} {at:?} {encoding:?}")
            ])
        }
        Call::GetTokenSupply { mint, at } | Call::GetTokenLargestAccounts { mint, at } => {
            assert_eq!(mint.to_string(), s(&p[0]));
            json!([mint.to_string(), format!("{at:?}")])
        }
        Call::GetIdentity
        | Call::GetEpochSchedule
        | Call::GetClusterNodes
        | Call::GetInflationGovernor
        | Call::GetInflationRate
        | Call::GetHighestSnapshotSlot
        | Call::GetMaxSlot
        | Call::GetFirstAvailableBlock
        | Call::MinimumLedgerSlot => json!(method),
        Call::GetSlotLeader(at)
        | Call::GetTransactionCount(at)
        | Call::GetStakeMinimumDelegation(at)
        | Call::GetSupply { at } => json!([method, format!("{at:?}")]),
        Call::GetLargestAccounts {
            at,
            non_circulating,
        } => json!([format!("{at:?}"), non_circulating]),
        Call::GetSlotLeaders { start, limit } => {
            assert!(limit <= params::MAX_GET_SLOT_LEADERS);
            assert_eq!(Some(start), p[0].as_u64());
            json!([start, limit])
        }
        Call::GetLeaderSchedule {
            slot,
            identity,
            commitment,
        } => json!([
            slot,
            identity.map(|k| k.to_string()),
            format!("{commitment:?}")
        ]),
        Call::GetVoteAccounts { vote_pubkey } => json!(vote_pubkey.map(|k| k.to_string())),
        Call::GetInflationReward {
            addresses,
            epoch,
            at,
        } => {
            let sent = p[0].as_array().expect("an array");
            assert_eq!(addresses.len(), sent.len());
            for (k, v) in addresses.iter().zip(sent) {
                assert_eq!(k.to_string(), s(v));
            }
            json!([addresses.len(), epoch, format!("{at:?}")])
        }
        Call::GetBlockCommitment { slot } | Call::GetBlockTime { slot } => {
            assert_eq!(Some(slot), p[0].as_u64());
            json!(slot)
        }
        Call::GetBlockProduction {
            identity,
            range,
            commitment,
        } => json!([
            identity.map(|k| k.to_string()),
            range,
            format!("{commitment:?}")
        ]),
        Call::GetRecentPerformanceSamples { limit } => {
            assert!(limit <= params::MAX_PERFORMANCE_SAMPLES);
            json!(limit)
        }
        Call::GetRecentPrioritizationFees { accounts } => {
            assert!(accounts.len() <= params::MAX_PRIORITIZATION_FEE_ACCOUNTS);
            json!(accounts.len())
        }
        Call::GetBlock {
            slot,
            config,
            details,
            rewards,
            max_version,
        } => {
            assert_eq!(Some(slot), p[0].as_u64());
            json!([slot, config, format!("{details:?}"), rewards, max_version])
        }
        Call::GetBlocks { start, end } => {
            assert_eq!(Some(start), p[0].as_u64());
            json!([start, end])
        }
        Call::GetBlocksWithLimit { start, limit } => {
            assert_eq!(Some(start), p[0].as_u64());
            assert!(limit <= params::MAX_BLOCKS_RANGE);
            json!([start, limit])
        }
        Call::GetSignaturesForAddress {
            address,
            before,
            until,
            limit,
            at,
        } => {
            assert_eq!(address.to_string(), s(&p[0]));
            assert!((1..=params::MAX_SIGNATURES_FOR_ADDRESS).contains(&limit));
            json!([
                address.to_string(),
                before.map(|x| x.to_string()),
                until.map(|x| x.to_string()),
                limit,
                format!("{at:?}")
            ])
        }
    };
    Ok(summary)
}

/// A parsed transaction parameter: its bytes are the string sent, decoded (they re-encode to
/// it); then what methods.rs reads of the packet before the node: the first signature, every
/// signature with its signer's key (`verify_signatures`, minus the curve arithmetic), and for
/// simulateTransaction's `replaceRecentBlockhash` the blockhash overwritten and the message
/// decoded again.
fn transaction(mut packet: dataplane::PacketBox, p: &[Value], replace: bool) -> Value {
    let cfg = params::config(p, 1).expect("accepted");
    let sent = s(&p[0]);
    let bytes = packet.bytes().to_vec();
    let again = match cfg.get("encoding").and_then(Value::as_str) {
        Some("base64") => base64::engine::general_purpose::STANDARD.encode(&bytes),
        _ => bs58::encode(&bytes).into_string(),
    };
    assert_eq!(again, sent);
    let d = packet.desc.expect("parsed");
    assert!(packet.verified.is_some());
    let _ = d.first_signature(&bytes);
    let n = d.signatures(&bytes).count();
    for i in 0..n {
        let _ = d.static_key(&bytes, i);
    }
    let _ = d.message(&bytes);
    if replace {
        let off = usize::from(d.blockhash_offset);
        packet.bytes_mut()[off..off + 32].copy_from_slice(&[7; 32]);
        let b = packet.bytes();
        packet.verified = dataplane::VerifiedTx::decode(b, d.message(b));
        assert!(
            packet.verified.is_some(),
            "a new blockhash keeps it decodable"
        );
    }
    json!([bytes.len(), n])
}

fn check_answer(req: &Value, a: &Value) {
    let o = a.as_object().expect("an answer is an object");
    assert_eq!(o.get("jsonrpc"), Some(&json!("2.0")));
    assert!(o.contains_key("result") != o.contains_key("error"));
    if let Some(r) = req.as_object() {
        assert_eq!(o.get("id"), Some(r.get("id").unwrap_or(&Value::Null)));
    }
    if let Some(e) = o.get("error") {
        assert!(e["code"].is_i64());
        assert!(e["message"].is_string());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.byte() & 1 == 1 {
        let out = framing::handle_body(input.0, &mut |req| {
            let a = framing::handle_one(req, &mut check);
            check_answer(req, &a);
            a
        });
        let back: Value = serde_json::from_str(&out.to_string()).expect("answer re-parses");
        assert_eq!(back.is_array(), out.is_array());
        return;
    }
    let m = usize::from(input.byte());
    let method = match METHODS.get(m) {
        Some(name) => name.to_string(),
        None if m < 128 => METHODS[m % METHODS.len()].to_ascii_lowercase(),
        None => input.string(),
    };
    let n = input.byte() % 5;
    let p: Vec<Value> = (0..n).map(|_| input.value(0)).collect();
    let first = check(&method, &p);
    // Deterministic: the same parameters read the same.
    let second = check(&method, &p);
    match (first, second) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!((a.code, a.message), (b.code, b.message)),
        _ => panic!("{method}: two answers"),
    }
});
