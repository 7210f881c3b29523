"""The DPDK packet path end to end, without a NIC or hugepages: each appliance runs EAL in its
own process with its own --file-prefix, on a virtual device.

- net_pcap: a pcap of signed transfers mixed with malformed frames is replayed into the port;
  exactly the valid transfers execute (balances through RPC), every drop is counted under its
  reason, and the replies (ARP, ICMP, verdicts) come out in the TX pcap.
- net_tap: a kernel UDP socket sends transactions to the tap interface's address and gets
  the appliance's replies; ARP and ICMP echo are answered so the kernel can reach it at all.
- bench dataplane: a short smoke run on net_ring.
"""

import json
import os
import random
import socket
import struct
import subprocess
import threading
import time

import pytest
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from conftest import BINARY, Node
from test_appliance import FEE, SOL, airdrop, balance, blockhash, wait_finalized
from test_preconf import identity as node_identity, parse_and_verify
from solana.rpc.api import Client

OUR_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
UDP_PORT = 8003


def checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, frag=0x4000, total=None, ihl=5, bad_csum=False):
    total = 20 + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, 1, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    c = checksum(hdr)
    if bad_csum:
        c ^= 0x5555
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def udp(sport: int, dport: int, payload: bytes, length=None):
    length = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, length, 0) + payload


def eth(payload: bytes, ethertype=0x0800, dst=OUR_MAC):
    return dst + PEER_MAC + struct.pack("!H", ethertype) + payload


def datagram(payload: bytes, ours: str, peer="10.99.0.2", dport=UDP_PORT, **ip):
    return eth(ipv4(peer, ours, 17, udp(40000, dport, payload), **ip))


def pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def pcap_record(frame: bytes) -> bytes:
    return struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame


def read_pcap(path) -> list:
    data = open(path, "rb").read()
    frames, at = [], 24
    while at + 16 <= len(data):
        incl = struct.unpack("<IIII", data[at:at + 16])[2]
        frames.append(data[at + 16:at + 16 + incl])
        at += 16 + incl
    return frames


