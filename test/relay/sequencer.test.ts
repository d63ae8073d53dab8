/**
 * The ingest sequencer over both storage backends (real SQLite files, a real PostgreSQL server): receipts that verify, dedup that returns the
 * original receipt (from memory, from storage after a restart, and within one batch), no receipt
 * before the commit, batching with one checkpoint per batch, pushback, token spends, fail-stop,
 * graceful close, and restart consistency. No test depends on wall-clock durations.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { CodecError, InternalError, PushbackError, UsageError, VerifyError } from '../../src/errors.ts';
import {
  consistencyProof,
  inclusionProof,
  type LogIndex,
  leafHash,
  type TreeSize,
  verifyConsistency,
  verifyInclusion,
} from '../../src/log/index.ts';
import { noteVerifierKey, verifyNote } from '../../src/log/note.ts';
import { encodeReceipt, type Receipt, verifyReceipt } from '../../src/log/receipt.ts';
import { parseTlogProof, VerifiedCheckpointCache, verifyTlogProof } from '../../src/log/tlog-proof.ts';
import {
  type CommittedBatch,
  localReceiptSigner,
  type ReceiptSigner,
  Sequencer,
  type SequencerConfig,
} from '../../src/relay/sequencer.ts';
import { DATABASE_FILE } from '../../src/relay/sqlite-storage.ts';
import { computeWithNodes, type RelayStorage, type StoredCheckpoint } from '../../src/relay/storage.ts';
import Database from '../../src/sqlite.ts';
import { type Backend, type BackendLog, relayBackends, sqlOn } from './fixtures/backends.ts';
import {
  ENVELOPE_BYTES,
  envelopeAt,
  GatedStorage,
  identityOf,
  ORIGIN,
  relayKey,
  settle,
} from './fixtures/helpers.ts';

const BACKENDS = await relayBackends();

const key = relayKey();
const identity = identityOf(key);
const noteKey = noteVerifierKey(ORIGIN, key.publicKey);
const size = (n: number): TreeSize => n as TreeSize;

/** Parse "origin\nsize\nroot\n" of a verified checkpoint note. */
function checkpointOf(note: string): { size: number; root: Buffer } {
  const { note: parsed } = verifyNote(note, noteKey);
  const [origin, n, root] = parsed.text.split('\n');
  assert.equal(origin, ORIGIN);
  return { size: Number(n), root: Buffer.from(root!, 'base64') };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Fixture {
  backend: Backend;
  log: BackendLog;
  storage: RelayStorage;
  open(overrides?: Partial<SequencerConfig>): Promise<Sequencer>;
  reopen(): Promise<RelayStorage>;
}

/** One test per storage backend (fixtures/backends.ts). */
function forBackends(name: string, make: (backend: Backend) => () => Promise<void>): void {
  for (const backend of BACKENDS) {
    test(`${name} [${backend.name}]`, { skip: backend.skip }, make(backend));
  }
}

function withRelay(label: string, body: (f: Fixture) => Promise<void>) {
  return (backend: Backend) => async () => {
    const log = await backend.open(identity, label);
    const f: Fixture = {
      backend,
      log,
      storage: log.storage,
      open: (overrides = {}) =>
        Sequencer.open({
          storage: f.storage,
          signingKey: key,
          envelopeBytes: ENVELOPE_BYTES,
          lingerMs: 0,
          ...overrides,
        }),
      reopen: async () => {
        f.storage = await log.reopen();
        return f.storage;
      },
    };
    try {
      await body(f);
    } finally {
      await log.cleanup();
    }
  };
}

forBackends(
  'posts get verifying receipts at consecutive indices, with entries, proofs and a checkpoint per batch',
  withRelay('post', async (f) => {
    const seq = await f.open({ maxBatch: 8 });
    const batches: CommittedBatch[] = [];
    seq.subscribe((b) => batches.push(b));
    const receipts = await Promise.all(Array.from({ length: 20 }, (_, i) => seq.post(envelopeAt(i))));
    await seq.close();

    assert.deepEqual(
      receipts.map((r) => r.index),
      Array.from({ length: 20 }, (_, i) => i),
      'indices follow arrival order',
    );
    for (const [i, r] of receipts.entries()) {
      assert.equal(verifyReceipt(r, key.publicKey), true);
      assert.equal(r.origin, ORIGIN);
      assert.deepEqual(Buffer.from(r.leafHash), leafHash(envelopeAt(i)));
    }
    assert.ok(batches.length >= 3, 'maxBatch 8 splits 20 posts into at least 3 commits');
    assert.ok(batches.every((b) => b.entries.length <= 8));
    assert.deepEqual(
      batches.flatMap((b) => b.entries.map((e) => e.index)),
      receipts.map((r) => r.index),
    );
    for (const b of batches) {
      // ONE checkpoint per batch, signed by the relay key, covering exactly the batch.
      const cp = checkpointOf(b.checkpoint.note);
      assert.equal(cp.size, b.entries.at(-1)!.index + 1);
      assert.deepEqual(cp.root, Buffer.from(b.checkpoint.rootHash));
      assert.deepEqual((await f.storage.checkpointAt(size(cp.size)))?.note, b.checkpoint.note);
    }
    assert.equal(seq.treeSize, 20);
    const latest = checkpointOf((await f.storage.latestCheckpoint())!.note);
    for (const r of receipts) {
      const [entry] = await f.storage.readEntries(r.index, 1);
      assert.deepEqual(entry?.envelope, envelopeAt(r.index));
      assert.equal(entry?.receivedMs, r.timeMs);
      const proof = await computeWithNodes(f.storage, (nr) => inclusionProof(nr, r.index, size(20)));
      assert.equal(verifyInclusion(r.leafHash, r.index, size(20), proof, latest.root), true);
    }
    assert.throws(() => seq.subscribe(null as unknown as () => void), UsageError);
  }),
);

forBackends(
  "each post has a tlog-proof against its batch's signed checkpoint (one note per batch); a replay's proves it against the head",
  withRelay('tlog-proof', async (f) => {
    const seq = await f.open({ maxBatch: 5 });
    const batches: CommittedBatch[] = [];
    seq.subscribe((b) => batches.push(b));
    // A log with history first, so the batches' proofs need nodes of the tree before them.
    await Promise.all(Array.from({ length: 7 }, (_, i) => seq.post(envelopeAt(i))));
    const results = await Promise.all(Array.from({ length: 13 }, (_, i) => seq.submit(envelopeAt(7 + i))));
    const cache = new VerifiedCheckpointCache();
    const notes = new Set<string>();
    for (const [i, r] of results.entries()) {
      const text = await r.proof();
      const proof = parseTlogProof(text);
      assert.equal(proof.index, 7 + i);
      const checkpoint = verifyTlogProof(proof, leafHash(envelopeAt(7 + i)), ORIGIN, key.publicKey, cache);
      const batch = batches.find((b) => b.entries.some((e) => e.index === proof.index))!;
      assert.equal(proof.checkpoint, batch.checkpoint.note, "the batch's own checkpoint, not a later one");
      assert.equal(checkpoint.size, batch.entries.at(-1)!.index + 1);
      notes.add(proof.checkpoint);
      // Another entry's leaf does not verify under this proof.
      assert.throws(
        () => verifyTlogProof(proof, leafHash(envelopeAt(6 + i)), ORIGIN, key.publicKey, cache),
        (e: unknown) => e instanceof VerifyError && e.reason === 'tlog-proof-not-included',
      );
    }
    assert.ok(notes.size >= 3, 'maxBatch 5 splits 13 posts into at least 3 checkpoints');
    const replay = await seq.submit(envelopeAt(3));
    assert.equal(replay.duplicate, true);
    const again = parseTlogProof(await replay.proof());
    assert.equal(again.index, 3);
    assert.equal(again.checkpoint, seq.latestCheckpoint!.note);
    verifyTlogProof(again, leafHash(envelopeAt(3)), ORIGIN, key.publicKey, cache);
    await seq.close();
  }),
);

forBackends(
  'a post whose receipt is a proof costs no per-post signature: a proof-only batch signs only its checkpoint, a mixed batch signs its v1 posts alone, and a v1 replay of a proof post gets the original receipt',
  withRelay('lazy-sign', async (f) => {
    // Counts every receipt the sequencer has signed, around the signer it uses by default.
    const local = localReceiptSigner(ORIGIN, key.secretKey);
    const signedIndices: number[] = [];
    const receiptSigner: ReceiptSigner = {
      signReceipts: (bodies) => {
        signedIndices.push(...bodies.map((b) => b.index));
        return local.signReceipts(bodies);
      },
    };
    const seq = await f.open({ maxBatch: 64, receiptSigner });
    const batches: CommittedBatch[] = [];
    seq.subscribe((b) => batches.push(b));

    const proofs = await Promise.all(Array.from({ length: 20 }, (_, i) => seq.submitProof(envelopeAt(i))));
    assert.deepEqual(signedIndices, [], 'no receipt signed for posts that read proofs');
    const cache = new VerifiedCheckpointCache();
    for (const [i, r] of proofs.entries()) {
      assert.equal(r.duplicate, false);
      const proof = parseTlogProof(await r.proof());
      assert.equal(proof.index, r.index);
      verifyTlogProof(proof, leafHash(envelopeAt(i)), ORIGIN, key.publicKey, cache);
    }
    assert.equal(
      batches.reduce((n, b) => n + b.entries.length, 0),
      20,
    );

    // One batch holding both kinds: only the v1 posts are signed, each receipt verifies.
    const mixed = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2 === 0 ? seq.submit(envelopeAt(20 + i)) : seq.submitProof(envelopeAt(20 + i)),
      ),
    );
    const v1 = mixed.flatMap((r) => ('receipt' in r ? [r.receipt] : []));
    assert.equal(v1.length, 5);
    assert.deepEqual(
      [...signedIndices].sort((a, b) => a - b),
      v1.map((r) => r.index),
    );
    for (const r of v1) assert.equal(verifyReceipt(r, key.publicKey), true);

    // A v1 client replaying what a v2 client posted gets the original entry's receipt, signed now.
    const replay = await seq.submit(envelopeAt(3));
    assert.equal(replay.duplicate, true);
    assert.equal(replay.receipt.index, proofs[3]!.index);
    assert.equal(verifyReceipt(replay.receipt, key.publicKey), true);
    assert.deepEqual(Buffer.from(replay.receipt.leafHash), leafHash(envelopeAt(3)));
    // And a proof replay of a v1 post signs nothing.
    const before = signedIndices.length;
    const proofReplay = await seq.submitProof(envelopeAt(20));
    assert.equal(proofReplay.duplicate, true);
    assert.equal(proofReplay.index, v1[0]!.index);
    assert.equal(signedIndices.length, before);
    await seq.close();
  }),
);

