/**
 * Grow a relay data directory to N entries quickly, for the restart and memory benchmarks: the
 * relay's own storage and sequencer, in-process, in large batches, with the relay's keys (so the
 * real relay process opens it afterwards). Receipts are not needed here, so the receipt signer is
 * a stub; every batch still gets its signed checkpoint, as the relay would write it.
 *
 *   CWTCH_RELAY_PASSPHRASE=… CWTCH_GROUPS_KDF=test node --import tsx bench/lib/fill-log.ts DIR N
 *
 * Prints one JSON line: {"entries": size after, "added": n, "ms": time}.
 */
import { randomBytes } from '../../src/crypto/index.ts';
import type { Receipt, ReceiptBody } from '../../src/log/receipt.ts';
import { loadOrCreateRelayKeys } from '../../src/relay/relay-keys.ts';
import { Sequencer } from '../../src/relay/sequencer.ts';
import { openSqliteStorage } from '../../src/relay/sqlite-storage.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';

const dataDir = process.argv[2];
const target = Number(process.argv[3]);
const passphrase = process.env.CWTCH_RELAY_PASSPHRASE;
if (dataDir === undefined || !Number.isSafeInteger(target) || target < 0 || passphrase === undefined) {
  process.stderr.write('usage: CWTCH_RELAY_PASSPHRASE=… fill-log.ts DIR N\n');
  process.exit(64);
}

const BATCH = 8192;
const t0 = performance.now();
const { keys } = await loadOrCreateRelayKeys(dataDir, passphrase);
const storage = openSqliteStorage({
  dataDir,
  identity: { origin: keys.origin, publicKey: keys.logKey.publicKey, envelopeBytes: ENVELOPE_BYTES },
});
const stubSignature = new Uint8Array(64);
const sequencer = await Sequencer.open({
  storage,
  signingKey: keys.logKey,
  envelopeBytes: ENVELOPE_BYTES,
  maxBatch: BATCH,
  maxQueued: 4 * BATCH,
  receiptSigner: {
    signReceipts: (bodies: readonly ReceiptBody[]): Receipt[] =>
      bodies.map((b) => ({ ...b, signature: stubSignature })),
  },
});
const start = sequencer.treeSize as number;
// Random-looking envelopes, unique by a counter and this process's random prefix.
const base = randomBytes(ENVELOPE_BYTES);
const prefix = randomBytes(8);
let pending: Promise<unknown>[] = [];
for (let i = start; i < target; i++) {
  const e = Buffer.allocUnsafe(ENVELOPE_BYTES);
  base.copy(e);
  prefix.copy(e, 0);
  e.writeUInt32BE(i >>> 0, 8);
  e.writeUInt32BE(Math.floor(i / 2 ** 32), 12);
  pending.push(sequencer.post(e));
  if (pending.length >= 2 * BATCH) {
    await Promise.all(pending);
    pending = [];
  }
}
await Promise.all(pending);
await sequencer.close();
const entries = sequencer.treeSize as number;
storage.close();
process.stdout.write(
  `${JSON.stringify({ entries, added: entries - start, ms: Math.round(performance.now() - t0) })}\n`,
);
