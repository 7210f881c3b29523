//! The JSON-RPC request handler's framing (rpc/src/framing.rs, what rpc::server::handle_body
//! runs before any method): any body yields a well-formed JSON-RPC 2.0 answer. A stand-in
//! dispatcher replaces the node (rpc::Rpc needs a running runtime and store, see
//! fuzz/README.md): it checks what the framing hands it and answers with a result or an error
//! chosen from the method name, so both envelopes are exercised.
#![no_main]
use gigacompute_fuzz::framing::{self, MAX_BATCH, RpcError, RpcResult};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn dispatch(method: &str, params: &[Value]) -> RpcResult {
    match method.len() % 3 {
        0 => Ok(json!({"method": method, "params": params})),
        1 => Err(RpcError::invalid_params(method).with_data(json!(params.len()))),
        _ => Err(RpcError::method_not_found()),
    }
}

/// One answer: an object with jsonrpc "2.0", the request's id (or null), and exactly one of
/// result / error (an error has an integer code and a string message).
fn check_answer(req: Option<&Value>, a: &Value) {
    let o = a.as_object().expect("an answer is an object");
    assert_eq!(o.get("jsonrpc"), Some(&json!("2.0")));
    assert!(o.contains_key("result") != o.contains_key("error"));
    let id = o.get("id").expect("an answer has an id");
    if let Some(r) = req.and_then(Value::as_object) {
        assert_eq!(id, r.get("id").unwrap_or(&Value::Null));
    }
    if let Some(e) = o.get("error") {
        assert!(e["code"].is_i64());
        assert!(e["message"].is_string());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut calls = 0usize;
    let mut answers = Vec::new();
    let out = framing::handle_body(data, &mut |req| {
        let a = framing::handle_one(req, &mut |m, p| {
            calls += 1;
            dispatch(m, p)
        });
        check_answer(Some(req), &a);
        answers.push(a.clone());
        a
    });
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    match (&parsed, &out) {
        (Some(Value::Array(reqs)), Value::Array(outs)) => {
            assert!(!reqs.is_empty() && reqs.len() <= MAX_BATCH);
            assert_eq!(reqs.len(), outs.len());
            assert_eq!(outs, &answers);
        }
        (Some(Value::Array(reqs)), a) => {
            assert!(reqs.is_empty() || reqs.len() > MAX_BATCH);
            assert_eq!(a["error"]["code"], json!(-32600));
            assert!(answers.is_empty());
        }
        (Some(_), a) => {
            check_answer(parsed.as_ref(), a);
            assert_eq!(answers.len(), 1);
        }
        (None, a) => {
            assert_eq!(a["error"]["code"], json!(-32700));
            assert!(answers.is_empty());
        }
    }
    assert!(calls <= answers.len());
    // What goes on the wire is JSON of the same shape. (Not compared value for value:
    // serde_json's float parsing is not exact without its float_roundtrip feature, so a
    // float id such as 2333…3 (55 digits) comes back as 2.3333333329999998e54; integer and
    // string ids, the ones clients use, are echoed exactly.)
    let wire = out.to_string();
    let back = serde_json::from_str::<Value>(&wire).expect("answer re-parses");
    assert_eq!(back.is_array(), out.is_array());
    assert_eq!(back.as_array().map(Vec::len), out.as_array().map(Vec::len));
});