forBackends(
  'an envelope handed over (transfer) is stored and announced as the very bytes posted; by default the sequencer keeps a copy',
  withRelay('transfer', async (f) => {
    const seq = await f.open();
    const announced: Uint8Array[] = [];
    seq.subscribe((b) => announced.push(...b.entries.map((e) => e.envelope!)));
    const handed = envelopeAt(1);
    const copied = envelopeAt(2);
    const [a, b] = await Promise.all([seq.submitProof(handed, { transfer: true }), seq.submitProof(copied)]);
    assert.equal(announced[a.index], handed, 'no copy of a handed-over envelope');
    assert.notEqual(announced[b.index], copied, 'a copy by default');
    assert.deepEqual(announced[b.index], copied);
    const stored = await f.storage.readEntries(a.index, 2);
    assert.deepEqual(
      stored.map((e) => Buffer.from(e.envelope!)),
      [envelopeAt(1), envelopeAt(2)],
    );
    await seq.close();
  }),
);

forBackends(
  'a replayed envelope gets the original receipt: in flight, from memory, and from storage after a restart',
  withRelay('dedup', async (f) => {
    let now = 5_000;
    let seq = await f.open({ now: () => now, recentEntries: 2 });
    // Concurrent identical posts within one batch: one entry, one receipt.
    const [first, second, third] = await Promise.all([
      seq.submit(envelopeAt(1)),
      seq.submit(envelopeAt(1)),
      seq.submit(envelopeAt(2)),
    ]);
    const [a, b, c] = [first!.receipt, second!.receipt, third!.receipt];
    assert.deepEqual([first!.duplicate, second!.duplicate, third!.duplicate], [false, true, false]);
    assert.deepEqual(encodeReceipt(a), encodeReceipt(b));
    assert.equal(c!.index, 1);
    assert.equal(seq.treeSize, 2);

    now = 9_000;
    const replayed = await seq.submit(envelopeAt(1));
    assert.equal(replayed.duplicate, true);
    const again = replayed.receipt;
    assert.deepEqual(encodeReceipt(again), encodeReceipt(a!), 'same index, same time, same signature');
    // Push envelope 1 out of the 2-entry recent cache: the replay is answered from storage.
    await seq.post(envelopeAt(3));
    await seq.post(envelopeAt(4));
    assert.deepEqual(encodeReceipt(await seq.post(envelopeAt(1))), encodeReceipt(a!));
    await seq.close();

    await f.reopen();
    seq = await f.open({ now: () => now });
    const restarted = await seq.submit(envelopeAt(1));
    assert.equal(restarted.duplicate, true);
    assert.deepEqual(encodeReceipt(restarted.receipt), encodeReceipt(a), 'after a restart');
    assert.deepEqual(encodeReceipt(await seq.post(envelopeAt(2))), encodeReceipt(c!));
    assert.equal(seq.treeSize, 4);
    assert.equal(await f.storage.treeSize(), 4);
    await seq.close();
  }),
);

