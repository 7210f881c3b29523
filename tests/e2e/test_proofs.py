"""State commitments as a light client uses them: a slot header's state root from
getSlotHeader, an account (or its absence) with a proof from getAccountWithProof, checked by
`gigacompute proof verify` with nothing but that root; tampering rejected with its reason;
roots unchanged across a restart; slots outside the window refused clearly."""

import copy
import json
import subprocess

from solana.rpc.api import Client
from solders.keypair import Keypair

from conftest import BINARY, Node
from test_appliance import SOL, airdrop, rpc_raw, signed_transfer, wait_finalized


def header(node, slot=None):
    r = rpc_raw(node, "getSlotHeader", [] if slot is None else [slot])
    assert "result" in r, r
    return r["result"]


def proof(node, pubkey, slot=None):
    params = [str(pubkey)] + ([] if slot is None else [{"slot": slot}])
    r = rpc_raw(node, "getAccountWithProof", params)
    assert "result" in r, r
    return r["result"]["value"]


def verify(tmp_path, root, doc):
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(doc))
    out = subprocess.run([str(BINARY), "proof", "verify", "--root", root, "--proof", str(path)],
                         capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout + out.stderr


def test_proofs_verify_tampering_is_rejected_and_roots_survive_restart(tmp_path):
    n = Node(tmp_path)
    n.start()
    try:
        c = Client(n.url)
        alice, bob = Keypair(), Keypair()
        airdrop(c, alice.pubkey(), 2 * SOL)
        before = header(n)
        sig = c.send_transaction(signed_transfer(c, alice, bob.pubkey(), 2000000)).value
        st = wait_finalized(c, sig)

        # Bob's account at the transfer's slot, against that slot's header.
        h = header(n, st.slot)
        assert h["slot"] == st.slot and h["transactionCount"] >= 1
        assert len(h["stateRoot"]) == 64 and h["blockhash"] and h["parentBlockhash"]
        assert h["accounts"] > 0 and len(h["latticeHashChecksum"]) >= 32
        v = proof(n, bob.pubkey(), st.slot)
        assert v["slot"] == st.slot and v["stateRoot"] == h["stateRoot"]
        assert v["account"]["lamports"] == 2000000
        assert v["proof"]["encodedBytes"] <= 1024
        rc, out = verify(tmp_path, h["stateRoot"], {"jsonrpc": "2.0", "result": {"value": v}})
        assert rc == 0 and "holds 2000000 lamports" in out, out

        # Before the transfer Bob did not exist: an absence proof at the older slot.
        old = proof(n, bob.pubkey(), before["slot"])
        assert old["account"] is None and old["stateRoot"] == before["stateRoot"]
        rc, out = verify(tmp_path, before["stateRoot"], old)
        assert rc == 0 and "does not exist" in out, out
        # ... and Bob's proof of the later slot does not hold under the older root.
        rc, out = verify(tmp_path, before["stateRoot"], v)
        assert rc == 1 and "rejected" in out

        # An account that never existed.
        ghost = proof(n, Keypair().pubkey())
        assert ghost["account"] is None
        rc, out = verify(tmp_path, ghost["stateRoot"], ghost)
        assert rc == 0 and "does not exist" in out, out

        # Tampering, each rejected with its reason.
        def tampered(change):
            doc = copy.deepcopy(v)
            change(doc)
            return verify(tmp_path, h["stateRoot"], doc)

        rc, out = tampered(lambda d: d["account"].update(lamports=2000001))
        assert rc == 1 and "does not match the leaf's account hash" in out, out
        rc, out = tampered(lambda d: d["proof"]["siblings"].__setitem__(
            0, ("0" if d["proof"]["siblings"][0][0] != "0" else "1") + d["proof"]["siblings"][0][1:]))
        assert rc == 1 and "does not hash to the state root" in out, out
        rc, out = tampered(lambda d: d.update(pubkey=str(alice.pubkey())))
        assert rc == 1 and "another key" in out, out
        rc, out = tampered(lambda d: d.update(account=None))
        assert rc == 1 and "the account exists" in out, out
        rc, out = verify(tmp_path, "00" * 32, v)
        assert rc == 1 and "does not hash to the state root" in out, out
        rc, out = verify(tmp_path, "zz", v)
        assert rc != 0 and "hex" in out, out

        # Outside the window, or not committed yet: clear errors.
        r = rpc_raw(n, "getAccountWithProof", [str(bob.pubkey()), {"slot": h["slot"] + 10**9}])
        assert r["error"]["code"] == -32009 and "not committed yet" in r["error"]["message"]
        r = rpc_raw(n, "getSlotHeader", ["x"])
        assert r["error"]["code"] == -32602
        r = rpc_raw(n, "getAccountWithProof", [str(bob.pubkey()), {"encoding": "jsonParsed"}])
        assert r["error"]["code"] == -32602

        last = header(n)
    finally:
        n.stop()

    # After a restart the committed roots are the same and new proofs verify.
    n.start()
    try:
        again = header(n, last["slot"])
        assert again["stateRoot"] == last["stateRoot"]
        assert again["latticeHash"] == last["latticeHash"]
        assert header(n, st.slot)["stateRoot"] == h["stateRoot"]
        now = proof(n, bob.pubkey())
        assert now["account"]["lamports"] == 2000000
        rc, out = verify(tmp_path, now["stateRoot"], now)
        assert rc == 0, out
    finally:
        n.stop()


def test_slots_beyond_the_window_are_refused(tmp_path):
    n = Node(tmp_path)
    with open(n.config, "a") as f:
        f.write("proof_window_slots = 8\n")
    n.start()
    try:
        import time
        deadline = time.time() + 30
        while header(n)["slot"] < 20 and time.time() < deadline:
            time.sleep(0.1)
        newest = header(n)["slot"]
        assert newest >= 20
        r = rpc_raw(n, "getSlotHeader", [1])
        assert r["error"]["code"] == -32009
        assert "outside the retained window" in r["error"]["message"], r
        r = rpc_raw(n, "getAccountWithProof", ["11111111111111111111111111111111", {"slot": 1}])
        assert "outside the retained window" in r["error"]["message"], r
        # Inside the window, an older slot is still provable.
        v = proof(n, "11111111111111111111111111111111", newest - 3)
        rc, out = verify(tmp_path, header(n, newest - 3)["stateRoot"], v)
        assert rc == 0, out
    finally:
        n.stop()
