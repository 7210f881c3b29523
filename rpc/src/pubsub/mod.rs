//! Solana's PubSub over WebSocket (`signatureSubscribe`, `accountSubscribe`,
//! `programSubscribe`, `logsSubscribe`, `slotSubscribe`, `rootSubscribe` and their
//! unsubscribes), with Agave's parameters and notification shapes.
//!
//! The endpoint is the HTTP server of `appliance::http` (same connection limits, message size
//! capped at the RPC's body limit) with a WebSocket handler: each connection is a session task
//! on an HTTP tile, answering its calls and writing the notifications queued in its
//! [`Outbox`]. The [`notify::NotifierTile`] turns the chain's events (closed and durable slots)
//! into those notifications. In a scale-out cluster, signatures that run on another node are
//! answered by [`remote`], which asks the peers.

pub mod notify;
mod remote;
pub mod subscriptions;

use crate::framing::{self, RpcError, RpcResult, response};
use appliance::config::{PubSubConfig, RpcConfig};
use appliance::http::{
    Handler, HttpServer, Limits, Request, Response, WebSocket, WebSocketHandler,
};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use runtime::chain::ChainState;
use runtime::events::ChainEvents;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use subscriptions::{Kind, Level, Outbox, QueueBudget, Registry, SubscriptionLimits};
use telemetry::{Placement, Stage};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Metrics = &'static appliance::metrics::MetricsRegion;

/// Notifications written to one connection with one flush, at most.
const MAX_WRITE_BATCH: usize = 256;

/// The running endpoint: its HTTP tiles and the notifier.
pub struct PubSubServer {
    http: HttpServer,
    notifier: Stage,
    /// Scale-out: what other nodes run, for the signature subscriptions made here.
    _remote: Option<remote::RemoteSignatures>,
    pub addr: SocketAddr,
}

impl PubSubServer {
    pub fn start(
        chain: Arc<ChainState>,
        db: Arc<runtime::accounts::AccountsDb>,
        metrics: Metrics,
        cfg: &PubSubConfig,
        rpc: &RpcConfig,
        preconf: Option<runtime::preconf::Feed>,
        cluster: Option<Arc<cluster::ClusterView>>,
    ) -> anyhow::Result<Self> {
        let mut registry = Registry::new(SubscriptionLimits {
            per_connection: cfg.max_subscriptions_per_connection,
            per_ip: cfg.max_subscriptions_per_ip,
            total: cfg.max_subscriptions,
        });
        if let Some(feed) = &preconf {
            registry = registry.with_preconf_listeners(feed.listeners.clone());
        }
        let registry = Arc::new(Mutex::new(registry));
        let (events, rx) = ChainEvents::new();
        chain.announce_to(events);
        let mut notifier = Stage::new("pubsub-notify");
        notifier.launch(
            "gc-pubsub-notify",
            notify::NotifierTile {
                events: rx,
                preconf: preconf.map(|f| f.rx),
                registry: registry.clone(),
                chain: chain.clone(),
                db,
                metrics,
                pending: Default::default(),
                last_root: chain.durable_slot(),
                last_processed: 0,
                lost_events: false,
            },
            &metrics.pubsub_notifier,
            Placement::default(),
        )?;
        let remote = match cluster {
            Some(view) => Some(remote::RemoteSignatures::start(
                view,
                registry.clone(),
                chain.clone(),
                rpc.max_response_bytes,
            )?),
            None => None,
        };
        let sessions = Arc::new(Sessions {
            registry,
            chain,
            metrics,
            max_queued_bytes: cfg.max_queued_bytes_per_connection,
            budget: QueueBudget::new(cfg.max_queued_bytes),
        });
        let http = HttpServer::start_with_websocket(
            "pubsub",
            cfg.bind,
            cfg.threads,
            cfg.limits(rpc),
            Arc::new(PlainHttp),
            Some(sessions),
            &metrics.pubsub,
            &metrics.pubsub_http,
        )?;
        let addr = http.addr;
        tracing::info!(%addr, "PubSub (WebSocket) listening");
        Ok(Self {
            http,
            notifier,
            _remote: remote,
            addr,
        })
    }