forBackends(
  'MUST NOT resolve a receipt or announce an entry before its batch is committed',
  withRelay('commit-order', async (f) => {
    const gated = new GatedStorage(f.storage);
    const seq = await f.open({ storage: gated });
    const announced: CommittedBatch[] = [];
    seq.subscribe((b) => announced.push(b));

    gated.hold();
    let resolved: Receipt | undefined;
    const posting = seq.post(envelopeAt(7)).then((r) => {
      resolved = r;
      return r;
    });
    await until(() => gated.waiting === 1);
    await settle();
    assert.equal(resolved, undefined, 'no receipt while the commit is pending');
    assert.equal(announced.length, 0, 'no announcement while the commit is pending');
    assert.equal(gated.committed, 0);
    assert.equal(seq.treeSize, 0, 'the committed size does not move before the commit');
    // A replay in flight joins the pending post instead of making a second entry.
    const replay = seq.post(envelopeAt(7));

    gated.release();
    const receipt = await posting;
    assert.equal(gated.committed, 1, 'resolved only after appendBatch resolved');
    assert.equal((await f.storage.lookupLeaf(receipt.leafHash))?.index, receipt.index);
    assert.deepEqual(encodeReceipt(await replay), encodeReceipt(receipt));
    assert.equal(announced.length, 1);
    assert.equal(gated.batches.length, 1);
    await seq.close();
  }),
);

