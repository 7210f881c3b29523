// What a dApp does, with the official JavaScript clients, against a running appliance:
//   node dapp.mjs <rpc-url> <ws-url>
// @solana/web3.js 1.x: airdrop + confirmTransaction (signatureSubscribe on the WebSocket),
// sendAndConfirmTransaction, @solana/spl-token's helpers (createMint,
// getOrCreateAssociatedTokenAccount, mintTo, transfer), jsonParsed through
// getParsedAccountInfo and getParsedTransaction, an account-change subscription that fires; @solana/kit: airdrop and a transfer confirmed through its subscriptions.
// Exits non-zero with the failing step on stderr.

import assert from "node:assert/strict";
import * as web3 from "@solana/web3.js";
import * as spl from "@solana/spl-token";
import { kitAirdropAndTransfer, step } from "./common.mjs";

const [rpcUrl, wsUrl] = process.argv.slice(2);
const LAMPORTS = web3.LAMPORTS_PER_SOL;

function within(ms, promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  ]);
}

const conn = new web3.Connection(rpcUrl, { commitment: "confirmed", wsEndpoint: wsUrl });
const payer = web3.Keypair.generate();
const bob = web3.Keypair.generate();
// What the spl-token step made, for the jsonParsed steps after it.
let tokenFlow;

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
  const transferSig = await spl.transfer(conn, payer, from.address, to.address, payer, 250_000);
  const a = await spl.getAccount(conn, to.address);
  assert.equal(a.amount, 250_000n);
  assert.ok(a.owner.equals(bob.publicKey));
  const b = await conn.getTokenAccountBalance(from.address);
  assert.equal(b.value.amount, "750000");
  // A second call finds the account instead of creating it.
  const again = await spl.getOrCreateAssociatedTokenAccount(conn, payer, mint, bob.publicKey);
  assert.ok(again.address.equals(to.address));
  tokenFlow = { mint, to: to.address, transferSig };
});

await step("web3.js: getParsedAccountInfo of the mint and a token account", async () => {
  const m = await conn.getParsedAccountInfo(tokenFlow.mint);
  assert.equal(m.value.data.program, "spl-token");
  assert.equal(m.value.data.parsed.type, "mint");
  assert.equal(m.value.data.parsed.info.decimals, 6);
  assert.equal(m.value.data.parsed.info.supply, "1000000");
  assert.equal(m.value.data.parsed.info.mintAuthority, payer.publicKey.toBase58());
  const a = await conn.getParsedAccountInfo(tokenFlow.to);
  assert.equal(a.value.data.parsed.type, "account");
  const info = a.value.data.parsed.info;
  assert.equal(info.mint, tokenFlow.mint.toBase58());
  assert.equal(info.owner, bob.publicKey.toBase58());
  assert.deepEqual(info.tokenAmount, { amount: "250000", decimals: 6, uiAmount: 0.25, uiAmountString: "0.25" });
  // A wallet's account has nothing to parse: base 64, as Agave (web3.js decodes it).
  const w = await conn.getParsedAccountInfo(bob.publicKey);
  assert.ok(Buffer.isBuffer(w.value.data) && w.value.data.length === 0);
});

