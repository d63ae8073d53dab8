/**
 * Transparency-log throughput: appends, proofs, restart and checkpoints, each beside the raw
 * SHA-256 / Ed25519 limit measured in the same run so the ratio is visible.
 *
 *   node --import tsx bench/log-append.ts [entries=1000000] [batch=2000]
 *
 * Also an entry of the suite (bench/run.ts), which collects its figures through emitResult.
 */
import { performance } from 'node:perf_hooks';
import { sha256, sign, signingKeyPairFromSeed, verify } from '../src/crypto/index.ts';
import {
  appendLeaves,
  consistencyProof,
  emptyFrontier,
  frontierFromStore,
  InMemoryNodeStore,
  inclusionProof,
  leafHash,
  logIndex,
  rootAt,
  signCheckpoint,
  treeSize,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '../src/log/index.ts';
import { ENVELOPE_BYTES } from '../src/wire/frames.ts';
import { emitResult } from './lib/report.ts';

const ENTRIES = Number(process.argv[2] ?? 1_000_000);
const BATCH = Number(process.argv[3] ?? 2000);

function rate(label: string, count: number, ms: number, limit?: { label: string; perSecond: number }): void {
  const perSecond = (count * 1000) / ms;
  const ratio =
    limit === undefined
      ? ''
      : `   (${limit.label}: ${fmt(limit.perSecond)}/s, ratio ${(perSecond / limit.perSecond).toFixed(2)})`;
  process.stdout.write(`${label.padEnd(38)} ${fmt(perSecond).padStart(12)}/s${ratio}\n`);
  emitResult({
    id: `log.${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`,
    name: label,
    value: perSecond,
    unit: '/s',
    ...(limit === undefined ? {} : { raw: { name: limit.label, value: limit.perSecond, unit: '/s' } }),
  });
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function time(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

// Raw limits: SHA-256 of one interior node input (65 bytes) and of one envelope leaf input.
const node = Buffer.alloc(65, 1);
const envelope = Buffer.alloc(ENVELOPE_BYTES, 7);
const RAW = 200_000;
const rawNode =
  (RAW * 1000) /
  time(() => {
    for (let i = 0; i < RAW; i++) sha256(node);
  });
const rawLeaf =
  (RAW * 1000) /
  time(() => {
    for (let i = 0; i < RAW; i++) sha256(envelope);
  });

process.stdout.write(
  `log bench: ${fmt(ENTRIES)} entries, batches of ${BATCH}, ${ENVELOPE_BYTES}-byte envelopes\n`,
);

// Leaf hashing of envelopes (the relay does this per post).
const leaves: Buffer[] = new Array(ENTRIES);
const leafMs = time(() => {
  for (let i = 0; i < ENTRIES; i++) {
    envelope.writeUInt32BE(i, 0);
    leaves[i] = leafHash(envelope);
  }
});
rate('leafHash (2 KiB envelope)', ENTRIES, leafMs, { label: 'raw sha256 2 KiB', perSecond: rawLeaf });

// Appends: tree work only, then with node persistence into memory.
let frontier = emptyFrontier();
const appendMs = time(() => {
  for (let at = 0; at < ENTRIES; at += BATCH)
    frontier = appendLeaves(frontier, leaves.slice(at, at + BATCH)).frontier;
});
rate('appendLeaves', ENTRIES, appendMs, { label: 'raw sha256 65 B', perSecond: rawNode });

const store = new InMemoryNodeStore();
frontier = emptyFrontier();
const storeMs = time(() => {
  for (let at = 0; at < ENTRIES; at += BATCH) {
    const r = appendLeaves(frontier, leaves.slice(at, at + BATCH));
    store.put(r.newNodes);
    frontier = r.frontier;
  }
});
rate('appendLeaves + InMemoryNodeStore.put', ENTRIES, storeMs);

// Restart: frontier from the store at full size.
const RESTARTS = 10_000;
const restartMs = time(() => {
  for (let i = 0; i < RESTARTS; i++) frontierFromStore(store, treeSize(ENTRIES));
});
process.stdout.write(
  `${'frontierFromStore (restart)'.padEnd(38)} ${(restartMs / RESTARTS).toFixed(4).padStart(12)} ms each\n`,
);
emitResult({
  id: 'log.frontier-from-store',
  name: `frontierFromStore at ${fmt(ENTRIES)} (restart)`,
  value: restartMs / RESTARTS,
  unit: 'ms',
});

// Proofs at full size against a store: build, verify, and both.
const size = treeSize(ENTRIES);
const root = rootAt(store, size);
const PROOFS = 50_000;
const indices = Array.from({ length: PROOFS }, (_, i) => logIndex((i * 7919) % ENTRIES));
const proofs: Uint8Array[][] = new Array(PROOFS);
const buildMs = time(() => {
  for (let i = 0; i < PROOFS; i++) proofs[i] = inclusionProof(store, indices[i]!, size);
});
rate('inclusionProof (from store)', PROOFS, buildMs);
const verifyMs = time(() => {
  for (let i = 0; i < PROOFS; i++) {
    if (!verifyInclusion(leaves[indices[i]!]!, indices[i]!, size, proofs[i]!, root))
      throw new Error('bad proof');
  }
});
rate('verifyInclusion', PROOFS, verifyMs, { label: 'raw sha256 65 B / 20', perSecond: rawNode / 20 });

const CONS = 20_000;
const consMs = time(() => {
  for (let i = 0; i < CONS; i++) {
    const s1 = treeSize(1 + ((i * 104729) % (ENTRIES - 1)));
    const p = consistencyProof(store, s1, size);
    if (!verifyConsistency(s1, size, p, rootAt(store, s1), root)) throw new Error('bad consistency proof');
  }
});
rate('consistency proof + root + verify', CONS, consMs);

// Checkpoints: one signature per batch on the relay, one verification per sync on a client.
const keys = signingKeyPairFromSeed(Buffer.alloc(32, 9));
const SIGS = 5000;
const note = signCheckpoint(
  { origin: 'relay.example/log', size, rootHash: root },
  'relay.example/log',
  keys.secretKey,
);
const signMs = time(() => {
  for (let i = 0; i < SIGS; i++)
    signCheckpoint(
      { origin: 'relay.example/log', size, rootHash: root },
      'relay.example/log',
      keys.secretKey,
    );
});
rate('signCheckpoint', SIGS, signMs);
const msg = Buffer.from(note.slice(0, note.indexOf('\n\n') + 1));
const sig = sign(msg, keys.secretKey);
const rawVerify =
  (SIGS * 1000) /
  time(() => {
    for (let i = 0; i < SIGS; i++) if (!verify(sig, msg, keys.publicKey)) throw new Error('bad signature');
  });
const verifyCpMs = time(() => {
  for (let i = 0; i < SIGS; i++) verifyCheckpoint(note, 'relay.example/log', keys.publicKey);
});
rate('verifyCheckpoint', SIGS, verifyCpMs, { label: 'raw Ed25519 verify', perSecond: rawVerify });
