"""The RPC's HTTP server against clients that abuse it: every abuse is refused or timed out,
bounded in memory, and other clients keep being answered. A node with short timeouts and small
connection limits makes each case quick."""

import json
import socket
import time
import urllib.request

import pytest

from conftest import Node

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    n = Node(
        tmp_path_factory.mktemp("limits"),
        rpc_config=(
            "header_timeout_ms = 500\nbody_timeout_ms = 500\nidle_timeout_ms = 1000\n"
            "max_connections = 64\nmax_connections_per_ip = 8\n"
            "max_response_bytes = 1048576\n"
        ),
    )
    n.start()
    yield n
    n.stop()


def get_slot(node, timeout=5):
    """An honest client, from 127.0.0.1."""
    req = urllib.request.Request(
        node.url,
        data=b'{"jsonrpc":"2.0","id":1,"method":"getSlot"}',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())["result"]


def connect(node, source="127.0.0.2", rcvbuf=None):
    """A raw client; abusers come from another loopback address than the honest one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", node.rpc_port))
    return s


def read_all(s, limit=1 << 20):
    out = b""
    try:
        while len(out) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return out


def status(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("length", ["1099511627776", "18446744073709551615", "99999999999999999999999"])
@pytest.mark.parametrize("method", ["GET /health", "POST /"])
def test_a_lying_content_length_is_refused_without_allocating(guarded, method, length):
    s = connect(guarded)
    s.sendall(f"{method} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    resp = read_all(s)
    s.close()
    assert status(resp) in (400, 413, 431), resp[:200]
    assert get_slot(guarded) >= 0


def test_a_short_content_length_does_not_smuggle_a_request(guarded):
    body = b'{"jsonrpc":"2.0","id":1,"method":"getSlot"}'
    s = connect(guarded)
    # Declares 5 bytes and sends the whole call: the server reads 5 (not JSON), then the rest
    # is not a request line.
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n" + body)
    resp = read_all(s)
    s.close()
    assert b'"code":-32700' in resp, resp[:300]
    assert get_slot(guarded) >= 0


def test_slow_headers_are_timed_out(guarded):
    s = connect(guarded)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    started = time.time()
    resp = read_all(s)
    s.close()
    assert time.time() - started < 5, "the connection was held"
    assert status(resp) in (0, 408), resp[:200]
    assert get_slot(guarded) >= 0


def test_a_slow_body_is_timed_out(guarded):
    s = connect(guarded)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
    started = time.time()
    resp = read_all(s)
    s.close()
    assert time.time() - started < 5
    assert status(resp) == 408, resp[:200]
    assert b"-32600" in resp


def test_header_floods_are_refused(guarded):
    many = "".join(f"X-H{i}: v\r\n" for i in range(200))
    for headers in (many, "X-Big: " + "a" * 64 * 1024 + "\r\n"):
        s = connect(guarded)
        try:
            s.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 2\r\n\r\n{{}}".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = read_all(s)
        s.close()
        assert status(resp) in (0, 400, 431), resp[:200]
    assert get_slot(guarded) >= 0


def test_a_client_that_never_reads_is_closed_and_others_are_served(guarded):
    # A response larger than the socket buffers, asked for again and again, never read.
    call = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "getMultipleAccounts",
        "params": [[TOKEN_PROGRAM] * 3, {"encoding": "base64"}],
    }).encode()
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(call), call)
    s = connect(guarded, rcvbuf=4096)
    try:
        for _ in range(50):
            s.sendall(req)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    # Meanwhile an honest client is answered promptly.
    for _ in range(5):
        assert get_slot(guarded, timeout=2) >= 0
    time.sleep(2.5)  # past the idle timeout: the server gave up on the stalled writes
    s.settimeout(2)
    got = read_all(s, limit=64 << 20)
    s.close()
    assert len(got) < 50 * 3 * 100_000, "the server kept writing to a client that never read"


def test_a_connection_flood_leaves_room_for_others(guarded):
    held = []
    try:
        for _ in range(100):
            try:
                held.append(connect(guarded))
            except OSError:
                break
        time.sleep(0.2)
        # The flood's own connections beyond its share are closed at once...
        open_ones = 0
        for s in held:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    continue
            except BlockingIOError:
                open_ones += 1
            except OSError:
                continue
        assert open_ones <= 8, open_ones
        # ...and another source is still answered.
        assert get_slot(guarded, timeout=2) >= 0
    finally:
        for s in held:
            s.close()


def test_an_oversized_batch_and_an_oversized_response_are_errors(guarded):
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "getSlot"} for i in range(101)]).encode()
    req = urllib.request.Request(guarded.url, data=batch, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["error"]["code"] == -32600
    # 20 copies of the token program (~130 KB each) is more than this node's 1 MiB responses.
    call = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "getMultipleAccounts",
        "params": [[TOKEN_PROGRAM] * 20, {"encoding": "base64"}],
    }).encode()
    req = urllib.request.Request(guarded.url, data=call, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        err = json.loads(r.read())["error"]
    assert err["code"] == -32600 and "max_response_bytes" in err["message"], err


def test_refusals_are_counted(guarded):
    with urllib.request.urlopen(f"http://127.0.0.1:{guarded.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    def value(name):
        for line in text.splitlines():
            if line.startswith(name + '{endpoint="rpc"}'):
                return float(line.split()[-1])
        return 0.0
    assert value("gigacompute_http_connections_refused_total") > 0
    assert value("gigacompute_http_connections_timed_out_total") > 0
    assert value("gigacompute_http_requests_too_large_total") > 0
    assert value("gigacompute_http_requests_bad_body_total") > 0


def test_the_faucet_is_limited_per_request_and_per_recipient(guarded):
    def airdrop(to, lamports):
        call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "requestAirdrop", "params": [to, lamports]})
        req = urllib.request.Request(guarded.url, data=call.encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    from solders.keypair import Keypair

    to = str(Keypair().pubkey())
    sol = 1_000_000_000
    assert airdrop(to, 11 * sol)["error"]["code"] == -32602  # over 10 SOL per request
    for _ in range(10):
        assert "result" in airdrop(to, 10 * sol)
    err = airdrop(to, sol)["error"]  # 100 SOL an hour per recipient by default
    assert err["code"] == -32602 and "per hour" in err["message"], err
    assert "result" in airdrop(str(Keypair().pubkey()), sol)


def test_a_batch_shares_one_response_limit(guarded):
    call = lambda i: {  # noqa: E731
        "jsonrpc": "2.0", "id": i, "method": "getMultipleAccounts",
        "params": [[TOKEN_PROGRAM] * 3, {"encoding": "base64"}],
    }
    batch = json.dumps([call(i) for i in range(20)]).encode()
    req = urllib.request.Request(guarded.url, data=batch, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    answers = json.loads(body)
    assert len(body) < 2 * 1048576, len(body)
    assert "result" in answers[0]
    refused = [a for a in answers if "error" in a]
    assert refused and all(a["error"]["code"] == -32600 for a in refused)
    assert [a["id"] for a in answers] == list(range(20))