await step("web3.js: getParsedTransaction of the spl-token transfer and of an ATA creation (CPIs)", async () => {
  const t = await conn.getParsedTransaction(tokenFlow.transferSig, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  const ix = t.transaction.message.instructions.at(-1);
  assert.equal(ix.program, "spl-token");
  assert.ok(["transfer", "transferChecked"].includes(ix.parsed.type), ix.parsed.type);
  assert.equal(ix.parsed.info.amount ?? ix.parsed.info.tokenAmount.amount, "250000");
  assert.equal(ix.parsed.info.destination, tokenFlow.to.toBase58());
  assert.ok(t.transaction.message.accountKeys[0].signer);
  const post = t.meta.postTokenBalances.find((b) => b.owner === bob.publicKey.toBase58());
  assert.equal(post.uiTokenAmount.uiAmountString, "0.25");
  // An ATA created in its own transaction: the ATA program's CPIs come back parsed.
  const carol = web3.Keypair.generate();
  const ata = spl.getAssociatedTokenAddressSync(tokenFlow.mint, carol.publicKey);
  const tx = new web3.Transaction().add(
    spl.createAssociatedTokenAccountInstruction(payer.publicKey, ata, carol.publicKey, tokenFlow.mint),
  );
  const sig = await web3.sendAndConfirmTransaction(conn, tx, [payer]);
  const c = await conn.getParsedTransaction(sig, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  assert.equal(c.transaction.message.instructions[0].program, "spl-associated-token-account");
  assert.equal(c.transaction.message.instructions[0].parsed.type, "create");
  const inner = c.meta.innerInstructions[0];
  assert.equal(inner.index, 0);
  assert.ok(inner.instructions.some((i) => i.program === "spl-token" && i.parsed.type === "initializeAccount3"));
});

await step("web3.js: getParsedTransaction of a system transfer", async () => {
  const tx = new web3.Transaction().add(
    web3.SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: bob.publicKey, lamports: 4242 }),
  );
  const sig = await web3.sendAndConfirmTransaction(conn, tx, [payer]);
  const t = await conn.getParsedTransaction(sig, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  const [ix] = t.transaction.message.instructions;
  assert.equal(ix.program, "system");
  assert.equal(ix.parsed.type, "transfer");
  assert.deepEqual(ix.parsed.info, {
    source: payer.publicKey.toBase58(),
    destination: bob.publicKey.toBase58(),
    lamports: 4242,
  });
  assert.equal(t.meta.err, null);
  assert.deepEqual(t.meta.innerInstructions, []);
});

await step("web3.js: getParsedTokenAccountsByOwner, getTokenAccountsByOwner, getProgramAccounts, getTokenLargestAccounts", async () => {
  const parsed = await conn.getParsedTokenAccountsByOwner(bob.publicKey, { mint: tokenFlow.mint });
  assert.equal(parsed.value.length, 1);
  assert.ok(parsed.value[0].pubkey.equals(tokenFlow.to));
  assert.equal(parsed.value[0].account.data.parsed.info.tokenAmount.amount, "250000");
  const raw = await conn.getTokenAccountsByOwner(bob.publicKey, { programId: spl.TOKEN_PROGRAM_ID });
  assert.equal(raw.value.length, 1);
  assert.equal(spl.AccountLayout.decode(raw.value[0].account.data).amount, 250_000n);
  const holders = await conn.getProgramAccounts(spl.TOKEN_PROGRAM_ID, {
    filters: [{ dataSize: 165 }, { memcmp: { offset: 0, bytes: tokenFlow.mint.toBase58() } }],
  });
  assert.ok(holders.length >= 2 && holders.some((h) => h.pubkey.equals(tokenFlow.to)));
  const largest = await conn.getTokenLargestAccounts(tokenFlow.mint);
  assert.equal(largest.value[0].amount, "750000");
  const supply = await conn.getTokenSupply(tokenFlow.mint);
  assert.equal(supply.value.amount, "1000000");
});

await step("web3.js: getSignaturesForAddress, getBlock, getBlockTime, getParsedBlock", async () => {
  const sigs = await conn.getSignaturesForAddress(tokenFlow.to, { limit: 10 });
  assert.ok(sigs.some((s) => s.signature === tokenFlow.transferSig));
  assert.deepEqual(sigs.map((s) => s.slot), sigs.map((s) => s.slot).sort((a, b) => b - a));
  const mine = sigs.find((s) => s.signature === tokenFlow.transferSig);
  const block = await conn.getBlock(mine.slot, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  assert.ok(block.transactions.some((t) => t.transaction.signatures[0] === tokenFlow.transferSig));
  assert.equal(block.blockTime, mine.blockTime);
  assert.equal(await conn.getBlockTime(mine.slot), mine.blockTime);
  const parsed = await conn.getParsedBlock(mine.slot, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  const t = parsed.transactions.find((x) => x.transaction.signatures[0] === tokenFlow.transferSig);
  assert.equal(t.transaction.message.instructions.at(-1).program, "spl-token");
  const slots = await conn.getBlocks(mine.slot, mine.slot + 2, "confirmed");
  assert.equal(slots[0], mine.slot);
});

await step("web3.js: the one-node cluster (identity, leaders, epoch schedule, supply, fees)", async () => {
  const nodes = await conn.getClusterNodes();
  assert.equal(nodes.length, 1);
  assert.equal(await conn.getSlotLeader(), nodes[0].pubkey);
  const schedule = await conn.getEpochSchedule();
  assert.equal(schedule.slotsPerEpoch, 432000);
  const votes = await conn.getVoteAccounts();
  assert.deepEqual([votes.current, votes.delinquent], [[], []]);
  const supply = await conn.getSupply();
  assert.equal(supply.value.total, supply.value.circulating);
  const fees = await conn.getRecentPrioritizationFees({ lockedWritableAccounts: [bob.publicKey] });
  assert.ok(Array.isArray(fees) && fees.length > 0);
  assert.ok((await conn.getTransactionCount()) > 0);
});

await step("kit: airdrop and a transfer confirmed through rpcSubscriptions", () => kitAirdropAndTransfer(rpcUrl, wsUrl));

console.log("all steps passed");
process.exit(0);
