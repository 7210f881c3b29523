//! The subscriptions of every PubSub connection: what each asked for (parsed from Agave's
//! parameters), indexed by what triggers it, under the limits per connection and in all, and
//! each connection's outbox (notifications waiting to be written, bounded by bytes).

use crate::encode;
use crate::framing::RpcError;
use crate::params::{self, Config, commitment, config, pubkey_param};
use ahash::{HashMap, HashSet};
use runtime::chain::Commitment;
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc};

/// Agave: at most 4 program-account filters, memcmp bytes at most 128 (175 base-58 chars).
const MAX_FILTERS: usize = 4;
const MAX_MEMCMP_BYTES: usize = 128;

pub type SubId = u64;
pub type ConnId = u64;

/// When a subscription fires: at processed (the slot closed) or once the slot is durable
/// (confirmed and finalized are the same here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Processed,
    Durable,
}

impl From<Commitment> for Level {
    fn from(c: Commitment) -> Self {
        match c {
            Commitment::Processed => Level::Processed,
            _ => Level::Durable,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    DataSize(u64),
    Memcmp { offset: usize, bytes: Vec<u8> },
}

impl Filter {
    fn matches(&self, data: &[u8]) -> bool {
        match self {
            Filter::DataSize(n) => data.len() as u64 == *n,
            Filter::Memcmp { offset, bytes } => data
                .get(*offset..offset.saturating_add(bytes.len()))
                .is_some_and(|d| d == bytes.as_slice()),
        }
    }
}

/// How an account is written in a notification (encoding and `dataSlice`, as getAccountInfo).
pub type AccountFormat = params::AccountEncoding;

/// A closed (zero-lamport) account reads as Agave's default account: nothing left.
pub fn encode_account(f: &AccountFormat, a: &AccountSharedData) -> Result<Value, RpcError> {
    if a.lamports() == 0 {
        return encode::account(&AccountSharedData::default(), f.encoding, f.slice);
    }
    encode::account(a, f.encoding, f.slice)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Account(Pubkey, AccountFormat),
    Program {
        program: Pubkey,
        format: AccountFormat,
        filters: Vec<Filter>,
    },
    Signature {
        signature: Signature,
        /// Send "receivedSignature" when the transaction is first seen executed.
        received: bool,
    },
    /// `None`: every transaction; `Some(k)`: those mentioning `k`.
    Logs(Option<Pubkey>),
    Slot,
    Root,
}

impl Kind {
    /// The notification method of this kind.
    pub fn notification(&self) -> &'static str {
        match self {
            Kind::Account(..) => "accountNotification",
            Kind::Program { .. } => "programNotification",
            Kind::Signature { .. } => "signatureNotification",
            Kind::Logs(_) => "logsNotification",
            Kind::Slot => "slotNotification",
            Kind::Root => "rootNotification",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub kind: Kind,
    pub level: Level,
}

fn first_config(p: &[Value], i: usize) -> Result<Config, RpcError> {
    config(p, i)
}

fn parse_filters(cfg: &Config) -> Result<Vec<Filter>, RpcError> {
    let Some(v) = cfg.get("filters").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = v
        .as_array()
        .ok_or_else(|| RpcError::invalid_params("filters must be an array"))?;
    if list.len() > MAX_FILTERS {
        return Err(RpcError::invalid_params(format!(
            "Too many filters provided; max {MAX_FILTERS}"
        )));
    }
    list.iter()
        .map(|f| {
            if let Some(n) = f.get("dataSize") {
                return n
                    .as_u64()
                    .map(Filter::DataSize)
                    .ok_or_else(|| RpcError::invalid_params("dataSize must be an integer"));
            }
            let m = f.get("memcmp").ok_or_else(|| {
                RpcError::invalid_params("unknown filter: use dataSize or memcmp")
            })?;
            let offset = m
                .get("offset")
                .and_then(Value::as_u64)
                .ok_or_else(|| RpcError::invalid_params("memcmp.offset must be an integer"))?;
            let text = m
                .get("bytes")
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::invalid_params("memcmp.bytes must be a string"))?;
            let bytes = match m.get("encoding").and_then(Value::as_str) {
                None | Some("base58") => bs58::decode(text).into_vec().ok(),
                Some("base64") => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(text).ok()
                }
                Some(_) => None,
            }
            .ok_or_else(|| RpcError::invalid_params("memcmp.bytes: invalid encoding"))?;
            if bytes.len() > MAX_MEMCMP_BYTES {
                return Err(RpcError::invalid_params("memcmp.bytes too long"));
            }
            Ok(Filter::Memcmp {
                offset: offset as usize,
                bytes,
            })
        })
        .collect()
}

/// Parse a subscribe call: `Ok(None)` if `method` is not a subscribe method.
pub fn parse(method: &str, p: &[Value]) -> Result<Option<Subscription>, RpcError> {
    let (kind, cfg) = match method {
        "accountSubscribe" => {
            let key = pubkey_param(p, 0)?;
            let cfg = first_config(p, 1)?;
            (Kind::Account(key, params::account_encoding(&cfg)?), cfg)
        }
        "programSubscribe" => {
            let program = pubkey_param(p, 0)?;
            let cfg = first_config(p, 1)?;
            let format = params::account_encoding(&cfg)?;
            let filters = parse_filters(&cfg)?;
            (
                Kind::Program {
                    program,
                    format,
                    filters,
                },
                cfg,
            )
        }
        "signatureSubscribe" => {
            let s = p
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::invalid_params("missing parameter `signature`"))?;
            let signature = Signature::from_str(s)
                .map_err(|_| RpcError::invalid_params("Invalid param: invalid signature"))?;
            let cfg = first_config(p, 1)?;
            let received = match cfg.get("enableReceivedNotification") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(RpcError::invalid_params(
                        "enableReceivedNotification must be a boolean",
                    ));
                }
            };
            (
                Kind::Signature {
                    signature,
                    received,
                },
                cfg,
            )
        }
        "logsSubscribe" => {
            let filter = match p.first() {
                Some(Value::String(s)) if s == "all" || s == "allWithVotes" => None,
                Some(Value::Object(m)) => {
                    let list = m
                        .get("mentions")
                        .and_then(Value::as_array)
                        .ok_or_else(|| RpcError::invalid_params("mentions must be an array"))?;
                    if list.len() != 1 {
                        return Err(RpcError::invalid_params(
                            "Invalid Request: Only 1 address supported",
                        ));
                    }
                    Some(pubkey_param(list, 0)?)
                }
                _ => {
                    return Err(RpcError::invalid_params(
                        "filter must be \"all\", \"allWithVotes\" or {\"mentions\": [pubkey]}",
                    ));
                }
            };
            (Kind::Logs(filter), first_config(p, 1)?)
        }
        "slotSubscribe" => (Kind::Slot, Default::default()),
        "rootSubscribe" => (Kind::Root, Default::default()),
        _ => return Ok(None),
    };
    Ok(Some(Subscription {
        kind,
        level: commitment(&cfg)?.into(),
    }))
}

