"""Pre-confirmations as a client sees them: a transaction sent over UDP gets signed promises
back on the socket it sent from; each verifies against getIdentity with a verifier written
here from the documented layout (dataplane/src/preconf.rs), not the appliance's own code;
the RPC serves the same bytes; an unfunded payer is told it was rejected and why; a tampered
datagram fails; calibration counters appear in /metrics."""

import base64
import hashlib
import json
import socket
import struct
import subprocess
import time
import urllib.request

import pytest

from solana.rpc.api import Client
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from conftest import BINARY
from test_appliance import SOL, airdrop, blockhash, rpc_raw, signed_transfer, wait_finalized

DOMAIN = b"\xffgigacompute-preconf-v1"
STAGES = {0: "rejected", 1: "admitted", 2: "executed"}
OUTCOMES = {0: "success", 1: "failure", 2: "notIncluded"}


def parse_and_verify(datagram: bytes, identity: Pubkey) -> dict:
    """Decode a pre-confirmation and check its Merkle proof and ed25519 signature."""
    assert datagram[0] == 0xC1 and datagram[1] == 1, datagram[:2]
    n = datagram[118]
    assert n <= 8
    body_len = 119 + 9 * n
    body = datagram[:body_len]
    depth = datagram[body_len]
    (index,) = struct.unpack_from("<H", datagram, body_len + 1)
    at = body_len + 3
    siblings = [datagram[at + 32 * i : at + 32 * (i + 1)] for i in range(depth)]
    at += 32 * depth
    signer = datagram[at : at + 32]
    sig = datagram[at + 32 : at + 96]
    assert len(datagram) == at + 96, "no trailing bytes"
    assert signer == bytes(identity), "signed by the node's identity"
    node = hashlib.sha256(b"\x00" + body).digest()
    for s in siblings:
        if index & 1 == 0:
            node = hashlib.sha256(b"\x01" + node + s).digest()
        else:
            node = hashlib.sha256(b"\x01" + s + node).digest()
        index >>= 1
    assert Signature.from_bytes(sig).verify(identity, DOMAIN + node), "signature verifies"
    (p,) = struct.unpack_from("<H", body, 4)
    (expected, deadline, fee, issued, unix_us) = struct.unpack_from("<QQQQQ", body, 72)
    (reason,) = struct.unpack_from("<H", body, 112)
    deltas = [struct.unpack_from("<Bq", body, 119 + 9 * i) for i in range(n)]
    return {
        "stage": STAGES[body[2]],
        "outcome": OUTCOMES[body[3]],
        "probability": p / 65535,
        "signature": bytes(body[8:72]),
        "expected": expected,
        "deadline": deadline,
        "fee": fee,
        "issued": issued,
        "reason": reason,
        "deltas": deltas,
    }


def receive(sock, want_signature: bytes, stages, timeout=10.0):
    """Pre-confirmations for `want_signature` until each of `stages` came, by stage."""
    got = {}
    deadline = time.time() + timeout
    while time.time() < deadline and not set(stages) <= set(got):
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            break
        got.setdefault("raw", []).append(data)
        if data[8:72] == want_signature:
            got[STAGES[data[2]]] = data
    return got


def identity(node) -> Pubkey:
    return Pubkey.from_string(rpc_raw(node, "getIdentity")["result"]["identity"])


