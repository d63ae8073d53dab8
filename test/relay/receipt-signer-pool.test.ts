/**
 * The worker-thread receipt signer: receipts equal main-thread ones byte for byte (Ed25519 is
 * deterministic), order holds across batches and workers, a killed worker fails the batches it
 * held with a typed error and is replaced, close() lets batches finish and stops every worker,
 * and the sequencer and startRelay use it. No test depends on wall-clock durations.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { RelayClient } from '../../src/client/sync/relay-client.ts';
import { InternalError, UsageError } from '../../src/errors.ts';
import { type LogIndex, leafHash } from '../../src/log/index.ts';
import {
  encodeReceipt,
  type Receipt,
  type ReceiptBody,
  signReceipt,
  verifyReceipt,
} from '../../src/log/receipt.ts';
import { ReceiptSignerPool } from '../../src/relay/receipt-signer-pool.ts';
import { startRelay } from '../../src/relay/relay.ts';
import { localReceiptSigner, Sequencer } from '../../src/relay/sequencer.ts';
import { openSqliteStorage } from '../../src/relay/sqlite-storage.ts';
import { PROOF_RECEIPT_VERSION, PROTOCOL_VERSION } from '../../src/wire/frames.ts';
import { ENVELOPE_BYTES, envelopeAt, identityOf, ORIGIN, relayKey, tempDir } from './fixtures/helpers.ts';

const key = relayKey();
const local = localReceiptSigner(ORIGIN, key.secretKey);

function body(index: number, timeMs = 1_700_000_000_000 + index): ReceiptBody {
  return { origin: ORIGIN, index: index as LogIndex, leafHash: leafHash(envelopeAt(index)), timeMs };
}

function bodies(from: number, count: number): ReceiptBody[] {
  return Array.from({ length: count }, (_, i) => body(from + i));
}

/** The receipts as their canonical bytes, for byte-for-byte comparison. */
function encoded(receipts: readonly Receipt[]): string[] {
  return receipts.map((r) => Buffer.from(encodeReceipt(r)).toString('hex'));
}

function mainThread(batch: readonly ReceiptBody[]): Receipt[] {
  return local.signReceipts(batch) as Receipt[];
}

/** Resolves with the worker's exit code. */
function exitOf(worker: Worker): Promise<number> {
  return new Promise((resolve) => worker.once('exit', resolve));
}

function isSignerFailure(e: unknown): boolean {
  return e instanceof InternalError && e.reason === 'receipt-signer-failed';
}

// One pool of three workers for the read-only tests (a worker start costs a tsx load).
let shared: ReceiptSignerPool;
before(async () => {
  shared = await ReceiptSignerPool.start({ origin: ORIGIN, secretKey: key.secretKey, threads: 3 });
});
after(() => shared.close());

test('receipts from the workers equal main-thread receipts byte for byte, and verify', async () => {
  assert.equal(shared.threads, 3);
  assert.equal(shared.workers.length, 3);
  // Sizes around the split threshold (64 bodies per chunk) and well above it.
  for (const count of [1, 2, 63, 64, 65, 128, 129, 191, 1000, 2500]) {
    const batch = bodies(10_000 * count, count);
    const receipts = await shared.signReceipts(batch);
    assert.equal(receipts.length, count);
    assert.deepEqual(encoded(receipts), encoded(mainThread(batch)), `batch of ${count}`);
    assert.deepEqual(encoded(receipts), encoded(batch.map((b) => signReceipt(b, key.secretKey))));
    for (const r of receipts) assert.equal(verifyReceipt(r, key.publicKey), true);
  }
  assert.deepEqual(await shared.signReceipts([]), []);
});

test('any bodies: worker receipts equal signReceipt on the main thread (property)', async () => {
  const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const arbBody = fc.record({
    origin: fc.constant(ORIGIN),
    index: u53.map((n) => n as LogIndex),
    leafHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    timeMs: u53,
  });
  await fc.assert(
    fc.asyncProperty(fc.array(arbBody, { minLength: 1, maxLength: 300 }), async (batch) => {
      const receipts = await shared.signReceipts(batch);
      assert.deepEqual(encoded(receipts), encoded(batch.map((b) => signReceipt(b, key.secretKey))));
    }),
    { numRuns: 40 },
  );
});

