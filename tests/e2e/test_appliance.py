"""End to end through real Solana clients: UDP and RPC ingest, exact balances and fees,
duplicates, bad signatures, SPL Token, restarts and kill -9."""

import json
import signal
import socket
import time
import urllib.request

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Finalized
from solana.rpc.types import TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import (
    CreateAccountParams,
    TransferParams,
    create_account,
    transfer,
)
from solders.transaction import Transaction, VersionedTransaction
import spl.token.instructions as spl

FEE = 5_000
SOL = 1_000_000_000
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


def rpc_raw(node, method, params=None, body=None):
    data = body if body is not None else json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    ).encode()
    req = urllib.request.Request(node.url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def wait_finalized(client, sig, timeout=30):
    """Poll until the signature is finalized (durable); return its status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = client.get_signature_statuses([sig]).value[0]
        if st is not None and str(st.confirmation_status) in ("TransactionConfirmationStatus.Finalized", "finalized"):
            return st
        time.sleep(0.05)
    raise AssertionError(f"{sig} not finalized")


def balance(client, pk):
    return client.get_balance(pk, commitment=Finalized).value


def blockhash(client) -> Hash:
    return client.get_latest_blockhash().value.blockhash


def signed_transfer(client, payer, to, lamports):
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), blockhash(client))


def airdrop(client, pk, lamports):
    sig = client.request_airdrop(pk, lamports).value
    wait_finalized(client, sig)


def send_udp(node, raw: bytes, copies=1):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(copies):
            s.sendto(raw, node.tpu)


def test_version_and_health(node):
    c = Client(node.url)
    assert c.get_version().value.solana_core == "4.2.2"
    assert rpc_raw(node, "getHealth")["result"] == "ok"
    assert c.get_genesis_hash().value
    # Slots advance on the clock, and the epoch info follows them.
    deadline = time.time() + 10
    while c.get_epoch_info().value.absolute_slot < 2:
        assert time.time() < deadline, "slots do not advance"
        time.sleep(0.05)
    info = c.get_epoch_info().value
    assert info.epoch == 0 and info.slots_in_epoch == 432_000


def test_airdrop_and_transfers_exact(node):
    c = Client(node.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), 2 * SOL)
    assert balance(c, alice.pubkey()) == 2 * SOL

    # Over UDP, the TPU path.
    tx = signed_transfer(c, alice, bob.pubkey(), 100_000_000)
    send_udp(node, bytes(tx))
    wait_finalized(c, tx.signatures[0])
    assert balance(c, bob.pubkey()) == 100_000_000
    assert balance(c, alice.pubkey()) == 2 * SOL - 100_000_000 - FEE

    # Over RPC, with preflight.
    tx = signed_transfer(c, alice, bob.pubkey(), 50_000_000)
    sig = c.send_transaction(tx).value
    st = wait_finalized(c, sig)
    assert st.err is None
    assert balance(c, bob.pubkey()) == 150_000_000
    assert balance(c, alice.pubkey()) == 2 * SOL - 150_000_000 - 2 * FEE

    got = c.get_transaction(sig, commitment=Finalized).value
    assert got.transaction.meta.fee == FEE
    assert got.transaction.meta.err is None


def test_unfunded_transfer_pays_fee_only(node):
    c = Client(node.url)
    carol, bob = Keypair(), Keypair()
    airdrop(c, carol.pubkey(), 1_000_000)
    tx = signed_transfer(c, carol, bob.pubkey(), 5 * SOL)
    sig = c.send_transaction(tx, opts=TxOpts(skip_preflight=True)).value
    st = wait_finalized(c, sig)
    assert st.err is not None
    assert balance(c, carol.pubkey()) == 1_000_000 - FEE
    assert balance(c, bob.pubkey()) == 0
    # Preflight reports the failure instead of sending.
    tx2 = signed_transfer(c, carol, bob.pubkey(), 5 * SOL + 1)
    r = rpc_raw(node, "sendTransaction", [_b64(bytes(tx2)), {"encoding": "base64"}])
    assert r["error"]["code"] == -32002


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def test_duplicate_executes_once(node):
    c = Client(node.url)
    dave, erin = Keypair(), Keypair()
    airdrop(c, dave.pubkey(), SOL)
    tx = signed_transfer(c, dave, erin.pubkey(), 1_000_000)
    send_udp(node, bytes(tx), copies=5)
    c.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True))
    wait_finalized(c, tx.signatures[0])
    send_udp(node, bytes(tx), copies=2)
    time.sleep(0.5)
    assert balance(c, erin.pubkey()) == 1_000_000
    assert balance(c, dave.pubkey()) == SOL - 1_000_000 - FEE


def test_bad_signature_never_lands(node):
    c = Client(node.url)
    frank, gina = Keypair(), Keypair()
    airdrop(c, frank.pubkey(), SOL)
    raw = bytearray(bytes(signed_transfer(c, frank, gina.pubkey(), 777)))
    raw[10] ^= 0x01  # inside the signature
    send_udp(node, bytes(raw))
    r = rpc_raw(node, "sendTransaction", [_b64(bytes(raw)), {"encoding": "base64"}])
    assert r["error"]["code"] == -32003
    time.sleep(0.6)
    sig = bytes(raw[1:65])
    from solders.signature import Signature

    assert c.get_signature_statuses([Signature.from_bytes(sig)]).value[0] is None
    assert balance(c, gina.pubkey()) == 0
    assert balance(c, frank.pubkey()) == SOL


def test_spl_token_flow(node):
    c = Client(node.url)
    payer, owner_a, owner_b, mint = Keypair(), Keypair(), Keypair(), Keypair()
    acct_a, acct_b = Keypair(), Keypair()
    airdrop(c, payer.pubkey(), 5 * SOL)
    mint_rent = c.get_minimum_balance_for_rent_exemption(82).value
    acct_rent = c.get_minimum_balance_for_rent_exemption(165).value
    ixs = [
        create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(),
                                           lamports=mint_rent, space=82, owner=spl.TOKEN_PROGRAM_ID)),
        spl.initialize_mint(spl.InitializeMintParams(decimals=6, program_id=spl.TOKEN_PROGRAM_ID,
                                                     mint=mint.pubkey(), mint_authority=payer.pubkey())),
    ]
    for acct, owner in ((acct_a, owner_a), (acct_b, owner_b)):
        ixs += [
            create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=acct.pubkey(),
                                               lamports=acct_rent, space=165, owner=spl.TOKEN_PROGRAM_ID)),
            spl.initialize_account(spl.InitializeAccountParams(program_id=spl.TOKEN_PROGRAM_ID,
                                                               account=acct.pubkey(), mint=mint.pubkey(),
                                                               owner=owner.pubkey())),
        ]
    tx = Transaction([payer, mint, acct_a, acct_b], Message(ixs, payer.pubkey()), blockhash(c))
    st = wait_finalized(c, c.send_transaction(tx).value)
    assert st.err is None

    ix = spl.mint_to(spl.MintToParams(program_id=spl.TOKEN_PROGRAM_ID, mint=mint.pubkey(),
                                      dest=acct_a.pubkey(), mint_authority=payer.pubkey(),
                                      amount=1_000_000_000))
    tx = Transaction([payer], Message([ix], payer.pubkey()), blockhash(c))
    assert wait_finalized(c, c.send_transaction(tx).value).err is None

    ix = spl.transfer_checked(spl.TransferCheckedParams(program_id=spl.TOKEN_PROGRAM_ID,
                                                        source=acct_a.pubkey(), mint=mint.pubkey(),
                                                        dest=acct_b.pubkey(), owner=owner_a.pubkey(),
                                                        amount=250_000_000, decimals=6))
    tx = Transaction([payer, owner_a], Message([ix], payer.pubkey()), blockhash(c))
    sig = c.send_transaction(tx).value
    assert wait_finalized(c, sig).err is None

    a = c.get_token_account_balance(acct_a.pubkey(), commitment=Finalized).value
    b = c.get_token_account_balance(acct_b.pubkey(), commitment=Finalized).value
    assert (a.amount, a.decimals, a.ui_amount_string) == ("750000000", 6, "750")
    assert (b.amount, b.ui_amount_string) == ("250000000", "250")
    meta = c.get_transaction(sig, commitment=Finalized).value.transaction.meta
    assert sorted(t.ui_token_amount.amount for t in meta.post_token_balances) == ["250000000", "750000000"]


def test_v0_simulate_and_fee_for_message(node):
    c = Client(node.url)
    payer = Keypair()
    airdrop(c, payer.pubkey(), SOL)
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1_000_000))
    msg = MessageV0.try_compile(payer.pubkey(), [ix], [], blockhash(c))
    tx = VersionedTransaction(msg, [payer])
    assert c.get_fee_for_message(msg).value == FEE
    sim = c.simulate_transaction(tx).value
    assert sim.err is None and sim.units_consumed > 0
    sig = c.send_transaction(tx).value
    assert wait_finalized(c, sig).err is None
    got = c.get_transaction(sig, commitment=Finalized, max_supported_transaction_version=0).value
    assert got.transaction.version == 0


def test_hostile_input_is_answered_not_fatal(node):
    # Garbage datagrams of every size.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in (0, 1, 64, 65, 300, 1232, 1400):
            s.sendto(bytes([0xAB]) * n, node.tpu)
    assert rpc_raw(node, None, body=b"{not json")["error"]["code"] == -32700
    assert rpc_raw(node, "noSuchMethod")["error"]["code"] == -32601
    assert rpc_raw(node, "getBalance", [12345])["error"]["code"] == -32602
    assert rpc_raw(node, "getBalance", ["not-a-key"])["error"]["code"] == -32602
    assert rpc_raw(node, "sendTransaction", ["%%%"])["error"]["code"] == -32602
    assert rpc_raw(node, "getMultipleAccounts", [["11111111111111111111111111111111"] * 101])["error"]["code"] == -32602
    assert rpc_raw(node, "requestAirdrop", [str(Keypair().pubkey()), 10**18])["error"]["code"] == -32602
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": ["x" * 100_000]}).encode()
    assert rpc_raw(node, None, body=big)["error"]["code"] == -32600
    batch = rpc_raw(node, None, body=b'[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","id":2,"method":"nope"}]')
    assert "result" in batch[0] and batch[1]["error"]["code"] == -32601
    assert Client(node.url).get_slot().value > 0


def test_restart_and_kill9_keep_state(tmp_path):
    from conftest import Node

    n = Node(tmp_path)
    n.start()
    c = Client(n.url)
    alice, bob = Keypair(), Keypair()
    airdrop(c, alice.pubkey(), SOL)
    tx = signed_transfer(c, alice, bob.pubkey(), 1_000_000)
    sig = c.send_transaction(tx).value
    wait_finalized(c, sig)
    before = (balance(c, alice.pubkey()), balance(c, bob.pubkey()))
    assert n.stop(signal.SIGTERM) == 0

    n.start()
    c = Client(n.url)
    assert (balance(c, alice.pubkey()), balance(c, bob.pubkey())) == before
    assert c.get_signature_statuses([sig]).value[0] is not None

    # Everything reported finalized survives kill -9, even mid-traffic.
    for round_ in range(3):
        sent = []
        for i in range(20):
            t = signed_transfer(c, alice, bob.pubkey(), 1_000 + round_ * 100 + i)
            send_udp(n, bytes(t))
            sent.append(t)
        wait_finalized(c, sent[0].signatures[0])
        finalized = [t for t in sent if (s := c.get_signature_statuses([t.signatures[0]]).value[0])
                     and str(s.confirmation_status).endswith(("Finalized", "finalized"))]
        expected_bob = balance(c, bob.pubkey())
        n.stop(signal.SIGKILL)
        n.start()
        c = Client(n.url)
        for t in finalized:
            assert c.get_signature_statuses([t.signatures[0]]).value[0] is not None
        assert balance(c, bob.pubkey()) >= expected_bob
        # Balances match exactly the transactions that landed.
        landed = [t for t in sent if c.get_signature_statuses([t.signatures[0]]).value[0] is not None]
        amounts = sum(1_000 + round_ * 100 + i for i, t in enumerate(sent) if t in landed)
        assert balance(c, bob.pubkey()) == before[1] + amounts
        before = (balance(c, alice.pubkey()), balance(c, bob.pubkey()))
    n.stop()


def test_lookup_table_created_on_chain_serves_a_v0_transfer(node):
    """Address Lookup Table program from genesis: create, extend, then a v0 transfer whose
    recipient is loaded through the table (resolved against account state by the bank)."""
    import struct

    from solders.address_lookup_table_account import (
        ADDRESS_LOOKUP_TABLE_ID,
        AddressLookupTableAccount,
        derive_lookup_table_address,
    )
    from solders.instruction import AccountMeta, Instruction

    c = Client(node.url)
    payer, recipient = Keypair(), Keypair()
    airdrop(c, payer.pubkey(), 2 * SOL)
    airdrop(c, recipient.pubkey(), SOL)
    recent_slot = c.get_slot().value
    table, bump = derive_lookup_table_address(payer.pubkey(), recent_slot)
    system = Pubkey.from_string("11111111111111111111111111111111")
    create = Instruction(
        ADDRESS_LOOKUP_TABLE_ID,
        struct.pack("<IQB", 0, recent_slot, bump),
        [
            AccountMeta(table, False, True),
            AccountMeta(payer.pubkey(), True, False),
            AccountMeta(payer.pubkey(), True, True),
            AccountMeta(system, False, False),
        ],
    )
    extend = Instruction(
        ADDRESS_LOOKUP_TABLE_ID,
        struct.pack("<IQ", 2, 1) + bytes(recipient.pubkey()),
        [
            AccountMeta(table, False, True),
            AccountMeta(payer.pubkey(), True, False),
            AccountMeta(payer.pubkey(), True, True),
            AccountMeta(system, False, False),
        ],
    )
    tx = Transaction([payer], Message([create, extend], payer.pubkey()), blockhash(c))
    st = wait_finalized(c, c.send_transaction(tx).value)
    assert st.err is None
    info = c.get_account_info(table, commitment=Finalized).value
    assert info is not None and info.owner == ADDRESS_LOOKUP_TABLE_ID

    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=recipient.pubkey(), lamports=4_242))
    alt = AddressLookupTableAccount(table, [recipient.pubkey()])
    msg = MessageV0.try_compile(payer.pubkey(), [ix], [alt], blockhash(c))
    assert len(msg.address_table_lookups) == 1
    vtx = VersionedTransaction(msg, [payer])
    sig = c.send_transaction(vtx).value
    assert wait_finalized(c, sig).err is None
    assert balance(c, recipient.pubkey()) == SOL + 4_242
    meta = c.get_transaction(sig, commitment=Finalized, max_supported_transaction_version=0).value.transaction.meta
    assert [str(k) for k in meta.loaded_addresses.writable] == [str(recipient.pubkey())]


@pytest.mark.parametrize("program", ["token", "token-2022"])
def test_associated_token_accounts_under_both_token_programs(node, program):
    """The ATA program (CPI into System and the token program) and Token-2022 from genesis."""
    c = Client(node.url)
    token_program = spl.TOKEN_PROGRAM_ID if program == "token" else spl.TOKEN_2022_PROGRAM_ID
    payer, owner, mint = Keypair(), Keypair(), Keypair()
    airdrop(c, payer.pubkey(), 5 * SOL)
    mint_rent = c.get_minimum_balance_for_rent_exemption(82).value
    ata = spl.get_associated_token_address(owner.pubkey(), mint.pubkey(), token_program)
    ixs = [
        create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(),
                                           lamports=mint_rent, space=82, owner=token_program)),
        spl.initialize_mint2(spl.InitializeMint2Params(decimals=2, program_id=token_program, mint=mint.pubkey(),
                                                       mint_authority=payer.pubkey(), freeze_authority=None)),
        spl.create_associated_token_account(payer.pubkey(), owner.pubkey(), mint.pubkey(), token_program),
        spl.mint_to(spl.MintToParams(program_id=token_program, mint=mint.pubkey(), dest=ata,
                                     mint_authority=payer.pubkey(), amount=12_345)),
    ]
    tx = Transaction([payer, mint], Message(ixs, payer.pubkey()), blockhash(c))
    st = wait_finalized(c, c.send_transaction(tx).value)
    assert st.err is None
    info = c.get_account_info(ata, commitment=Finalized).value
    assert info.owner == token_program
    bal = c.get_token_account_balance(ata, commitment=Finalized).value
    assert (bal.amount, bal.decimals, bal.ui_amount_string) == ("12345", 2, "123.45")
