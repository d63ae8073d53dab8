/**
 * The relay's per-batch tlog-proof formatter (src/log/tlog-proof.ts batchTlogProofEncoder over
 * src/log/tree.ts batchAuditPathsUnsafe) against the one-proof reference: for any tree before a
 * batch and any batch, the bytes of every entry's proof are byte for byte formatTlogProof of
 * inclusionProof from the whole tree's store, it parses and verifies under the checkpoint; and the
 * shared node buffers it encodes once are not changed by it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { UsageError } from '../../src/errors.ts';
import { signCheckpoint } from '../../src/log/checkpoint.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../src/log/hash.ts';
import {
  batchTlogProofEncoder,
  formatTlogProof,
  parseTlogProof,
  VerifiedCheckpointCache,
  verifyTlogProof,
} from '../../src/log/tlog-proof.ts';
import {
  appendLeaves,
  batchAuditPathsUnsafe,
  emptyFrontier,
  InMemoryNodeStore,
  inclusionProof,
} from '../../src/log/tree.ts';

const key = signingKeyPairFromSeed(Buffer.alloc(32, 0x61));
const ORIGIN = 'relay.example/log';

test('property: each proof of a batch equals formatTlogProof of the reference path, and verifies', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 130 }), (oldSize, batch) => {
      const n = oldSize + batch;
      const leaves = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`envelope ${i}`)));
      const before = appendLeaves(emptyFrontier(), leaves.slice(0, oldSize));
      const after = appendLeaves(before.frontier, leaves.slice(oldSize));
      const store = new InMemoryNodeStore();
      store.put(before.newNodes);
      store.put(after.newNodes);
      store.put(leaves.map((hash, index) => ({ level: 0, index, hash })));
      const size = n as TreeSize;
      const note = signCheckpoint({ origin: ORIGIN, size, rootHash: after.root }, ORIGIN, key.secretKey);
      const snapshot = after.newNodes.map((node) => Buffer.from(node.hash));
      const prove = batchTlogProofEncoder(batchAuditPathsUnsafe(before.frontier, after.newNodes, size), note);
      const cache = new VerifiedCheckpointCache();
      // Last to first and then again: the encoded nodes a proof reuses must serve any order.
      const order = [...Array.from({ length: batch }, (_, i) => n - 1 - i), oldSize, n - 1];
      for (const m of order) {
        const index = m as LogIndex;
        const bytes = prove(index);
        const reference = formatTlogProof({
          index,
          proof: inclusionProof(store, index, size),
          checkpoint: note,
        });
        assert.deepEqual(bytes, Buffer.from(reference, 'utf8'));
        verifyTlogProof(parseTlogProof(bytes), leaves[m]!, ORIGIN, key.publicKey, cache);
      }
      assert.deepEqual(
        after.newNodes.map((node) => Buffer.from(node.hash)),
        snapshot,
        'the batch nodes are unchanged',
      );
      assert.throws(() => prove(n as LogIndex), UsageError);
    }),
    { numRuns: 120 },
  );
});

test('the encoder refuses a checkpoint that is not a string, and a path hash that is not 32 bytes', () => {
  assert.throws(() => batchTlogProofEncoder(() => [], 7 as unknown as string), UsageError);
  const bad = batchTlogProofEncoder(() => [Buffer.alloc(31)], 'note');
  assert.throws(() => bad(0 as LogIndex), UsageError);
});