/// The unsubscribe method for a subscribe method's kind, as a check.
pub fn is_unsubscribe(method: &str) -> bool {
    matches!(
        method,
        "accountUnsubscribe"
            | "programUnsubscribe"
            | "signatureUnsubscribe"
            | "logsUnsubscribe"
            | "slotUnsubscribe"
            | "rootUnsubscribe"
    )
}

/// Where a connection's notifications wait for its session to write them. Bounded by bytes:
/// over the bound the connection is marked `kicked` and its session closes it.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Arc<str>>,
    /// Bytes sent and not yet written by the session.
    pub queued: AtomicUsize,
    pub kicked: AtomicBool,
    pub wake: Notify,
    limit: usize,
}

impl Outbox {
    pub fn new(limit: usize) -> (Arc<Self>, mpsc::UnboundedReceiver<Arc<str>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                tx,
                queued: AtomicUsize::new(0),
                kicked: AtomicBool::new(false),
                wake: Notify::new(),
                limit,
            }),
            rx,
        )
    }

    /// Queue `msg`; false (and the connection kicked) when it would go over the bound.
    pub fn push(&self, msg: Arc<str>) -> bool {
        if self.kicked.load(Ordering::Relaxed) {
            return false;
        }
        let n = msg.len();
        if self.queued.fetch_add(n, Ordering::AcqRel) + n > self.limit || self.tx.send(msg).is_err()
        {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            self.kicked.store(true, Ordering::Release);
            self.wake.notify_one();
            return false;
        }
        true
    }

    /// The session wrote `n` bytes of what was queued.
    pub fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }
}

struct Conn {
    outbox: Arc<Outbox>,
    subs: HashSet<SubId>,
}

/// Why a subscribe was refused.
#[derive(Debug, PartialEq)]
pub enum Refused {
    PerConnection(usize),
    Total(usize),
}

impl Refused {
    pub fn to_error(&self) -> RpcError {
        match self {
            Refused::PerConnection(n) => RpcError::new(
                -32602,
                format!(
                    "Invalid Request: this connection holds its limit of {n} subscriptions (pubsub.max_subscriptions_per_connection)"
                ),
            ),
            Refused::Total(n) => RpcError::new(
                -32602,
                format!(
                    "Internal error: the node holds its limit of {n} subscriptions (pubsub.max_subscriptions)"
                ),
            ),
        }
    }
}

