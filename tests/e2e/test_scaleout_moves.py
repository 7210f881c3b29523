"""Live partition moves under load, and transactions across nodes gathered by moves
(co-location), on a cluster of three nodes with replication on and off: see test_scaleout.py
for the cluster harness and the other scale-out tests."""

import os
import socket
import threading
import time

import pytest
from solana.rpc.api import Client
from solders.hash import Hash
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from conftest import BINARY, Node
from test_appliance import FEE, SOL, rpc_raw
from test_scaleout import (ETCD, PARTITIONS, Etcd, cli, cluster_section, followers,
                           keypairs_in_partition, metric_value, metrics, partition_of, status_json,
                           wait_balance, wait_replicating, wait_status)


@pytest.fixture(scope="module", params=[True, False], ids=["replicated", "unreplicated"])
def cluster(request, tmp_path_factory):
    """Three nodes, with replication on or off."""
    replicate = request.param
    assert BINARY.exists(), f"build the binary first: {BINARY}"
    assert os.path.exists(ETCD), "etcd-server is not installed (scripts/test.sh installs it)"
    root = tmp_path_factory.mktemp("moves")
    etcd = Etcd(root)
    etcd.start()
    nodes = {}
    for nid in ["n1", "n2", "n3"]:
        d = root / nid
        d.mkdir()
        section = (cluster_section(nid, etcd.endpoint)
                   .replace("replicate = true", f"replicate = {str(replicate).lower()}")
                   .replace("colocate = false", "colocate = true"))
        nodes[nid] = Node(d, extra_config=section)
    r = cli("cluster", "init", "--config", str(nodes["n1"].config), "--nodes", "n1,n2,n3",
            "--partitions", str(PARTITIONS))
    assert r.returncode == 0, r.stderr
    for n in nodes.values():
        n.start()
    if replicate:
        wait_replicating(nodes)
    yield {"etcd": etcd, "nodes": nodes, "root": root, "replicate": replicate}
    for n in nodes.values():
        n.stop()
    etcd.stop()


def statuses_within(client, sigs, timeout):
    """The statuses of `sigs` (at most 256) once all exist, or as they are at the timeout."""
    deadline = time.time() + timeout
    while True:
        st = client.get_signature_statuses(sigs).value
        if all(x is not None for x in st) or time.time() > deadline:
            return st
        time.sleep(0.2)


def move(cluster, partition, to):
    r = cli("cluster", "move", "--config", str(cluster["nodes"]["n1"].config),
            "--partition", str(partition), "--to", to)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_live_migration_under_load_loses_and_duplicates_nothing(cluster):
    """Partition 0 (it also holds the System Program's key, which every node keeps) moves
    three times (n1 -> n2 -> n3 -> n1; replicated: from each owner to its follower) while
    transfers on it arrive at every node over UDP and RPC, each sent twice, and once more
    after the moves: every transfer executes exactly once (the payee holds the exact sum),
    and the map's epoch rose by one per move."""
    import base64
    import random

    nodes = cluster["nodes"]
    names = ["n1", "n2", "n3"]
    p = 0
    assert partition_of(bytes(16 * b"\0" + 16 * b"\0")) == 0 and names[p % 3] == "n1"
    payers = keypairs_in_partition(p, 6)
    payee = keypairs_in_partition(p, 1)[0].pubkey()
    c1 = Client(nodes["n1"].url)
    sigs = [c1.request_airdrop(k.pubkey(), 5 * SOL).value for k in payers]
    sigs.append(c1.request_airdrop(payee, SOL).value)
    for s in sigs:
        wait_status(c1, s)
    # Replicated: each move goes to the owner's follower, which holds a replica of the
    # partition and may still be sent the owner's last slots before the drain, after the
    # move's (newer) pages; they must not overwrite them, nor what the new owner runs next.
    if cluster["replicate"]:
        f, _ = followers(cluster)
        route = [f["n1"], f[f["n1"]]]
        route.append(f[route[-1]])
    else:
        route = ["n2", "n3", "n1"]
    epoch0 = status_json(cluster)["epoch"]
    sent = []
    stop = threading.Event()

    def load():
        rng = random.Random(7)
        i = 0
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bh, bh_at = None, 0
        while not stop.is_set() and i < 3000:
            if bh is None or time.time() - bh_at > 2:
                bh = Client(nodes[rng.choice(names)].url).get_latest_blockhash().value.blockhash
                bh_at = time.time()
            payer = payers[i % len(payers)]
            lamports = 10_000 + i
            ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=payee, lamports=lamports))
            raw = bytes(Transaction([payer], Message([ix], payer.pubkey()), bh))
            for copy in range(2):
                target = nodes[rng.choice(names)]
                if rng.random() < 0.3:
                    rpc_raw(target, "sendTransaction",
                            [base64.b64encode(raw).decode(), {"encoding": "base64", "skipPreflight": True}])
                else:
                    udp.sendto(raw, target.tpu)
            sent.append((Transaction.from_bytes(raw).signatures[0], lamports, raw))
            i += 1
            time.sleep(0.004)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(1.0)
        for to in route:
            out = move(cluster, p, to)
            assert f"to {to}" in out, out
            time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    assert len(sent) > 200, len(sent)
    # Every transaction once more, now that its partition has been on three nodes: none may
    # run again (each node knows what the partition's previous owners ran).
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, (_, _, raw) in enumerate(sent):
        udp.sendto(raw, nodes[names[i % 3]].tpu)
    time.sleep(2)
    s = status_json(cluster)
    # Three moves (and no other map change: the followers are settled).
    assert s["epoch"] == epoch0 + 3 and s["migrations"] == [], (epoch0, s)
    # Every transfer landed once: its status exists, and the payee holds the exact sum.
    reader = Client(nodes["n2"].url)
    missing = []
    for i in range(0, len(sent), 200):
        chunk = [sig for sig, _, _ in sent[i : i + 200]]
        st = statuses_within(reader, chunk, timeout=30)
        missing += [str(sig) for sig, x in zip(chunk, st) if x is None]
    assert not missing, f"{len(missing)} of {len(sent)} never landed, e.g. {missing[:3]}"
    want = SOL + sum(l for _, l, _ in sent)
    for n in nodes.values():
        # Finalized (the client's default): once durable on the owner and its follower.
        wait_balance(Client(n.url), payee, want, timeout=15)
    moved_in = sum(metric_value(n, "gigacompute_cluster_migrations_total{direction=\"in\"") for n in nodes.values())
    assert moved_in >= 3


