// What a dApp does, with the official JavaScript clients, against a running appliance:
//   node dapp.mjs <rpc-url> <ws-url>
// @solana/web3.js 1.x: airdrop + confirmTransaction (signatureSubscribe on the WebSocket),
// sendAndConfirmTransaction, @solana/spl-token's helpers (createMint,
// getOrCreateAssociatedTokenAccount, mintTo, transfer), an account-change subscription that
// fires; @solana/kit: airdrop and a transfer confirmed through its subscriptions.
// Exits non-zero with the failing step on stderr.

import assert from "node:assert/strict";
import * as web3 from "@solana/web3.js";
import * as spl from "@solana/spl-token";
import * as kit from "@solana/kit";

const [rpcUrl, wsUrl] = process.argv.slice(2);
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

function within(ms, promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  ]);
}

const conn = new web3.Connection(rpcUrl, { commitment: "confirmed", wsEndpoint: wsUrl });
const payer = web3.Keypair.generate();
const bob = web3.Keypair.generate();

await step("web3.js: getVersion", async () => {
  const v = await conn.getVersion();
  assert.ok(v["solana-core"]);
});

await step("web3.js: requestAirdrop + confirmTransaction", async () => {
  const sig = await conn.requestAirdrop(payer.publicKey, 10 * LAMPORTS);
  const { blockhash, lastValidBlockHeight } = await conn.getLatestBlockhash();
  const r = await conn.confirmTransaction({ signature: sig, blockhash, lastValidBlockHeight });
  assert.equal(r.value.err, null);
  assert.equal(await conn.getBalance(payer.publicKey), 10 * LAMPORTS);
});

await step("web3.js: onAccountChange fires on a transfer (sendAndConfirmTransaction)", async () => {
  let subId;
  const changed = new Promise((resolve) => {
    subId = conn.onAccountChange(bob.publicKey, (info, ctx) => resolve({ info, ctx }), { commitment: "confirmed" });
  });
  // The subscription is live once the server answered it; give it a moment.
  await new Promise((r) => setTimeout(r, 500));
  const tx = new web3.Transaction().add(
    web3.SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: bob.publicKey, lamports: LAMPORTS }),
  );
  const sig = await web3.sendAndConfirmTransaction(conn, tx, [payer]);
  assert.ok(sig);
  const { info, ctx } = await within(15000, changed, "accountNotification");
  assert.equal(info.lamports, LAMPORTS);
  assert.ok(info.owner.equals(web3.SystemProgram.programId));
  assert.ok(ctx.slot > 0);
  await conn.removeAccountChangeListener(subId);
});

await step("web3.js: onSlotChange and onLogs", async () => {
  const slot = await within(
    10000,
    new Promise((resolve) => {
      const id = conn.onSlotChange((s) => {
        conn.removeSlotChangeListener(id);
        resolve(s);
      });
    }),
    "slotNotification",
  );
  assert.equal(slot.parent, slot.slot - 1);
  const logs = new Promise((resolve) => {
    const id = conn.onLogs(bob.publicKey, (l) => {
      conn.removeOnLogsListener(id);
      resolve(l);
    });
  });
  await new Promise((r) => setTimeout(r, 500));
  const tx = new web3.Transaction().add(
    web3.SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: bob.publicKey, lamports: 1000 }),
  );
  const sig = await web3.sendAndConfirmTransaction(conn, tx, [payer]);
  const l = await within(15000, logs, "logsNotification");
  assert.equal(l.signature, sig);
  assert.equal(l.err, null);
});

await step("spl-token: createMint, getOrCreateAssociatedTokenAccount, mintTo, transfer", async () => {
  const mint = await spl.createMint(conn, payer, payer.publicKey, null, 6);
  const from = await spl.getOrCreateAssociatedTokenAccount(conn, payer, mint, payer.publicKey);
  const to = await spl.getOrCreateAssociatedTokenAccount(conn, payer, mint, bob.publicKey);
  await spl.mintTo(conn, payer, mint, from.address, payer, 1_000_000);
  await spl.transfer(conn, payer, from.address, to.address, payer, 250_000);
  const a = await spl.getAccount(conn, to.address);
  assert.equal(a.amount, 250_000n);
  assert.ok(a.owner.equals(bob.publicKey));
  const b = await conn.getTokenAccountBalance(from.address);
  assert.equal(b.value.amount, "750000");
  // A second call finds the account instead of creating it.
  const again = await spl.getOrCreateAssociatedTokenAccount(conn, payer, mint, bob.publicKey);
  assert.ok(again.address.equals(to.address));
});

await step("kit: airdrop and a transfer confirmed through rpcSubscriptions", async () => {
  const rpc = kit.createSolanaRpc(rpcUrl);
  const rpcSubscriptions = kit.createSolanaRpcSubscriptions(wsUrl);
  const signer = await kit.generateKeyPairSigner();
  const airdrop = kit.airdropFactory({ rpc, rpcSubscriptions });
  await airdrop({ commitment: "confirmed", lamports: kit.lamports(2_000_000_000n), recipientAddress: signer.address });
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
  const send = kit.sendAndConfirmTransactionFactory({ rpc, rpcSubscriptions });
  await send(signed, { commitment: "confirmed" });
  const { value: got } = await rpc.getBalance(to.address, { commitment: "confirmed" }).send();
  assert.equal(got, 1_000_000n);
});

console.log("all steps passed");
process.exit(0);
