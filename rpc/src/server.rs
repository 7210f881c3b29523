//! JSON-RPC 2.0 over HTTP: framing, batching, limits and error codes (Agave's).

use super::methods::Rpc;
use serde_json::{Value, json};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use telemetry::{Placement, Stage, Tile, TileClock, Turn};

/// Largest JSON-RPC batch accepted.
const MAX_BATCH: usize = 100;

/// A JSON-RPC error: code, message, optional data.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub fn parse_error() -> Self {
        Self::new(-32700, "Parse error")
    }
    pub fn invalid_request(msg: &str) -> Self {
        Self::new(-32600, format!("Invalid request: {msg}"))
    }
    pub fn method_not_found() -> Self {
        Self::new(-32601, "Method not found")
    }
    pub fn invalid_params(msg: impl std::fmt::Display) -> Self {
        Self::new(-32602, format!("Invalid params: {msg}"))
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::new(-32603, format!("Internal error: {msg}"))
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

pub type RpcResult = Result<Value, RpcError>;

fn response(id: Value, r: RpcResult) -> Value {
    match r {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(e) => json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id}),
    }
}

fn handle_one(rpc: &Rpc, req: &Value) -> Value {
    let v = handle_one_inner(rpc, req);
    rpc.metrics
        .endpoints
        .rpc_requests
        .fetch_add(1, Ordering::Relaxed);
    if v.get("error").is_some() {
        rpc.metrics
            .endpoints
            .rpc_errors
            .fetch_add(1, Ordering::Relaxed);
    }
    v
}

fn handle_one_inner(rpc: &Rpc, req: &Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(obj) = req.as_object() else {
        return response(Value::Null, Err(RpcError::invalid_request("not an object")));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return response(
            id,
            Err(RpcError::invalid_request("jsonrpc must be \"2.0\"")),
        );
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return response(id, Err(RpcError::invalid_request("missing method")));
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return response(id, Err(RpcError::invalid_params("params must be an array"))),
    };
    response(id, rpc.call(method, &params))
}

/// Handle a request body: a single call or a batch.
pub fn handle_body(rpc: &Rpc, body: &[u8]) -> Value {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return response(Value::Null, Err(RpcError::parse_error()));
    };
    match v {
        Value::Array(reqs) if reqs.is_empty() => {
            response(Value::Null, Err(RpcError::invalid_request("empty batch")))
        }
        Value::Array(reqs) if reqs.len() > MAX_BATCH => response(
            Value::Null,
            Err(RpcError::invalid_request("batch too large")),
        ),
        Value::Array(reqs) => Value::Array(reqs.iter().map(|r| handle_one(rpc, r)).collect()),
        other => handle_one(rpc, &other),
    }
}

pub struct RpcServer {
    server: Arc<tiny_http::Server>,
    /// `rpc.threads` RPC tiles sharing one listening socket.
    stage: Stage,
    pub addr: std::net::SocketAddr,
}

impl RpcServer {
    pub fn start(
        rpc: Arc<Rpc>,
        bind: std::net::SocketAddr,
        threads: usize,
        max_body_bytes: usize,
    ) -> anyhow::Result<Self> {
        let server = Arc::new(
            tiny_http::Server::http(bind)
                .map_err(|e| anyhow::anyhow!("binding RPC on {bind}: {e}"))?,
        );
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("RPC is not on an IP socket"))?;
        let mut stage = Stage::new("rpc");
        for i in 0..threads {
            let metrics = rpc.metrics;
            let tile = RpcTile {
                server: server.clone(),
                rpc: rpc.clone(),
                max_body_bytes,
                json_header: tiny_http::Header::from_bytes("Content-Type", "application/json")
                    .expect("static header"),
                text_header: tiny_http::Header::from_bytes("Content-Type", "text/plain")
                    .expect("static header"),
            };
            // Several RPC tiles share one slot: its counters are sums over them.
            stage.launch(
                format!("gc-rpc-{i}"),
                tile,
                &metrics.rpc,
                Placement::default(),
            )?;
        }
        tracing::info!(%addr, "JSON-RPC listening");
        Ok(Self {
            server,
            stage,
            addr,
        })
    }

    pub fn shutdown(self) {
        self.stage.request_stop();
        self.server.unblock();
        self.stage.stop();
    }
}

/// How long an RPC tile waits for a request before looking at its stop flag.
const RPC_WAIT: Duration = Duration::from_millis(200);

/// One RPC thread: takes a request from the shared socket, answers it.
struct RpcTile {
    server: Arc<tiny_http::Server>,
    rpc: Arc<Rpc>,
    max_body_bytes: usize,
    json_header: tiny_http::Header,
    text_header: tiny_http::Header,
}

impl Tile for RpcTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        if stopping {
            return Turn::Done;
        }
        let (rpc, max_body_bytes) = (&self.rpc, self.max_body_bytes);
        let got = self.server.recv_timeout(RPC_WAIT);
        clock.idle();
        let mut req = match got {
            Ok(Some(r)) => r,
            Ok(None) => return Turn::Continue,
            Err(_) => return Turn::Done,
        };
        rpc.metrics.rpc.add_in(1);
        if *req.method() != tiny_http::Method::Post && req.url() == "/health" {
            // Plain text, as Agave's `/health` answers ("ok"); 503 and the reason otherwise,
            // so a load balancer needs no JSON parser.
            let (status, text) = match rpc.health() {
                Ok(ok) => (200, ok),
                Err(e) => (503, format!("unhealthy: {}", e.message)),
            };
            let resp = tiny_http::Response::from_string(text)
                .with_status_code(status)
                .with_header(self.text_header.clone());
            let _ = req.respond(resp);
            rpc.metrics.rpc.add_out(1);
            clock.busy();
            return Turn::Continue;
        }
        let (status, body) = if *req.method() != tiny_http::Method::Post {
            (
                405,
                response(Value::Null, Err(RpcError::invalid_request("use POST"))),
            )
        } else {
            let mut body = Vec::new();
            let read = req
                .as_reader()
                .take(max_body_bytes as u64 + 1)
                .read_to_end(&mut body);
            if read.is_err() {
                (400, response(Value::Null, Err(RpcError::parse_error())))
            } else if body.len() > max_body_bytes {
                (
                    413,
                    response(
                        Value::Null,
                        Err(RpcError::invalid_request("request body too large")),
                    ),
                )
            } else {
                (200, handle_body(rpc, &body))
            }
        };
        let resp = tiny_http::Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header(self.json_header.clone());
        let _ = req.respond(resp);
        rpc.metrics.rpc.add_out(1);
        clock.busy();
        Turn::Continue
    }
}
