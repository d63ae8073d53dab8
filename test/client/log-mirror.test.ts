/**
 * The client's copy of a relay's tree (src/client/sync/log-mirror.ts) in a real profile store:
 * roots and consistency proofs agree with the log's reference tree (src/log/tree.ts over every
 * node in memory) at every size, across chunk boundaries, after a reopen and after truncation;
 * a copy stopped at an entry served without its body grows again once that entry comes with it,
 * one stopped after a contradiction never does, and states stored before the stop had a reason
 * are read; resume positions are rounded as docs/THREAT-MODEL.md §2 states.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProfileStore } from '../../src/client/store/profile-store.ts';
import { MIRROR_KIND, mirrorStateKind } from '../../src/client/store/record-kinds.ts';
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
import type { CborValue } from '../../src/wire/cbor.ts';

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

  store.close();
});

test('runs appended a page at a time (appendMany) make the same copy as leaves appended one by one', async (t) => {
  const N = 3100; // three chunks and a summit node (level 11 at 2048)
  const leaves = Array.from({ length: N }, () => leafHash(randomBytes(64)));
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'cwtch-mirror-')));
  t.after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const one = await ProfileStore.create(dirs[0]!, PASS);
  const byOne = LogMirror.load(one, URL);
  for (const l of leaves) byOne.append(one, l);
  one.transaction(() => byOne.save(one));
  one.close();
  let many = await ProfileStore.create(dirs[1]!, PASS);
  let byRuns = LogMirror.load(many, URL);
  // Runs of uneven lengths, some crossing chunk boundaries, a save and a reopen in the middle.
  let at = 0;
  for (const n of [1, 255, 256, 512, 700, 300, 1, 1075]) {
    byRuns.appendMany(many, leaves.slice(at, at + n));
    at += n;
    if (at === 1024 + 700) {
      many.transaction(() => byRuns.save(many));
      many.close();
      many = await ProfileStore.open(dirs[1]!, PASS);
      byRuns = LogMirror.load(many, URL);
    }
  }
  assert.equal(at, N);
  many.transaction(() => byRuns.save(many));
  many.close();
  const a = await ProfileStore.open(dirs[0]!, PASS);
  const b = await ProfileStore.open(dirs[1]!, PASS);
  t.after(() => {
    a.close();
    b.close();
  });
  const x = LogMirror.load(a, URL);
  const y = LogMirror.load(b, URL);
  assert.equal(y.size, N);
  for (const size of [1, 256, 1024, 1025, 2047, 2048, 2049, 3000, N])
    assert.deepEqual(y.rootAt(b, size), x.rootAt(a, size), `root at ${size}`);
  assert.deepEqual(y.consistencyProof(b, 1000, N), x.consistencyProof(a, 1000, N));
  for (const i of [0, 1023, 1024, 2500, N - 1])
    assert.deepEqual(Buffer.from(y.leaf(b, i)!), leaves[i], `leaf ${i}`);
  assert.deepEqual(y.rootAt(b, N), referenceRoot(leaves));
});

test('appendMany takes nothing while the copy is stopped', async (t) => {
  const { dir, leaves, store } = await copyOf(t, 10);
  t.after(() => store.close());
  const mirror = LogMirror.load(store, URL);
  mirror.append(store, null);
  assert.equal(mirror.room, 0);
  mirror.appendMany(store, [leafHash(randomBytes(64))]);
  assert.equal(mirror.size, 10);
  assert.deepEqual(mirror.rootAt(store, 10), referenceRoot(leaves));
  assert.ok(dir.length > 0);
});

/** A profile with a copy of `n` random leaves, saved; the leaves are returned. */
async function copyOf(t: { after: (fn: () => void) => void }, n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'cwtch-mirror-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const leaves = Array.from({ length: n }, () => leafHash(randomBytes(64)));
  const store = await ProfileStore.create(dir, PASS);
  const mirror = LogMirror.load(store, URL);
  for (const l of leaves) mirror.append(store, l);
  store.transaction(() => mirror.save(store));
  return { dir, leaves, store };
}

function copyStore(dir: string): Promise<ProfileStore> {
  return ProfileStore.open(dir, PASS);
}

function referenceRoot(leaves: readonly Uint8Array[]): Uint8Array {
  const reference = new InMemoryNodeStore();
  reference.put(appendLeaves(emptyFrontier(), leaves).newNodes);
  return rootAt(reference, leaves.length as TreeSize);
}