    pub fn shutdown(self) {
        drop(self._remote);
        self.http.shutdown();
        self.notifier.stop();
    }
}

/// A plain HTTP request to the WebSocket port.
struct PlainHttp;

impl Handler for PlainHttp {
    fn handle(&self, _req: Request) -> Response {
        let e = RpcError::invalid_request("this is the PubSub endpoint: connect with a WebSocket");
        Response::new(
            426,
            "application/json",
            response(Value::Null, Err(e)).to_string(),
        )
    }
}

struct Sessions {
    registry: Arc<Mutex<Registry>>,
    chain: Arc<ChainState>,
    metrics: Metrics,
    max_queued_bytes: usize,
    budget: Arc<QueueBudget>,
}

impl WebSocketHandler for Sessions {
    fn session(
        &self,
        ws: WebSocket,
        peer: SocketAddr,
        limits: Limits,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let s = Session {
            registry: self.registry.clone(),
            chain: self.chain.clone(),
            metrics: self.metrics,
        };
        let (outbox, rx) = Outbox::new(self.max_queued_bytes, self.budget.clone());
        Box::pin(s.run(ws, peer, outbox, rx, limits))
    }
}

struct Session {
    registry: Arc<Mutex<Registry>>,
    chain: Arc<ChainState>,
    metrics: Metrics,
}

