/**
 * Split-view (fork) evidence and the checkpoint consistency check: a relay that keeps two trees
 * and signs checkpoints of both must be caught, with evidence a third party can verify offline.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { CodecError, InconsistencyError, UsageError, VerifyError } from '../../src/errors.ts';
import {
  appendLeaves,
  type ConsistencyFailureEvidence,
  checkCheckpointConsistency,
  consistencyProof,
  decodeLogEvidence,
  emptyFrontier,
  encodeLogEvidence,
  InMemoryNodeStore,
  leafHash,
  rootAt,
  type SplitViewEvidence,
  signCheckpoint,
  splitViewFromNotes,
  splitViewFromTree,
  type TreeSize,
  treeSize,
  verifySplitViewEvidence,
} from '../../src/log/index.ts';

const relay = signingKeyPairFromSeed(Buffer.alloc(32, 0x21));
const other = signingKeyPairFromSeed(Buffer.alloc(32, 0x22));
const NAME = 'relay.example/log';

/** A tree whose leaves are `shared` common leaves then `tag`-specific ones. */
function forkedTree(shared: number, total: number, tag: string): InMemoryNodeStore {
  const store = new InMemoryNodeStore();
  const leaves = Array.from({ length: total }, (_, i) =>
    leafHash(Buffer.from(i < shared ? `leaf ${i}` : `${tag} ${i}`)),
  );
  store.put(appendLeaves(emptyFrontier(), leaves).newNodes);
  return store;
}

function checkpoint(store: InMemoryNodeStore, size: number, key = relay, origin = NAME): string {
  return signCheckpoint(
    { origin, size: treeSize(size), rootHash: rootAt(store, treeSize(size)) },
    NAME,
    key.secretKey,
  );
}

function inconsistency(fn: () => unknown): InconsistencyError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InconsistencyError) return e;
    throw e;
  }
  assert.fail('expected an InconsistencyError');
}

const honest = forkedTree(40, 40, 'x');
// The relay's two views agree on the first 5 entries and differ after.
const viewA = forkedTree(5, 40, 'A');
const viewB = forkedTree(5, 40, 'B');

test('consistent checkpoints pass, in either order, and come back smaller first', () => {
  const n7 = checkpoint(honest, 7);
  const n23 = checkpoint(honest, 23);
  const proof = consistencyProof(honest, treeSize(7), treeSize(23));
  const r = checkCheckpointConsistency(n7, n23, proof, NAME, relay.publicKey);
  assert.deepEqual([r.older.size, r.newer.size], [7, 23]);
  const swapped = checkCheckpointConsistency(n23, n7, proof, NAME, relay.publicKey);
  assert.deepEqual([swapped.older.size, swapped.newer.size], [7, 23]);
  checkCheckpointConsistency(n7, n7, [], NAME, relay.publicKey);
  assert.equal(splitViewFromNotes(n7, checkpoint(honest, 7), NAME, relay.publicKey), null);
  assert.equal(splitViewFromTree(n7, n23, honest, NAME, relay.publicKey), null);
});

test('same size, different roots: InconsistencyError with same-size evidence anyone can verify', () => {
  const a = checkpoint(viewA, 9);
  const b = checkpoint(viewB, 9);
  const e = inconsistency(() => checkCheckpointConsistency(a, b, [], NAME, relay.publicKey));
  assert.equal(e.code, 'inconsistency');
  assert.equal(e.reason, 'split-view');
  const evidence = e.evidence as ConsistencyFailureEvidence;
  assert.equal(evidence.kind, 'consistency-failure');
  assert.deepEqual(evidence.splitView, { kind: 'same-size', notes: [a, b] });
  const view = verifySplitViewEvidence(evidence.splitView!, NAME, relay.publicKey);
  assert.equal(view.a.size, 9);
  // A proof of the wrong shape does not hide a same-size fork.
  const e2 = inconsistency(() => checkCheckpointConsistency(a, b, [Buffer.alloc(32)], NAME, relay.publicKey));
  assert.equal(e2.reason, 'split-view');
  assert.deepEqual(splitViewFromNotes(a, b, NAME, relay.publicKey), evidence.splitView);
});

test("a relay's own consistency proof convicts it when the older size is not a power of two", () => {
  const older = checkpoint(viewA, 7);
  const newer = checkpoint(viewB, 23);
  // The relay answers honestly for view B, the tree it now serves.
  const proof = consistencyProof(viewB, treeSize(7), treeSize(23));
  const e = inconsistency(() => checkCheckpointConsistency(older, newer, proof, NAME, relay.publicKey));
  assert.equal(e.reason, 'split-view');
  const evidence = e.evidence as ConsistencyFailureEvidence;
  assert.deepEqual(evidence.proof, proof);
  const split = evidence.splitView!;
  assert.equal(split.kind, 'prefix');
  assert.deepEqual(split.kind === 'prefix' && split.prefixRoot, rootAt(viewB, treeSize(7)));
  const view = verifySplitViewEvidence(split, NAME, relay.publicKey);
  assert.deepEqual([view.a.size, view.b.size], [7, 23]);
});