test('an entry served without its body stops the copy until that entry comes with it, across reopens', async (t) => {
  const { dir, leaves, store: first } = await copyOf(t, 300);
  first.close();
  let store = await copyStore(dir);
  let mirror = LogMirror.load(store, URL);
  // Withheld (or pruned): the copy waits at 300, and the entries after it are not taken.
  mirror.append(store, null);
  assert.equal(mirror.stopped, true);
  assert.equal(mirror.stop, 'missing-entry');
  mirror.append(store, null);
  assert.equal(mirror.size, 300);
  store.transaction(() => mirror.save(store));
  store.close();

  store = await copyStore(dir);
  mirror = LogMirror.load(store, URL);
  assert.equal(mirror.stop, 'missing-entry', 'the reason survives a reopen');
  // Another entry served with its body (the hole re-ask of a later one) does not move it.
  assert.equal(mirror.entryServed(301), false);
  assert.equal(mirror.stopped, true);
  // The entry it waits for, served with its body: the copy may grow, and the next page appends it.
  assert.equal(mirror.entryServed(300), true);
  assert.equal(mirror.stopped, false);
  store.transaction(() => mirror.save(store));
  store.close();

  store = await copyStore(dir);
  mirror = LogMirror.load(store, URL);
  assert.equal(mirror.stop, 'none', 'growing again survives a reopen');
  const more = Array.from({ length: 20 }, () => leafHash(randomBytes(64)));
  for (const l of more) mirror.append(store, l);
  assert.equal(mirror.size, 320);
  assert.deepEqual(mirror.rootAt(store, 320), referenceRoot([...leaves, ...more]));

  // Re-downloaded with its body (a page that starts below it): appended at once.
  mirror.append(store, null);
  assert.equal(mirror.stop, 'missing-entry');
  const late = leafHash(randomBytes(64));
  mirror.append(store, late);
  assert.equal(mirror.stopped, false);
  assert.equal(mirror.size, 321);
  assert.deepEqual(mirror.rootAt(store, 321), referenceRoot([...leaves, ...more, late]));
  store.close();
});

test('a copy stopped after a contradiction stays stopped: no entry served, appended or cut back restarts it', async (t) => {
  const { dir, leaves, store: first } = await copyOf(t, 300);
  first.close();
  let store = await copyStore(dir);
  let mirror = LogMirror.load(store, URL);
  mirror.truncate(store, 200);
  mirror.stopForGood();
  store.transaction(() => mirror.save(store));
  store.close();
  store = await copyStore(dir);
  mirror = LogMirror.load(store, URL);
  assert.equal(mirror.stop, 'contradiction');
  assert.equal(mirror.entryServed(200), false);
  mirror.append(store, leaves[200]!);
  mirror.truncate(store, 100);
  mirror.append(store, leaves[100]!);
  assert.equal(mirror.size, 100);
  assert.equal(mirror.stop, 'contradiction');
  assert.deepEqual(mirror.rootAt(store, 100), referenceRoot(leaves.slice(0, 100)));
  store.close();
});

test('a state stored before the stop had a reason (gap) is read: gap as an entry the copy waits for', async (t) => {
  const { dir, leaves, store: first } = await copyOf(t, 40);
  first.close();
  let store = await copyStore(dir);
  const key = `state ${URL}`;
  const current = store.get(MIRROR_KIND, key) as Map<string, CborValue>;
  assert.equal(current.get('stop'), 'none');
  const legacy = (gap: boolean) =>
    new Map<string, CborValue>([...current].map(([k, v]) => (k === 'stop' ? ['gap', gap] : [k, v])));
  store.transaction(() => store.put(MIRROR_KIND, key, legacy(false)));
  assert.equal(LogMirror.load(store, URL).stop, 'none');
  store.transaction(() => store.put(MIRROR_KIND, key, legacy(true)));
  store.close();
  store = await copyStore(dir);
  const mirror = LogMirror.load(store, URL);
  assert.equal(mirror.size, 40);
  assert.equal(mirror.stop, 'missing-entry');
  assert.equal(mirror.entryServed(40), true);
  const next = leafHash(randomBytes(64));
  mirror.append(store, next);
  assert.deepEqual(mirror.rootAt(store, 41), referenceRoot([...leaves, next]));
  // Both fields, or an unknown reason, are refused.
  const both = new Map([...legacy(true), ['stop', 'none']]);
  assert.throws(() => mirrorStateKind.decode(both), { name: 'CodecError' });
  assert.throws(() => mirrorStateKind.decode(new Map([...current, ['stop', 'paused']])), {
    name: 'CodecError',
  });
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
