"""Dynamic horizontal scaling: a cluster of two loaded nodes, a third node joins owning
nothing, and the leader's heat-driven rebalancing moves partitions to it while transfers keep
arriving at every node; every transfer lands exactly once."""

import random
import socket
import threading
import time

from solana.rpc.api import Client
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from conftest import BINARY, Node
from test_appliance import SOL
from test_scaleout import Etcd, cli, keypairs_in_partition, partition_of, status_json, wait_status

PARTITIONS = 16


def section(node_id, endpoint):
    return (
        f'[cluster]\nenabled = true\nname = "r"\nnode_id = "{node_id}"\netcd = ["{endpoint}"]\n'
        "lease_ttl_s = 2\npoll_ms = 100\njoin_timeout_s = 20\n"
        "rebalance = true\nrebalance_min_tps = 40.0\nrebalance_cooldown_s = 2\n"
    )


def test_a_joining_node_takes_load_from_the_hot_ones(tmp_path):
    assert BINARY.exists()
    etcd = Etcd(tmp_path)
    etcd.start()
    nodes = {}
    try:
        for nid in ("a", "b", "c"):
            d = tmp_path / nid
            d.mkdir()
            nodes[nid] = Node(d, extra_config=section(nid, etcd.endpoint))
        r = cli("cluster", "init", "--config", str(nodes["a"].config), "--nodes", "a,b",
                "--partitions", str(PARTITIONS))
        assert r.returncode == 0, r.stderr
        nodes["a"].start()
        nodes["b"].start()
        ca = Client(nodes["a"].url)
        # One payer and one payee in each of 8 partitions (both sides of a transfer in one
        # partition, so no transfer spans nodes whoever owns what).
        pairs = []
        for p in range(8):
            payer, payee = keypairs_in_partition(p, 2)
            pairs.append((payer, payee.pubkey()))
        for payer, _ in pairs:
            wait_status(ca, ca.request_airdrop(payer.pubkey(), 5 * SOL).value)
        for _, payee in pairs:
            wait_status(ca, ca.request_airdrop(payee, SOL).value)
        sent = {payee: 0 for _, payee in pairs}
        # Nodes that are up (a datagram to a port not yet bound is lost by the kernel).
        up = [nodes["a"], nodes["b"]]
        stop = threading.Event()

        def load():
            rng = random.Random(3)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            bh, bh_at, i = None, 0.0, 0
            while not stop.is_set():
                live = list(up)
                if bh is None or time.time() - bh_at > 2:
                    bh = Client(live[0].url).get_latest_blockhash().value.blockhash
                    bh_at = time.time()
                payer, payee = pairs[i % len(pairs)]
                lamports = 1_000 + i
                ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=payee, lamports=lamports))
                raw = bytes(Transaction([payer], Message([ix], payer.pubkey()), bh))
                udp.sendto(raw, rng.choice(live).tpu)
                sent[payee] += lamports
                i += 1
                time.sleep(0.006)

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(3)
            nodes["c"].start()
            up.append(nodes["c"])
            deadline = time.time() + 40
            owned = 0
            while time.time() < deadline:
                s = status_json({"nodes": {"n1": nodes["a"]}})
                owned = next((n["partitions"] for n in s["nodes"] if n["id"] == "c"), 0)
                if owned >= 1:
                    break
                time.sleep(0.5)
            assert owned >= 1, f"c took nothing: {s}"
            time.sleep(2)
        finally:
            stop.set()
            t.join()
        for n in nodes.values():
            c = Client(n.url)
            deadline = time.time() + 20
            for payer, payee in pairs:
                want = SOL + sent[payee]
                while c.get_balance(payee).value != want and time.time() < deadline:
                    time.sleep(0.2)
                assert c.get_balance(payee).value == want, (n.workdir, str(payee))
    finally:
        for n in nodes.values():
            n.stop()
        etcd.stop()


def test_an_idle_cluster_consolidates_onto_one_node_and_loses_nothing(tmp_path):
    """Scale-in (`consolidate_below_tps`): three nodes, accounts funded in every partition,
    then no load. After `consolidate_after_s` the leader moves partitions, one at a time,
    from the node owning the fewest to the node owning the most, until one node owns them
    all; every balance reads the same through every node afterwards, and a transfer still
    runs. The emptied nodes stay up (as followers) and could now be stopped."""
    assert BINARY.exists()
    etcd = Etcd(tmp_path)
    etcd.start()
    nodes = {}
    partitions = 6
    try:
        for nid in ("a", "b", "c"):
            d = tmp_path / nid
            d.mkdir()
            cfg = section(nid, etcd.endpoint).replace('name = "r"', 'name = "idle"') + (
                "consolidate_below_tps = 20.0\nconsolidate_after_s = 2\n")
            nodes[nid] = Node(d, extra_config=cfg.replace("rebalance_cooldown_s = 2", "rebalance_cooldown_s = 1"))
        r = cli("cluster", "init", "--config", str(nodes["a"].config), "--nodes", "a,b,c",
                "--partitions", str(partitions))
        assert r.returncode == 0, r.stderr
        for n in nodes.values():
            n.start()
        ca = Client(nodes["a"].url)
        accounts = {}
        for p in range(partitions):
            k = next(kp for kp in iter(Keypair, None)
                     if partition_of(bytes(kp.pubkey()), partitions) == p)
            wait_status(ca, ca.request_airdrop(k.pubkey(), SOL + p).value)
            accounts[p] = k
        cfgs = {"nodes": {"n1": nodes["a"]}}
        deadline = time.time() + 90
        while True:
            s = status_json(cfgs)
            owners = set(s["owners"])
            if len(owners) == 1:
                break
            assert time.time() < deadline, f"not consolidated: {s['owners']}"
            time.sleep(0.5)
        assert s["epoch"] >= 1 + 4, s  # at least 4 moves (two nodes' partitions)
        for n in nodes.values():
            c = Client(n.url)
            for p, k in accounts.items():
                deadline = time.time() + 10
                while c.get_balance(k.pubkey()).value != SOL + p and time.time() < deadline:
                    time.sleep(0.2)
                assert c.get_balance(k.pubkey()).value == SOL + p, (n.workdir, p)
        payer, payee = accounts[0], accounts[partitions - 1].pubkey()
        bh = ca.get_latest_blockhash().value.blockhash
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=payee, lamports=4_321))
        sig = Client(nodes["c"].url).send_raw_transaction(
            bytes(Transaction([payer], Message([ix], payer.pubkey()), bh))).value
        assert wait_status(ca, sig).err is None
    finally:
        for n in nodes.values():
            n.stop()
        etcd.stop()
