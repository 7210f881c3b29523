//! The JSON form of an account proof (what `getAccountWithProof` returns as its value) and
//! its check against a trusted root (`gigacompute proof verify`). The check itself is the
//! `stateproof` crate's; this module only reads and writes JSON.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};
use solana_account::ReadableAccount;
use solana_pubkey::Pubkey;
use stateproof::{AccountState, Hash, Key, Leaf, Proof};
use std::str::FromStr;
use storage::commitment::{AccountProof, hex};

fn key_json(k: &Option<Key>) -> Value {
    match k {
        Some(k) => json!(Pubkey::new_from_array(*k).to_string()),
        None => Value::Null,
    }
}

/// The `value` of a `getAccountWithProof` response.
pub fn to_json(key: &Pubkey, p: &AccountProof) -> Value {
    let account = p.account.as_ref().map(|a| {
        json!({
            "lamports": a.lamports(),
            "owner": a.owner().to_string(),
            "executable": a.executable(),
            "rentEpoch": a.rent_epoch(),
            "space": a.data().len(),
            "data": [base64::engine::general_purpose::STANDARD.encode(a.data()), "base64"],
        })
    });
    let leaf = match p.leaf {
        Leaf::Sentinel { next } => json!({"kind": "sentinel", "nextKey": key_json(&next)}),
        Leaf::Account {
            key,
            account_hash,
            next,
        } => json!({
            "kind": "account",
            "key": Pubkey::new_from_array(key).to_string(),
            "accountHash": hex(&account_hash),
            "nextKey": key_json(&next),
        }),
    };
    json!({
        "pubkey": key.to_string(),
        "slot": p.slot,
        "stateRoot": hex(&p.root),
        "account": account,
        "proof": {
            "leafIndex": p.leaf_index,
            "leaf": leaf,
            "siblings": p.siblings.iter().map(|s| hex(s)).collect::<Vec<_>>(),
            "encodedBytes": p.proof().encoded_len(),
        },
    })
}

pub fn parse_hash(s: &str) -> Result<Hash> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("expected 64 hex digits, got {s:?}");
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value> {
    v.get(name).ok_or_else(|| anyhow!("missing field `{name}`"))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| anyhow!("`{name}` must be a string"))
}

fn u64_field(v: &Value, name: &str) -> Result<u64> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| anyhow!("`{name}` must be an unsigned integer"))
}

fn pubkey(s: &str) -> Result<Key> {
    Ok(Pubkey::from_str(s)
        .map_err(|_| anyhow!("{s:?} is not a base-58 public key"))?
        .to_bytes())
}

fn opt_key(v: &Value) -> Result<Option<Key>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(pubkey(s)?)),
        _ => bail!("`nextKey` must be a string or null"),
    }
}

/// What a verified proof shows.
pub struct Verified {
    pub pubkey: Pubkey,
    pub slot: u64,
    /// `(lamports, owner, data length)` when the account exists.
    pub account: Option<(u64, Pubkey, usize)>,
}

/// Checks a proof document (a whole JSON-RPC response or just its `value`) against `root`.
pub fn verify(root: &Hash, doc: &Value) -> Result<Verified> {
    let v = match doc.get("result") {
        Some(r) => r.get("value").unwrap_or(r),
        None => doc.get("value").unwrap_or(doc),
    };
    let key = pubkey(str_field(v, "pubkey")?)?;
    let slot = u64_field(v, "slot")?;
    let data;
    let account = match field(v, "account")? {
        Value::Null => None,
        a => {
            let d = field(a, "data")?;
            let (b64, enc) = (
                d.get(0).and_then(Value::as_str),
                d.get(1).and_then(Value::as_str),
            );
            let (Some(b64), Some("base64")) = (b64, enc) else {
                bail!("account data must be [\"<base64>\", \"base64\"]");
            };
            data = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .context("account data is not valid base64")?;
            Some(AccountState {
                lamports: u64_field(a, "lamports")?,
                rent_epoch: u64_field(a, "rentEpoch")?,
                owner: pubkey(str_field(a, "owner")?)?,
                executable: field(a, "executable")?
                    .as_bool()
                    .ok_or_else(|| anyhow!("`executable` must be a boolean"))?,
                data: &data,
            })
        }
    };
    let p = field(v, "proof")?;
    let leaf_v = field(p, "leaf")?;
    let next = opt_key(field(leaf_v, "nextKey")?)?;
    let leaf = match str_field(leaf_v, "kind")? {
        "sentinel" => Leaf::Sentinel { next },
        "account" => Leaf::Account {
            key: pubkey(str_field(leaf_v, "key")?)?,
            account_hash: parse_hash(str_field(leaf_v, "accountHash")?)
                .context("leaf accountHash")?,
            next,
        },
        other => bail!("unknown leaf kind {other:?}"),
    };
    let siblings = field(p, "siblings")?
        .as_array()
        .ok_or_else(|| anyhow!("`siblings` must be an array"))?
        .iter()
        .map(|s| {
            s.as_str()
                .ok_or_else(|| anyhow!("siblings must be hex strings"))
                .and_then(parse_hash)
        })
        .collect::<Result<Vec<Hash>>>()?;
    let leaf_index = u32::try_from(u64_field(p, "leafIndex")?).context("leafIndex")?;
    let proof = Proof {
        leaf_index,
        leaf,
        siblings: &siblings,
    };
    stateproof::verify(root, &key, account.as_ref(), &proof).map_err(|e| anyhow!("{e}"))?;
    Ok(Verified {
        pubkey: Pubkey::new_from_array(key),
        slot,
        account: account.map(|a| (a.lamports, Pubkey::new_from_array(a.owner), a.data.len())),
    })
}
