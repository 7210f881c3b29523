"""Blockhash validity is a configured duration (runtime.blockhash_validity_ms, 60 s by
default), not Solana's 150 slots, which at 50 ms slots would be 7.5 s: shorter than a wallet's
sign-and-send time."""

import time

import pytest
from solana.rpc.api import Client
from solana.rpc.types import TxOpts
from solders.keypair import Keypair

from conftest import Node
from test_appliance import airdrop, rpc_raw, signed_transfer, wait_finalized

SOL = 1_000_000_000


def test_last_valid_block_height_follows_the_configured_window(node):
    r = rpc_raw(node, "getLatestBlockhash", [{"commitment": "processed"}])["result"]
    assert r["value"]["lastValidBlockHeight"] == r["context"]["slot"] + 60_000 // 50


def test_a_blockhash_older_than_150_slots_still_lands(node):
    c = Client(node.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    tx = signed_transfer(c, alice, bob.pubkey(), 1_000_000)
    start = c.get_slot().value
    while c.get_slot().value < start + 170:  # 150 slots and then some (8.5 s)
        time.sleep(0.2)
    sig = c.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True)).value
    assert wait_finalized(c, sig).err is None
    assert c.get_balance(bob.pubkey()).value == 1_000_000


@pytest.fixture(scope="module")
def short_window(tmp_path_factory):
    n = Node(
        tmp_path_factory.mktemp("short-window"),
        extra_config="[runtime]\nblockhash_validity_ms = 1000\n",
    )
    n.start()
    yield n
    n.stop()


def test_an_expired_blockhash_is_refused(short_window):
    c = Client(short_window.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    tx = signed_transfer(c, alice, bob.pubkey(), 1_000_000)
    r = rpc_raw(short_window, "getLatestBlockhash", [{"commitment": "processed"}])["result"]
    assert r["value"]["lastValidBlockHeight"] == r["context"]["slot"] + 20
    start = c.get_slot().value
    while c.get_slot().value < start + 30:
        time.sleep(0.1)
    err = rpc_raw(short_window, "sendTransaction", [__import__("base64").b64encode(bytes(tx)).decode(), {"encoding": "base64"}])
    assert "error" in err and "blockhash" in err["error"]["message"].lower(), err
    assert rpc_raw(short_window, "isBlockhashValid", [str(tx.message.recent_blockhash)])["result"]["value"] is False
