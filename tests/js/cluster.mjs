// A wallet and a dApp, with the official JavaScript clients, against a scale-out cluster
// through one endpoint (a node, or the stateless router `gigacompute route`):
//   node cluster.mjs <rpc-url> <ws-url>
// Fresh random keys land in partitions owned by any node, so a transfer between two of them
// usually spans nodes: the cluster gathers the partitions and runs it on one node (co-location).
// Confirmations come over the WebSocket, as the clients' own helpers wait for them
// (web3.js's confirmTransaction and sendAndConfirmTransaction, kit's factories): the node the
// socket reaches answers for transactions any node runs. Some are also polled
// (getSignatureStatuses, as wallets behind a load balancer do).
// @solana/web3.js 1.x: airdrop, a transfer with preflight, createAccount for a program and
// getProgramAccounts over every owner; @solana/kit: airdrop and a transfer.
// Exits non-zero with the failing step on stderr.

import assert from "node:assert/strict";
import * as web3 from "@solana/web3.js";
import { kitAirdropAndTransfer, step } from "./common.mjs";

const [rpcUrl, wsUrl] = process.argv.slice(2);
const LAMPORTS = web3.LAMPORTS_PER_SOL;

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

const conn = new web3.Connection(rpcUrl, { commitment: "confirmed", wsEndpoint: wsUrl });
const web3Status = async (sig) => (await conn.getSignatureStatuses([sig])).value[0];
const payer = web3.Keypair.generate();
const bob = web3.Keypair.generate();

await step("web3.js: getVersion, getLatestBlockhash", async () => {
  assert.ok((await conn.getVersion())["solana-core"]);
  assert.ok((await conn.getLatestBlockhash()).blockhash);
});

await step("web3.js: requestAirdrop, confirmTransaction (WebSocket), getBalance", async () => {
  const latest = await conn.getLatestBlockhash();
  const sig = await conn.requestAirdrop(payer.publicKey, 5 * LAMPORTS);
  const r = await conn.confirmTransaction({ signature: sig, ...latest }, "confirmed");
  assert.equal(r.value.err, null);
  assert.equal(await conn.getBalance(payer.publicKey), 5 * LAMPORTS);
});

await step("web3.js: sendAndConfirmTransaction of a transfer to a key of another partition (preflight on)", async () => {
  const tx = new web3.Transaction().add(
    web3.SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: bob.publicKey, lamports: LAMPORTS / 2 }),
  );
  await web3.sendAndConfirmTransaction(conn, tx, [payer], { commitment: "confirmed" });
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

await step("kit: airdrop and a transfer, confirmed through rpcSubscriptions", () => kitAirdropAndTransfer(rpcUrl, wsUrl));

console.log("all steps passed");
process.exit(0);
