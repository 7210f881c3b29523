//! JSON-RPC 2.0 over HTTP: framing, batching, limits and error codes (Agave's).

use super::methods::{Rpc, json_len, response_too_large};
use appliance::http::{Handler, HttpServer, Limits, Method, Request, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Largest JSON-RPC batch accepted.
const MAX_BATCH: usize = 100;
/// What a batch may exceed `max_response_bytes` by: the error answers of its refused calls.
const BATCH_SLACK: usize = MAX_BATCH * 512;

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
        Value::Array(reqs) => {
            // The batch's answers count against one response limit: once it is spent, the
            // remaining calls are answered with the error instead of being run.
            let mut bytes = 0;
            Value::Array(
                reqs.iter()
                    .map(|r| {
                        if bytes > rpc.max_response_bytes {
                            let id = r.get("id").cloned().unwrap_or(Value::Null);
                            return response(id, Err(response_too_large(rpc.max_response_bytes)));
                        }
                        let mut v = handle_one(rpc, r);
                        bytes += json_len(&v);
                        if bytes > rpc.max_response_bytes {
                            let id = r.get("id").cloned().unwrap_or(Value::Null);
                            v = response(id, Err(response_too_large(rpc.max_response_bytes)));
                        }
                        v
                    })
                    .collect(),
            )
        }
        other => handle_one(rpc, &other),
    }
}

/// The JSON-RPC endpoint: `rpc.threads` HTTP tiles (`appliance::http`) answering with
/// [`handle_body`].
pub struct RpcServer {
    http: HttpServer,
    pub addr: std::net::SocketAddr,
}

impl RpcServer {
    pub fn start(
        rpc: Arc<Rpc>,
        bind: std::net::SocketAddr,
        threads: usize,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let metrics = rpc.metrics;
        let http = HttpServer::start(
            "rpc",
            bind,
            threads,
            limits,
            Arc::new(RpcHandler { rpc }),
            &metrics.rpc,
            &metrics.rpc_http,
        )?;
        let addr = http.addr;
        tracing::info!(%addr, "JSON-RPC listening");
        Ok(Self { http, addr })
    }

    pub fn shutdown(self) {
        self.http.shutdown();
    }
}

struct RpcHandler {
    rpc: Arc<Rpc>,
}

impl Handler for RpcHandler {
    fn handle(&self, req: Request) -> Response {
        let rpc = &self.rpc;
        rpc.metrics.rpc.add_in(1);
        let resp = if req.method != Method::POST && req.path == "/health" {
            // Plain text, as Agave's `/health` answers ("ok"); 503 and the reason otherwise,
            // so a load balancer needs no JSON parser.
            match rpc.health() {
                Ok(ok) => Response::new(200, "text/plain", ok),
                Err(e) => Response::new(503, "text/plain", format!("unhealthy: {}", e.message)),
            }
        } else if req.method != Method::POST {
            let body = response(Value::Null, Err(RpcError::invalid_request("use POST")));
            Response::new(405, JSON, body.to_string())
        } else {
            let body = handle_body(rpc, &req.body).to_string();
            // Calls and batches stop at the limit as they are built (`handle_body`); this is
            // the last word on what leaves.
            if body.len() > rpc.max_response_bytes + BATCH_SLACK {
                let e = response_too_large(rpc.max_response_bytes);
                Response::new(200, JSON, response(Value::Null, Err(e)).to_string())
            } else {
                Response::new(200, JSON, body)
            }
        };
        rpc.metrics.rpc.add_out(1);
        resp
    }

    /// JSON-RPC clients get a JSON-RPC error (-32600) with the HTTP status.
    fn refusal(&self, status: u16, reason: &str) -> Response {
        let body = response(Value::Null, Err(RpcError::invalid_request(reason)));
        Response::new(status, JSON, body.to_string())
    }
}

const JSON: &str = "application/json";