/// Every subscription, indexed by what triggers it.
pub struct Registry {
    next_sub: SubId,
    next_conn: ConnId,
    pub max_per_connection: usize,
    pub max_total: usize,
    conns: HashMap<ConnId, Conn>,
    pub subs: HashMap<SubId, (ConnId, Subscription)>,
    pub by_account: HashMap<Pubkey, HashSet<SubId>>,
    pub by_program: HashMap<Pubkey, HashSet<SubId>>,
    pub by_signature: HashMap<Signature, HashSet<SubId>>,
    /// Logs, slot and root subscriptions (checked on every slot).
    pub logs: HashSet<SubId>,
    pub slots: HashSet<SubId>,
    pub roots: HashSet<SubId>,
}

fn index_of<'a>(
    r: &'a mut Registry,
    kind: &Kind,
) -> (
    Option<&'a mut HashMap<Pubkey, HashSet<SubId>>>,
    Option<Pubkey>,
) {
    match kind {
        Kind::Account(k, _) => (Some(&mut r.by_account), Some(*k)),
        Kind::Program { program, .. } => (Some(&mut r.by_program), Some(*program)),
        _ => (None, None),
    }
}

impl Registry {
    pub fn new(max_per_connection: usize, max_total: usize) -> Self {
        Self {
            next_sub: 0,
            next_conn: 0,
            max_per_connection,
            max_total,
            conns: HashMap::default(),
            subs: HashMap::default(),
            by_account: HashMap::default(),
            by_program: HashMap::default(),
            by_signature: HashMap::default(),
            logs: HashSet::default(),
            slots: HashSet::default(),
            roots: HashSet::default(),
        }
    }

