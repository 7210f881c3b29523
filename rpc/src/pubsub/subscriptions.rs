//! The subscriptions of every PubSub connection: what each asked for (parsed from Agave's
//! parameters), indexed by what triggers it, under the limits per connection and in all, and
//! each connection's outbox (notifications waiting to be written, bounded by bytes).

use crate::encode;
use crate::filters::{self, Filter};
use crate::framing::RpcError;
use crate::params::{self, Config, commitment, config, pubkey_param};
use ahash::{HashMap, HashSet};
use runtime::chain::Commitment;
use serde_json::{Value, json};
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc};

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

/// How an account is written in a notification (encoding and `dataSlice`, as getAccountInfo).
pub type AccountFormat = params::AccountEncoding;

/// A closed (zero-lamport) account reads as Agave's default account: nothing left. Data too
/// large for base 58 is sent as Agave sends it, an error text in place of the data. jsonParsed
/// reads a token account's mint through `lookup`; if that read fails the account goes out as
/// if the mint were absent (base 64, as Agave does then), logged, rather than not at all.
pub fn encode_account(
    key: &Pubkey,
    f: &AccountFormat,
    a: &AccountSharedData,
    lookup: encode::Lookup<'_>,
) -> Value {
    let closed = AccountSharedData::default();
    let a = if a.lamports() == 0 { &closed } else { a };
    let no_mint = |_: &Pubkey| Ok(None);
    let base64_meta = || {
        let f = AccountFormat {
            encoding: params::Encoding::Base64,
            slice: Some((0, 0)),
        };
        encode::account(key, a, &f, &no_mint).unwrap_or(Value::Null)
    };
    match encode::account(key, a, f, lookup) {
        Ok(v) => v,
        Err(e) if f.encoding == params::Encoding::JsonParsed => {
            tracing::warn!(%key, error = %e.message, "mint unreadable for a jsonParsed notification");
            encode::account(key, a, f, &no_mint).unwrap_or_else(|_| base64_meta())
        }
        Err(_) => {
            let text = "error: data too large for bs58 encoding";
            let data = match f.encoding {
                params::Encoding::Base58 => json!([text, "base58"]),
                _ => json!(text),
            };
            let mut v = base64_meta();
            v["data"] = data;
            v
        }
    }
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
    /// This node's own: signed pre-confirmations of every transaction (`None`) or of one
    /// signature, which ends with its final one (`executed` or `rejected`).
    Preconfirmation(Option<Signature>),
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
            Kind::Preconfirmation(_) => "preconfirmationNotification",
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
            let filters = filters::parse(&cfg)?;
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
                        return Err(RpcError::new(
                            -32602,
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
        "preconfirmationSubscribe" => {
            let filter = match p.first() {
                Some(Value::String(s)) if s == "all" => None,
                Some(Value::Object(m)) => {
                    let s = m.get("signature").and_then(Value::as_str).ok_or_else(|| {
                        RpcError::invalid_params(
                            "filter must be \"all\" or {\"signature\": signature}",
                        )
                    })?;
                    Some(Signature::from_str(s).map_err(|_| {
                        RpcError::invalid_params("Invalid param: invalid signature")
                    })?)
                }
                _ => {
                    return Err(RpcError::invalid_params(
                        "filter must be \"all\" or {\"signature\": signature}",
                    ));
                }
            };
            (Kind::Preconfirmation(filter), first_config(p, 1)?)
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

/// An unsubscribe method (any of them ends any subscription of the connection, as Agave's).
pub fn is_unsubscribe(method: &str) -> bool {
    matches!(
        method,
        "accountUnsubscribe"
            | "programUnsubscribe"
            | "signatureUnsubscribe"
            | "logsUnsubscribe"
            | "slotUnsubscribe"
            | "rootUnsubscribe"
            | "preconfirmationUnsubscribe"
    )
}

/// The bytes all outboxes may hold together (`pubsub.max_queued_bytes`).
pub struct QueueBudget {
    used: AtomicUsize,
    limit: usize,
}

impl QueueBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Where a connection's notifications wait for its session to write them (the one being
/// written counts until it is written). Bounded by bytes: over its own bound, or while the
/// endpoint's [`QueueBudget`] is spent and it is behind (something already queued), the
/// connection is marked `kicked` and its session closes it. A connection that keeps up (empty
/// queue) is served even then: the budget is held by those that do not read.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Arc<str>>,
    queued: AtomicUsize,
    pub kicked: AtomicBool,
    pub wake: Notify,
    limit: usize,
    budget: Arc<QueueBudget>,
}

impl Outbox {
    pub fn new(
        limit: usize,
        budget: Arc<QueueBudget>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Arc<str>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                tx,
                queued: AtomicUsize::new(0),
                kicked: AtomicBool::new(false),
                wake: Notify::new(),
                limit,
                budget,
            }),
            rx,
        )
    }

    /// Queue `msg`; false (and the connection kicked) when it would go over a bound.
    pub fn push(&self, msg: Arc<str>) -> bool {
        if self.kicked.load(Ordering::Acquire) {
            return false;
        }
        let n = msg.len();
        let own = self.queued.load(Ordering::Acquire);
        let spent = self.budget.used() + n > self.budget.limit;
        if own + n > self.limit || (spent && own > 0) {
            self.kick();
            return false;
        }
        self.queued.fetch_add(n, Ordering::AcqRel);
        self.budget.used.fetch_add(n, Ordering::AcqRel);
        if self.tx.send(msg).is_err() {
            self.written(n);
            self.kick();
            return false;
        }
        true
    }

    pub fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The session wrote `n` bytes of what was queued.
    pub fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
        self.budget.used.fetch_sub(n, Ordering::AcqRel);
    }
}