def nic(node, what) -> dict:
    out = subprocess.run([str(BINARY), "nic", what, "--json", "--config", str(node.config)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def dpdk_config(prefix: str, vdev: str, ours: str) -> str:
    return (
        "[dpdk]\nenabled = true\nno_huge = true\nmemory_mb = 256\n"
        "main_lcore = 0\nrx_lcores = [1]\n"
        f'file_prefix = "{prefix}-{os.getpid()}"\n'
        f"vdevs = [{json.dumps(vdev)}]\n"
        f'[dpdk.port]\nipv4 = "{ours}"\nudp_port = {UDP_PORT}\nreplies = true\n'
        # Sleep when idle: CI has two cores and the SVM workers need them.
        "idle_sleep_us = 200\nmbuf_pool_size = 4095\nrx_descriptors = 512\ntx_descriptors = 512\n"
        "stats_interval_ms = 100\n"
    )


def transfer_tx(payer, to, lamports, bh) -> bytes:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return bytes(Transaction([payer], Message([ix], payer.pubkey()), bh))


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module", autouse=True)
def needs_dpdk_build():
    # The test command builds with --features dpdk; a default build refuses [dpdk] enabled.
    assert BINARY.exists(), f"build the binary first: {BINARY}"


def test_pcap_replay_executes_exactly_the_valid_transactions(tmp_path):
    ours = "10.99.0.1"
    fifo = tmp_path / "rx.pcap"
    os.mkfifo(fifo)
    tx_pcap = tmp_path / "tx.pcap"
    node = Node(tmp_path, dpdk_config("gc-e2e-pcap", f"net_pcap0,rx_pcap={fifo},tx_pcap={tx_pcap}", ours))
    # net_pcap opens the capture while EAL starts; a FIFO lets the frames come later, once the
    # test has funded accounts and knows a recent blockhash.
    writer = {}

    def open_writer():
        f = open(fifo, "wb", buffering=0)
        f.write(pcap_header())
        writer["f"] = f

    t = threading.Thread(target=open_writer)
    t.start()
    node.start()
    t.join(timeout=60)
    w = writer["f"]
    try:
        c = Client(node.url)
        payers = [Keypair() for _ in range(4)]
        for p in payers:
            airdrop(c, p.pubkey(), SOL)
        dests = [Keypair().pubkey() for _ in payers]
        bh = blockhash(c)
        good = [transfer_tx(p, d, 1_000_000 + i, bh) for i, (p, d) in enumerate(zip(payers, dests))]
        forged = bytearray(transfer_tx(payers[0], dests[0], 999, bh))
        forged[10] ^= 0xFF  # a signature byte: parses, fails verification
        frames = [datagram(g, ours) for g in good]
        expected_frame_drops = {
            "runt": 1, "not_ipv4": 1, "bad_ip_header": 1, "bad_ip_checksum": 1, "bad_length": 2,
            "fragment": 1, "not_udp": 1, "not_for_us": 1, "wrong_port": 1,
        }
        frames += [
            datagram(good[0], ours),                                       # repeat: recent filter
            datagram(bytes(forged), ours),                                 # bad signature
            eth(b"\x00" * 5),                                              # runt
            eth(b"\x60" + b"\x00" * 60, ethertype=0x86DD),                 # IPv6
            eth(ipv4("10.99.0.2", ours, 17, udp(40000, UDP_PORT, good[1]), ihl=4)),
            datagram(good[1], ours, bad_csum=True),
            datagram(good[1], ours, total=1400),                           # IP length > frame
            eth(ipv4("10.99.0.2", ours, 17, udp(40000, UDP_PORT, good[1], length=3000))),
            datagram(good[2], ours, frag=0x2000),                          # more fragments
            eth(ipv4("10.99.0.2", ours, 6, b"\x00" * 40)),                 # TCP
            datagram(good[2], "10.99.0.77"),                               # another host
            datagram(good[3], ours, dport=9999),                           # another port
            datagram(b"\x01" + b"\x00" * 20, ours),                        # truncated tx
            datagram(b"\x07" * 1300, ours),                                # oversize tx
            datagram(b"", ours),                                           # empty
        ]
        # ARP request for our address and an ICMP echo request.
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, PEER_MAC,
                          socket.inet_aton("10.99.0.2"), b"\x00" * 6, socket.inet_aton(ours))
        frames.append(eth(arp, ethertype=0x0806, dst=b"\xff" * 6))
        icmp = b"\x08\x00\x00\x00\x12\x34\x00\x01" + b"ping"
        icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
        frames.append(eth(ipv4("10.99.0.2", ours, 1, icmp)))
        for f in frames:
            w.write(pcap_record(f))
        w.close()

        for d, g in zip(dests, range(len(dests))):
            wait_for(lambda: balance(c, d) == 1_000_000 + g, what=f"transfer {g}")
        # The forged copy never lands; the repeat lands once.
        time.sleep(1.0)
        assert [balance(c, d) for d in dests] == [1_000_000 + i for i in range(4)]
        assert balance(c, payers[0].pubkey()) == SOL - 1_000_000 - FEE

        def settled():
            s = nic(node, "stats")["ports"][0]
            q = s["queues"][0]
            return (s, q) if q["packets"] >= len(frames) and s["ipackets"] >= len(frames) else None

        s, q = wait_for(settled, what="the RX queue to count every frame")
        assert q["packets"] == len(frames)
        assert q["accepted"] == len(good) + 1  # + the forged one: verification drops it
        assert q["duplicates"] == 1
        got = {k: v for k, v in q["frame_drops"].items() if v}
        assert got == expected_frame_drops, got
        parse = {k: v for k, v in q["parse_drops"].items() if v}
        assert parse == {"truncated": 1, "oversize": 1, "empty": 1}, parse
        assert q["arp_replies"] == 1 and q["echo_replies"] == 1
        assert s["ipackets"] == len(frames)
        metrics = open_metrics(node)
        assert 'gigacompute_tile_drops_total{tile="verify",reason="bad_signature"} 1' in metrics
        listing = nic(node, "list")["ports"][0]
        assert listing["driver"] == "net_pcap" and listing["address"] == f"{ours}:{UDP_PORT}"
        port_mac = bytes.fromhex(listing["mac"].replace(":", ""))
        identity = node_identity(node)
    finally:
        if not w.closed:
            w.close()
        node.stop()

    # The TX pcap is complete once the port has closed: an ARP reply, an echo reply and one
    # verdict per datagram that reached the transaction parser.
    out = read_pcap(tx_pcap)
    arp_replies = [f for f in out if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02"]
    assert len(arp_replies) == 1 and arp_replies[0][22:28] == port_mac
    assert arp_replies[0][0:6] == PEER_MAC
    echo = [f for f in out if f[12:14] == b"\x08\x00" and f[23] == 1]
    assert len(echo) == 1 and echo[0][34] == 0 and checksum(echo[0][34:]) == 0
    udp_out = [f for f in out if f[12:14] == b"\x08\x00" and f[23] == 17]
    verdicts = [f[42:] for f in udp_out if f[42] in (0, 1)]
    # Signed pre-confirmations went out of the same queue to the sender: for every good
    # transaction its executed one, verified against the node's identity; none for the
    # forged copy (it never passed verification).
    preconfs = [f for f in udp_out if f[42] == 0xC1]
    assert all(f[0:6] == PEER_MAC and f[30:34] == socket.inet_aton("10.99.0.2") for f in preconfs)
    stages = {}
    for f in preconfs:
        p = parse_and_verify(f[42:], identity)
        stages.setdefault(p["signature"], set()).add(p["stage"])
    for g in good:
        assert "executed" in stages.get(g[1:65], set()), stages
    assert bytes(forged[1:65]) not in stages
    codes = sorted((v[0], v[1]) for v in verdicts)
    assert codes.count((0, 0)) == len(good) + 1
    assert (1, 64) in codes  # duplicate
    assert len([v for v in codes if v[0] == 1 and v[1] != 64]) == 3  # the three parse drops
    accepted = [v for v in verdicts if v[0] == 0]
    assert {bytes(v[2:66]) for v in accepted} >= {g[1:65] for g in good}


def open_metrics(node) -> str:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10) as r:
        return r.read().decode()


def test_tap_kernel_socket_gets_replies(tmp_path):
    # 198.18.0.0/15 is set aside for benchmarking (RFC 2544): no real network uses it.
    n = random.randint(0, 255)
    ours, theirs = f"198.18.{n}.1", f"198.18.{n}.2"
    iface = f"gct{os.getpid() % 100000}"
    node = Node(tmp_path, dpdk_config("gc-e2e-tap", f"net_tap0,iface={iface}", ours))
    node.start()
    try:
        subprocess.run(["ip", "addr", "add", f"{theirs}/24", "dev", iface], check=True)
        subprocess.run(["ip", "link", "set", iface, "up"], check=True)
        c = Client(node.url)
        payer, dest = Keypair(), Keypair().pubkey()
        airdrop(c, payer.pubkey(), SOL)
        raw = transfer_tx(payer, dest, 1_004_242, blockhash(c))
        identity = node_identity(node)
        preconfs = []

        def verdict(s):
            # Signed pre-confirmations (0xC1) come back on the same socket: kept for later.
            while True:
                d, frm = s.recvfrom(2048)
                if d[0] != 0xC1:
                    return d, frm
                preconfs.append(d)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            # The kernel resolves our address by ARP first: the appliance must answer it.
            s.sendto(raw, (ours, UDP_PORT))
            reply, frm = verdict(s)
            assert frm == (ours, UDP_PORT)
            assert reply[:2] == b"\x00\x00", reply
            assert reply[2:66] == raw[1:65]
            assert reply[66:] == b"accepted"
            s.sendto(raw, (ours, UDP_PORT))
            again, _ = verdict(s)
            assert again[:2] == b"\x01\x40" and again[66:] == b"dropped: duplicate"
            s.sendto(b"\x01" + b"\x00" * 10, (ours, UDP_PORT))
            bad, _ = verdict(s)
            assert bad[0] == 1 and bad[66:].startswith(b"dropped: ")
            wait_for(lambda: balance(c, dest) == 1_004_242, what="the tap transfer")
            # The transfer's signed pre-confirmations came back through the port, from its
            # address, to this socket: they verify against the node's identity.
            deadline = time.time() + 5
            while not any(parse_and_verify(d, identity)["stage"] == "executed" for d in preconfs):
                assert time.time() < deadline, f"{len(preconfs)} pre-confirmations, none executed"
                try:
                    d, frm = s.recvfrom(2048)
                except socket.timeout:
                    continue
                if d[0] == 0xC1:
                    assert frm == (ours, UDP_PORT)
                    preconfs.append(d)
            assert all(parse_and_verify(d, identity)["signature"] == raw[1:65] for d in preconfs)
        # ICMP echo through a raw socket (we are root).
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as r:
            r.settimeout(5)
            icmp = b"\x08\x00\x00\x00\x77\x77\x00\x01hello"
            icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
            r.sendto(icmp, (ours, 0))
            deadline = time.time() + 5
            while True:
                pkt, frm = r.recvfrom(2048)
                ihl = (pkt[0] & 0x0F) * 4
                if frm[0] == ours and pkt[ihl] == 0 and pkt[ihl + 4:ihl + 6] == b"\x77\x77":
                    break
                assert time.time() < deadline, "no echo reply"
        q = nic(node, "stats")["ports"][0]["queues"][0]
        assert q["accepted"] >= 1 and q["duplicates"] == 1 and q["echo_replies"] >= 1
        assert q["arp_replies"] >= 1
    finally:
        node.stop()


def test_bench_dataplane_smoke():
    # Short and small: seconds, not minutes. Every path must really have run, and the figures
    # must hang together; the bench itself fails on any loss, duplicate or parse error.
    runs = 2
    out = subprocess.run(
        [str(BINARY), "bench", "dataplane", "--runs", str(runs), "--seconds", "0.3",
         "--sweep-bursts", "1,32", "--sweep-seconds", "0.1", "--warmup-seconds", "0.1",
         "--packets", "512", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["bench"] == "dataplane" and r["runs"] == runs and r["packets"] == 512
    assert "AF_XDP path skipped" not in out.stderr, out.stderr[-2000:]
    paths = ["dpdk", "net_tile_socket", "kernel_tuned", "kernel_gro", "afxdp"]
    for p in paths:
        core, wall = r[f"{p}_mpps_per_core"], r[f"{p}_mpps_wall"]
        # Ran, and within physical bounds: a 250-byte frame at 200 Mpps is 50 GB/s.
        assert 0.001 < core < 200, (p, r)
        # One thread on one core: packets per wall second cannot beat packets per CPU-second
        # of that thread (2% for clock granularity).
        assert 0 < wall <= core * 1.02, (p, core, wall)
    # Two loops on two cores: per wall second at most twice per CPU-second.
    assert 0 < r["kernel_tuned_all_cores_mpps_wall"] <= 2.04 * r["kernel_tuned_all_cores_mpps_per_core"]
    assert abs(r["dpdk_ns_per_packet"] * r["dpdk_mpps_per_core"] - 1e3) < 1e-6
    assert 0 < r["measured_thread_cpu_share"] <= 1.02
    # Ratios are medians of per-run ratios: the chart carries each run's, and they must agree.
    plots = {p["id"]: p for p in r["plots"]}
    per_run = {l["label"]: [y for _, y in l["points"]] for l in plots["per-run-ratios"]["lines"]}
    for label, row in [("vs net tile socket", "ratio_vs_net_tile_socket"),
                       ("vs tuned kernel UDP", "ratio_vs_kernel_tuned"),
                       ("vs GSO+GRO (best case)", "ratio_vs_kernel_gro"),
                       ("vs AF_XDP", "ratio_vs_afxdp")]:
        ys = sorted(per_run[label])
        assert len(ys) == runs
        med = (ys[0] + ys[1]) / 2
        assert abs(med - r[row]) < 1e-9 * max(1.0, med), (label, ys, r[row])
    # GRO really coalesced: one socket buffer per 32 datagrams must beat one per datagram
    # by far (with UDP_GRO silently off the two would be about equal).
    assert r["kernel_gro_mpps_per_core"] > 1.5 * r["kernel_tuned_mpps_per_core"], r
    sweep = plots["mpps-vs-burst"]
    assert len(sweep["lines"]) == 5
    for line in sweep["lines"]:
        assert [x for x, _ in line["points"]] == [1.0, 32.0], line
        assert all(y > 0 for _, y in line["points"]), line