test('order holds across concurrent batches split over several workers', async () => {
  const sizes = [700, 1, 64, 300, 5, 1024, 129, 2, 900, 77, 256, 3];
  let next = 0;
  const batches = sizes.map((n) => {
    const b = bodies(next, n);
    next += n;
    return b;
  });
  // All in flight at once: chunks of different calls interleave on the workers.
  const results = await Promise.all(batches.map((b) => shared.signReceipts(b)));
  for (const [i, receipts] of results.entries()) {
    assert.deepEqual(
      receipts.map((r) => r.index),
      batches[i]!.map((b) => b.index),
    );
    assert.deepEqual(encoded(receipts), encoded(mainThread(batches[i]!)));
  }
});

test('malformed bodies and options are refused with UsageError before reaching a worker', async () => {
  const bad = (b: unknown) => shared.signReceipts([body(1), b as ReceiptBody]);
  const usage = (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument';
  await assert.rejects(bad({ ...body(2), origin: 'other.relay/log' }), usage);
  await assert.rejects(bad({ ...body(2), index: -1 }), usage);
  await assert.rejects(bad({ ...body(2), index: 2 ** 53 }), usage);
  await assert.rejects(bad({ ...body(2), timeMs: 1.5 }), usage);
  await assert.rejects(bad({ ...body(2), leafHash: new Uint8Array(31) }), usage);
  await assert.rejects(bad(null), usage);
  await assert.rejects(shared.signReceipts('x' as unknown as ReceiptBody[]), usage);
  for (const options of [
    { origin: ORIGIN, secretKey: key.secretKey, threads: 0 },
    { origin: ORIGIN, secretKey: key.secretKey, threads: 65 },
    { origin: ORIGIN, secretKey: key.secretKey, threads: 1.5 },
    { origin: ORIGIN, secretKey: key.publicKey },
    { origin: 'has space', secretKey: key.secretKey },
  ]) {
    await assert.rejects(ReceiptSignerPool.start(options), usage);
  }
  // Still working after the refusals.
  assert.deepEqual(encoded(await shared.signReceipts(bodies(5, 3))), encoded(mainThread(bodies(5, 3))));
});

test('a killed worker fails the batches it held with InternalError and the pool recovers', async () => {
  const exits: InternalError[] = [];
  const pool = await ReceiptSignerPool.start({
    origin: ORIGIN,
    secretKey: key.secretKey,
    threads: 2,
    onWorkerExit: (e) => exits.push(e),
  });
  try {
    // 1. Killed before it reads the batch: a batch split over both workers fails as a whole.
    const [victim, survivor] = pool.workers;
    const killed = victim!.terminate();
    await assert.rejects(pool.signReceipts(bodies(0, 400)), isSignerFailure);
    await killed;
    assert.equal(exits.length, 1);
    assert.equal(exits[0]!.reason, 'receipt-signer-failed');

    // The dead worker was replaced; the pool signs correctly again, on both workers.
    assert.equal(pool.workers.length, 2);
    assert.ok(!pool.workers.includes(victim!));
    assert.ok(pool.workers.includes(survivor!));
    assert.deepEqual(encoded(await pool.signReceipts(bodies(0, 400))), encoded(mainThread(bodies(0, 400))));

    // 2. Killed while signing a batch: every batch it held either fails with the typed error or
    // was fully signed before the kill; never a receipt without its signature.
    const inFlight = [pool.signReceipts(bodies(1000, 3000)), pool.signReceipts(bodies(5000, 3000))];
    const killedAgain = pool.workers[0]!.terminate();
    const outcomes = await Promise.allSettled(inFlight);
    await killedAgain;
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'rejected') assert.ok(isSignerFailure(outcome.reason), String(outcome.reason));
      else assert.deepEqual(encoded(outcome.value), encoded(mainThread(bodies(1000 + 4000 * i, 3000))));
    }
    assert.ok(outcomes.some((o) => o.status === 'rejected'));

    // 3. A replacement killed while it may still be starting is replaced at the next call.
    for (const w of pool.workers) await w.terminate();
    assert.deepEqual(encoded(await pool.signReceipts(bodies(9, 200))), encoded(mainThread(bodies(9, 200))));
    assert.equal(pool.workers.length, 2);
  } finally {
    await pool.close();
  }
  assert.deepEqual(pool.workers, []);
});

