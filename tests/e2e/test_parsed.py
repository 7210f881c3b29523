"""`encoding: "jsonParsed"` as wallets and explorers use it: SPL Token and Token-2022 mints and
token accounts through getAccountInfo / getMultipleAccounts, a token transaction (with the
Associated Token Account program's CPIs as innerInstructions) and a System transfer through
getTransaction, each checked field by field against Agave's shapes, and read back through
solana-py's typed responses (solders parses them as Agave's types)."""

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Finalized
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
import spl.token.instructions as spl

from test_appliance import SOL, airdrop, blockhash, rpc_raw, signed_transfer, wait_finalized

SYSTEM = "11111111111111111111111111111111"


def parsed_account(node, key, **cfg):
    r = rpc_raw(node, "getAccountInfo", [str(key), {"encoding": "jsonParsed", "commitment": "finalized", **cfg}])
    assert "error" not in r, r
    return r["result"]["value"]


def parsed_tx(node, sig, encoding="jsonParsed"):
    r = rpc_raw(node, "getTransaction", [str(sig), {"encoding": encoding, "maxSupportedTransactionVersion": 0}])
    assert "error" not in r, r
    return r["result"]


@pytest.mark.parametrize("program", ["token", "token-2022"])
def test_token_mint_account_and_transaction_parsed(node, program):
    c = Client(node.url)
    token_program = spl.TOKEN_PROGRAM_ID if program == "token" else spl.TOKEN_2022_PROGRAM_ID
    program_name = "spl-token" if program == "token" else "spl-token-2022"
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
    sig = c.send_transaction(Transaction([payer, mint], Message(ixs, payer.pubkey()), blockhash(c))).value
    assert wait_finalized(c, sig).err is None

    # The mint.
    m = parsed_account(node, mint.pubkey())
    assert m["owner"] == str(token_program)
    assert m["space"] == 82 and m["data"]["space"] == 82
    assert m["data"]["program"] == program_name
    assert m["data"]["parsed"]["type"] == "mint"
    info = m["data"]["parsed"]["info"]
    assert info["decimals"] == 2
    assert info["supply"] == "12345"
    assert info["isInitialized"] is True
    assert info["mintAuthority"] == str(payer.pubkey())
    assert info["freezeAuthority"] is None

    # The token account: its amount in the mint's decimals.
    a = parsed_account(node, ata)
    assert a["data"]["program"] == program_name
    assert a["data"]["parsed"]["type"] == "account"
    info = a["data"]["parsed"]["info"]
    assert info["mint"] == str(mint.pubkey())
    assert info["owner"] == str(owner.pubkey())
    assert info["state"] == "initialized"
    assert info["isNative"] is False
    assert info["tokenAmount"] == {"amount": "12345", "decimals": 2, "uiAmount": 123.45, "uiAmountString": "123.45"}

    # getMultipleAccounts: the same, and null for an absent account.
    r = rpc_raw(node, "getMultipleAccounts", [[str(mint.pubkey()), str(ata), str(Keypair().pubkey())],
                                              {"encoding": "jsonParsed", "commitment": "finalized"}])
    v = r["result"]["value"]
    assert [x and x["data"]["parsed"]["type"] for x in v] == ["mint", "account", None]

    # solana-py / solders read it as Agave's typed response.
    typed = c.get_account_info_json_parsed(ata, commitment=Finalized).value
    assert typed.data.program == program_name
    assert typed.data.parsed["info"]["tokenAmount"]["uiAmountString"] == "123.45"

    # The transaction, parsed: each top-level instruction by its program's parser.
    t = parsed_tx(node, sig)
    msg = t["transaction"]["message"]
    assert msg["accountKeys"][0] == {"pubkey": str(payer.pubkey()), "signer": True, "writable": True,
                                     "source": "transaction"}
    got = [(ix["program"], ix["parsed"]["type"]) for ix in msg["instructions"]]
    # Agave's instruction parser names both token programs "spl-token" (accounts differ).
    assert got == [("system", "createAccount"), ("spl-token", "initializeMint2"),
                   ("spl-associated-token-account", "create"), ("spl-token", "mintTo")]
    assert all(ix["stackHeight"] == 1 for ix in msg["instructions"])
    assert msg["instructions"][3]["parsed"]["info"]["amount"] == "12345"
    meta = t["meta"]
    assert meta["err"] is None and meta["status"] == {"Ok": None}
    assert meta["computeUnitsConsumed"] > 0
    # The ATA program's CPIs (recorded by the SVM), parsed, under instruction 2.
    inner = {g["index"]: g["instructions"] for g in meta["innerInstructions"]}
    assert set(inner) == {2}
    kinds = [(ix.get("program"), ix.get("parsed", {}).get("type")) for ix in inner[2]]
    assert ("system", "createAccount") in kinds or ("system", "allocate") in kinds, kinds
    assert ("spl-token", "initializeAccount3") in kinds, kinds
    assert all(ix["stackHeight"] >= 2 for ix in inner[2])
    (post,) = meta["postTokenBalances"]
    assert post["mint"] == str(mint.pubkey()) and post["owner"] == str(owner.pubkey())
    assert post["programId"] == str(token_program)
    assert post["uiTokenAmount"] == {"amount": "12345", "decimals": 2, "uiAmount": 123.45,
                                     "uiAmountString": "123.45"}
    assert meta["preTokenBalances"] == []

    # json keeps the raw message and lists the same CPIs by account index.
    raw = parsed_tx(node, sig, "json")
    assert raw["transaction"]["message"]["instructions"][2]["programIdIndex"] >= 0
    assert [g["index"] for g in raw["meta"]["innerInstructions"]] == [2]
    assert raw["meta"]["loadedAddresses"] == {"writable": [], "readonly": []}

    # solders reads the parsed transaction as Agave's type.
    typed = c.get_transaction(sig, encoding="jsonParsed", max_supported_transaction_version=0).value
    assert typed.slot == t["slot"]