forBackends(
  'pushback: posts beyond maxQueued get PushbackError ingest-overloaded, and are accepted again after the commit',
  withRelay('pushback', async (f) => {
    const gated = new GatedStorage(f.storage);
    const seq = await f.open({ storage: gated, maxBatch: 4, maxQueued: 10, retryAfterMs: 250 });
    gated.hold();
    const accepted = Array.from({ length: 10 }, (_, i) => seq.post(envelopeAt(i)));
    await until(() => gated.waiting === 1);
    assert.equal(seq.queued, 10);
    await assert.rejects(seq.post(envelopeAt(10)), (e: unknown) => {
      assert.ok(e instanceof PushbackError);
      assert.equal(e.reason, 'ingest-overloaded');
      assert.equal(e.code, 'pushback');
      assert.equal(e.retryAfterMs, 250);
      return true;
    });
    // A replay of an accepted envelope is not new load: it joins the pending post.
    const replay = seq.post(envelopeAt(3));
    gated.release();
    const receipts = await Promise.all(accepted);
    assert.equal(receipts.length, 10);
    assert.deepEqual(encodeReceipt(await replay), encodeReceipt(receipts[3]!));
    assert.equal((await seq.post(envelopeAt(10))).index, 10);
    await seq.close();
  }),
);

forBackends(
  'tokens are spent in the same commit as their post; double spends are refused; replays spend nothing',
  withRelay('tokens', async (f) => {
    const keyId = Buffer.from('tokenkey');
    const token = (n: number) => ({ tokenId: Buffer.alloc(32, n), keyId });
    const seq = await f.open();
    const gated = new GatedStorage(f.storage);
    const first = await seq.post(envelopeAt(1), { token: token(1) });
    assert.equal(await f.storage.isSpent(token(1).tokenId, keyId), true);
    assert.equal((await f.storage.lookupLeaf(first.leafHash))?.index, 0);

    await assert.rejects(
      seq.post(envelopeAt(2), { token: token(1) }),
      (e: unknown) => e instanceof VerifyError && e.reason === 'token-spent',
    );
    assert.equal(
      await f.storage.lookupLeaf(leafHash(envelopeAt(2))),
      undefined,
      'refused post leaves no entry',
    );

    // Concurrent posts with one token: exactly one is accepted.
    const results = await Promise.allSettled([
      seq.post(envelopeAt(3), { token: token(3) }),
      seq.post(envelopeAt(4), { token: token(3) }),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected'],
    );

    // A replay with a fresh token gets the original receipt and does not spend the token.
    const replay = await seq.post(envelopeAt(1), { token: token(5) });
    assert.deepEqual(encodeReceipt(replay), encodeReceipt(first));
    assert.equal(await f.storage.isSpent(token(5).tokenId, keyId), false);

    // The SpentTokenStore face: durable once true, false for a second spend.
    const spends = await Promise.all([
      seq.trySpend(token(6).tokenId, keyId),
      seq.trySpend(token(6).tokenId, keyId),
    ]);
    assert.deepEqual(spends, [true, false]);
    assert.equal(await f.storage.isSpent(token(6).tokenId, keyId), true);
    assert.equal(await seq.trySpend(token(1).tokenId, keyId), false);
    assert.equal(await f.storage.treeSize(), 2, 'spends alone add no entry');
    await assert.rejects(
      seq.post(envelopeAt(9), { token: { tokenId: new Uint8Array(0), keyId } }),
      UsageError,
    );
    await seq.close();
    assert.equal(gated.batches.length, 0);
  }),
);

forBackends(
  'bad envelopes are CodecErrors; a failed commit stops the sequencer (fail-stop) and rejects what was queued',
  withRelay('fail', async (f) => {
    const gated = new GatedStorage(f.storage);
    const seq = await f.open({ storage: gated, maxBatch: 2 });
    await assert.rejects(
      seq.post(new Uint8Array(ENVELOPE_BYTES - 1)),
      (e: unknown) => e instanceof CodecError && e.reason === 'envelope-bad-length',
    );
    await assert.rejects(seq.post('x' as unknown as Uint8Array), CodecError);
    await seq.post(envelopeAt(0));

    gated.hold();
    gated.failWith = new Error('EIO: the disk went away');
    const doomed = [seq.post(envelopeAt(1)), seq.post(envelopeAt(2)), seq.post(envelopeAt(3))];
    await until(() => gated.waiting === 1);
    const outcomes = Promise.allSettled(doomed);
    gated.release();
    for (const o of await outcomes) {
      assert.ok(
        o.status === 'rejected' && o.reason instanceof InternalError && o.reason.reason === 'ingest-failed',
      );
    }
    await assert.rejects(
      seq.post(envelopeAt(4)),
      (e: unknown) => e instanceof InternalError && e.reason === 'ingest-failed',
    );
    assert.equal(await f.storage.treeSize(), 1, 'nothing of the failed batch was written');
    await seq.close();
  }),
);

forBackends(
  'close() commits everything accepted (even within a long linger), then refuses posts',
  withRelay('close', async (f) => {
    const seq = await f.open({ lingerMs: 1000 });
    const pending = Array.from({ length: 50 }, (_, i) => seq.post(envelopeAt(i)));
    await seq.close();
    const receipts = await Promise.all(pending);
    assert.equal(receipts.length, 50);
    assert.equal(await f.storage.treeSize(), 50);
    await assert.rejects(
      seq.post(envelopeAt(99)),
      (e: unknown) => e instanceof UsageError && e.reason === 'sequencer-closed',
    );
    await seq.close();
  }),
);

forBackends(
  'restart: the reopened sequencer continues the same tree; every earlier checkpoint is consistent with later ones',
  withRelay('restart', async (f) => {
    const checkpoints: StoredCheckpoint[] = [];
    let seq = await f.open({ maxBatch: 16 });
    seq.subscribe((b) => checkpoints.push(b.checkpoint));
    await Promise.all(Array.from({ length: 100 }, (_, i) => seq.post(envelopeAt(i))));
    const rootBefore = seq.rootHash;
    await seq.close();

    await f.reopen();
    seq = await f.open({ maxBatch: 16 });
    assert.equal(seq.treeSize, 100);
    assert.deepEqual(seq.rootHash, rootBefore);
    assert.equal(seq.latestCheckpoint?.note, checkpoints.at(-1)?.note);
    seq.subscribe((b) => checkpoints.push(b.checkpoint));
    await Promise.all(Array.from({ length: 77 }, (_, i) => seq.post(envelopeAt(100 + i))));
    await seq.close();

    const last = checkpointOf(checkpoints.at(-1)!.note);
    assert.equal(last.size, 177);
    for (const cp of checkpoints) {
      const old = checkpointOf(cp.note);
      const proof = await computeWithNodes(f.storage, (r) => consistencyProof(r, size(old.size), size(177)));
      assert.equal(verifyConsistency(size(old.size), size(177), proof, old.root, last.root), true);
    }
  }),
);

forBackends(
  'open() refuses a storage whose tree does not hash to its latest checkpoint, and a mismatched config',
  withRelay('open', async (f) => {
    const seq = await f.open();
    await seq.post(envelopeAt(1));
    await seq.close();
    const lying = new GatedStorage(f.storage);
    const real = (await f.storage.latestCheckpoint())!;
    lying.latestCheckpoint = async () => ({ ...real, rootHash: Buffer.alloc(32) });
    await assert.rejects(
      f.open({ storage: lying }),
      (e: unknown) => e instanceof InternalError && e.reason === 'storage-inconsistent',
    );
    await assert.rejects(f.open({ signingKey: relayKey(9) }), UsageError);
    await assert.rejects(f.open({ envelopeBytes: 1024 }), UsageError);
    await assert.rejects(f.open({ maxBatch: 0 }), UsageError);

    // A node the frontier needs has gone missing from the file.
    const more = await f.open();
    await Promise.all([2, 3, 4].map((n) => more.post(envelopeAt(n))));
    await more.close();
    if (f.log.pg !== undefined) {
      const r = await sqlOn(f.log.pg.url, f.log.pg.schema, 'DELETE FROM nodes WHERE level = 2 AND idx = 0');
      assert.equal(r.rowCount, 1);
    } else {
      await f.storage.close();
      const db = new Database(join(f.log.dir!, DATABASE_FILE));
      assert.equal(db.prepare('DELETE FROM nodes WHERE level = 2 AND idx = 0').run().changes, 1);
      db.close();
    }
    await f.reopen();
    await assert.rejects(
      f.open(),
      (e: unknown) => e instanceof InternalError && e.reason === 'storage-inconsistent',
    );
  }),
);

forBackends(
  'receipt times never go backwards, even when the clock does',
  withRelay('clock', async (f) => {
    const times = [10_000, 9_000, 12_000, 11_000];
    let i = 0;
    const seq = await f.open({ now: () => times[Math.min(i++, times.length - 1)]! });
    const out: number[] = [];
    for (let n = 0; n < 4; n++) out.push((await seq.post(envelopeAt(n))).timeMs);
    await seq.close();
    assert.deepEqual(out, [10_000, 10_000, 12_000, 12_000]);
  }),
);

forBackends(
  'property: however posts are grouped into batches, the tree has the same root as one big batch',
  withRelay('property', async (f) => {
    let run = 0;
    const envelopes = Array.from({ length: 60 }, (_, i) => envelopeAt(i));
    const whole = await f.open({ maxBatch: 1024 });
    await Promise.all(envelopes.map((e) => whole.post(e)));
    await whole.close();
    const wholeRoot = (await f.storage.latestCheckpoint())!.rootHash;

    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 16 }),
        async (waves, maxBatch) => {
          const log = await f.backend.open(identity, `prop-${run++}`);
          const storage = log.storage;
          try {
            const seq = await Sequencer.open({
              storage,
              signingKey: key,
              envelopeBytes: ENVELOPE_BYTES,
              maxBatch,
              maxQueued: 1000,
              lingerMs: 0,
            });
            let at = 0;
            for (const wave of [...waves, envelopes.length]) {
              const take = envelopes.slice(at, at + wave);
              await Promise.all(take.map((e) => seq.post(e)));
              at += take.length;
              if (at >= envelopes.length) break;
            }
            await seq.close();
            assert.equal(await storage.treeSize(), 60);
            assert.deepEqual((await storage.latestCheckpoint())!.rootHash, wholeRoot);
            assert.deepEqual(seq.rootHash, wholeRoot);
          } finally {
            await log.cleanup();
          }
        },
      ),
      { numRuns: 15 },
    );
    assert.equal(
      verifyInclusion(
        leafHash(envelopes[42]!),
        42 as LogIndex,
        size(60),
        await computeWithNodes(f.storage, (nr) => inclusionProof(nr, 42 as LogIndex, size(60))),
        wholeRoot,
      ),
      true,
    );
  }),
);

