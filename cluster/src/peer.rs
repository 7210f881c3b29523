//! JSON-RPC between cluster nodes: one call over HTTP/1.1, one connection per call, every
//! step bounded in time and the answer bounded in size. Blocking: callers are an RPC tile
//! answering one call (a forwarded read) or the migration thread.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The prefix of the path a node answers calls from its peers on (from its own state, never
/// forwarding them again); the rest is the cluster's token ([`crate::ClusterClock::peer_token`]).
pub const FORWARDED_PATH: &str = "/cluster/forwarded";

/// How long one step of a call may take (connect, send, answer).
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// The error code of a peer that could not be reached or answered nonsense (Agave's "node
/// unhealthy").
pub const UNREACHABLE: i64 = -32005;

/// A JSON-RPC error: the peer's own, or [`UNREACHABLE`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
    /// The peer was not reached or did not answer JSON-RPC (not an error it returned).
    pub unreachable: bool,
}

impl PeerError {
    fn unreachable(message: String) -> Self {
        Self {
            code: UNREACHABLE,
            message,
            data: None,
            unreachable: true,
        }
    }
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// One JSON-RPC call to `path` of the node at `addr` (blocking, [`PEER_TIMEOUT`] per step).
pub fn call(
    addr: SocketAddr,
    path: &str,
    method: &str,
    params: &Value,
    max_bytes: usize,
) -> Result<Value, PeerError> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let fail = |e: String| PeerError::unreachable(format!("cluster peer {addr}: {e}"));
    let mut s = TcpStream::connect_timeout(&addr, PEER_TIMEOUT).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(PEER_TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    s.set_write_timeout(Some(PEER_TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()))
        .map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    s.take(max_bytes as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(|e| fail(e.to_string()))?;
    let body = http_body(&raw).map_err(fail)?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| fail(format!("bad JSON: {e}")))?;
    if let Some(e) = v.get("error") {
        return Err(PeerError {
            unreachable: false,
            code: e.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error from a cluster peer")
                .to_string(),
            data: e.get("data").cloned(),
        });
    }
    v.get("result")
        .cloned()
        .ok_or_else(|| fail("an answer with neither result nor error".into()))
}

/// The body of a complete HTTP/1.1 response with status 200 (`Content-Length` or chunked).
fn http_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete response head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "a response head that is not text")?;
    let rest = &raw[end + 4..];
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if let Some(n) = header("content-length") {
        let n: usize = n.parse().map_err(|_| "a bad Content-Length")?;
        return rest
            .get(..n)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "a truncated body".to_string());
    }
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut at = rest;
        loop {
            let line_end = at
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a truncated chunk")?;
            let size = std::str::from_utf8(&at[..line_end]).map_err(|_| "a bad chunk size")?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "a bad chunk size")?;
            at = &at[line_end + 2..];
            if size == 0 {
                return Ok(out);
            }
            out.extend_from_slice(at.get(..size).ok_or("a truncated chunk")?);
            at = at.get(size + 2..).ok_or("a truncated chunk")?;
        }
    }
    Ok(rest.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bodies_by_length_and_by_chunks() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(http_body(r).unwrap(), b"{}");
        let r =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n1\r\n \r\n0\r\n\r\n";
        assert_eq!(http_body(r).unwrap(), b"{} ");
        assert!(http_body(b"HTTP/1.1 500 Oops\r\n\r\n").is_err());
        assert!(http_body(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
        assert!(http_body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(http_body(b"HTTP/1.1 200").is_err());
    }
}
