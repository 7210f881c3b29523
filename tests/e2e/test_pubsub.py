"""PubSub over WebSocket with solana-py's client (solders parses every notification, so the
shapes are Agave's), the subscription limits, and a subscriber that never reads."""

import asyncio
import base64
import json
import os
import socket
import time
import urllib.request

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.websocket_api import connect
from websockets.legacy.client import WebSocketClientProtocol
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    LogsNotification,
    ProgramNotification,
    RootNotification,
    SignatureNotification,
    SlotNotification,
)

from conftest import Node
from test_appliance import airdrop, signed_transfer, wait_finalized

SOL = 1_000_000_000
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")


async def next_of(ws, kind, timeout=15):
    """The next message of type `kind`, skipping others (e.g. slot notifications)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind.__name__} in {timeout} s"
        for m in await asyncio.wait_for(ws.recv(), left):
            if isinstance(m, kind):
                return m


async def subscribed(ws):
    msgs = await asyncio.wait_for(ws.recv(), 10)
    return msgs[0].result


def test_signature_account_logs_and_program_notifications(node):
    async def run():
        c = Client(node.url)
        alice, bob = Keypair(), Keypair()
        airdrop(c, alice.pubkey(), 2 * SOL)
        async with connect(node.ws_url) as ws:
            await ws.account_subscribe(bob.pubkey(), commitment=Finalized, encoding="base64")
            acct_sub = await subscribed(ws)
            await ws.logs_subscribe(RpcTransactionLogsFilterMentions(bob.pubkey()), commitment=Confirmed)
            logs_sub = await subscribed(ws)
            tx = signed_transfer(c, alice, bob.pubkey(), 1_234_567)
            sig = tx.signatures[0]
            await ws.signature_subscribe(sig, commitment=Processed)
            proc_sub = await subscribed(ws)
            await ws.signature_subscribe(sig, commitment=Finalized)
            fin_sub = await subscribed(ws)
            assert len({acct_sub, logs_sub, proc_sub, fin_sub}) == 4
            c.send_raw_transaction(bytes(tx))

            got = {}
            deadline = time.monotonic() + 20
            while len(got) < 4:
                assert time.monotonic() < deadline, f"only {list(got)}"
                for m in await asyncio.wait_for(ws.recv(), 20):
                    got.setdefault(m.subscription, m)
            p, f = got[proc_sub], got[fin_sub]
            assert isinstance(p, SignatureNotification) and p.result.value.err is None
            assert isinstance(f, SignatureNotification) and f.result.value.err is None
            a = got[acct_sub]
            assert isinstance(a, AccountNotification)
            assert a.result.value.lamports == 1_234_567
            assert a.result.value.owner == SYSTEM
            lg = got[logs_sub]
            assert isinstance(lg, LogsNotification)
            assert lg.result.value.signature == sig and lg.result.value.err is None
            assert any("11111111111111111111111111111111 success" in l for l in lg.result.value.logs)
            # Processed comes no later than durable, in the same slot.
            assert p.result.context.slot == f.result.context.slot == a.result.context.slot

            # Signature subscriptions are one-shot: unsubscribing them now fails; the
            # account subscription is still there.
            await ws.signature_unsubscribe(fin_sub)
            assert "Invalid subscription id" in json.dumps(await raw_recv(ws))
            await ws.account_unsubscribe(acct_sub)
            assert (await raw_recv(ws))["result"] is True

            # A signature already finalized is answered at once.
            await ws.signature_subscribe(sig, commitment=Finalized)
            n = await next_of(ws, SignatureNotification)
            assert n.result.value.err is None

            # Program subscription with a filter: only system accounts of 0 bytes.
            await ws.program_subscribe(SYSTEM, commitment=Processed, encoding="base64", filters=[0])
            prog_sub = await subscribed(ws)
            carol = Keypair()
            c.send_raw_transaction(bytes(signed_transfer(c, alice, carol.pubkey(), 1_000_777)))
            deadline = time.monotonic() + 20
            while True:
                assert time.monotonic() < deadline, "carol's account was not announced"
                n = await next_of(ws, ProgramNotification)
                assert n.subscription == prog_sub
                if n.result.value.pubkey == carol.pubkey():
                    assert n.result.value.account.lamports == 1_000_777
                    break

    asyncio.run(run())


async def raw_recv(ws):
    """The next message as JSON, without solana-py's parsing (errors included)."""
    return json.loads(await asyncio.wait_for(WebSocketClientProtocol.recv(ws), 10))


