"""The ledger's history through real clients: getBlock (every transactionDetails, encodings,
rewards, versions), getBlocks / getBlocksWithLimit / getBlockTime, getSignaturesForAddress
with before / until / limit and memos, getTransaction of a signature the runtime's memory has
let go of, Agave's errors for bad or unavailable requests, the retention, and all of it
surviving a restart on the same data directory."""

import base64
import signal
import time
import urllib.request

import pytest
from solana.rpc.api import Client
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from conftest import Node
from test_appliance import MEMO_PROGRAM, SOL, airdrop, blockhash, rpc_raw, wait_finalized

# Statuses stay in memory 60 slots (3 s); the blockhash window is 40 slots (2 s). Small
# segments so that the history rolls several times during the module.
CONFIG = (
    "[runtime]\nblockhash_validity_ms = 2000\nstatus_retention_slots = 60\n"
    "[history]\nsegment_bytes = 65536\n"
)


@pytest.fixture(scope="module")
def hist(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("history"), extra_config=CONFIG)
    n.start()
    yield n
    n.stop()


def result(node, method, params):
    r = rpc_raw(node, method, params)
    assert "error" not in r, (method, params, r)
    return r["result"]


def error(node, method, params):
    r = rpc_raw(node, method, params)
    assert "error" in r, (method, params, r)
    return r["error"]


def send(c, payer, ixs):
    tx = Transaction([payer], Message(ixs, payer.pubkey()), blockhash(c))
    sig = c.send_transaction(tx).value
    st = wait_finalized(c, sig)
    assert st.err is None
    return sig, st.slot, tx


def memo_ix(text):
    return Instruction(MEMO_PROGRAM, text.encode(), [])


@pytest.fixture(scope="module")
def transfers(hist):
    """Three transfers alice → bob, the second with a memo: (sig, slot, tx) each."""
    c = Client(hist.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), 2 * SOL)
    out = []
    for i in range(3):
        ixs = [transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(),
                                       lamports=SOL // 100 + i))]
        if i == 1:
            ixs.append(memo_ix("hello history"))
        out.append(send(c, alice, ixs))
    return alice, bob, out


def wait_in_history(node, slot, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = rpc_raw(node, "getBlock", [slot, {"transactionDetails": "none"}])
        if "result" in r:
            return
        time.sleep(0.05)
    raise AssertionError(f"slot {slot} never reached the history: {r}")


def test_get_block_in_every_form(hist, transfers):
    alice, bob, txs = transfers
    sig, slot, tx = txs[0]
    wait_in_history(hist, slot)
    full = result(hist, "getBlock", [slot])
    assert full["blockHeight"] == slot and full["parentSlot"] == slot - 1
    assert full["rewards"] == [] and isinstance(full["blockTime"], int)
    assert "signatures" not in full
    entry = next(t for t in full["transactions"] if t["transaction"]["signatures"][0] == str(sig))
    assert entry["meta"]["err"] is None and entry["meta"]["fee"] == 5000
    assert "slot" not in entry and "version" not in entry
    parent = result(hist, "getBlock", [slot - 1, {"transactionDetails": "none"}])
    assert full["previousBlockhash"] == parent["blockhash"]

    sigs = result(hist, "getBlock", [slot, {"transactionDetails": "signatures"}])
    assert str(sig) in sigs["signatures"] and "transactions" not in sigs
    assert sigs["blockhash"] == full["blockhash"]
    none = result(hist, "getBlock", [slot, {"transactionDetails": "none", "rewards": False}])
    assert "transactions" not in none and "signatures" not in none and "rewards" not in none

    b64 = result(hist, "getBlock", [slot, {"encoding": "base64", "commitment": "confirmed"}])
    raw = [t["transaction"] for t in b64["transactions"]]
    assert [base64.b64encode(bytes(tx)).decode(), "base64"] in raw
    legacy = result(hist, "getBlock", [slot, "base58"])
    assert legacy["transactions"][0]["transaction"][1] == "base58"

    acc = result(hist, "getBlock", [slot, {"transactionDetails": "accounts",
                                           "maxSupportedTransactionVersion": 0}])
    e = next(t for t in acc["transactions"] if t["transaction"]["signatures"][0] == str(sig))
    keys = e["transaction"]["accountKeys"]
    assert keys[0] == {"pubkey": str(alice.pubkey()), "writable": True, "signer": True,
                       "source": "transaction"}
    assert keys[1]["pubkey"] == str(bob.pubkey()) and keys[1]["writable"] and not keys[1]["signer"]
    assert e["version"] == "legacy" and "logMessages" not in e["meta"]

    # solana-py parses it.
    block = Client(hist.url).get_block(slot, max_supported_transaction_version=0).value
    assert block.block_height == slot
    assert str(sig) in [str(t.transaction.signatures[0]) for t in block.transactions]


def test_a_v0_block_needs_max_supported_transaction_version(hist):
    c = Client(hist.url)
    payer, to = Keypair(), Keypair()
    airdrop(c, payer.pubkey(), SOL)
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to.pubkey(), lamports=SOL // 100))
    vtx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [ix], [], blockhash(c)), [payer])
    sig = c.send_transaction(vtx).value
    slot = wait_finalized(c, sig).slot
    wait_in_history(hist, slot)
    e = error(hist, "getBlock", [slot])
    assert e["code"] == -32015 and "maxSupportedTransactionVersion" in e["message"]
    ok = result(hist, "getBlock", [slot, {"maxSupportedTransactionVersion": 0}])
    assert [t["version"] for t in ok["transactions"]] == [0]
    # Signatures need no version.
    assert result(hist, "getBlock", [slot, {"transactionDetails": "signatures"}])["signatures"] == [str(sig)]