def test_udp_sender_gets_signed_promises_that_verify(node):
    c = Client(node.url)
    me = identity(node)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), 2 * SOL)
    tx = signed_transfer(c, alice, bob.pubkey(), 1_000_000)
    sig = bytes(tx.signatures[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(bytes(tx), node.tpu)
        got = receive(s, sig, ["admitted", "executed"])
    assert "admitted" in got and "executed" in got, got.keys()
    admitted = parse_and_verify(got["admitted"], me)
    executed = parse_and_verify(got["executed"], me)
    for p in (admitted, executed):
        assert p["signature"] == sig
        assert 0.0 <= p["probability"] <= 1.0
    assert admitted["deadline"] >= admitted["expected"] >= admitted["issued"]
    assert admitted["fee"] == 5_000
    if admitted["outcome"] == "success":
        # A plain System transfer: the payer pays fee + amount, the recipient gets the amount.
        assert dict(admitted["deltas"]) == {0: -1_005_000, 1: 1_000_000}
    assert executed["outcome"] == "success"
    assert executed["fee"] == 5_000
    assert dict(executed["deltas"]) == {0: -1_005_000, 1: 1_000_000}
    wait_finalized(c, tx.signatures[0])

    # The RPC serves the newest one, with the same signed bytes.
    r = rpc_raw(node, "getSignaturePreconfirmations", [[str(tx.signatures[0]), str(Signature.default())]])
    value = r["result"]["value"]
    assert value[1] is None
    v = value[0]
    assert v["identity"] == str(me)
    assert v["stage"] == "executed" and v["outcome"] == "success"
    assert parse_and_verify(base64.b64decode(v["message"]), me)["signature"] == sig

    # Any changed byte fails the check.
    bad = bytearray(got["executed"])
    bad[90] ^= 1  # the fee
    with pytest.raises(AssertionError, match="signature verifies"):
        parse_and_verify(bytes(bad), me)

    # The command-line verifier agrees, both ways.
    def cli(message):
        return subprocess.run(
            [str(BINARY), "preconf", "verify", "--identity", str(me), message],
            capture_output=True,
            text=True,
            timeout=30,
        )

    ok = cli(v["message"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["stage"] == "executed"
    refused = cli(base64.b64encode(bytes(bad)).decode())
    assert refused.returncode == 1 and refused.stdout.startswith("rejected"), refused.stdout


def test_unfunded_payer_is_told_it_is_rejected(node):
    c = Client(node.url)
    me = identity(node)
    ghost, bob = Keypair(), Keypair()
    tx = signed_transfer(c, ghost, bob.pubkey(), 1)
    sig = bytes(tx.signatures[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(bytes(tx), node.tpu)
        got = receive(s, sig, ["rejected"])
    assert "rejected" in got, got.keys()
    p = parse_and_verify(got["rejected"], me)
    assert p["outcome"] == "notIncluded"
    assert p["reason"] > 0
    r = rpc_raw(node, "getSignaturePreconfirmations", [[str(tx.signatures[0])]])
    assert r["result"]["value"][0]["reason"] == "fee_payer_cannot_pay"


def test_send_transaction_with_preconfirm_answers_the_promise(node):
    c = Client(node.url)
    me = identity(node)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    tx = signed_transfer(c, alice, bob.pubkey(), 2_000_000)
    raw = base64.b64encode(bytes(tx)).decode()
    r = rpc_raw(node, "sendTransaction", [raw, {"encoding": "base64", "preconfirm": True}])
    result = r["result"]
    assert result["signature"] == str(tx.signatures[0])
    p = result["preconfirmation"]
    assert p is not None, "the first pre-confirmation came within the wait"
    assert p["stage"] in ("admitted", "executed") and p["identity"] == str(me)
    assert parse_and_verify(base64.b64decode(p["message"]), me)["signature"] == bytes(tx.signatures[0])
    wait_finalized(c, tx.signatures[0])
    # Without the option the answer is Agave's: the bare signature.
    tx2 = signed_transfer(c, alice, bob.pubkey(), 2_000_001)
    r2 = rpc_raw(node, "sendTransaction", [base64.b64encode(bytes(tx2)).decode(), {"encoding": "base64"}])
    assert r2["result"] == str(tx2.signatures[0])


def test_rpc_refuses_bad_parameters(node):
    too_many = [str(Signature.default())] * 257
    assert rpc_raw(node, "getSignaturePreconfirmations", [too_many])["error"]["code"] == -32602
    assert rpc_raw(node, "getSignaturePreconfirmations", [["nope"]])["error"]["code"] == -32602
    assert rpc_raw(node, "getSignaturePreconfirmations", [])["error"]["code"] == -32602


def test_calibration_is_exposed(node):
    c = Client(node.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        sigs = []
        for i in range(20):
            tx = signed_transfer(c, alice, bob.pubkey(), 1_000_000 + i)
            sigs.append(tx.signatures[0])
            s.sendto(bytes(tx), node.tpu)
    for sig in sigs:
        wait_finalized(c, sig)
    time.sleep(0.3)
    url = f"http://127.0.0.1:{node.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()

    def total(prefix):
        return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(prefix))

    assert total('gigacompute_preconf_issued_total{stage="admitted"}') >= 20
    assert total('gigacompute_preconf_promises_total{stage="admitted"') >= 20
    held = total('gigacompute_preconf_promises_held_total{stage="admitted"')
    assert 0 <= held <= total('gigacompute_preconf_promises_total{stage="admitted"')
    assert "gigacompute_preconf_calibration_error" in text
    assert 'gigacompute_tile_drops_total{tile="preconf",reason="queue_full"}' in text


def test_preconfirmation_subscription(node):
    """A WebSocket client subscribed to one signature gets its admitted and executed
    pre-confirmations (same signed bytes as over UDP), then the subscription ends; an `all`
    subscription sees other transactions' too; bad filters are refused."""
    import asyncio

    import websockets

    c = Client(node.url)
    me = identity(node)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    tx = signed_transfer(c, alice, bob.pubkey(), 3_000_000)
    sig = str(tx.signatures[0])

    async def call(ws, method, params, id_=1):
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("id") == id_:
                return m

    async def run():
        async with websockets.connect(node.ws_url) as ws:
            bad = await call(ws, "preconfirmationSubscribe", [{"signature": "nope"}])
            assert bad["error"]["code"] == -32602
            bad = await call(ws, "preconfirmationSubscribe", [42])
            assert bad["error"]["code"] == -32602
            one = (await call(ws, "preconfirmationSubscribe", [{"signature": sig}], 2))["result"]
            every = (await call(ws, "preconfirmationSubscribe", ["all"], 3))["result"]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(bytes(tx), node.tpu)
            stages = {}
            deadline = time.monotonic() + 15
            while "executed" not in stages.get(one, []):
                left = deadline - time.monotonic()
                assert left > 0, f"notifications so far: {stages}"
                m = json.loads(await asyncio.wait_for(ws.recv(), left))
                if m.get("method") != "preconfirmationNotification":
                    continue
                p = m["params"]
                value = p["result"]["value"]
                if value is None or parse_and_verify(base64.b64decode(value["message"]), me)["signature"] != bytes(tx.signatures[0]):
                    continue
                assert p["result"]["context"]["slot"] == value["issuedSlot"]
                stages.setdefault(p["subscription"], []).append(value["stage"])
            assert stages[one] == ["admitted", "executed"], stages
            assert "admitted" in stages.get(every, []) or "executed" in stages.get(every, [])
            # The signature's subscription ended with its final stage; `all` goes on.
            gone = await call(ws, "preconfirmationUnsubscribe", [one], 4)
            assert gone["error"]["code"] == -32602
            still = await call(ws, "preconfirmationUnsubscribe", [every], 5)
            assert still["result"] is True

    asyncio.run(run())