test('when the older size is a power of two, a failed proof is recorded and the tree proves the fork', () => {
  const older = checkpoint(viewA, 8);
  const newer = checkpoint(viewB, 23);
  const proof = consistencyProof(viewB, treeSize(8), treeSize(23));
  const e = inconsistency(() => checkCheckpointConsistency(older, newer, proof, NAME, relay.publicKey));
  assert.equal(e.reason, 'consistency-proof-failed');
  const evidence = e.evidence as ConsistencyFailureEvidence;
  assert.equal(evidence.splitView, undefined);
  assert.deepEqual([evidence.older, evidence.newer], [older, newer]);
  // A member that synced view B's entries rebuilds the tree and proves the fork itself.
  const split = splitViewFromTree(older, newer, viewB, NAME, relay.publicKey);
  assert.ok(split !== null && split.kind === 'prefix');
  verifySplitViewEvidence(split, NAME, relay.publicKey);
});

test('a proof of the wrong shape is an InconsistencyError that keeps the proof, not a CodecError', () => {
  const older = checkpoint(honest, 7);
  const newer = checkpoint(honest, 23);
  const junk = [Buffer.alloc(32, 1)];
  const e = inconsistency(() => checkCheckpointConsistency(older, newer, junk, NAME, relay.publicKey));
  assert.equal(e.reason, 'consistency-proof-failed');
  assert.deepEqual((e.evidence as ConsistencyFailureEvidence).proof, junk);
  assert.throws(
    () => checkCheckpointConsistency(older, newer, 'x' as never, NAME, relay.publicKey),
    UsageError,
  );
  // Right shape, wrong hashes: a failure to prove, and no fork may be claimed from it.
  const shaped = consistencyProof(honest, treeSize(7), treeSize(23)).map((_, i) => Buffer.alloc(32, i + 1));
  const e2 = inconsistency(() => checkCheckpointConsistency(older, newer, shaped, NAME, relay.publicKey));
  assert.equal(e2.reason, 'consistency-proof-failed');
  assert.equal((e2.evidence as ConsistencyFailureEvidence).splitView, undefined);
});

test('checkpoints not signed by the key, or of different origins, are VerifyErrors, not evidence', () => {
  const good = checkpoint(honest, 7);
  const foreign = checkpoint(honest, 23, other);
  const proof = consistencyProof(honest, treeSize(7), treeSize(23));
  assert.throws(() => checkCheckpointConsistency(good, foreign, proof, NAME, relay.publicKey), VerifyError);
  const elsewhere = checkpoint(honest, 23, relay, 'other.example/log');
  assert.throws(
    () => checkCheckpointConsistency(good, elsewhere, proof, NAME, relay.publicKey),
    (e: unknown) => e instanceof VerifyError && e.reason === 'origin-mismatch',
  );
});

test('verifySplitViewEvidence refuses evidence that proves nothing', () => {
  const a9 = checkpoint(viewA, 9);
  const b9 = checkpoint(viewB, 9);
  const notFork = (e: unknown) => e instanceof VerifyError && e.reason === 'evidence-not-a-fork';
  assert.throws(
    () => verifySplitViewEvidence({ kind: 'same-size', notes: [a9, a9] }, NAME, relay.publicKey),
    notFork,
  );
  assert.throws(
    () =>
      verifySplitViewEvidence(
        { kind: 'same-size', notes: [a9, checkpoint(viewB, 10)] },
        NAME,
        relay.publicKey,
      ),
    notFork,
  );
  assert.throws(
    () => verifySplitViewEvidence({ kind: 'same-size', notes: [a9, b9] }, NAME, other.publicKey),
    VerifyError,
  );
  const b9other = checkpoint(viewB, 9, other);
  assert.throws(
    () => verifySplitViewEvidence({ kind: 'same-size', notes: [a9, b9other] }, NAME, relay.publicKey),
    VerifyError,
  );

  const older = checkpoint(viewA, 7);
  const newer = checkpoint(viewB, 23);
  const prefixRoot = rootAt(viewB, treeSize(7));
  const proof = consistencyProof(viewB, treeSize(7), treeSize(23));
  const valid: SplitViewEvidence = { kind: 'prefix', older, newer, prefixRoot, proof };
  verifySplitViewEvidence(valid, NAME, relay.publicKey);
  assert.throws(
    () =>
      verifySplitViewEvidence({ ...valid, prefixRoot: rootAt(viewA, treeSize(7)) }, NAME, relay.publicKey),
    notFork,
  );
  const badProof = proof.map((h, i) => (i === 0 ? Buffer.alloc(32) : h));
  assert.throws(() => verifySplitViewEvidence({ ...valid, proof: badProof }, NAME, relay.publicKey), notFork);
  assert.throws(
    () => verifySplitViewEvidence({ ...valid, older: newer, newer: older }, NAME, relay.publicKey),
    notFork,
  );
  assert.throws(
    () => verifySplitViewEvidence({ ...valid, prefixRoot: Buffer.alloc(3) }, NAME, relay.publicKey),
    CodecError,
  );
  assert.throws(
    () => verifySplitViewEvidence({ ...valid, proof: proof.slice(1) }, NAME, relay.publicKey),
    CodecError,
  );
  assert.throws(() => verifySplitViewEvidence({ kind: 'other' } as never, NAME, relay.publicKey), UsageError);
});