def test_blocks_and_block_times(hist, transfers):
    _, _, txs = transfers
    slot = txs[2][1]
    wait_in_history(hist, slot)
    c = Client(hist.url)
    assert result(hist, "getBlocks", [slot - 2, slot]) == [slot - 2, slot - 1, slot]
    assert result(hist, "getBlocks", [slot - 2, slot, {"commitment": "confirmed"}]) == [slot - 2, slot - 1, slot]
    assert c.get_blocks(slot - 1, slot).value == [slot - 1, slot]
    # No end: up to the newest durable block.
    assert result(hist, "getBlocks", [slot, {"commitment": "finalized"}])[0] == slot
    assert result(hist, "getBlocksWithLimit", [slot, 3]) == [slot, slot + 1, slot + 2]
    assert result(hist, "getBlocksWithLimit", [slot, 0]) == []
    t = result(hist, "getBlockTime", [slot])
    assert t == result(hist, "getBlock", [slot, {"transactionDetails": "none"}])["blockTime"]
    assert abs(t - time.time()) < 120
    assert c.get_block_time(slot).value == t
    assert result(hist, "getFirstAvailableBlock", []) == 0
    assert result(hist, "minimumLedgerSlot", []) == 0
    assert result(hist, "getBlock", [0, {"transactionDetails": "none"}])["blockHeight"] == 0


def test_signatures_for_address_newest_first_with_paging(hist, transfers):
    alice, bob, txs = transfers
    wait_in_history(hist, txs[2][1])
    sigs = [str(s) for s, _, _ in txs]
    for who in (bob, alice):
        got = result(hist, "getSignaturesForAddress", [str(who.pubkey())])
        assert [g["signature"] for g in got][:3] == sigs[::-1], who
    got = result(hist, "getSignaturesForAddress", [str(bob.pubkey())])
    assert [g["slot"] for g in got] == [s for _, s, _ in txs][::-1]
    assert {g["confirmationStatus"] for g in got} == {"finalized"}
    assert all(g["err"] is None and isinstance(g["blockTime"], int) for g in got)
    assert [g["memo"] for g in got] == [None, "[13] hello history", None]
    addr = str(bob.pubkey())
    assert [g["signature"] for g in result(hist, "getSignaturesForAddress", [addr, {"limit": 1}])] == [sigs[2]]
    page = result(hist, "getSignaturesForAddress", [addr, {"before": sigs[2]}])
    assert [g["signature"] for g in page] == [sigs[1], sigs[0]]
    page = result(hist, "getSignaturesForAddress", [addr, {"until": sigs[0]}])
    assert [g["signature"] for g in page] == [sigs[2], sigs[1]]
    page = result(hist, "getSignaturesForAddress", [addr, {"before": sigs[2], "until": sigs[0]}])
    assert [g["signature"] for g in page] == [sigs[1]]
    # The System program's list holds them too (every account key is indexed).
    system = result(hist, "getSignaturesForAddress", ["11111111111111111111111111111111", {"limit": 1000}])
    assert set(sigs) <= {g["signature"] for g in system}
    # solana-py.
    r = Client(hist.url).get_signatures_for_address(bob.pubkey(), limit=2).value
    assert [str(x.signature) for x in r] == [sigs[2], sigs[1]]
    assert result(hist, "getSignaturesForAddress", [str(Keypair().pubkey())]) == []