def signed_transfer(payer, to, lamports, blockhash):
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return bytes(Transaction([payer], Message([ix], payer.pubkey()), blockhash))


def test_transactions_across_nodes_gather_their_partitions_and_run_whole(cluster):
    """Serial equivalence across nodes (rule 2, co-location). Three accounts in partitions
    owned by three different nodes pay each other in a ring (A -> B -> C -> A), each transfer
    sent twice to random nodes over UDP and RPC (with preflight, which such a transaction
    skips) and once more at the end. Each transaction is held by the node that received it
    while its partitions move to the owner of the lowest-numbered one; then it runs there,
    whole. Afterwards: every transfer has a successful status, the three partitions share one
    owner, and each balance is exactly what running every transfer once, in any order, gives
    (no half-applied transfer, none twice). Before that, a cross-partition datagram with a bad
    signature, one whose fee payer has no lamports and one with an unknown blockhash are
    dropped (counted) and move nothing."""
    import base64
    import random

    nodes = cluster["nodes"]
    names = sorted(nodes)
    owners = status_json(cluster)["owners"]
    # A partition per node, none of them partition 0 (the move test's).
    parts = {}
    for p, o in enumerate(owners):
        if p and o not in parts:
            parts[o] = p
    assert len(parts) == 3, owners
    a, b, c = (keypairs_in_partition(parts[n], 1)[0] for n in names)
    client = Client(nodes[names[0]].url)
    for k in (a, b, c):
        wait_status(client, client.request_airdrop(k.pubkey(), 2 * SOL).value)
    bh = client.get_latest_blockhash().value.blockhash

    # A forged cross-partition datagram: dropped before it is held, and moves nothing.
    epoch0 = status_json(cluster)["epoch"]
    forged = bytearray(signed_transfer(a, b.pubkey(), 1, bh))
    forged[5] ^= 0xFF
    def bad(n):
        return metric_value(n, 'gigacompute_cluster_colocation_total{event="bad_signature"')

    before = bad(nodes[names[2]])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendto(bytes(forged), nodes[names[2]].tpu)
    deadline = time.time() + 10
    while bad(nodes[names[2]]) == before:
        assert time.time() < deadline, "the forged datagram was not counted"
        time.sleep(0.1)
    # Cross-partition transactions that could not pay (a fee payer with no lamports, a
    # blockhash never issued): held, then dropped (counted) before asking for any move.
    def unpayable(n):
        return metric_value(n, 'gigacompute_cluster_colocation_total{event="unpayable"')

    before = unpayable(nodes[names[2]])
    broke = keypairs_in_partition(parts[names[0]], 1)[0]
    udp.sendto(signed_transfer(broke, b.pubkey(), 1_000_000, bh), nodes[names[2]].tpu)
    udp.sendto(signed_transfer(a, b.pubkey(), 1_000_000, Hash.new_unique()), nodes[names[2]].tpu)
    deadline = time.time() + 10
    while unpayable(nodes[names[2]]) < before + 2:
        assert time.time() < deadline, "the unpayable transactions were not counted"
        time.sleep(0.1)
    time.sleep(1)
    assert status_json(cluster)["epoch"] == epoch0

    rng = random.Random(11)
    ring = [(a, b), (b, c), (c, a)]
    sent = []
    for i in range(60):
        payer, payee = ring[i % 3]
        lamports = 1_000_000 + i
        raw = signed_transfer(payer, payee.pubkey(), lamports, bh)
        for _ in range(2):
            target = nodes[rng.choice(names)]
            if rng.random() < 0.3:
                r = Client(target.url).send_raw_transaction(raw)  # preflight on
                assert str(r.value) == str(Transaction.from_bytes(raw).signatures[0])
            else:
                udp.sendto(raw, target.tpu)
        sent.append((Transaction.from_bytes(raw).signatures[0], payer, payee, lamports, raw))
    reader = Client(nodes[names[1]].url)
    sigs = [s for s, *_ in sent]
    st = statuses_within(reader, sigs, timeout=60)
    missing = [str(s) for s, x in zip(sigs, st) if x is None]
    held = {n: [line for line in metrics(nodes[n]).splitlines()
                if line.startswith("gigacompute_") and " 0" not in line[-2:] and "seconds" not in line]
            for n in names}
    assert not missing, f"{len(missing)} of {len(sigs)} never ran, e.g. {missing[:3]}; {held}"
    assert all(x.err is None for x in st), [x.err for x in st if x.err is not None][:3]
    for *_, raw in sent:
        udp.sendto(raw, nodes[rng.choice(names)].tpu)
    time.sleep(1.5)
    s = status_json(cluster)
    gathered = {s["owners"][parts[n]] for n in names}
    assert len(gathered) == 1, (parts, s["owners"])
    want = {}
    for k in (a, b, c):
        want[str(k.pubkey())] = 2 * SOL
    for _, payer, payee, lamports, _ in sent:
        want[str(payer.pubkey())] -= lamports + FEE
        want[str(payee.pubkey())] += lamports
    for k in (a, b, c):
        for n in nodes.values():
            wait_balance(Client(n.url), k.pubkey(), want[str(k.pubkey())], timeout=15)
    moves = sum(metric_value(n, 'gigacompute_cluster_colocation_total{event="move"') for n in nodes.values())
    assert moves >= 2, moves


