"""A flood the node survives: for a few seconds another address sends junk bytes, replays and
valid-looking transactions with bad signatures as fast as this process can, while an honest
client sends transfers. The node stays up, answers RPC, keeps its memory bounded, and the honest
transfers land. (How much goodput the flood costs is `gigacompute bench flood`'s job.)"""

import os
import random
import socket
import threading
import time

from solana.rpc.api import Client
from solders.keypair import Keypair

from test_appliance import SOL, airdrop, send_udp, signed_transfer, wait_finalized

FLOOD_SECONDS = 4
RSS_BOUND_MIB = 2048


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def flood(node, stop, valid_looking):
    rng = random.Random(7)
    junk = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 1232))) for _ in range(64)]
    bad = []
    for raw in valid_looking:
        b = bytearray(raw)
        b[1 + 7] ^= 0x40  # inside the first signature
        bad.append(bytes(b))
    packets = junk + bad + valid_looking
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        i = 0
        while not stop.is_set():
            try:
                s.sendto(packets[i % len(packets)], node.tpu)
            except OSError:
                pass
            i += 1


def test_the_node_survives_a_flood_and_honest_transfers_land(node):
    c = Client(node.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    # Replays of real transactions and unfunded payers' transfers, as the flood's raw material.
    strangers = [Keypair() for _ in range(16)]
    valid_looking = [bytes(signed_transfer(c, k, bob.pubkey(), 1000)) for k in strangers]
    rss_before = rss_mib(node.proc.pid)
    stop = threading.Event()
    t = threading.Thread(target=flood, args=(node, stop, valid_looking), daemon=True)
    t.start()
    try:
        sent = []
        deadline = time.time() + FLOOD_SECONDS
        i = 0
        while time.time() < deadline:
            tx = signed_transfer(c, alice, bob.pubkey(), 1_000_000 + i)
            send_udp(node, bytes(tx), copies=2)
            sent.append(tx)
            i += 1
            time.sleep(0.05)
        assert node.proc.poll() is None, "the node died under the flood"
        assert c.get_slot().value > 0
        rss = rss_mib(node.proc.pid)
        assert rss < RSS_BOUND_MIB, f"RSS {rss:.0f} MiB under the flood (was {rss_before:.0f})"
    finally:
        stop.set()
        t.join(timeout=10)
    # After the flood, every honest transfer still lands (resent once if a copy was lost).
    for tx in sent:
        send_udp(node, bytes(tx))
    for tx in sent:
        wait_finalized(c, tx.signatures[0], timeout=60)
    assert node.proc.poll() is None
