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

/// What a verified cluster proof shows: the account's proof, and the node that vouched for it.
pub struct VerifiedInCluster {
    pub account: Verified,
    pub owner: String,
    pub partition: u16,
    pub epoch: u64,
}

/// Checks a `getClusterAccountProof` response against a cluster root you trust
/// (`getClusterStateRoot`, `cluster::root`): the owner's leaf, rebuilt from its fields, leads
/// to `root` through `path`; the owner's bitmap claims the key's partition; and the account
/// proof verifies against the owner's state root in that leaf.
pub fn verify_cluster(root: &Hash, doc: &Value) -> Result<VerifiedInCluster> {
    let v = match doc.get("result") {
        Some(r) => r.get("value").unwrap_or(r),
        None => doc.get("value").unwrap_or(doc),
    };
    let partitions = u16::try_from(u64_field(v, "partitions")?)
        .ok()
        .filter(|p| (1..=cluster::map::MAX_PARTITIONS).contains(p))
        .ok_or_else(|| anyhow!("`partitions` out of range"))?;
    let owned = field(v, "ownerPartitions")?
        .as_array()
        .ok_or_else(|| anyhow!("`ownerPartitions` must be an array"))?
        .iter()
        .map(|p| {
            p.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p < partitions)
                .ok_or_else(|| anyhow!("a partition in `ownerPartitions` is out of range"))
        })
        .collect::<Result<Vec<u16>>>()?;
    let owner = str_field(v, "owner")?;
    cluster::map::check_node_id(owner).map_err(|e| anyhow!("`owner`: {e}"))?;
    let leaf = cluster::root::NodeLeaf {
        node: owner.to_string(),
        epoch: u64_field(v, "epoch")?,
        partitions,
        owned,
        state_root: parse_hash(str_field(v, "ownerStateRoot")?)?,
    };
    let path = field(v, "path")?
        .as_array()
        .ok_or_else(|| anyhow!("`path` must be an array"))?;
    if path.len() > 32 {
        bail!("`path` is longer than any cluster's tree");
    }
    let path = path
        .iter()
        .map(|h| {
            h.as_str()
                .ok_or_else(|| anyhow!("`path` holds hex strings"))
                .and_then(parse_hash)
        })
        .collect::<Result<Vec<Hash>>>()?;
    let index = u64_field(v, "leafIndex")?;
    if index >> path.len() != 0 {
        bail!("`leafIndex` is beyond the tree the path describes");
    }
    if cluster::root::root_from_path(&leaf.hash(), index, &path) != *root {
        bail!("the owner's leaf does not lead to the cluster root");
    }
    let account = verify(&leaf.state_root, field(v, "account")?)?;
    let partition = cluster::partition_of(&account.pubkey.to_bytes(), partitions);
    if !leaf.owns(partition) {
        bail!(
            "{} (partition {partition}) is not {owner}'s at epoch {}",
            account.pubkey,
            leaf.epoch
        );
    }
    if let Some(slot) = v.get("slot").and_then(Value::as_u64)
        && slot != account.slot
    {
        bail!(
            "the account proof is for slot {}, the root for {slot}",
            account.slot
        );
    }
    Ok(VerifiedInCluster {
        account,
        owner: owner.to_string(),
        partition,
        epoch: leaf.epoch,
    })
}
