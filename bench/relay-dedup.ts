/**
 * The relay's per-row commit cost on a long log (docs/storage.md, "Dedup"; bench/README.md,
 * "Indexes written per row"): grows an SQLite relay log to N entries, reopens it (timing the
 * open), then times B batches of 1,000 posts through the sequencer (dedup lookup at admission,
 * one commit per batch; receipt signing stubbed so only storage is measured), beside the same
 * batches on a fresh, empty log in the same run (the raw limit: a log whose indexes fit in a few
 * pages).
 *
 *   node --import tsx bench/relay-dedup.ts [--entries 1000000] [--batches 100] [--batch 1000]
 *                                          [--dir DIR] [--storage-module PATH]
 *
 * --dir keeps the grown log there (created when missing, grown only by what is missing), so
 * interleaved runs reuse it; without it a temporary directory is grown and removed (~2 GB at 1M).
 * --storage-module loads openSqliteStorage from another file (a copy of src/relay/sqlite-storage.ts
 * from another commit) to compare versions on logs each version wrote itself. 100 batches of
 * 1,000 span three merge runs (32,768 entries each), so the merge slices are in the figure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes, signingKeyPairFromSeed } from '../src/crypto/index.ts';
import type { Receipt, ReceiptBody } from '../src/log/receipt.ts';
import { type ReceiptSigner, Sequencer } from '../src/relay/sequencer.ts';
import * as current from '../src/relay/sqlite-storage.ts';

const ENVELOPE_BYTES = 2048;
const ORIGIN = 'bench.relay/log';

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? undefined : process.argv[at + 1];
}
const ENTRIES = Number(arg('entries') ?? 1_000_000);
const BATCHES = Number(arg('batches') ?? 100);
const BATCH = Number(arg('batch') ?? 1000);
const DIR = arg('dir');
const MODULE = arg('storage-module');

const open: typeof current.openSqliteStorage =
  MODULE === undefined
    ? current.openSqliteStorage
    : ((await import(pathToFileURL(resolve(MODULE)).href)) as typeof current).openSqliteStorage;

const key = signingKeyPairFromSeed(new Uint8Array(32).fill(1));
const identity = { origin: ORIGIN, publicKey: key.publicKey, envelopeBytes: ENVELOPE_BYTES };
const base = randomBytes(ENVELOPE_BYTES);
// A per-run salt so logs reused across runs never see the same envelope twice.
const salt = randomBytes(8);
let serial = 0;
function envelope(): Buffer {
  const e = Buffer.from(base);
  e.set(salt, 0);
  e.writeUInt32BE(serial >>> 0, 8);
  e.writeUInt32BE(Math.floor(serial / 2 ** 32), 12);
  serial++;
  return e;
}
const fakeSignature = new Uint8Array(64);
const stub: ReceiptSigner = {
  signReceipts: (bodies: readonly ReceiptBody[]): Receipt[] =>
    bodies.map((b) => ({ ...b, signature: fakeSignature })),
};

/** The storage in `dir` and a sequencer over it, signing stubbed. */
async function openLog(
  dir: string,
  tuning: { maxQueued: number; maxBatch?: number },
): Promise<{ storage: ReturnType<typeof open>; sequencer: Sequencer }> {
  const storage = open({ dataDir: dir, identity });
  const sequencer = await Sequencer.open({
    storage,
    signingKey: key,
    envelopeBytes: ENVELOPE_BYTES,
    receiptSigner: stub,
    ...tuning,
  });
  return { storage, sequencer };
}