def test_system_transfer_and_system_accounts_parsed(node):
    c = Client(node.url)
    payer, to = Keypair(), Keypair()
    airdrop(c, payer.pubkey(), SOL)
    sig = c.send_transaction(signed_transfer(c, payer, to.pubkey(), 1_000_000)).value
    assert wait_finalized(c, sig).err is None
    t = parsed_tx(node, sig)
    (ix,) = t["transaction"]["message"]["instructions"]
    assert ix == {"program": "system", "programId": SYSTEM, "stackHeight": 1,
                  "parsed": {"type": "transfer", "info": {"source": str(payer.pubkey()),
                                                          "destination": str(to.pubkey()), "lamports": 1_000_000}}}
    keys = t["transaction"]["message"]["accountKeys"]
    assert keys[1] == {"pubkey": str(to.pubkey()), "signer": False, "writable": True, "source": "transaction"}
    assert keys[2] == {"pubkey": SYSTEM, "signer": False, "writable": False, "source": "transaction"}
    assert t["meta"]["innerInstructions"] == []
    assert t["meta"]["fee"] == 5000
    assert t["version"] == "legacy"
    assert "loadedAddresses" not in t["meta"], "Agave leaves it out of jsonParsed (keys carry the source)"

    # A wallet's account: nothing to parse, so base 64 (dataSlice still applies there).
    a = parsed_account(node, to.pubkey())
    assert a["data"] == ["", "base64"] and a["lamports"] == 1_000_000
    # A sysvar parses.
    clock = parsed_account(node, Pubkey.from_string("SysvarC1ock11111111111111111111111111111111"))
    assert clock["data"]["program"] == "sysvar"
    assert clock["data"]["parsed"]["type"] == "clock"
    assert clock["data"]["parsed"]["info"]["slot"] > 0

    # An unknown encoding is refused with Agave's message.
    r = rpc_raw(node, "getTransaction", [str(sig), {"encoding": "base85"}])
    assert r["error"]["code"] == -32602 and "unknown variant `base85`" in r["error"]["message"]