def test_order_dependent_transfers_across_nodes_match_a_serial_order(cluster):
    """Serial equivalence when outcomes depend on order (rule 2): one payer in a partition of
    one node, two payees in partitions of the two others, twelve transfers of half a SOL (each
    amount distinct) sent at once through random nodes, but the payer holds 3 SOL: only some
    can succeed, and which depends on the order they run in. Whatever that order was, the
    result must be that of running them one after another: every transfer ran once (a status
    each, its fee charged), the failures are the System Program's insufficient-funds error,
    the balances are exactly the successes' sums, and the payer's final balance is below
    every failed amount (a failed transfer in a serial order met a balance that was lower)."""
    import json
    import random

    nodes = cluster["nodes"]
    names = sorted(nodes)
    owners = status_json(cluster)["owners"]
    picked = {}
    for p, o in enumerate(owners):
        if p not in (0, PARTITIONS - 1) and o not in picked:
            picked[o] = p
    if len(picked) < 3:
        pytest.skip(f"no three partitions on three nodes now: {owners}")
    a, b, c = (keypairs_in_partition(picked[n], 1)[0] for n in sorted(picked)[:3])
    client = Client(nodes[names[0]].url)
    wait_status(client, client.request_airdrop(a.pubkey(), 3 * SOL).value)
    bh = client.get_latest_blockhash().value.blockhash
    rng = random.Random(5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = []
    for i in range(12):
        to = (b, c)[i % 2].pubkey()
        lamports = SOL // 2 + i
        raw = signed_transfer(a, to, lamports, bh)
        udp.sendto(raw, nodes[rng.choice(names)].tpu)
        sent.append((str(Transaction.from_bytes(raw).signatures[0]), to, lamports))
    reader = nodes[names[1]]
    deadline = time.time() + 60
    while True:
        st = rpc_raw(reader, "getSignatureStatuses", [[s for s, *_ in sent]])["result"]["value"]
        if all(x is not None for x in st) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert all(x is not None for x in st), [s for (s, *_), x in zip(sent, st) if x is None]
    ok = [(to, lam) for (_, to, lam), x in zip(sent, st) if x["err"] is None]
    failed = [lam for (_, _, lam), x in zip(sent, st) if x["err"] is not None]
    for x in st:
        assert x["err"] in (None, {"InstructionError": [0, {"Custom": 1}]}), json.dumps(x)
    assert 1 <= len(ok) <= 5 and failed, (len(ok), failed)
    want_a = 3 * SOL - sum(lam for _, lam in ok) - FEE * len(sent)
    want = {str(a.pubkey()): want_a}
    for k in (b, c):
        want[str(k.pubkey())] = sum(lam for to, lam in ok if to == k.pubkey())
    for n in nodes.values():
        for k, v in want.items():
            wait_balance(Client(n.url), Pubkey.from_string(k), v, timeout=15)
    assert want_a < min(failed), (want_a, failed)


def peer_path(cluster):
    """The path nodes call each other on (`/cluster/forwarded/<token>`), derived as a node
    derives it from the cluster's seed in etcd (read here through etcd's JSON gateway)."""
    import base64
    import hashlib
    import json
    import urllib.request

    key = base64.b64encode(b"/gigacompute/t/spec").decode()
    req = urllib.request.Request(cluster["etcd"].endpoint + "/v3/kv/range",
                                 data=json.dumps({"key": key}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        spec = json.loads(base64.b64decode(json.loads(r.read())["kvs"][0]["value"]))
    seed = bytes.fromhex(spec["blockhash_seed"])
    token = hashlib.sha256(b"gigacompute peer path v1" + seed).digest()[:16].hex()
    return f"/cluster/forwarded/{token}"


def test_a_send_forwarded_from_a_stale_map_is_sent_on_not_failed_by_preflight(cluster):
    """A peer whose map is a moment old forwards a sendTransaction (preflight on) to the node
    its partition just left. That node's copy is wiped: a preflight there would fail with
    AccountNotFound (seen in CI while co-location moved partitions twice). It sends the
    transaction on to the owner instead, and it runs once."""
    import base64
    import json
    import urllib.request

    nodes = cluster["nodes"]
    owners = status_json(cluster)["owners"]
    p = PARTITIONS - 1
    src = owners[p]
    dst = next(n for n in sorted(nodes) if n != src)
    k = keypairs_in_partition(p, 1)[0]
    client = Client(nodes[src].url)
    wait_status(client, client.request_airdrop(k.pubkey(), 2 * SOL).value)
    move(cluster, p, dst)
    time.sleep(1.5)  # the old owner reads the new map and wipes its copy
    assert status_json(cluster)["owners"][p] == dst
    bh = client.get_latest_blockhash().value.blockhash
    raw = signed_transfer(k, keypairs_in_partition(p, 1)[0].pubkey(), 1_000_000, bh)

    def post(method):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": [base64.b64encode(raw).decode(), {"encoding": "base64"}]})
        req = urllib.request.Request(nodes[src].url.rstrip("/") + peer_path(cluster),
                                     data=body.encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    # A simulation is not run against the wiped copy: refused, to be retried.
    answer = post("simulateTransaction")
    assert answer.get("error", {}).get("code") == -32005 and dst in answer["error"]["message"], answer
    answer = post("sendTransaction")
    sig = Transaction.from_bytes(raw).signatures[0]
    assert answer.get("result") == str(sig), answer
    owner = Client(nodes[dst].url)
    wait_status(owner, sig)
    st = owner.get_signature_statuses([sig]).value[0]
    assert st is not None and st.err is None, st
    wait_balance(owner, k.pubkey(), 2 * SOL - 1_000_000 - FEE, timeout=15)


def test_web3js_and_kit_against_the_cluster(cluster, tmp_path):
    """The official JavaScript clients (tests/js/cluster.mjs: @solana/web3.js and @solana/kit)
    use the cluster as one chain through one endpoint, confirming over its WebSocket as their
    helpers do: the stateless router when replicated, a node when not. Their fresh keys land in partitions of any node, so their
    transfers and createAccount calls span nodes and run through co-location."""
    import subprocess

    from test_js_clients import JS, NODE
    from test_scaleout import Router

    if not NODE.exists():
        pytest.fail(f"run `npm ci` in {JS} first (scripts/test.sh does)")
    router = Router(tmp_path, cluster["etcd"].endpoint) if cluster["replicate"] else None
    via = router or cluster["nodes"]["n2"]
    try:
        r = subprocess.run([str(NODE), str(JS / "cluster.mjs"), via.url, via.ws_url], cwd=JS,
                           capture_output=True, text=True, timeout=300)
    finally:
        if router:
            router.stop()
    print(r.stdout)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
