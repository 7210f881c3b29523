//! JSON-RPC 2.0 over HTTP: framing, batching, limits and error codes (Agave's).

use super::methods::{Rpc, json_len, response_too_large};
use appliance::http::{Handler, HttpServer, Limits, Method, Request, Response};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::framing::{self, MAX_BATCH, response};
pub use super::framing::{RpcError, RpcResult};

/// What a batch may exceed `max_response_bytes` by: the error answers of its refused calls.
const BATCH_SLACK: usize = MAX_BATCH * 512;

fn handle_one(rpc: &Rpc, req: &Value) -> Value {
    let v = framing::handle_one(req, &mut |method, params| rpc.call(method, params));
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

/// Handle a request body: a single call or a batch ([`framing::handle_body`]).
pub fn handle_body(rpc: &Rpc, body: &[u8]) -> Value {
    // A call, or a batch's calls together, count against one response limit: once it is
    // spent, the remaining calls are answered with the error instead of being run.
    let mut bytes = 0;
    framing::handle_body(body, &mut |req| {
        let refused = |req: &Value| {
            let id = req.get("id").cloned().unwrap_or(Value::Null);
            response(id, Err(response_too_large(rpc.max_response_bytes)))
        };
        if bytes > rpc.max_response_bytes {
            return refused(req);
        }
        let v = handle_one(rpc, req);
        bytes += json_len(&v);
        if bytes > rpc.max_response_bytes {
            return refused(req);
        }
        v
    })
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
            // A call another cluster node forwarded is answered here, never forwarded again.
            let from_peer = rpc
                .cluster
                .as_ref()
                .is_some_and(|c| c.is_peer_path(&req.path));
            let _peer = super::forward::FromPeer::enter(from_peer);
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