test('two sequencers on one PostgreSQL log: one chain of indices and checkpoints, dedup and tokens across them, every entry announced by both in order', {
  skip: BACKENDS.find((b) => b.name === 'postgres')?.skip,
}, async () => {
  const backend = BACKENDS.find((b) => b.name === 'postgres')!;
  const log = await backend.open(identity, 'two');
  try {
    const other = await log.openAnother!();
    const open = (storage: RelayStorage) =>
      Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES, lingerMs: 1, maxBatch: 16 });
    const [a, b] = [await open(log.storage), await open(other)];
    const seen: [CommittedBatch[], CommittedBatch[]] = [[], []];
    a.subscribe((x) => seen[0].push(x));
    b.subscribe((x) => seen[1].push(x));

    // Interleaved waves at both: both commit, each on top of the other's head.
    const receipts: Receipt[] = [];
    for (let wave = 0; wave < 6; wave++) {
      const posts = Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).post(envelopeAt(wave * 20 + i)),
      );
      receipts.push(...(await Promise.all(posts)));
    }
    assert.deepEqual(
      [...receipts.map((r) => r.index)].sort((x, y) => x - y),
      Array.from({ length: 120 }, (_, i) => i),
      'one sequence of indices, no gap, no index twice',
    );
    for (const r of receipts) assert.equal(verifyReceipt(r, key.publicKey), true);

    // The same envelope at both at once: one entry, the same receipt, one of them a duplicate.
    const [x, y] = await Promise.all([a.submit(envelopeAt(500)), b.submit(envelopeAt(500))]);
    assert.deepEqual(encodeReceipt(x.receipt), encodeReceipt(y.receipt));
    assert.equal([x.duplicate, y.duplicate].filter((d) => !d).length, 1);
    // A replay at the other one of an old envelope: the original receipt.
    // (receipts[k] is the receipt of envelopeAt(k).)
    const k = receipts.findIndex((r) => r.index === 0);
    const replay = await b.submit(envelopeAt(k));
    assert.equal(replay.duplicate, true);
    assert.deepEqual(encodeReceipt(replay.receipt), encodeReceipt(receipts[k]!));

    // One token, two envelopes, two sequencers: exactly one post is accepted.
    const token = { tokenId: Buffer.alloc(32, 7), keyId: Buffer.from('tokenkey') };
    const spent = await Promise.allSettled([
      a.post(envelopeAt(600), { token }),
      b.post(envelopeAt(601), { token }),
    ]);
    assert.deepEqual(spent.map((s) => s.status).sort(), ['fulfilled', 'rejected']);
    const refused = spent.find((s) => s.status === 'rejected') as PromiseRejectedResult;
    assert.ok(refused.reason instanceof VerifyError && refused.reason.reason === 'token-spent');

    const total = await log.storage.treeSize();
    await until(() => a.treeSize === total && b.treeSize === total);
    assert.deepEqual(a.rootHash, b.rootHash);
    await Promise.all([a.close(), b.close()]);

    // Each sequencer announced every entry once, in log order (its own and the other's), and
    // every checkpoint it announced is consistent with the final tree.
    const final = checkpointOf((await log.storage.latestCheckpoint())!.note);
    for (const batches of seen) {
      const indices = batches.flatMap((bt) => bt.entries.map((e) => e.index as number));
      assert.deepEqual(
        indices,
        Array.from({ length: total }, (_, i) => i),
      );
      for (const bt of batches) {
        const cp = checkpointOf(bt.checkpoint.note);
        const proof = await computeWithNodes(log.storage, (r) =>
          consistencyProof(r, size(cp.size), size(final.size)),
        );
        assert.equal(verifyConsistency(size(cp.size), size(final.size), proof, cp.root, final.root), true);
      }
    }
  } finally {
    await log.cleanup();
  }
});

