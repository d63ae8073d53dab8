/**
 * The client's copy of a relay's tree (src/client/sync/log-mirror.ts) in a real profile store:
 * roots and consistency proofs agree with the log's reference tree (src/log/tree.ts over every
 * node in memory) at every size, across chunk boundaries, after a reopen and after truncation;
 * and resume positions are rounded as docs/THREAT-MODEL.md §2 states.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProfileStore } from '../../src/client/store/profile-store.ts';
import { LogMirror, resumeStart } from '../../src/client/sync/log-mirror.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { leafHash, type TreeSize } from '../../src/log/hash.ts';
import { verifyConsistency } from '../../src/log/proof.ts';
import {
  appendLeaves,
  consistencyProof,
  emptyFrontier,
  InMemoryNodeStore,
  rootAt,
} from '../../src/log/tree.ts';

process.env.CWTCH_GROUPS_KDF = 'test';
const PASS = 'log mirror test passphrase';
const URL = 'ws://127.0.0.1:9/';

test('roots and proofs match the reference tree across chunks, a reopen and a truncation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-mirror-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const N = 2600; // beyond two chunks of 1024
  const leaves = Array.from({ length: N }, () => leafHash(randomBytes(64)));
  const reference = new InMemoryNodeStore();
  reference.put(appendLeaves(emptyFrontier(), leaves).newNodes);

  let store = await ProfileStore.create(dir, PASS);
  let mirror = LogMirror.load(store, URL);
  for (let i = 0; i < 1500; i++) mirror.append(store, leaves[i]!);
  store.transaction(() => mirror.save(store));
  store.close();
  store = await ProfileStore.open(dir, PASS);
  mirror = LogMirror.load(store, URL);
  assert.equal(mirror.size, 1500, 'the saved size comes back');
  for (let i = 1500; i < N; i++) mirror.append(store, leaves[i]!);
  const sizes = [1, 2, 3, 255, 256, 1023, 1024, 1025, 1500, 2047, 2048, 2049, 2599, 2600];
  for (const a of sizes) {
    assert.deepEqual(mirror.rootAt(store, a), rootAt(reference, a as TreeSize), `root at ${a}`);
    for (const b of sizes.filter((s) => s >= a)) {
      const proof = mirror.consistencyProof(store, a, b);
      assert.deepEqual(proof, consistencyProof(reference, a as TreeSize, b as TreeSize), `proof ${a}→${b}`);
      assert.ok(
        verifyConsistency(
          a as TreeSize,
          b as TreeSize,
          proof,
          rootAt(reference, a as TreeSize),
          rootAt(reference, b as TreeSize),
        ),
      );
    }
  }
  assert.deepEqual(mirror.leaf(store, 1700), leaves[1700]);
  assert.equal(mirror.leaf(store, N), undefined);
  assert.throws(() => mirror.rootAt(store, N + 1), { name: 'InternalError' });

  // Cut back, replace the tail with other leaves: the copy is the new log's tree.
  mirror.truncate(store, 1100);
  assert.equal(mirror.size, 1100);
  const other = Array.from({ length: 900 }, () => leafHash(randomBytes(64)));
  for (const l of other) mirror.append(store, l);
  store.transaction(() => mirror.save(store));
  store.close();
  store = await ProfileStore.open(dir, PASS);
  mirror = LogMirror.load(store, URL);
  const second = new InMemoryNodeStore();
  second.put(appendLeaves(emptyFrontier(), [...leaves.slice(0, 1100), ...other]).newNodes);
  for (const a of [1, 1024, 1100, 1101, 1999, 2000])
    assert.deepEqual(mirror.rootAt(store, a), rootAt(second, a as TreeSize), `root at ${a} after truncation`);

  // A pruned entry stops the copy; nothing is appended after it.
  mirror.append(store, null);
  mirror.append(store, other[0]!);
  assert.equal(mirror.size, 2000);
  assert.equal(mirror.stopped, true);
  store.close();
});

test('resume positions: one page at least, then between 1/256 and 1/128 of the log', () => {
  assert.equal(resumeStart(0), 0);
  assert.equal(resumeStart(255), 0);
  assert.equal(resumeStart(256), 256);
  assert.equal(resumeStart(700), 512);
  assert.equal(resumeStart(65_535), 65_280);
  assert.equal(resumeStart(65_536), 65_536);
  assert.equal(resumeStart(100_000), 99_840); // bucket 512
  assert.equal(resumeStart(1_000_000), 999_424); // bucket 4096
  for (const n of [300, 5000, 70_000, 1_234_567]) {
    const m = resumeStart(n);
    assert.ok(m <= n && n - m < Math.max(256, n / 128), `${n} → ${m}`);
  }
});
