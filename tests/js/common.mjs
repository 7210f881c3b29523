// What tests/js/dapp.mjs and tests/js/cluster.mjs share: the step runner and @solana/kit's
// airdrop and transfer, confirmed through kit's WebSocket subscriptions.

import assert from "node:assert/strict";
import * as kit from "@solana/kit";

// Runs one named step; on failure prints it with its stack and exits non-zero.
export async function step(name, f) {
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

// kit: airdrop 2 SOL to a fresh signer and send 1,000,000 lamports to another fresh key,
// each confirmed through rpcSubscriptions (signatureNotifications), as kit's factories do.
export async function kitAirdropAndTransfer(rpcUrl, wsUrl) {
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
}