async function grow(dir: string, entries: number): Promise<void> {
  const { storage, sequencer } = await openLog(dir, { maxQueued: 1 << 16 });
  const pending: Promise<unknown>[] = [];
  for (let i = storage.treeSize(); i < entries; i++) {
    pending.push(sequencer.post(envelope()));
    if (pending.length >= 8192) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await sequencer.close();
  storage.close();
}

interface Timed {
  size: number;
  openMs: number;
  /** The process's CPU per post: hashing, sequencer, storage. */
  cpuUsPerRow: number;
  /** CPU in the storage's dedup lookups and commits (appendBatch) only, per post. */
  storageUsPerRow: number;
  /** Of which the lookups at admission (lookupLeaf). */
  lookupUsPerRow: number;
  wallMsPerBatch: number;
}

/**
 * What cpuOf reports for a call that does nothing (the getrusage calls around it), µs: measured in
 * the same run and subtracted from the per-call figures.
 */
function cpuOfOverhead(): number {
  const n = 20_000;
  let sum = 0;
  for (let i = 0; i < n; i++)
    cpuOf(
      () => i,
      (us) => (sum += us),
    );
  return sum / n;
}
const OVERHEAD_US = cpuOfOverhead();

/** CPU (user + system, µs) spent inside `fn`. */
function cpuOf<T>(fn: () => T, add: (us: number) => void): T {
  const c0 = process.cpuUsage();
  try {
    return fn();
  } finally {
    const c = process.cpuUsage(c0);
    add(c.user + c.system);
  }
}

/** Reopen `dir` and time `batches` commits of `batch` posts each (one commit per batch). */
async function timeBatches(dir: string, batches: number, batch: number): Promise<Timed> {
  const t0 = performance.now();
  const { storage, sequencer } = await openLog(dir, { maxBatch: batch, maxQueued: 4 * batch });
  const openMs = performance.now() - t0;
  const size = storage.treeSize();
  // The storage's share: both methods are synchronous on SQLite, and appendLocked calls
  // this.appendBatch, so instance wrappers see every lookup and commit.
  let storageCpu = 0;
  let lookupCpu = 0;
  const add = (us: number): void => {
    storageCpu += us;
  };
  const addLookup = (us: number): void => {
    storageCpu += us;
    lookupCpu += us;
  };
  const appendBatch = storage.appendBatch.bind(storage);
  const lookupLeaf = storage.lookupLeaf.bind(storage);
  storage.appendBatch = (b) => cpuOf(() => appendBatch(b), add);
  storage.lookupLeaf = (leaf) => cpuOf(() => lookupLeaf(leaf), addLookup);
  const envelopes = Array.from({ length: batch }, () => envelope());
  let cpu = 0;
  let wall = 0;
  for (let b = 0; b < batches; b++) {
    if (b === 0) storageCpu = lookupCpu = 0;
    for (let i = 0; i < batch; i++) envelopes[i] = envelope();
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await Promise.all(envelopes.map((e) => sequencer.post(e)));
    wall += performance.now() - w0;
    const c = process.cpuUsage(c0);
    cpu += c.user + c.system;
  }
  await sequencer.close();
  storage.close();
  const rows = batches * batch;
  return {
    size,
    openMs,
    cpuUsPerRow: cpu / rows,
    // One lookup per post and one appendBatch per batch were timed, each adding OVERHEAD_US.
    storageUsPerRow: storageCpu / rows - OVERHEAD_US * (1 + 1 / batch),
    lookupUsPerRow: lookupCpu / rows - OVERHEAD_US,
    wallMsPerBatch: wall / batches,
  };
}

const temps: string[] = [];
const temp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'cwtch-dedup-bench-'));
  temps.push(d);
  return d;
};
try {
  const dir = DIR ?? temp();
  const g0 = performance.now();
  await grow(dir, ENTRIES);
  const growS = (performance.now() - g0) / 1000;
  const long = await timeBatches(dir, BATCHES, BATCH);
  const fresh = await timeBatches(temp(), BATCHES, BATCH);
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  console.log(
    `relay dedup bench${MODULE === undefined ? '' : ` (${MODULE})`}: ${BATCHES} batches of ${fmt(BATCH)} posts, one commit each, signing stubbed (grew ${growS.toFixed(0)} s)`,
  );
  console.log(`  (per-call timer overhead ${OVERHEAD_US.toFixed(2)} µs, subtracted)`);
  console.log(
    `  log of ${fmt(long.size).padStart(9)} entries: CPU ${long.cpuUsPerRow.toFixed(1).padStart(5)} µs/row, in storage ${long.storageUsPerRow.toFixed(1).padStart(5)} µs/row (lookups ${long.lookupUsPerRow.toFixed(1)}), wall ${long.wallMsPerBatch.toFixed(1)} ms per batch; open ${long.openMs.toFixed(1)} ms`,
  );
  console.log(
    `  fresh log (raw limit):    CPU ${fresh.cpuUsPerRow.toFixed(1).padStart(5)} µs/row, in storage ${fresh.storageUsPerRow.toFixed(1).padStart(5)} µs/row (lookups ${fresh.lookupUsPerRow.toFixed(1)}), wall ${fresh.wallMsPerBatch.toFixed(1)} ms per batch; storage ratio ${(long.storageUsPerRow / fresh.storageUsPerRow).toFixed(2)}×`,
  );
} finally {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
}