def test_slot_and_root_notifications_follow_the_chain(node):
    async def run():
        async with connect(node.ws_url) as ws:
            await ws.slot_subscribe()
            await subscribed(ws)
            await ws.root_subscribe()
            await subscribed(ws)
            slots, roots = [], []
            deadline = time.monotonic() + 15
            while (len(slots) < 5 or len(roots) < 5) and time.monotonic() < deadline:
                for m in await asyncio.wait_for(ws.recv(), 10):
                    if isinstance(m, SlotNotification):
                        slots.append(m.result)
                    elif isinstance(m, RootNotification):
                        roots.append(m.result)
            assert len(slots) >= 5 and len(roots) >= 5
            for s in slots:
                assert s.parent == s.slot - 1 and s.root <= s.slot
            assert [s.slot for s in slots] == sorted(s.slot for s in slots)
            assert roots == list(range(roots[0], roots[0] + len(roots))), "every root, in order"

    asyncio.run(run())


def ws_handshake(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def ws_send(s, text: str):
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        header = bytes([0x81, 0x80 | n])
    else:
        header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def metric(node, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture(scope="module")
def small_node(tmp_path_factory):
    n = Node(
        tmp_path_factory.mktemp("pubsub-limits"),
        pubsub_config=(
            "max_subscriptions_per_connection = 200\n"
            "max_queued_bytes_per_connection = 65536\n"
            "idle_timeout_ms = 3000\n"
        ),
    )
    n.start()
    yield n
    n.stop()


def test_subscription_limit_per_connection(small_node):
    async def run():
        async with connect(small_node.ws_url) as ws:
            for i in range(200):
                await ws.slot_subscribe()
            ids = set()
            while len(ids) < 200:
                for m in await asyncio.wait_for(ws.recv(), 10):
                    if hasattr(m, "result") and isinstance(m.result, int):
                        ids.add(m.result)
            await WebSocketClientProtocol.send(
                ws, json.dumps({"jsonrpc": "2.0", "id": 99999, "method": "slotSubscribe"})
            )
            while True:
                m = await raw_recv(ws)
                if m.get("id") == 99999:
                    assert m["error"]["code"] == -32603, m
                    assert "max_subscriptions_per_connection" in m["error"]["message"]
                    break
        # Another connection still subscribes.
        async with connect(small_node.ws_url) as ws2:
            await ws2.slot_subscribe()
            assert isinstance(await subscribed(ws2), int)
        assert metric(small_node, "gigacompute_pubsub_subscriptions_refused_total") >= 1

    asyncio.run(run())


def test_a_subscriber_that_never_reads_is_disconnected_and_others_are_served(small_node):
    s = ws_handshake(small_node.pubsub_port, rcvbuf=4096)
    for i in range(200):
        ws_send(s, json.dumps({"jsonrpc": "2.0", "id": i, "method": "slotSubscribe"}))
    # Never read: 200 subscriptions x ~20 slots/s of notifications fill the socket, then the
    # 64 KiB outbox; the node drops the connection.
    before = metric(small_node, "gigacompute_pubsub_slow_subscribers_disconnected_total") or 0

    async def others():
        async with connect(small_node.ws_url) as ws:
            await ws.slot_subscribe()
            await subscribed(ws)
            got = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for m in await asyncio.wait_for(ws.recv(), 10):
                    got += isinstance(m, SlotNotification)
                now = metric(small_node, "gigacompute_pubsub_slow_subscribers_disconnected_total") or 0
                timed = metric(small_node, 'gigacompute_http_connections_timed_out_total{endpoint="pubsub"}')
                if now > before or (timed or 0) > 0:
                    return got
            raise AssertionError("the non-reading subscriber was never disconnected")

    got = asyncio.run(others())
    assert got > 0, "the reading subscriber kept getting slots"
    s.close()
    assert Client(small_node.url).get_slot().value > 0