test('close() lets held batches finish, stops every worker, and refuses later calls', async () => {
  const secretKey = Buffer.from(key.secretKey);
  const pool = await ReceiptSignerPool.start({ origin: ORIGIN, secretKey, threads: 2 });
  const exited = pool.workers.map(exitOf);
  const held = pool.signReceipts(bodies(0, 1500));
  const closing = pool.close();
  assert.equal(pool.close(), closing, 'idempotent');
  await assert.rejects(
    pool.signReceipts(bodies(0, 1)),
    (e: unknown) => e instanceof UsageError && e.reason === 'receipt-signer-closed',
  );
  assert.deepEqual(encoded(await held), encoded(mainThread(bodies(0, 1500))));
  await closing;
  assert.deepEqual(await Promise.all(exited), [0, 0], 'the workers exited on their own');
  assert.deepEqual(pool.workers, []);
  assert.deepEqual(secretKey, key.secretKey, "the caller's key is the caller's: not wiped by the pool");
});

test('the sequencer with a pool: receipts as on the main thread; a dead worker fails only the receipts', async () => {
  const tmp = tempDir('signer-pool');
  const storage = openSqliteStorage({ dataDir: tmp.dir, identity: identityOf(key) });
  const pool = await ReceiptSignerPool.start({
    origin: ORIGIN,
    secretKey: key.secretKey,
    threads: 1,
    onWorkerExit: () => {},
  });
  // Stands in for the pool and, when told to, kills its worker just before handing it a batch
  // (in the same tick, so the batch is certainly sent to the dying worker).
  let killNext = false;
  let killed: Promise<number> | undefined;
  const signer = {
    signReceipts(batch: readonly ReceiptBody[]): Promise<Receipt[]> {
      if (killNext) {
        killNext = false;
        killed = pool.workers[0]!.terminate();
      }
      return pool.signReceipts(batch);
    },
  };
  try {
    const seq = await Sequencer.open({
      storage,
      signingKey: key,
      envelopeBytes: ENVELOPE_BYTES,
      lingerMs: 0,
      maxBatch: 16,
      receiptSigner: signer,
      now: () => 42_000,
    });
    const receipts = await Promise.all(Array.from({ length: 50 }, (_, i) => seq.post(envelopeAt(i))));
    const expected = Array.from({ length: 50 }, (_, i) => body(i, 42_000));
    assert.deepEqual(encoded(receipts), encoded(mainThread(expected)));

    // The worker dies with a commit's receipts in its hands: the posts fail with the typed error,
    // their entries stay committed, and a retry gets the original receipt.
    killNext = true;
    await assert.rejects(seq.post(envelopeAt(50)), isSignerFailure);
    assert.ok(killed !== undefined);
    await killed;
    assert.equal(seq.treeSize, 51);
    const retried = await seq.submit(envelopeAt(50));
    assert.equal(retried.duplicate, true);
    assert.deepEqual(encoded([retried.receipt]), encoded(mainThread([body(50, 42_000)])));
    await seq.close();
  } finally {
    await pool.close();
    storage.close();
    tmp.cleanup();
  }
});

test('startRelay signs on a pool by default, on the main thread with signerThreads: 0', async () => {
  const logger = pino({ level: 'silent' });
  const base = { passphrase: 'correct horse', host: '127.0.0.1', port: 0, logger };
  const tokens = { enabled: false, difficulty: 0 };
  await assert.rejects(
    startRelay({ ...base, dataDir: '/nonexistent', tokens, signerThreads: -1 }),
    (e: unknown) => e instanceof UsageError && e.reason === 'bad-argument',
  );
  for (const signerThreads of [undefined, 0]) {
    const tmp = tempDir('signer-relay');
    try {
      const relay = await startRelay({
        ...base,
        dataDir: tmp.dir,
        tokens,
        ...(signerThreads === undefined ? {} : { signerThreads }),
      });
      if (signerThreads === 0) assert.equal(relay.receiptSigner, null);
      else assert.ok((relay.receiptSigner?.threads ?? 0) >= 1);
      const receipt = await relay.sequencer.post(envelopeAt(1));
      assert.equal(verifyReceipt(receipt, relay.keys.logKey.publicKey), true);
      const exited = relay.receiptSigner?.workers.map(exitOf) ?? [];
      await relay.close();
      assert.ok((await Promise.all(exited)).every((code) => code === 0));
    } finally {
      tmp.cleanup();
    }
  }
});

/** A lazy pool of two workers under the test key: none starts until a batch or warm(). */
function lazyPool(): Promise<ReceiptSignerPool> {
  return ReceiptSignerPool.start({ origin: ORIGIN, secretKey: key.secretKey, threads: 2, lazy: true });
}

/** Wait, bounded (about 10 s; no duration is asserted), until `n` of the pool's workers are ready. */
async function untilReady(pool: ReceiptSignerPool, n: number): Promise<void> {
  for (let i = 0; pool.readyThreads < n && i < 2000; i++) await new Promise((r) => setTimeout(r, 5));
}