    pub fn connect(&mut self, outbox: Arc<Outbox>) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                outbox,
                subs: HashSet::default(),
            },
        );
        id
    }

    /// The connection is gone: all its subscriptions end.
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            for id in c.subs {
                self.remove(id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn subscribe(&mut self, conn: ConnId, sub: Subscription) -> Result<SubId, Refused> {
        let held = self.conns.get(&conn).map_or(0, |c| c.subs.len());
        if held >= self.max_per_connection {
            return Err(Refused::PerConnection(self.max_per_connection));
        }
        if self.subs.len() >= self.max_total {
            return Err(Refused::Total(self.max_total));
        }
        let id = self.next_sub;
        self.next_sub += 1;
        match &sub.kind {
            Kind::Signature { signature, .. } => {
                self.by_signature.entry(*signature).or_default().insert(id);
            }
            Kind::Logs(_) => {
                self.logs.insert(id);
            }
            Kind::Slot => {
                self.slots.insert(id);
            }
            Kind::Root => {
                self.roots.insert(id);
            }
            kind => {
                if let (Some(index), Some(key)) = index_of(self, &kind.clone()) {
                    index.entry(key).or_default().insert(id);
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subs.insert(id);
        }
        self.subs.insert(id, (conn, sub));
        Ok(id)
    }

    /// `conn`'s unsubscribe: false if `id` is not one of its subscriptions of that method.
    pub fn unsubscribe(&mut self, conn: ConnId, method: &str, id: SubId) -> bool {
        let Some((owner, sub)) = self.subs.get(&id) else {
            return false;
        };
        let expected = sub
            .kind
            .notification()
            .replace("Notification", "Unsubscribe");
        if *owner != conn || expected != method {
            return false;
        }
        self.remove(id);
        true
    }

    /// End subscription `id` (unsubscribed, one-shot fired, or its connection gone).
    pub fn remove(&mut self, id: SubId) {
        let Some((conn, sub)) = self.subs.remove(&id) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subs.remove(&id);
        }
        match &sub.kind {
            Kind::Signature { signature, .. } => {
                remove_from(&mut self.by_signature, signature, id);
            }
            Kind::Account(k, _) => remove_from(&mut self.by_account, k, id),
            Kind::Program { program, .. } => remove_from(&mut self.by_program, program, id),
            Kind::Logs(_) => {
                self.logs.remove(&id);
            }
            Kind::Slot => {
                self.slots.remove(&id);
            }
            Kind::Root => {
                self.roots.remove(&id);
            }
        }
    }

    /// Queue subscription `id`'s notification with `result`; false if its connection was
    /// kicked for not reading (its subscriptions then end with it).
    pub fn notify(&mut self, id: SubId, result: Value) -> bool {
        let Some((conn, sub)) = self.subs.get(&id) else {
            return false;
        };
        let msg = json!({
            "jsonrpc": "2.0",
            "method": sub.kind.notification(),
            "params": {"result": result, "subscription": id},
        })
        .to_string();
        self.conns
            .get(conn)
            .is_some_and(|c| c.outbox.push(Arc::from(msg)))
    }
}

fn remove_from<K: std::hash::Hash + Eq>(m: &mut HashMap<K, HashSet<SubId>>, k: &K, id: SubId) {
    if let Some(set) = m.get_mut(k) {
        set.remove(&id);
        if set.is_empty() {
            m.remove(k);
        }
    }
}

/// Whether `a` (owned by the program) passes every filter.
pub fn passes(filters: &[Filter], a: &AccountSharedData) -> bool {
    filters.iter().all(|f| f.matches(a.data()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(method: &str, p: Value) -> Subscription {
        parse(method, p.as_array().unwrap()).unwrap().unwrap()
    }

    #[test]
    fn parses_agave_parameters() {
        let k = Pubkey::new_unique();
        let s = sub(
            "accountSubscribe",
            json!([k.to_string(), {"encoding": "base64", "commitment": "processed"}]),
        );
        assert_eq!(s.level, Level::Processed);
        assert!(
            matches!(s.kind, Kind::Account(key, f) if key == k && f.encoding == params::Encoding::Base64)
        );
        let s = sub(
            "signatureSubscribe",
            json!([Signature::default().to_string()]),
        );
        assert_eq!(s.level, Level::Durable, "finalized by default");
        let s = sub(
            "programSubscribe",
            json!([k.to_string(), {"filters": [{"dataSize": 165}, {"memcmp": {"offset": 32, "bytes": bs58::encode([7u8; 32]).into_string()}}]}]),
        );
        let Kind::Program { filters, .. } = s.kind else {
            panic!()
        };
        assert_eq!(filters.len(), 2);
        let mut data = vec![0u8; 165];
        data[32..64].copy_from_slice(&[7; 32]);
        let a = AccountSharedData::from(solana_account::Account {
            lamports: 1,
            data,
            owner: k,
            executable: false,
            rent_epoch: 0,
        });
        assert!(passes(&filters, &a));
        assert!(!passes(&filters, &AccountSharedData::new(1, 165, &k)));
        assert!(matches!(
            sub("logsSubscribe", json!([{"mentions": [k.to_string()]}])).kind,
            Kind::Logs(Some(x)) if x == k
        ));
        for bad in [
            json!([{"mentions": [k.to_string(), k.to_string()]}]),
            json!(["some"]),
            json!([]),
        ] {
            assert!(parse("logsSubscribe", bad.as_array().unwrap()).is_err());
        }
        assert!(parse("accountSubscribe", &[json!("nope")]).is_err());
        assert!(parse("signatureSubscribe", &[json!(5)]).is_err());
        assert!(parse("getSlot", &[]).unwrap().is_none());
        let five = json!([k.to_string(), {"filters": [{"dataSize": 1}, {"dataSize": 1}, {"dataSize": 1}, {"dataSize": 1}, {"dataSize": 1}]}]);
        assert!(parse("programSubscribe", five.as_array().unwrap()).is_err());
    }

    #[test]
    fn limits_unsubscribe_and_disconnect() {
        let mut r = Registry::new(2, 3);
        let (o1, _rx1) = Outbox::new(1 << 20);
        let (o2, _rx2) = Outbox::new(1 << 20);
        let c1 = r.connect(o1);
        let c2 = r.connect(o2);
        let slot = || Subscription {
            kind: Kind::Slot,
            level: Level::Processed,
        };
        let a = r.subscribe(c1, slot()).unwrap();
        r.subscribe(c1, slot()).unwrap();
        assert_eq!(r.subscribe(c1, slot()), Err(Refused::PerConnection(2)));
        r.subscribe(c2, slot()).unwrap();
        assert_eq!(r.subscribe(c2, slot()), Err(Refused::Total(3)));
        assert!(!r.unsubscribe(c2, "slotUnsubscribe", a), "not c2's");
        assert!(
            !r.unsubscribe(c1, "rootUnsubscribe", a),
            "not a root subscription"
        );
        assert!(r.unsubscribe(c1, "slotUnsubscribe", a));
        assert!(!r.unsubscribe(c1, "slotUnsubscribe", a), "already gone");
        r.disconnect(c1);
        assert_eq!(r.len(), 1);
        assert_eq!(r.slots.len(), 1);
    }

    #[test]
    fn an_outbox_over_its_bytes_kicks_its_connection() {
        let (o, mut rx) = Outbox::new(100);
        assert!(o.push(Arc::from("x".repeat(60))));
        assert!(!o.push(Arc::from("x".repeat(60))));
        assert!(o.kicked.load(Ordering::Relaxed));
        assert!(
            !o.push(Arc::from("x")),
            "a kicked connection gets nothing more"
        );
        assert_eq!(rx.try_recv().unwrap().len(), 60);
    }
}
