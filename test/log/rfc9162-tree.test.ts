/**
 * RFC 9162 §2.1 tree hashing, the frontier, and proofs built from stored nodes: published
 * vectors, the storage-node sets of transparency-dev, a naive reference, and sizes past 2^32.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { InternalError, isCwtchError, UsageError } from '../../src/errors.ts';
import {
  appendLeaves,
  batchInclusionProver,
  batchNodeReader,
  consistencyProof,
  emptyFrontier,
  emptyRoot,
  frontierFromStore,
  InMemoryNodeStore,
  inclusionProof,
  leafHash,
  logIndex,
  type NodeHashReader,
  nodeHash,
  rootAt,
  rootFromFrontier,
  type TreeSize,
  treeSize,
  verifyConsistency,
  verifyInclusion,
} from '../../src/log/index.ts';
import { buildLog, hex, loadVector, SparseTree } from './helpers.ts';
import { refConsistencyProof, refInclusionProof, refRoot } from './rfc9162-reference.ts';

interface HasherVectors {
  emptyRoot: string;
  leaves: { dataHex: string; hash: string }[];
}
interface TreeVectors {
  leaves: string[];
  roots: string[];
}
interface StorageVectors {
  inclusion: { size: number; index: number; nodes: [number, number][] }[];
  consistency: { size1: number; size2: number; nodes: [number, number][] }[];
}

const hasher = loadVector<HasherVectors>('rfc6962-hasher.json');
const tree = loadVector<TreeVectors>('rfc6962-tree.json');
const storage = loadVector<StorageVectors>('storage-nodes.json');

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const size = (n: number): TreeSize => treeSize(n);

test('RFC 6962 hasher vectors: empty tree, empty leaf, leaf', () => {
  assert.equal(toHex(emptyRoot()), hasher.emptyRoot);
  for (const v of hasher.leaves) assert.equal(toHex(leafHash(hex(v.dataHex))), v.hash);
});

test('leafHash takes the short and the long input path to the same SHA-256(0x00 ‖ data)', () => {
  for (const n of [0, 1, 509, 510, 511, 512, 4096]) {
    const data = Buffer.alloc(n, n & 0xff);
    const want = createHash('sha256').update(Uint8Array.of(0)).update(data).digest('hex');
    assert.equal(toHex(leafHash(data)), want, `length ${n}`);
  }
});

test('nodeHash is SHA-256(0x01 ‖ left ‖ right) and asserts 32-byte children', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (l, r) => {
        const want = createHash('sha256').update(Uint8Array.of(1)).update(l).update(r).digest('hex');
        assert.equal(toHex(nodeHash(l, r)), want);
      },
    ),
  );
  assert.throws(() => nodeHash(new Uint8Array(31), new Uint8Array(32)), UsageError);
  assert.throws(() => nodeHash(new Uint8Array(32), new Uint8Array(33)), /right must be 32 bytes/);
});

test('emptyRoot hands out copies', () => {
  const a = emptyRoot();
  a[0] = 0;
  assert.equal(toHex(emptyRoot()), hasher.emptyRoot);
});

test('logIndex and treeSize accept safe non-negative integers only', () => {
  assert.equal(logIndex(0), 0);
  assert.equal(treeSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
    assert.throws(() => logIndex(bad), UsageError);
    assert.throws(() => treeSize(bad, 'checkpoint.size'), /checkpoint\.size must be/);
  }
});

test('RFC 6962 test tree: roots of sizes 1..8, one leaf at a time and in one batch', () => {
  const leaves = tree.leaves.map((l) => leafHash(hex(l)));
  let frontier = emptyFrontier();
  assert.equal(toHex(rootFromFrontier(frontier)), hasher.emptyRoot);
  leaves.forEach((leaf, i) => {
    const r = appendLeaves(frontier, [leaf]);
    frontier = r.frontier;
    assert.equal(toHex(r.root), tree.roots[i], `size ${i + 1}`);
    assert.equal(toHex(rootFromFrontier(frontier)), tree.roots[i]);
  });
  const batch = appendLeaves(emptyFrontier(), leaves);
  assert.equal(toHex(batch.root), tree.roots[7]);
  assert.deepEqual(batch.frontier, frontier);

  const store = new InMemoryNodeStore();
  store.put(batch.newNodes);
  assert.equal(toHex(rootAt(store, size(0))), hasher.emptyRoot);
  tree.roots.forEach((root, i) => {
    assert.equal(toHex(rootAt(store, size(i + 1))), root);
  });
});

test('appendLeaves emits every completed perfect subtree exactly once, leaves included', () => {
  const leaves = tree.leaves.map((l) => leafHash(hex(l)));
  const r = appendLeaves(emptyFrontier(), leaves);
  const coords = r.newNodes.map((n) => `${n.level}/${n.index}`);
  assert.deepEqual(coords, [
    '0/0',
    '0/1',
    '1/0',
    '0/2',
    '0/3',
    '1/1',
    '2/0',
    '0/4',
    '0/5',
    '1/2',
    '0/6',
    '0/7',
    '1/3',
    '2/1',
    '3/0',
  ]);
  const root8 = r.newNodes.at(-1)!;
  assert.equal(toHex(root8.hash), tree.roots[7]);
});

test('appendLeaves keeps its own copy of a trailing leaf and copies proofs out of the store', () => {
  const leaf = leafHash(Buffer.from('x'));
  const r = appendLeaves(emptyFrontier(), [leaf]);
  leaf.fill(0);
  assert.notEqual(toHex(r.frontier.hashes[0]!), toHex(leaf));

  const { store } = buildLog(4);
  const proof = inclusionProof(store, logIndex(0), size(4));
  proof[0]!.fill(0);
  assert.notEqual(toHex(store.getNode(0, 1)!), toHex(proof[0]!));
});

test('storage nodes read per proof match transparency-dev proof_test.go exactly', () => {
  const { store } = buildLog(128);
  const recording = (): NodeHashReader & { reads: Set<string> } => {
    const reads = new Set<string>();
    return {
      reads,
      getNode(level, index) {
        reads.add(`${level}/${index}`);
        return store.getNode(level, index);
      },
    };
  };
  const asSet = (nodes: [number, number][]): Set<string> => new Set(nodes.map(([l, i]) => `${l}/${i}`));
  for (const v of storage.inclusion) {
    const r = recording();
    inclusionProof(r, logIndex(v.index), size(v.size));
    assert.deepEqual(r.reads, asSet(v.nodes), `inclusion ${v.index} in ${v.size}`);
  }
  for (const v of storage.consistency) {
    const r = recording();
    consistencyProof(r, size(v.size1), size(v.size2));
    assert.deepEqual(r.reads, asSet(v.nodes), `consistency ${v.size1} to ${v.size2}`);
  }
});

test('property: roots and frontiers match the naive RFC 9162 reference for any batching', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 300 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
      (n, batches) => {
        const log = buildLog(n, batches);
        assert.equal(toHex(rootFromFrontier(log.frontier)), toHex(refRoot(log.leafHashes)));
        assert.deepEqual(frontierFromStore(log.store, size(n)), log.frontier);
        for (const s of [0, 1, Math.floor(n / 3), n - 1, n].filter((s) => s >= 0 && s <= n)) {
          assert.equal(toHex(rootAt(log.store, size(s))), toHex(refRoot(log.leafHashes.slice(0, s))));
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('property: restore — frontierFromStore after each batch equals the incremental frontier', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 70 }), { minLength: 1, maxLength: 12 }), (batches) => {
      const store = new InMemoryNodeStore();
      let frontier = emptyFrontier();
      let i = 0;
      for (const b of batches) {
        const leaves = Array.from({ length: b }, () => leafHash(Buffer.from(`leaf ${i++}`)));
        const r = appendLeaves(frontier, leaves);
        store.put(r.newNodes);
        frontier = r.frontier;
        const restored = frontierFromStore(store, frontier.size);
        assert.deepEqual(restored, frontier);
        // A restarted relay continues from the restored frontier to the same root.
        const next = leafHash(Buffer.from('next'));
        assert.deepEqual(appendLeaves(restored, [next]).root, appendLeaves(frontier, [next]).root);
      }
    }),
    { numRuns: 60 },
  );
});

test('property: inclusion proofs from stored nodes equal the reference PATH and verify', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }).chain((n) =>
        fc.tuple(
          fc.constant(n),
          fc
            .integer({ min: 1, max: n })
            .chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s - 1 }))),
        ),
      ),
      ([n, [s, m]]) => {
        const log = buildLog(n, [7, 1, 30]);
        const proof = inclusionProof(log.store, logIndex(m), size(s));
        const ref = refInclusionProof(m, log.leafHashes.slice(0, s));
        assert.deepEqual(proof.map(toHex), ref.map(toHex));
        assert.ok(
          verifyInclusion(log.leafHashes[m]!, logIndex(m), size(s), proof, rootAt(log.store, size(s))),
        );
      },
    ),
    { numRuns: 100 },
  );
});

test("property: a batch's proofs from the old frontier plus its new nodes alone equal the reference PATH", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 80 }), (oldSize, batch) => {
      const leaves = Array.from({ length: oldSize + batch }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
      const before = appendLeaves(emptyFrontier(), leaves.slice(0, oldSize));
      const after = appendLeaves(before.frontier, leaves.slice(oldSize));
      // Only the old frontier and the batch's nodes: no node of the old tree below its frontier.
      const reader = batchNodeReader(before.frontier, after.newNodes);
      const n = oldSize + batch;
      // The batch prover shares the right-edge hashes between proofs: asked last to first, so a
      // range it hashed for one proof serves the next; each proof must still equal the reference.
      const prove = batchInclusionProver(before.frontier, after.newNodes, size(n));
      for (let m = n - 1; m >= oldSize; m--) {
        const proof = inclusionProof(reader, logIndex(m), size(n));
        const ref = refInclusionProof(m, leaves).map(toHex);
        assert.deepEqual(proof.map(toHex), ref);
        assert.ok(verifyInclusion(leaves[m]!, logIndex(m), size(n), proof, after.root));
        assert.deepEqual(prove(logIndex(m)).map(toHex), ref);
      }
      assert.throws(() => prove(logIndex(n)), UsageError);
    }),
    { numRuns: 150 },
  );
});

test('property: consistency proofs from stored nodes equal the reference PROOF and verify', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 300 }).chain((n) =>
        fc.tuple(
          fc.constant(n),
          fc
            .integer({ min: 0, max: n })
            .chain((s2) => fc.tuple(fc.integer({ min: 0, max: s2 }), fc.constant(s2))),
        ),
      ),
      ([n, [s1, s2]]) => {
        const log = buildLog(n, [3, 64]);
        const proof = consistencyProof(log.store, size(s1), size(s2));
        const ref = refConsistencyProof(s1, log.leafHashes.slice(0, s2));
        assert.deepEqual(proof.map(toHex), s1 === s2 ? [] : ref.map(toHex));
        assert.ok(
          verifyConsistency(
            size(s1),
            size(s2),
            proof,
            rootAt(log.store, size(s1)),
            rootAt(log.store, size(s2)),
          ),
        );
      },
    ),
    { numRuns: 100 },
  );
});

test('exhaustive up to 40 leaves: every inclusion and consistency proof verifies', () => {
  const log = buildLog(40);
  const roots = Array.from({ length: 41 }, (_, s) => rootAt(log.store, size(s)));
  for (let s = 1; s <= 40; s++) {
    for (let m = 0; m < s; m++) {
      const proof = inclusionProof(log.store, logIndex(m), size(s));
      assert.ok(verifyInclusion(log.leafHashes[m]!, logIndex(m), size(s), proof, roots[s]!), `${m} in ${s}`);
    }
  }
  for (let s2 = 0; s2 <= 40; s2++) {
    for (let s1 = 0; s1 <= s2; s1++) {
      const proof = consistencyProof(log.store, size(s1), size(s2));
      assert.ok(verifyConsistency(size(s1), size(s2), proof, roots[s1]!, roots[s2]!), `${s1} to ${s2}`);
    }
  }
});

test('sizes past 2^32 up to 2^53 - 1: frontier, roots and proofs stay consistent', () => {
  const big = [2 ** 32 + 1, 2 ** 33 + 7, 2 ** 45 + 12345, Number.MAX_SAFE_INTEGER];
  const specials = [0, 5, 2 ** 32 - 1, 2 ** 32, 2 ** 33 + 3, 2 ** 45 + 100, Number.MAX_SAFE_INTEGER - 2];
  const sparse = new SparseTree(specials);
  for (const s of big) {
    const frontier = frontierFromStore(sparse, size(s));
    const root = rootAt(sparse, size(s));
    assert.deepEqual(rootFromFrontier(frontier), root);
    for (const m of specials.filter((m) => m < s)) {
      const proof = inclusionProof(sparse, logIndex(m), size(s));
      assert.ok(verifyInclusion(sparse.leaf(m), logIndex(m), size(s), proof, root), `${m} in ${s}`);
      assert.equal(verifyInclusion(sparse.leaf(m + 1), logIndex(m), size(s), proof, root), false);
    }
  }
  for (let i = 0; i < big.length; i++) {
    for (let j = i; j < big.length; j++) {
      const [s1, s2] = [big[i]!, big[j]!];
      const proof = consistencyProof(sparse, size(s1), size(s2));
      assert.ok(
        verifyConsistency(size(s1), size(s2), proof, rootAt(sparse, size(s1)), rootAt(sparse, size(s2))),
      );
    }
  }
  // Appending filler leaves to a restored frontier reproduces the sparse tree's own nodes.
  const s = 2 ** 33 + 7;
  const filler = sparse.leaf(1);
  const r = appendLeaves(
    frontierFromStore(sparse, size(s)),
    Array.from({ length: 9 }, () => filler),
  );
  assert.deepEqual(r.root, rootAt(sparse, size(s + 9)));
  for (const node of r.newNodes) assert.deepEqual(node.hash, sparse.getNode(node.level, node.index));
});

test('frontiers and appends reject malformed input with UsageError', () => {
  const { frontier } = buildLog(3);
  assert.throws(() => appendLeaves({ size: size(3), hashes: frontier.hashes.slice(1) }, []), UsageError);
  assert.throws(() => appendLeaves({ size: 2.5 as TreeSize, hashes: [] }, []), UsageError);
  assert.throws(() => appendLeaves(frontier, [new Uint8Array(31)]), /leafHashes\[0\] must be 32 bytes/);
  assert.throws(() => appendLeaves({ size: size(Number.MAX_SAFE_INTEGER), hashes: [] }, []), UsageError);
  const full = frontierFromStore(new SparseTree([]), size(Number.MAX_SAFE_INTEGER));
  assert.throws(() => appendLeaves(full, [leafHash(Buffer.from('x'))]), /exceed 2\^53/);
  assert.throws(() => rootFromFrontier({ size: size(1), hashes: [new Uint8Array(5)] }), UsageError);
});

test('proof construction: bad ranges are UsageError, a store missing nodes is InternalError', () => {
  const { store } = buildLog(8);
  assert.throws(() => inclusionProof(store, logIndex(8), size(8)), UsageError);
  assert.throws(() => inclusionProof(store, logIndex(0), size(0)), UsageError);
  assert.throws(() => consistencyProof(store, size(5), size(4)), UsageError);
  assert.throws(() => inclusionProof(store, -1 as never, size(4)), UsageError);
  const err = (() => {
    try {
      rootAt(store, size(9));
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof InternalError && isCwtchError(err));
  assert.equal(err.reason, 'missing-node');
  assert.throws(() => frontierFromStore(store, size(16)), InternalError);
  assert.throws(
    () => inclusionProof({ getNode: () => new Uint8Array(3) }, logIndex(0), size(2)),
    InternalError,
  );
});

test('InMemoryNodeStore.put validates coordinates and hash length', () => {
  const store = new InMemoryNodeStore();
  assert.throws(() => store.put([{ level: -1, index: 0, hash: new Uint8Array(32) }]), UsageError);
  assert.throws(() => store.put([{ level: 64, index: 0, hash: new Uint8Array(32) }]), UsageError);
  assert.throws(() => store.put([{ level: 0, index: 0.5, hash: new Uint8Array(32) }]), UsageError);
  assert.throws(() => store.put([{ level: 0, index: 0, hash: new Uint8Array(16) }]), UsageError);
  assert.equal(store.getNode(0, 0), undefined);
});