test('splitViewFromTree refuses a tree that is not the newer checkpoint’s', () => {
  const older = checkpoint(viewA, 7);
  const newer = checkpoint(viewB, 23);
  assert.throws(() => splitViewFromTree(older, newer, viewA, NAME, relay.publicKey), UsageError);
  assert.throws(() => splitViewFromTree(newer, older, viewB, NAME, relay.publicKey), UsageError);
});

test('evidence encodes to canonical JSON and decodes strictly', () => {
  const older = checkpoint(viewA, 7);
  const newer = checkpoint(viewB, 23);
  const proof = consistencyProof(viewB, treeSize(7), treeSize(23));
  const e = inconsistency(() => checkCheckpointConsistency(older, newer, proof, NAME, relay.publicKey));
  const evidence = e.evidence as ConsistencyFailureEvidence;
  const text = encodeLogEvidence(evidence);
  const back = decodeLogEvidence(text);
  assert.deepEqual(back, evidence);
  assert.ok(back.kind === 'consistency-failure');
  verifySplitViewEvidence(back.splitView!, NAME, relay.publicKey);

  const same: SplitViewEvidence = { kind: 'same-size', notes: [checkpoint(viewA, 9), checkpoint(viewB, 9)] };
  assert.deepEqual(decodeLogEvidence(encodeLogEvidence(same)), same);

  const parsed = JSON.parse(text) as Record<string, unknown>;
  const bad = [
    ` ${text}`,
    JSON.stringify(parsed, null, 1),
    JSON.stringify({ ...parsed, extra: 1 }),
    JSON.stringify({ ...parsed, type: 'other' }),
    JSON.stringify({ ...parsed, kind: 'nope' }),
    JSON.stringify({ ...parsed, proof: ['AAAA'] }),
    JSON.stringify({ ...parsed, proof: [Buffer.alloc(32).toString('base64url')] }),
    JSON.stringify({ ...parsed, older: 'not a note' }),
    JSON.stringify({
      ...parsed,
      splitView: { ...(parsed.splitView as object), kind: 'consistency-failure' },
    }),
    '[]',
    'null',
    '{',
    'x'.repeat(100_000),
  ];
  for (const b of bad) assert.throws(() => decodeLogEvidence(b), CodecError, b.slice(0, 80));
});

test('property: any fork point and sizes of two diverging views is caught and proven', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 30 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      (shared, s1, s2) => {
        const [m, n] = s1 <= s2 ? [s1, s2] : [s2, s1];
        if (n <= shared) return; // both sizes inside the common history: no fork to see
        const a = forkedTree(shared, 40, 'A');
        const b = forkedTree(shared, 40, 'B');
        const older = checkpoint(a, m);
        const newer = checkpoint(b, n);
        const proof = consistencyProof(b, treeSize(m), treeSize(n) as TreeSize);
        if (m <= shared) {
          checkCheckpointConsistency(older, newer, proof, NAME, relay.publicKey);
          return;
        }
        const e = inconsistency(() => checkCheckpointConsistency(older, newer, proof, NAME, relay.publicKey));
        const evidence = e.evidence as ConsistencyFailureEvidence;
        const split =
          evidence.splitView ?? splitViewFromTree(older, newer, b, NAME, relay.publicKey) ?? undefined;
        assert.ok(split !== undefined, 'a member holding the newer tree can always prove the fork');
        verifySplitViewEvidence(
          decodeLogEvidence(encodeLogEvidence(split)) as SplitViewEvidence,
          NAME,
          relay.publicKey,
        );
      },
    ),
    { numRuns: 150 },
  );
});