def test_get_transaction_after_the_memory_let_go(hist, transfers):
    _, _, txs = transfers
    sig, slot, _ = txs[1]
    c = Client(hist.url)
    deadline = time.time() + 30
    while c.get_signature_statuses([sig]).value[0] is not None:
        assert time.time() < deadline, "the status never left memory"
        time.sleep(0.2)
    r = result(hist, "getTransaction", [str(sig), {"encoding": "json"}])
    assert r["slot"] == slot and r["meta"]["err"] is None
    assert r["transaction"]["signatures"] == [str(sig)]
    assert r["blockTime"] == result(hist, "getBlockTime", [slot])
    tx = c.get_transaction(sig).value
    assert tx.slot == slot


def test_bad_requests_are_errors(hist, transfers):
    _, bob, txs = transfers
    addr = str(bob.pubkey())
    far = 10 ** 15
    cases = [
        ("getBlock", [far], -32004, f"Block not available for slot {far}"),
        ("getBlock", [-1], -32602, None),
        ("getBlock", ["ten"], -32602, None),
        ("getBlock", [], -32602, None),
        ("getBlock", [1, {"commitment": "processed"}], -32602, "below `confirmed`"),
        ("getBlock", [1, {"transactionDetails": "most"}], -32602, None),
        ("getBlock", [1, {"encoding": "base85"}], -32602, None),
        ("getBlock", [1, {"maxSupportedTransactionVersion": 300}], -32602, None),
        ("getBlock", [1, {"rewards": "yes"}], -32602, None),
        ("getBlockTime", [far], -32004, None),
        ("getBlockTime", [None], -32602, None),
        ("getBlocks", ["x"], -32602, None),
        ("getBlocks", [0, -5], -32602, None),
        ("getBlocks", [0, 10, {"commitment": "processed"}], -32602, None),
        ("getBlocksWithLimit", [0, 500_001], -32602, "Limit too large; max 500000"),
        ("getBlocksWithLimit", [0], -32602, None),
        ("getSignaturesForAddress", [addr, {"limit": 0}], -32602, "Invalid limit; max 1000"),
        ("getSignaturesForAddress", [addr, {"limit": 1001}], -32602, "Invalid limit; max 1000"),
        ("getSignaturesForAddress", [addr, {"before": "notasignature"}], -32602, None),
        ("getSignaturesForAddress", [addr, {"until": 5}], -32602, None),
        ("getSignaturesForAddress", ["notakey"], -32602, None),
        ("getSignaturesForAddress", [addr, {"commitment": "processed"}], -32602, None),
        ("getSignaturesForAddress", [addr, {"minContextSlot": far}], -32016, None),
        ("getTransaction", ["1" * 200], -32602, None),
    ]
    for method, params, code, message in cases:
        e = error(hist, method, params)
        assert e["code"] == code, (method, params, e)
        if message:
            assert message in e["message"], (method, params, e)
    # Unanswerable ranges are empty, not errors; the range is clamped to the durable slot.
    assert result(hist, "getBlocks", [2 ** 64 - 1]) == []
    assert result(hist, "getBlocks", [10, 5]) == []
    assert result(hist, "getBlocks", [far, far + 10]) == []
    assert result(hist, "getBlocksWithLimit", [far, 10]) == []
    # An unknown `before` finds nothing (as Agave); a well-formed unknown transaction is null.
    unknown = "1" * 64
    assert result(hist, "getSignaturesForAddress", [addr, {"before": unknown}]) == []
    assert result(hist, "getTransaction", [unknown]) is None
    # The node is still well.
    assert result(hist, "getHealth", []) == "ok"


