//! JSON-RPC 2.0 over HTTP: framing, batching, limits and error codes (Agave's).

use super::methods::Rpc;
use appliance::http::{Handler, HttpServer, Limits, Method, Request, Response};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::framing::{self, response};
pub use super::framing::{RpcError, RpcResult};

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
    framing::handle_body(body, &mut |req| handle_one(rpc, req))
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
        max_response_bytes: usize,
    ) -> anyhow::Result<Self> {
        let metrics = rpc.metrics;
        let http = HttpServer::start(
            "rpc",
            bind,
            threads,
            limits,
            Arc::new(RpcHandler {
                rpc,
                max_response_bytes,
            }),
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
    max_response_bytes: usize,
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
            if body.len() > self.max_response_bytes {
                let e = RpcError::new(
                    -32600,
                    format!(
                        "Invalid request: the response would be {} bytes, more than this \
                         node's limit of {} (rpc.max_response_bytes): ask for fewer accounts, \
                         or use dataSlice",
                        body.len(),
                        self.max_response_bytes
                    ),
                );
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
