// A wallet and a dApp, with the official JavaScript clients, against a scale-out cluster
// through one HTTP endpoint (a node, or the stateless router `gigacompute route`):
//   node cluster.mjs <rpc-url>
// Fresh random keys land in partitions owned by any node, so a transfer between two of them
// usually spans nodes: the cluster gathers the partitions and runs it on one node (co-location).
// No WebSocket: PubSub is per node; confirmations are polled (getSignatureStatuses), as
// wallets do behind a load balancer.
// @solana/web3.js 1.x: airdrop, a transfer with preflight, createAccount for a program and
// getProgramAccounts over every owner; @solana/kit: airdrop and a transfer.
// Exits non-zero with the failing step on stderr.

import assert from "node:assert/strict";
import * as web3 from "@solana/web3.js";
import * as kit from "@solana/kit";

const [rpcUrl] = process.argv.slice(2);
const LAMPORTS = web3.LAMPORTS_PER_SOL;

async function step(name, f) {
  const t = Date.now();
  try {
    const r = await f();
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
    return r;
  } catch (e) {
    console.error(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exit(1);
  }
}

// Polls a status until it is confirmed (or fails), within `ms`.
async function confirmed(getStatus, sig, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const st = await getStatus(sig);
    if (st && (st.confirmationStatus === "confirmed" || st.confirmationStatus === "finalized")) {
      assert.equal(st.err, null, `${sig} failed: ${JSON.stringify(st.err)}`);
      return st;
    }
    if (Date.now() > deadline) throw new Error(`${sig} not confirmed in ${ms} ms: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const conn = new web3.Connection(rpcUrl, { commitment: "confirmed" });
const web3Status = async (sig) => (await conn.getSignatureStatuses([sig])).value[0];
const payer = web3.Keypair.generate();
const bob = web3.Keypair.generate();

await step("web3.js: getVersion, getLatestBlockhash", async () => {
  assert.ok((await conn.getVersion())["solana-core"]);
  assert.ok((await conn.getLatestBlockhash()).blockhash);
});

await step("web3.js: requestAirdrop, confirmed by polling, getBalance", async () => {
  const sig = await conn.requestAirdrop(payer.publicKey, 5 * LAMPORTS);
  await confirmed(web3Status, sig);
  assert.equal(await conn.getBalance(payer.publicKey), 5 * LAMPORTS);
});

await step("web3.js: a transfer to a key of another partition (preflight on)", async () => {
  const tx = new web3.Transaction().add(
    web3.SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: bob.publicKey, lamports: LAMPORTS / 2 }),
  );
  tx.recentBlockhash = (await conn.getLatestBlockhash()).blockhash;
  tx.feePayer = payer.publicKey;
  tx.sign(payer);
  const sig = await conn.sendRawTransaction(tx.serialize());
  await confirmed(web3Status, sig);
  assert.equal(await conn.getBalance(bob.publicKey), LAMPORTS / 2);
  assert.equal(await conn.getBalance(payer.publicKey), 5 * LAMPORTS - LAMPORTS / 2 - 5000);
});

await step("web3.js: createAccount for a program, getProgramAccounts lists it once", async () => {
  const program = web3.Keypair.generate().publicKey;
  const made = [];
  for (let i = 0; i < 3; i++) {
    const acct = web3.Keypair.generate();
    const tx = new web3.Transaction().add(
      web3.SystemProgram.createAccount({
        fromPubkey: payer.publicKey,
        newAccountPubkey: acct.publicKey,
        lamports: 10_000_000,
        space: 40,
        programId: program,
      }),
    );
    tx.recentBlockhash = (await conn.getLatestBlockhash()).blockhash;
    tx.feePayer = payer.publicKey;
    tx.sign(payer, acct);
    await confirmed(web3Status, await conn.sendRawTransaction(tx.serialize()));
    made.push(acct.publicKey.toBase58());
  }
  const listed = await conn.getProgramAccounts(program, { filters: [{ dataSize: 40 }] });
  assert.deepEqual(listed.map((a) => a.pubkey.toBase58()).sort(), [...made].sort());
  assert.ok(listed.every((a) => a.account.owner.equals(program) && a.account.data.length === 40));
});

await step("kit: airdrop and a transfer, confirmed by polling", async () => {
  const rpc = kit.createSolanaRpc(rpcUrl);
  const kitStatus = async (sig) => (await rpc.getSignatureStatuses([sig]).send()).value[0];
  const signer = await kit.generateKeyPairSigner();
  const airdropSig = await rpc.requestAirdrop(signer.address, kit.lamports(2_000_000_000n)).send();
  await confirmed(kitStatus, airdropSig);
  const { value: balance } = await rpc.getBalance(signer.address, { commitment: "confirmed" }).send();
  assert.equal(balance, 2_000_000_000n);

  const to = await kit.generateKeyPairSigner();
  const { value: latest } = await rpc.getLatestBlockhash().send();
  // A System transfer (instruction 2: u32 LE index, u64 LE lamports), built by hand to keep
  // to kit's core package.
  const data = new Uint8Array(12);
  const view = new DataView(data.buffer);
  view.setUint32(0, 2, true);
  view.setBigUint64(4, 1_000_000n, true);
  const ix = {
    programAddress: kit.address("11111111111111111111111111111111"),
    accounts: [
      { address: signer.address, role: kit.AccountRole.WRITABLE_SIGNER, signer },
      { address: to.address, role: kit.AccountRole.WRITABLE },
    ],
    data,
  };
  const message = kit.pipe(
    kit.createTransactionMessage({ version: 0 }),
    (m) => kit.setTransactionMessageFeePayerSigner(signer, m),
    (m) => kit.setTransactionMessageLifetimeUsingBlockhash(latest, m),
    (m) => kit.appendTransactionMessageInstruction(ix, m),
  );
  const signed = await kit.signTransactionMessageWithSigners(message);
  const wire = kit.getBase64EncodedWireTransaction(signed);
  const sig = await rpc.sendTransaction(wire, { encoding: "base64" }).send();
  assert.equal(sig, kit.getSignatureFromTransaction(signed));
  await confirmed(kitStatus, sig);
  const { value: got } = await rpc.getBalance(to.address, { commitment: "confirmed" }).send();
  assert.equal(got, 1_000_000n);
});

console.log("all steps passed");
process.exit(0);