test('PostgreSQL: a sequencer whose LISTEN connection is cut reconnects and still learns of the other writer’s entries', {
  skip: BACKENDS.find((b) => b.name === 'postgres')?.skip,
}, async () => {
  const backend = BACKENDS.find((b) => b.name === 'postgres')!;
  const log = await backend.open(identity, 'listen-cut');
  try {
    const other = await log.openAnother!();
    const open = (storage: RelayStorage) =>
      Sequencer.open({ storage, signingKey: key, envelopeBytes: ENVELOPE_BYTES, lingerMs: 0 });
    const [a, b] = [await open(log.storage), await open(other)];
    const seenByB: number[] = [];
    b.subscribe((batch) => seenByB.push(...batch.entries.map((e) => e.index as number)));
    await a.post(envelopeAt(0));
    await until(() => b.treeSize === 1 && seenByB.length === 1);
    // Cut every LISTEN session of this log (the server ends them, as a network failure would).
    const cut = await sqlOn(
      log.pg!.url,
      log.pg!.schema,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`,
      [`LISTEN cwtch_log_${log.pg!.schema}`],
    );
    assert.equal(cut.rowCount, 2, 'both processes listened');
    for (let i = 1; i <= 5; i++) await a.post(envelopeAt(i));
    await until(() => b.treeSize === 6 && seenByB.length >= 6);
    assert.deepEqual(seenByB, [0, 1, 2, 3, 4, 5], 'every entry announced once, in order');
    assert.deepEqual(b.rootHash, a.rootHash);
    await Promise.all([a.close(), b.close()]);
  } finally {
    await log.cleanup();
  }
});
