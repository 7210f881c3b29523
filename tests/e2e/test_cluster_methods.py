"""The methods about the node and its one-sequencer "cluster", through solana-py where it has
them: this node is the only leader and node, there are no votes, stake or inflation, and the
shapes are Agave's (README.md, "JSON-RPC methods")."""

import time

from solana.rpc.api import Client
from solana.rpc.types import TxOpts
from solders.compute_budget import set_compute_unit_price
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from test_appliance import airdrop, blockhash, rpc_raw, wait_finalized

SOL = 1_000_000_000


def result(node, method, params=None):
    r = rpc_raw(node, method, params)
    assert "error" not in r, (method, r)
    return r["result"]


def error(node, method, params=None):
    r = rpc_raw(node, method, params)
    assert "error" in r, (method, r)
    return r["error"]


def test_identity_is_the_only_leader_and_node(node):
    c = Client(node.url)
    identity = str(c.get_identity().value.identity)
    assert result(node, "getSlotLeader") == identity
    assert str(c.get_slot_leader().value) == identity
    slot = c.get_slot().value
    assert [str(k) for k in c.get_slot_leaders(slot, 10).value] == [identity] * 10
    nodes = c.get_cluster_nodes().value
    assert len(nodes) == 1 and str(nodes[0].pubkey) == identity
    assert nodes[0].rpc == node.url.removeprefix("http://")
    assert nodes[0].tpu == f"{node.tpu[0]}:{node.tpu[1]}"
    assert nodes[0].pubsub == node.ws_url.removeprefix("ws://")
    schedule = result(node, "getLeaderSchedule")
    assert list(schedule) == [identity] and len(schedule[identity]) == 432_000
    assert result(node, "getLeaderSchedule", [None, {"identity": str(Keypair().pubkey())}]) == {}
    assert result(node, "getLeaderSchedule", [10 * 432_000]) is None
    votes = c.get_vote_accounts().value
    assert votes.current == [] and votes.delinquent == []


def test_epochs_inflation_and_snapshots(node):
    c = Client(node.url)
    s = c.get_epoch_schedule().value
    assert (s.slots_per_epoch, s.warmup, s.first_normal_slot) == (432_000, False, 0)
    assert c.get_inflation_governor().value.initial == 0.0
    assert c.get_inflation_rate().value.total == 0.0
    who = Keypair().pubkey()
    assert result(node, "getInflationReward", [[str(who)]]) == [None]
    assert error(node, "getHighestSnapshotSlot")["code"] == -32008
    assert result(node, "getStakeMinimumDelegation")["value"] >= 1
    assert result(node, "getBlockCommitment", [1]) == {"commitment": None, "totalStake": 0}
    assert result(node, "getMaxRetransmitSlot") >= result(node, "getSlot")
    assert result(node, "getMaxShredInsertSlot") >= 1


def test_block_production_counts_every_slot(node):
    c = Client(node.url)
    identity = str(c.get_identity().value.identity)
    while c.get_slot().value < 6:
        time.sleep(0.05)
    r = result(node, "getBlockProduction", [{"range": {"firstSlot": 1, "lastSlot": 5}}])
    assert r["value"] == {"byIdentity": {identity: [5, 5]}, "range": {"firstSlot": 1, "lastSlot": 5}}
    e = error(node, "getBlockProduction", [{"range": {"firstSlot": 5, "lastSlot": 1}}])
    assert e["message"].endswith("lastSlot, 1, cannot be less than firstSlot, 5")
    e = error(node, "getBlockProduction", [{"range": {"firstSlot": 1, "lastSlot": 10**15}}])
    assert "is too large" in e["message"]
    r = result(node, "getBlockProduction")["value"]
    assert r["range"]["firstSlot"] == 0 and r["byIdentity"][identity][0] == r["range"]["lastSlot"] + 1


def test_transaction_count_and_prioritization_fees(node):
    c = Client(node.url)
    payer, hot = Keypair(), Keypair()
    airdrop(c, payer.pubkey(), SOL)
    before = c.get_transaction_count().value
    ixs = [
        set_compute_unit_price(7_000),
        transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=hot.pubkey(), lamports=SOL // 10)),
    ]
    tx = Transaction([payer], Message(ixs, payer.pubkey()), blockhash(c))
    sig = c.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True)).value
    wait_finalized(c, sig)
    assert c.get_transaction_count().value > before
    fees = result(node, "getRecentPrioritizationFees", [[str(hot.pubkey())]])
    assert 0 < len(fees) <= 150
    assert [f["slot"] for f in fees] == sorted(f["slot"] for f in fees)
    assert max(f["prioritizationFee"] for f in fees) == 7_000
    # The slot's minimum is the only fee paid in it: an account nobody wrote gets it too.
    landed = c.get_signature_statuses([sig]).value[0].slot
    unrelated = {f["slot"]: f["prioritizationFee"] for f in result(node, "getRecentPrioritizationFees")}
    assert unrelated.get(landed) == 7_000
    assert error(node, "getRecentPrioritizationFees", [[str(Keypair().pubkey())] * 129])["message"].endswith(
        "Too many inputs provided; max 128"
    )


def test_limits_and_bad_parameters(node):
    assert error(node, "getSlotLeaders", [0, 5001])["message"].endswith("Invalid limit; max 5000")
    assert "unavailable" in error(node, "getSlotLeaders", [10**12, 10])["message"]
    assert error(node, "getRecentPerformanceSamples", [721])["message"].endswith("Invalid limit; max 720")
    assert isinstance(result(node, "getRecentPerformanceSamples", [5]), list)
    for method, params in [
        ("getSlotLeaders", []),
        ("getSlotLeaders", ["x", 1]),
        ("getBlockCommitment", [-1]),
        ("getInflationReward", [["not-a-key"]]),
        ("getLeaderSchedule", [None, {"identity": "zz"}]),
        ("getBlockProduction", [{"range": {"firstSlot": "a"}}]),
        ("getVoteAccounts", [{"votePubkey": 7}]),
    ]:
        assert error(node, method, params)["code"] == -32602, (method, params)


def test_supply_and_largest_accounts(node):
    c = Client(node.url)
    rich = Keypair()
    airdrop(c, rich.pubkey(), 7 * SOL)
    supply = result(node, "getSupply")["value"]
    assert supply["total"] == supply["circulating"] > 7 * SOL
    assert supply["nonCirculating"] == 0 and supply["nonCirculatingAccounts"] == []
    largest = result(node, "getLargestAccounts")["value"]
    assert 0 < len(largest) <= 20
    amounts = [a["lamports"] for a in largest]
    assert amounts == sorted(amounts, reverse=True)
    assert sum(amounts) <= supply["total"]
    assert result(node, "getLargestAccounts", [{"filter": "nonCirculating"}])["value"] == []
    assert error(node, "getLargestAccounts", [{"filter": "rich"}])["code"] == -32602
    # The faucet paid the airdrop: lamports moved, none were created.
    assert result(node, "getSupply")["value"]["total"] == supply["total"]