def test_history_metrics(hist):
    port = hist.metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("gigacompute_history_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["gigacompute_history_records"] > 10
    assert values["gigacompute_history_disk_bytes"] > 0
    assert values["gigacompute_history_segments"] >= 1
    assert values["gigacompute_history_index_entries"] > 0
    assert values["gigacompute_history_slots_appended_total"] > 10
    assert 'tile="history"' in text


def test_history_survives_a_restart(hist, transfers):
    _, bob, txs = transfers
    addr = str(bob.pubkey())
    slot = txs[0][1]
    before_block = result(hist, "getBlock", [slot])
    before_sigs = result(hist, "getSignaturesForAddress", [addr])
    lo = max(0, slot - 5)
    before_blocks = result(hist, "getBlocks", [lo, slot + 5])
    hist.stop()
    hist.start()
    wait_in_history(hist, slot)
    assert result(hist, "getBlock", [slot]) == before_block
    assert result(hist, "getSignaturesForAddress", [addr]) == before_sigs
    assert result(hist, "getBlocks", [lo, slot + 5]) == before_blocks
    r = result(hist, "getTransaction", [str(txs[2][0])])
    assert r["slot"] == txs[2][1]
    # New slots keep coming after the restart, and the ones before it are still there.
    c = Client(hist.url)
    start = c.get_slot().value
    while c.get_slot().value < start + 5:
        time.sleep(0.05)
    assert result(hist, "getFirstAvailableBlock", []) == 0
    durable = result(hist, "getSlot", [{"commitment": "finalized"}])
    wait_in_history(hist, durable)
    got = result(hist, "getBlocks", [0, durable])
    assert got[0] == 0 and got[-1] == durable and len(got) == durable + 1, "no slot lost"


def test_nothing_durable_is_lost_to_kill_9(hist, transfers):
    """The history syncs once a second, not per slot: what a kill -9 takes from its unsynced
    tail comes back from the slot records the accounts store kept."""
    _, bob, txs = transfers
    c = Client(hist.url)
    alice = Keypair()
    airdrop(c, alice.pubkey(), SOL)
    sig, slot, _ = send(c, alice, [transfer(TransferParams(
        from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=SOL // 100))])
    durable = result(hist, "getSlot", [{"commitment": "finalized"}])
    hist.stop(signal.SIGKILL)
    hist.start()
    wait_in_history(hist, durable)
    got = result(hist, "getBlocks", [0, durable])
    assert got == list(range(durable + 1)), "a durable slot is missing after kill -9"
    assert result(hist, "getTransaction", [str(sig)])["slot"] == slot
    assert result(hist, "getSignaturesForAddress", [str(bob.pubkey()), {"limit": 1}])[0]["signature"] == str(sig)


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    n = Node(
        tmp_path_factory.mktemp("short-history"),
        extra_config="[history]\nretention_slots = 16\nsegment_bytes = 65536\nretention_bytes = 131072\n",
    )
    n.start()
    yield n
    n.stop()


def test_retention_cleans_up_old_blocks(short):
    c = Client(short.url)
    while c.get_slot().value < 60:
        time.sleep(0.1)
    # Retention keeps moving while the chain runs, so the two methods are read
    # around each other: they report the same horizon at the same instant.
    before = result(short, "minimumLedgerSlot", [])
    first = result(short, "getFirstAvailableBlock", [])
    after = result(short, "minimumLedgerSlot", [])
    assert first > 20
    assert before <= first <= after
    e = error(short, "getBlock", [1])
    assert e["code"] == -32001
    prefix = "Block 1 cleaned up, does not exist on node. First available block: "
    assert e["message"].startswith(prefix)
    assert int(e["message"][len(prefix):]) >= first
    assert error(short, "getBlockTime", [1])["code"] == -32001
    assert result(short, "getBlocks", [0, 10]) == []
    got = result(short, "getBlocksWithLimit", [0, 2])
    assert got[0] >= first and got[1] == got[0] + 1