impl Session {
    async fn run(
        self,
        ws: WebSocket,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Arc<str>>,
        limits: Limits,
    ) {
        let conn = self.registry.lock().connect(outbox.clone(), peer.ip());
        // However the session ends (closed, kicked, timed out, its task dropped at shutdown),
        // its subscriptions end with it.
        let _guard = Disconnect {
            registry: self.registry.clone(),
            conn,
        };
        let (mut sink, mut stream) = ws.split();
        let idle = limits.idle_timeout;
        let mut heard = Instant::now();
        let mut ping = tokio::time::interval(idle / 2);
        ping.tick().await;
        // A write that cannot finish in the idle time means a client that stopped reading.
        macro_rules! write {
            ($msg:expr) => {
                match tokio::time::timeout(idle, sink.send($msg)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => false,
                    Err(_) => {
                        self.metrics
                            .pubsub_http
                            .timed_out
                            .fetch_add(1, Ordering::Relaxed);
                        false
                    }
                }
            };
        }
        loop {
            tokio::select! {
                // A kicked connection goes first: it must not answer (or subscribe) more.
                biased;
                _ = outbox.wake.notified() => {
                    if outbox.kicked.load(Ordering::Acquire) {
                        let close = CloseFrame {
                            code: CloseCode::Again,
                            reason: "notifications not read fast enough".into(),
                        };
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(1),
                            sink.send(Message::Close(Some(close))),
                        )
                        .await;
                        break;
                    }
                }
                m = stream.next() => {
                    let Some(Ok(m)) = m else { break };
                    heard = Instant::now();
                    let body = match m {
                        Message::Text(t) => t.as_bytes().to_vec(),
                        Message::Binary(b) => b.to_vec(),
                        Message::Close(_) => break,
                        _ => continue, // pings are answered by the library; pongs only count as heard
                    };
                    if outbox.kicked.load(Ordering::Acquire) {
                        continue; // the close goes out on the next turn
                    }
                    if let Some(reply) = self.answer(conn, &body)
                        && !write!(Message::text(reply))
                    {
                        break;
                    }
                }
                Some(msg) = rx.recv() => {
                    // A slot's notifications for this connection arrive together: queue all
                    // that are waiting and flush once (one write, not one per notification).
                    let mut batch = vec![msg];
                    while batch.len() < MAX_WRITE_BATCH {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    let n: usize = batch.iter().map(|m| m.len()).sum();
                    let send_all = async {
                        for m in &batch {
                            sink.feed(Message::text(m.to_string())).await?;
                        }
                        sink.flush().await
                    };
                    let ok = match tokio::time::timeout(idle, send_all).await {
                        Ok(Ok(())) => true,
                        Ok(Err(_)) => false,
                        Err(_) => {
                            self.metrics.pubsub_http.timed_out.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    };
                    outbox.written(n);
                    if !ok {
                        break;
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > idle {
                        self.metrics.pubsub_http.timed_out.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if !write!(Message::Ping(Default::default())) {
                        break;
                    }
                }
            }
        }
    }

    /// Answer one message: a call or a batch. Calls without an `id` (JSON-RPC
    /// notifications, e.g. web3.js's keep-alive `ping`) get no answer.
    fn answer(&self, conn: subscriptions::ConnId, body: &[u8]) -> Option<String> {
        let v = framing::handle_body(body, &mut |req| {
            if req.is_object() && req.get("id").is_none() {
                return Value::Null;
            }
            framing::handle_one(req, &mut |method, params| self.call(conn, method, params))
        });
        match v {
            Value::Null => None,
            Value::Array(a) => {
                let a: Vec<Value> = a.into_iter().filter(|v| !v.is_null()).collect();
                (!a.is_empty()).then(|| Value::Array(a).to_string())
            }
            v => Some(v.to_string()),
        }
    }

    fn call(&self, conn: subscriptions::ConnId, method: &str, params: &[Value]) -> RpcResult {
        if subscriptions::is_unsubscribe(method) {
            let id = params
                .first()
                .and_then(Value::as_u64)
                .ok_or_else(|| RpcError::new(-32602, "Invalid subscription id."))?;
            return if self.registry.lock().unsubscribe(conn, id) {
                Ok(json!(true))
            } else {
                Err(RpcError::new(-32602, "Invalid subscription id."))
            };
        }
        let Some(sub) = subscriptions::parse(method, params)? else {
            return Err(RpcError::method_not_found());
        };
        let mut r = self.registry.lock();
        let kind = sub.kind.clone();
        let level = sub.level;
        let id = r.subscribe(conn, sub).map_err(|e| {
            self.metrics
                .endpoints
                .pubsub_refused
                .fetch_add(1, Ordering::Relaxed);
            e.to_error()
        })?;
        // A signature already executed is answered now (after this reply: the session writes
        // the reply before it looks at the outbox), under the lock the notifier needs, so it
        // is answered once.
        // (One another cluster node ran is answered by `remote`, within its poll.)
        if let Kind::Signature {
            signature,
            received,
        } = kind
            && let Some((slot, err)) = self
                .chain
                .status(&signature)
                .map(|st| (st.slot, st.err.clone()))
        {
            let context = format!(r#"{{"slot":{slot}}}"#);
            // The notifier already announced this slot: what it would have sent, now.
            if received && slot <= r.processed_through {
                r.notify(
                    id,
                    &format!(r#"{{"context":{context},"value":"receivedSignature"}}"#),
                );
            }
            let durable = self.chain.durable_slot() >= slot;
            if (level == Level::Processed && slot <= r.processed_through) || durable {
                let err = crate::encode::tx_error(&err);
                r.notify(
                    id,
                    &format!(r#"{{"context":{context},"value":{{"err":{err}}}}}"#),
                );
                r.remove(id);
            }
        }
        Ok(json!(id))
    }
}

/// Ends a session's subscriptions when the session goes, however it goes.
struct Disconnect {
    registry: Arc<Mutex<Registry>>,
    conn: subscriptions::ConnId,
}

impl Drop for Disconnect {
    fn drop(&mut self) {
        self.registry.lock().disconnect(self.conn);
    }
}