impl Drop for Outbox {
    /// What was never written goes back to the endpoint's budget.
    fn drop(&mut self) {
        let left = self.queued.load(Ordering::Acquire);
        self.budget.used.fetch_sub(left, Ordering::AcqRel);
    }
}

struct Conn {
    outbox: Arc<Outbox>,
    subs: HashSet<SubId>,
    ip: IpAddr,
}

/// Why a subscribe was refused.
#[derive(Debug, PartialEq)]
pub enum Refused {
    PerConnection(usize),
    PerAddress(usize),
    Total(usize),
    /// The connection is being closed (it did not read its notifications).
    Closed,
}

impl Refused {
    /// Agave's refusal (-32603, its message), naming the limit that was reached.
    pub fn to_error(&self) -> RpcError {
        let why = match self {
            Refused::PerConnection(n) => {
                format!("{n} per connection (pubsub.max_subscriptions_per_connection)")
            }
            Refused::PerAddress(n) => {
                format!("{n} per source address (pubsub.max_subscriptions_per_ip)")
            }
            Refused::Total(n) => format!("{n} in all (pubsub.max_subscriptions)"),
            Refused::Closed => {
                "the connection is closing: it did not read its notifications".into()
            }
        };
        RpcError::new(
            -32603,
            format!("Internal Error: Subscription refused. Node subscription limit reached: {why}"),
        )
    }
}

/// The limits a [`Registry`] keeps.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionLimits {
    pub per_connection: usize,
    pub per_ip: usize,
    pub total: usize,
}

/// Every subscription, indexed by what triggers it.
pub struct Registry {
    next_sub: SubId,
    next_conn: ConnId,
    limits: SubscriptionLimits,
    conns: HashMap<ConnId, Conn>,
    per_ip: HashMap<IpAddr, usize>,
    pub subs: HashMap<SubId, (ConnId, Subscription)>,
    pub by_account: HashMap<Pubkey, HashSet<SubId>>,
    pub by_program: HashMap<Pubkey, HashSet<SubId>>,
    pub by_signature: HashMap<Signature, HashSet<SubId>>,
    /// `logsSubscribe` to every transaction, and to those mentioning a key.
    pub logs_all: HashSet<SubId>,
    pub logs_mentions: HashMap<Pubkey, HashSet<SubId>>,
    pub slots: HashSet<SubId>,
    pub roots: HashSet<SubId>,
    /// `preconfirmationSubscribe` to every transaction, and to one signature.
    pub preconf_all: HashSet<SubId>,
    pub preconf_by_signature: HashMap<Signature, HashSet<SubId>>,
    /// How many pre-confirmation subscriptions exist (the preconf tile feeds the notifier
    /// only while there are).
    pub preconf_listeners: Arc<AtomicUsize>,
    /// The newest closed slot the notifier has announced: a signature executed at or before
    /// it had its "receivedSignature" sent by the notifier to those subscribed then.
    pub processed_through: u64,
}

impl Registry {
    pub fn new(limits: SubscriptionLimits) -> Self {
        Self {
            next_sub: 0,
            next_conn: 0,
            limits,
            conns: HashMap::default(),
            per_ip: HashMap::default(),
            subs: HashMap::default(),
            by_account: HashMap::default(),
            by_program: HashMap::default(),
            by_signature: HashMap::default(),
            logs_all: HashSet::default(),
            logs_mentions: HashMap::default(),
            slots: HashSet::default(),
            roots: HashSet::default(),
            preconf_all: HashSet::default(),
            preconf_by_signature: HashMap::default(),
            preconf_listeners: Arc::new(AtomicUsize::new(0)),
            processed_through: 0,
        }
    }

