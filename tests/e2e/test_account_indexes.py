"""Secondary account indexes: getProgramAccounts, getTokenAccountsByOwner / ByDelegate,
getTokenSupply and getTokenLargestAccounts against real SPL Token and Token-2022 accounts
made by real transactions (solana-py), at processed and finalized commitment, across a
restart (the indexes are rebuilt from the store), at the index bound, and under hostile
parameters."""

import base64
import json
import time
import urllib.request

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Finalized
from solana.rpc.types import TokenAccountOpts
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
import spl.token.instructions as spl

from conftest import Node

SOL = 1_000_000_000
TOKEN = str(spl.TOKEN_PROGRAM_ID)
TOKEN_2022 = str(spl.TOKEN_2022_PROGRAM_ID)


def rpc(node, method, params):
    data = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(node.url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def ok(node, method, params):
    r = rpc(node, method, params)
    assert "result" in r, r
    return r["result"]


def err(node, method, params):
    r = rpc(node, method, params)
    assert "error" in r, r
    return r["error"]


def wait_finalized(c, sig, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = c.get_signature_statuses([sig]).value[0]
        if st is not None and "inalized" in str(st.confirmation_status):
            assert st.err is None, st.err
            return
        time.sleep(0.05)
    raise AssertionError(f"{sig} not finalized")


def send(c, signers, ixs, finalize=True):
    bh = c.get_latest_blockhash().value.blockhash
    sig = c.send_transaction(Transaction(signers, Message(ixs, signers[0].pubkey()), bh)).value
    if finalize:
        wait_finalized(c, sig)
    return sig


def keys(result):
    return [a["pubkey"] for a in (result["value"] if isinstance(result, dict) else result)]


def by_pubkey(keys):
    """Agave's sortResults order: by the key's 32 bytes, which is not the base58 string order
    (a 43-character key can sort either side of a 44-character one)."""
    return sorted(map(str, keys), key=lambda k: bytes(Pubkey.from_string(k)))


class World:
    """Token accounts made once for the module: a Token mint with two accounts (owners A and
    B), a Token-2022 mint with A's associated account (170 bytes: ImmutableOwner)."""

    def __init__(self, node):
        c = self.c = Client(node.url)
        self.payer, self.a, self.b = Keypair(), Keypair(), Keypair()
        self.mint, self.acct_a, self.acct_b, self.mint22 = Keypair(), Keypair(), Keypair(), Keypair()
        wait_finalized(c, c.request_airdrop(self.payer.pubkey(), 5 * SOL).value)
        mint_rent = c.get_minimum_balance_for_rent_exemption(82).value
        acct_rent = c.get_minimum_balance_for_rent_exemption(165).value
        p = self.payer.pubkey()
        ixs = [
            create_account(CreateAccountParams(from_pubkey=p, to_pubkey=self.mint.pubkey(), lamports=mint_rent,
                                               space=82, owner=spl.TOKEN_PROGRAM_ID)),
            spl.initialize_mint(spl.InitializeMintParams(decimals=6, program_id=spl.TOKEN_PROGRAM_ID,
                                                         mint=self.mint.pubkey(), mint_authority=p)),
        ]
        for acct, owner in ((self.acct_a, self.a), (self.acct_b, self.b)):
            ixs += [
                create_account(CreateAccountParams(from_pubkey=p, to_pubkey=acct.pubkey(), lamports=acct_rent,
                                                   space=165, owner=spl.TOKEN_PROGRAM_ID)),
                spl.initialize_account(spl.InitializeAccountParams(program_id=spl.TOKEN_PROGRAM_ID,
                                                                   account=acct.pubkey(), mint=self.mint.pubkey(),
                                                                   owner=owner.pubkey())),
            ]
        send(c, [self.payer, self.mint, self.acct_a, self.acct_b], ixs)
        mint_ix = lambda dest, n: spl.mint_to(spl.MintToParams(  # noqa: E731
            program_id=spl.TOKEN_PROGRAM_ID, mint=self.mint.pubkey(), dest=dest, mint_authority=p, amount=n))
        send(c, [self.payer], [mint_ix(self.acct_a.pubkey(), 1_000_000), mint_ix(self.acct_b.pubkey(), 250_000)])
        self.ata22 = spl.get_associated_token_address(self.a.pubkey(), self.mint22.pubkey(), spl.TOKEN_2022_PROGRAM_ID)
        send(c, [self.payer, self.mint22], [
            create_account(CreateAccountParams(from_pubkey=p, to_pubkey=self.mint22.pubkey(), lamports=mint_rent,
                                               space=82, owner=spl.TOKEN_2022_PROGRAM_ID)),
            spl.initialize_mint2(spl.InitializeMint2Params(decimals=2, program_id=spl.TOKEN_2022_PROGRAM_ID,
                                                           mint=self.mint22.pubkey(), mint_authority=p,
                                                           freeze_authority=None)),
            spl.create_associated_token_account(p, self.a.pubkey(), self.mint22.pubkey(), spl.TOKEN_2022_PROGRAM_ID),
            spl.mint_to(spl.MintToParams(program_id=spl.TOKEN_2022_PROGRAM_ID, mint=self.mint22.pubkey(),
                                         dest=self.ata22, mint_authority=p, amount=777)),
        ])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("indexes"))
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def world(node):
    return World(node)


def owner_filter(owner):
    return {"memcmp": {"offset": 32, "bytes": str(owner)}}


def test_program_accounts_with_filters_slices_and_context(node, world):
    w = world
    by_a = ok(node, "getProgramAccounts", [TOKEN, {"encoding": "base64", "commitment": "finalized",
                                                   "filters": [{"dataSize": 165}, owner_filter(w.a.pubkey())]}])
    assert keys(by_a) == [str(w.acct_a.pubkey())]
    data = base64.b64decode(by_a[0]["account"]["data"][0])
    assert data[32:64] == bytes(w.a.pubkey()) and by_a[0]["account"]["owner"] == TOKEN
    # By mint (base64 memcmp), sorted by pubkey as Agave's default sortResults.
    mint_b64 = base64.b64encode(bytes(w.mint.pubkey())).decode()
    both = ok(node, "getProgramAccounts", [TOKEN, {"encoding": "base64", "filters": [
        {"dataSize": 165}, {"memcmp": {"offset": 0, "bytes": mint_b64, "encoding": "base64"}}]}])
    assert keys(both) == by_pubkey([w.acct_a.pubkey(), w.acct_b.pubkey()])
    # dataSlice and withContext.
    sliced = ok(node, "getProgramAccounts", [TOKEN, {
        "encoding": "base64", "withContext": True, "dataSlice": {"offset": 32, "length": 32},
        "filters": [{"dataSize": 165}, owner_filter(w.b.pubkey())]}])
    assert sliced["context"]["slot"] > 0
    [only] = sliced["value"]
    assert base64.b64decode(only["account"]["data"][0]) == bytes(w.b.pubkey())
    assert only["account"]["space"] == 165
    # tokenAccountState, and the Token-2022 account (ImmutableOwner: longer than 165).
    t22 = ok(node, "getProgramAccounts", [TOKEN_2022, {"encoding": "base64", "filters": [
        "tokenAccountState", owner_filter(w.a.pubkey())]}])
    assert keys(t22) == [str(w.ata22)]
    assert t22[0]["account"]["space"] > 165
    # Without a filter the program's accounts include the mint; a program nobody uses has none.
    everything = keys(ok(node, "getProgramAccounts", [TOKEN, {"encoding": "base64"}]))
    assert {str(w.mint.pubkey()), str(w.acct_a.pubkey()), str(w.acct_b.pubkey())} <= set(everything)
    assert ok(node, "getProgramAccounts", [str(Pubkey.new_unique())]) == []
    # minContextSlot beyond the chain: Agave's -32016.
    assert err(node, "getProgramAccounts", [TOKEN, {"minContextSlot": 10**12}])["code"] == -32016


def test_token_accounts_by_owner_and_delegate(node, world):
    w = world
    for flt in ({"mint": str(w.mint.pubkey())}, {"programId": TOKEN}):
        r = ok(node, "getTokenAccountsByOwner", [str(w.a.pubkey()), flt, {"encoding": "base64"}])
        assert keys(r) == [str(w.acct_a.pubkey())] and r["context"]["slot"] > 0
    r = ok(node, "getTokenAccountsByOwner", [str(w.a.pubkey()), {"programId": TOKEN_2022}, {"encoding": "base64"}])
    assert keys(r) == [str(w.ata22)]
    # solana-py parses the answer.
    got = w.c.get_token_accounts_by_owner(w.b.pubkey(), TokenAccountOpts(mint=w.mint.pubkey()), commitment=Finalized)
    assert [a.pubkey for a in got.value] == [w.acct_b.pubkey()]

    delegate = Keypair()
    assert keys(ok(node, "getTokenAccountsByDelegate", [str(delegate.pubkey()), {"programId": TOKEN}])) == []
    send(w.c, [w.payer, w.a], [spl.approve(spl.ApproveParams(
        program_id=spl.TOKEN_PROGRAM_ID, source=w.acct_a.pubkey(), delegate=delegate.pubkey(),
        owner=w.a.pubkey(), amount=5))])
    for flt in ({"mint": str(w.mint.pubkey())}, {"programId": TOKEN}):
        r = ok(node, "getTokenAccountsByDelegate", [str(delegate.pubkey()), flt, {"encoding": "base64"}])
        assert keys(r) == [str(w.acct_a.pubkey())], flt


def test_token_supply_and_largest_accounts(node, world):
    w = world
    s = ok(node, "getTokenSupply", [str(w.mint.pubkey())])["value"]
    assert (s["amount"], s["decimals"], s["uiAmountString"]) == ("1250000", 6, "1.25")
    largest = ok(node, "getTokenLargestAccounts", [str(w.mint.pubkey())])["value"]
    assert [(x["address"], x["amount"]) for x in largest] == [
        (str(w.acct_a.pubkey()), "1000000"), (str(w.acct_b.pubkey()), "250000")]
    assert largest[0]["uiAmountString"] == "1" and largest[0]["decimals"] == 6
    s22 = ok(node, "getTokenSupply", [str(w.mint22.pubkey())])["value"]
    assert (s22["amount"], s22["uiAmountString"]) == ("777", "7.77")
    assert w.c.get_token_supply(w.mint.pubkey()).value.amount == "1250000"


def test_owner_change_and_close_at_processed_and_finalized(node, world):
    """A SetAuthority(owner) moves the account between owners, a new account appears and an
    emptied one is closed; processed sees each change as soon as getAccountInfo does, and
    finalized agrees once the slot is durable."""
    w = world
    c, p = w.c, w.payer.pubkey()
    new_owner, fresh = Keypair(), Keypair()
    rent = c.get_minimum_balance_for_rent_exemption(165).value
    sig = send(c, [w.payer, w.b, fresh], [
        spl.set_authority(spl.SetAuthorityParams(program_id=spl.TOKEN_PROGRAM_ID, account=w.acct_b.pubkey(),
                                                 authority=spl.AuthorityType.ACCOUNT_OWNER,
                                                 current_authority=w.b.pubkey(),
                                                 new_authority=new_owner.pubkey())),
        create_account(CreateAccountParams(from_pubkey=p, to_pubkey=fresh.pubkey(), lamports=rent, space=165,
                                           owner=spl.TOKEN_PROGRAM_ID)),
        spl.initialize_account(spl.InitializeAccountParams(program_id=spl.TOKEN_PROGRAM_ID, account=fresh.pubkey(),
                                                           mint=w.mint.pubkey(), owner=new_owner.pubkey())),
    ], finalize=False)
    expected = by_pubkey([w.acct_b.pubkey(), fresh.pubkey()])
    deadline = time.time() + 20
    while True:
        got = keys(ok(node, "getTokenAccountsByOwner", [str(new_owner.pubkey()), {"programId": TOKEN},
                                                        {"encoding": "base64", "commitment": "processed"}]))
        # Every account returned exists with that owner at processed.
        for k in got:
            info = ok(node, "getAccountInfo", [k, {"encoding": "base64", "commitment": "processed"}])["value"]
            assert base64.b64decode(info["data"][0])[32:64] == bytes(new_owner.pubkey())
        if got == expected:
            break
        assert time.time() < deadline, got
        time.sleep(0.02)
    wait_finalized(c, sig)
    for commitment in ("processed", "confirmed", "finalized"):
        cfg = {"encoding": "base64", "commitment": commitment}
        assert keys(ok(node, "getTokenAccountsByOwner", [str(new_owner.pubkey()), {"programId": TOKEN}, cfg])) \
            == expected
        assert keys(ok(node, "getTokenAccountsByOwner", [str(w.b.pubkey()), {"programId": TOKEN}, cfg])) == []

    # Close the fresh (empty) account: it leaves every index.
    send(c, [w.payer, new_owner], [spl.close_account(spl.CloseAccountParams(
        program_id=spl.TOKEN_PROGRAM_ID, account=fresh.pubkey(), dest=p, owner=new_owner.pubkey()))])
    for commitment in ("processed", "finalized"):
        cfg = {"encoding": "base64", "commitment": commitment}
        assert keys(ok(node, "getTokenAccountsByOwner", [str(new_owner.pubkey()), {"programId": TOKEN}, cfg])) \
            == [str(w.acct_b.pubkey())]
        assert str(fresh.pubkey()) not in keys(ok(node, "getProgramAccounts", [TOKEN, cfg]))


def test_hostile_parameters_are_errors(node, world):
    w = world
    five = [{"dataSize": 165}] * 5
    e = err(node, "getProgramAccounts", [TOKEN, {"filters": five}])
    assert e["code"] == -32602 and "Too many filters provided; max 4" in e["message"], e
    e = err(node, "getProgramAccounts", [TOKEN, {"filters": [{"memcmp": {"offset": 0, "bytes": "z" * 100_00}}]}])
    assert e["code"] == -32602 and "DataTooLarge" in e["message"], e
    e = err(node, "getProgramAccounts", [TOKEN, {"filters": [{"memcmp": {"offset": 0, "bytes": "0OIl"}}]}])
    assert e["code"] == -32602 and "Base58DecodeError" in e["message"], e
    e = err(node, "getProgramAccounts", [TOKEN, {"filters": [{"memcmp": {"offset": 0, "bytes": "@@", "encoding": "base64"}}]}])
    assert e["code"] == -32602 and "Base64DecodeError" in e["message"], e
    e = err(node, "getProgramAccounts", ["not-a-key"])
    assert e["code"] == -32602, e
    e = err(node, "getTokenAccountsByOwner", [str(w.a.pubkey()), {"programId": str(Pubkey.new_unique())}])
    assert e["code"] == -32602 and "unrecognized Token program id" in e["message"], e
    e = err(node, "getTokenAccountsByOwner", [str(w.a.pubkey()), {"mint": str(w.payer.pubkey())}])
    assert e["code"] == -32602 and "not a Token mint" in e["message"], e
    e = err(node, "getTokenAccountsByDelegate", [str(w.a.pubkey()), {"mint": str(Pubkey.new_unique())}])
    assert e["code"] == -32602 and "could not find mint" in e["message"], e
    e = err(node, "getTokenAccountsByOwner", [str(w.a.pubkey())])
    assert e["code"] == -32602, e
    e = err(node, "getTokenAccountsByOwner", [str(w.a.pubkey()), {"mint": TOKEN, "programId": TOKEN}])
    assert e["code"] == -32602, e
    e = err(node, "getTokenSupply", [str(w.payer.pubkey())])
    assert e["code"] == -32602 and "not a Token mint" in e["message"], e
    e = err(node, "getTokenLargestAccounts", [str(Pubkey.new_unique())])
    assert e["code"] == -32602 and "could not find mint" in e["message"], e
    e = err(node, "getProgramAccounts", [TOKEN, {"sortResults": "yes"}])
    assert e["code"] == -32602, e
    assert ok(node, "getHealth", []) == "ok"


def test_restart_rebuilds_the_indexes(node, world):
    w = world
    calls = [
        ("getProgramAccounts", [TOKEN, {"encoding": "base64", "filters": [{"dataSize": 165}]}]),
        ("getProgramAccounts", [TOKEN_2022, {"encoding": "base64"}]),
        ("getTokenAccountsByOwner", [str(w.a.pubkey()), {"programId": TOKEN}, {"encoding": "base64"}]),
        ("getTokenLargestAccounts", [str(w.mint.pubkey())]),
    ]
    def answers():
        out = []
        for m, p in calls:
            r = ok(node, m, p)
            out.append(r["value"] if isinstance(r, dict) else r)
        return out
    before = answers()
    assert all(before)
    node.stop()
    node.start()
    assert answers() == before
    log = (node.workdir / "node.log").read_text(errors="replace")
    assert "secondary account indexes built from the store" in log


def test_the_bound_refuses_clearly_and_counts(tmp_path):
    """With room for only a few entries, a program whose accounts were refused answers
    Agave's -32010 instead of a short list, and the refusals are counted."""
    n = Node(tmp_path, rpc_config="account_index_max_keys = 8\n")
    n.start()
    try:
        c = Client(n.url)
        payer, acct = Keypair(), Keypair()
        program = Pubkey.new_unique()
        wait_finalized(c, c.request_airdrop(payer.pubkey(), SOL).value)
        send(c, [payer, acct], [create_account(CreateAccountParams(
            from_pubkey=payer.pubkey(), to_pubkey=acct.pubkey(), lamports=10**7, space=8, owner=program))])
        e = err(n, "getProgramAccounts", [str(program)])
        assert e["code"] == -32010, e
        assert "excluded from account secondary indexes" in e["message"], e
        assert "account_index_max_keys" in e["data"]["reason"], e
        with urllib.request.urlopen(f"http://127.0.0.1:{n.metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        metrics = {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("gigacompute_account_index")}
        refused = [v for k, v in metrics.items() if "refused" in k]
        entries = [v for k, v in metrics.items() if "entries" in k]
        assert refused and refused[0] > 0, metrics
        assert entries and entries[0] == 8, metrics
        assert ok(n, "getHealth", []) == "ok"
    finally:
        n.stop()