test('a lazy pool starts no worker until its first batch, then signs as an eager one does', async () => {
  const pool = await lazyPool();
  try {
    assert.equal(pool.workers.length, 0);
    const batch = bodies(900_000, 200);
    assert.deepEqual(encoded(await pool.signReceipts(batch)), encoded(mainThread(batch)));
    assert.equal(pool.workers.length, 2);
  } finally {
    await pool.close();
  }
});

test('a lazy pool signs on the calling thread until a worker is ready, then on the workers', async () => {
  // A worker start took 0.3-1.7 s on the bench VM: a relay whose first receipts waited for it
  // refused its posters with too-many-in-flight meanwhile (bench/README.md, latency).
  const pool = await lazyPool();
  try {
    const first = bodies(700_000, 100);
    assert.deepEqual(encoded(await pool.signReceipts(first)), encoded(mainThread(first)));
    assert.equal(pool.readyThreads, 0, 'signed before any worker was ready');
    assert.equal(pool.workers.length, 2, 'the workers were started by that batch');
    // Bounded wait for the workers the batch started (no duration is asserted).
    await untilReady(pool, 1);
    assert.ok(pool.readyThreads > 0);
    const next = bodies(800_000, 100);
    assert.deepEqual(encoded(await pool.signReceipts(next)), encoded(mainThread(next)));
  } finally {
    await pool.close();
  }
});

test('warm() starts a lazy pool’s workers without a batch; once, and not after close()', async () => {
  const pool = await lazyPool();
  try {
    assert.equal(pool.workers.length, 0);
    pool.warm();
    const started = pool.workers;
    assert.equal(started.length, 2);
    pool.warm();
    assert.deepEqual(pool.workers, started, 'a second warm() starts nothing more');
    await untilReady(pool, 2);
    assert.equal(pool.readyThreads, 2);
    const batch = bodies(600_000, 100);
    assert.deepEqual(encoded(await pool.signReceipts(batch)), encoded(mainThread(batch)));
  } finally {
    await pool.close();
  }
  pool.warm();
  assert.equal(pool.workers.length, 0, 'close() stopped them and warm() after it starts none');
});

test('a relay starts its signing workers at the hello of its first version-1 client, before a post; a version-2 client starts none', async () => {
  // Their start (~0.1 s of CPU compiled) used to come with the first post, on the cores the
  // first posts needed (bench/README.md, "Post → delivery latency"). A version-2 client (a
  // profile's) takes proof receipts, signed once per batch by the checkpoint: no worker is needed
  // for it, and an isolate it never uses is ~12 MB of the relay's memory (docs/storage.md).
  const tmp = tempDir('signer-warm');
  const relay = await startRelay({
    passphrase: 'correct horse',
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    dataDir: tmp.dir,
    tokens: { enabled: false, difficulty: 0 },
    signerThreads: 1,
  });
  let ws: WebSocket | undefined;
  const clients: RelayClient[] = [];
  try {
    const pool = relay.receiptSigner!;
    const { host, port } = relay.server.address;
    const url = `ws://${host}:${port}`;
    // An idle relay holds no worker isolate (docs/storage.md, "Receipt signing").
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.workers.length, 0);
    // A connection that has not said hello.
    ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws!.once('open', () => resolve());
      ws!.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.workers.length, 0, 'a connection without a hello starts no worker');
    // A profile's connection: hello, a post, its proof receipt.
    const v2 = await RelayClient.connect({ url, versions: [PROOF_RECEIPT_VERSION] });
    clients.push(v2);
    assert.equal(v2.version, PROOF_RECEIPT_VERSION);
    const posted = await v2.request({ type: 'post', envelope: envelopeAt(1), token: null }, 'receipt');
    assert.equal(posted.duplicate, false);
    assert.equal(relay.sequencer.treeSize, 1);
    assert.equal(pool.workers.length, 0, 'a version-2 client, posting, starts no worker');
    // A version-1 connection: the workers start at its hello, with no post of its own.
    const v1 = await RelayClient.connect({ url, versions: [PROTOCOL_VERSION] });
    clients.push(v1);
    assert.equal(v1.version, PROTOCOL_VERSION);
    // Bounded wait (no duration is asserted).
    await untilReady(pool, 1);
    assert.equal(pool.readyThreads, 1);
    assert.equal(relay.sequencer.treeSize, 1, 'the version-1 client posted nothing');
  } finally {
    ws?.terminate();
    await Promise.all(clients.map((c) => c.close()));
    await relay.close();
    tmp.cleanup();
  }
});
