//! JSON-RPC 2.0 framing with no node behind it: the error type, the response envelope, the
//! request checks and batching (Agave's codes). The server ([`crate::server`]) plugs the
//! methods in; the fuzz target `rpc_framing` (fuzz/) compiles this file on its own, with a
//! stand-in for the methods.

use serde_json::{Value, json};

/// Largest JSON-RPC batch accepted.
pub const MAX_BATCH: usize = 100;

/// Agave's `NodeUnhealthy`: the node cannot answer now; retry.
pub const NODE_UNHEALTHY: i64 = -32005;

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
    pub fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        } else if self.code == NODE_UNHEALTHY {
            // Agave's -32005 always carries its data, and clients parse it (solders fails on
            // a -32005 without `data`): a cluster's "retry" refusals are this error too.
            e["data"] = json!({"numSlotsBehind": null});
        }
        e
    }
}

pub type RpcResult = Result<Value, RpcError>;

/// The response envelope for one call.
pub fn response(id: Value, r: RpcResult) -> Value {
    match r {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(e) => json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id}),
    }
}

/// One request object: checks the envelope, then answers with `call(method, params)`.
pub fn handle_one(req: &Value, call: &mut dyn FnMut(&str, &[Value]) -> RpcResult) -> Value {
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
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => &a[..],
        Some(_) => return response(id, Err(RpcError::invalid_params("params must be an array"))),
    };
    response(id, call(method, params))
}

/// A request body: a single call or a batch of at most [`MAX_BATCH`]; `one` answers each
/// request (usually [`handle_one`] plus accounting).
pub fn handle_body(body: &[u8], one: &mut dyn FnMut(&Value) -> Value) -> Value {
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
        Value::Array(reqs) => Value::Array(reqs.iter().map(one).collect()),
        other => one(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(b: &str) -> Value {
        handle_body(b.as_bytes(), &mut |req| {
            handle_one(req, &mut |m, p| Ok(json!([m, p.len()])))
        })
    }

    #[test]
    fn framing_errors_and_batches() {
        assert_eq!(body("{").get("error").unwrap()["code"], -32700);
        assert_eq!(body("[]").get("error").unwrap()["code"], -32600);
        let big = format!("[{}]", vec!["1"; MAX_BATCH + 1].join(","));
        assert_eq!(body(&big).get("error").unwrap()["code"], -32600);
        let r = body(r#"{"jsonrpc":"2.0","id":7,"method":"m","params":{}}"#);
        assert_eq!(
            (r["error"]["code"].clone(), r["id"].clone()),
            (json!(-32602), json!(7))
        );
        let r = body(r#"[{"jsonrpc":"2.0","id":1,"method":"a","params":[1,2]},5]"#);
        assert_eq!(r[0]["result"], json!(["a", 2]));
        assert_eq!(r[1]["error"]["code"], -32600);
        assert_eq!(r[1]["id"], Value::Null);
    }

    /// Clients parse -32005 as Agave's NodeUnhealthy, whose `data` they require.
    #[test]
    fn unavailable_carries_agaves_data() {
        let e = RpcError::new(NODE_UNHEALTHY, "moved: retry").to_json();
        assert_eq!(e["data"], json!({"numSlotsBehind": null}));
        let e = RpcError::new(NODE_UNHEALTHY, "behind")
            .with_data(json!({"numSlotsBehind": 3}))
            .to_json();
        assert_eq!(e["data"], json!({"numSlotsBehind": 3}));
        assert!(RpcError::new(-32602, "x").to_json().get("data").is_none());
    }
}