    /// Count pre-confirmation subscriptions into `listeners` (the runtime's feed) from now on.
    pub fn with_preconf_listeners(mut self, listeners: Arc<AtomicUsize>) -> Self {
        self.preconf_listeners = listeners;
        self
    }

    pub fn connect(&mut self, outbox: Arc<Outbox>, ip: IpAddr) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                outbox,
                subs: HashSet::default(),
                ip,
            },
        );
        id
    }

    /// The connection is gone (or kicked): all its subscriptions end.
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        c.outbox.kick();
        let ids: Vec<SubId> = c.subs.iter().copied().collect();
        for id in ids {
            self.remove(id);
        }
        self.conns.remove(&conn);
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn subscribe(&mut self, conn: ConnId, sub: Subscription) -> Result<SubId, Refused> {
        let Some(c) = self.conns.get(&conn) else {
            return Err(Refused::Closed);
        };
        if c.outbox.kicked.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        if c.subs.len() >= self.limits.per_connection {
            return Err(Refused::PerConnection(self.limits.per_connection));
        }
        let ip = c.ip;
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_ip {
            return Err(Refused::PerAddress(self.limits.per_ip));
        }
        if self.subs.len() >= self.limits.total {
            return Err(Refused::Total(self.limits.total));
        }
        let id = self.next_sub;
        self.next_sub += 1;
        match &sub.kind {
            Kind::Signature { signature, .. } => {
                self.by_signature.entry(*signature).or_default().insert(id);
            }
            Kind::Account(k, _) => {
                self.by_account.entry(*k).or_default().insert(id);
            }
            Kind::Program { program, .. } => {
                self.by_program.entry(*program).or_default().insert(id);
            }
            Kind::Logs(None) => {
                self.logs_all.insert(id);
            }
            Kind::Logs(Some(k)) => {
                self.logs_mentions.entry(*k).or_default().insert(id);
            }
            Kind::Slot => {
                self.slots.insert(id);
            }
            Kind::Root => {
                self.roots.insert(id);
            }
            Kind::Preconfirmation(filter) => {
                match filter {
                    None => self.preconf_all.insert(id),
                    Some(s) => self.preconf_by_signature.entry(*s).or_default().insert(id),
                };
                self.preconf_listeners.fetch_add(1, Ordering::Relaxed);
            }
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.conns.get_mut(&conn).expect("checked").subs.insert(id);
        self.subs.insert(id, (conn, sub));
        Ok(id)
    }

    /// `conn`'s unsubscribe (any `*Unsubscribe` method, as Agave's): false if `id` is not one
    /// of its subscriptions.
    pub fn unsubscribe(&mut self, conn: ConnId, id: SubId) -> bool {
        if self.subs.get(&id).is_none_or(|(owner, _)| *owner != conn) {
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
            if let Some(n) = self.per_ip.get_mut(&c.ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&c.ip);
                }
            }
        }
        match &sub.kind {
            Kind::Signature { signature, .. } => {
                remove_from(&mut self.by_signature, signature, id);
            }
            Kind::Account(k, _) => remove_from(&mut self.by_account, k, id),
            Kind::Program { program, .. } => remove_from(&mut self.by_program, program, id),
            Kind::Logs(None) => {
                self.logs_all.remove(&id);
            }
            Kind::Logs(Some(k)) => remove_from(&mut self.logs_mentions, k, id),
            Kind::Slot => {
                self.slots.remove(&id);
            }
            Kind::Root => {
                self.roots.remove(&id);
            }
            Kind::Preconfirmation(filter) => {
                match filter {
                    None => {
                        self.preconf_all.remove(&id);
                    }
                    Some(s) => remove_from(&mut self.preconf_by_signature, s, id),
                }
                self.preconf_listeners.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Queue subscription `id`'s notification with `result` (already JSON: the notifier
    /// encodes a result once for all the subscriptions it goes to); false if the connection
    /// was kicked for not reading.
    pub fn notify(&mut self, id: SubId, result: &str) -> bool {
        let Some((conn, sub)) = self.subs.get(&id) else {
            return false;
        };
        let msg = format!(
            r#"{{"jsonrpc":"2.0","method":"{}","params":{{"result":{result},"subscription":{id}}}}}"#,
            sub.kind.notification()
        );
        self.conns
            .get(conn)
            .is_some_and(|c| c.outbox.push(Arc::from(msg)))
    }

    /// The connection of subscription `id`.
    pub fn conn_of(&self, id: SubId) -> Option<ConnId> {
        self.subs.get(&id).map(|(c, _)| *c)
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
    filters::passes(filters, a.data())
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

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn outbox(limit: usize) -> (Arc<Outbox>, mpsc::UnboundedReceiver<Arc<str>>) {
        Outbox::new(limit, QueueBudget::new(1 << 30))
    }

    fn slot() -> Subscription {
        Subscription {
            kind: Kind::Slot,
            level: Level::Processed,
        }
    }

    #[test]
    fn limits_unsubscribe_and_disconnect() {
        let mut r = Registry::new(SubscriptionLimits {
            per_connection: 2,
            per_ip: 3,
            total: 4,
        });
        let (o1, _rx1) = outbox(1 << 20);
        let (o2, _rx2) = outbox(1 << 20);
        let (o3, _rx3) = outbox(1 << 20);
        let c1 = r.connect(o1, LOCAL);
        let c2 = r.connect(o2, LOCAL);
        let c3 = r.connect(o3, "10.0.0.1".parse().unwrap());
        let a = r.subscribe(c1, slot()).unwrap();
        r.subscribe(c1, slot()).unwrap();
        assert_eq!(r.subscribe(c1, slot()), Err(Refused::PerConnection(2)));
        r.subscribe(c2, slot()).unwrap();
        assert_eq!(r.subscribe(c2, slot()), Err(Refused::PerAddress(3)));
        r.subscribe(c3, slot()).unwrap();
        assert_eq!(r.subscribe(c3, slot()), Err(Refused::Total(4)));
        assert!(!r.unsubscribe(c2, a), "not c2's");
        assert!(r.unsubscribe(c1, a), "any unsubscribe method ends it");
        assert!(!r.unsubscribe(c1, a), "already gone");
        r.disconnect(c1);
        assert_eq!(r.len(), 2);
        assert_eq!(r.slots.len(), 2);
        // A connection gone (kicked, closed) subscribes nothing more.
        assert_eq!(r.subscribe(c1, slot()), Err(Refused::Closed));
        r.subscribe(c2, slot()).unwrap();
    }

    #[test]
    fn an_outbox_over_its_bytes_kicks_its_connection() {
        let (o, mut rx) = outbox(100);
        assert!(o.push(Arc::from("x".repeat(60))));
        assert!(!o.push(Arc::from("x".repeat(60))));
        assert!(o.kicked.load(Ordering::Relaxed));
        assert!(
            !o.push(Arc::from("x")),
            "a kicked connection gets nothing more"
        );
        assert_eq!(rx.try_recv().unwrap().len(), 60);
    }

    /// Over the endpoint's budget, connections that are behind are kicked; one that keeps up
    /// is still served; bytes come back as they are written or when an outbox goes.
    #[test]
    fn the_endpoint_budget_kicks_those_behind() {
        let budget = QueueBudget::new(1000);
        let (slow, _slow_rx) = Outbox::new(10_000, budget.clone());
        let (fast, mut fast_rx) = Outbox::new(10_000, budget.clone());
        for _ in 0..9 {
            assert!(slow.push(Arc::from("x".repeat(100))));
        }
        assert!(slow.push(Arc::from("x".repeat(100))));
        assert!(
            !slow.push(Arc::from("x".repeat(100))),
            "over the budget and behind"
        );
        assert!(slow.kicked.load(Ordering::Relaxed));
        assert!(fast.push(Arc::from("y".repeat(100))), "keeping up: served");
        let m = fast_rx.try_recv().unwrap();
        fast.written(m.len());
        assert_eq!(budget.used(), 1000);
        drop(slow);
        assert_eq!(budget.used(), 0, "an outbox gone gives its bytes back");
    }

    #[test]
    fn base58_of_large_data_is_agaves_error_text() {
        let f = AccountFormat {
            encoding: params::Encoding::Base58,
            slice: None,
        };
        let none = |_: &Pubkey| Ok(None);
        let k = Pubkey::new_unique();
        let v = encode_account(
            &k,
            &f,
            &AccountSharedData::new(1, 200, &Pubkey::default()),
            &none,
        );
        assert_eq!(
            v["data"],
            json!(["error: data too large for bs58 encoding", "base58"])
        );
        assert_eq!(v["space"], 200);
        let closed = encode_account(
            &k,
            &f,
            &AccountSharedData::new(0, 200, &Pubkey::new_unique()),
            &none,
        );
        assert_eq!(closed["lamports"], 0);
        assert_eq!(closed["owner"], "11111111111111111111111111111111");
    }

    #[test]
    fn long_memcmp_text_is_refused_before_decoding() {
        let k = Pubkey::new_unique();
        let p = json!([k.to_string(), {"filters": [{"memcmp": {"offset": 0, "bytes": "2".repeat(50_000)}}]}]);
        assert!(parse("programSubscribe", p.as_array().unwrap()).is_err());
    }
}
