/**
 * The tag recogniser (src/client/sync/recognizer.ts, docs/PROTOCOL.md §7): one map for every group,
 * a bounded window of tags per author however many messages it sends, gaps kept until filled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Recognizer, TAG_KEEP_BELOW, TAG_WINDOW } from '../../src/client/sync/recognizer.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { introTag, messageTag } from '../../src/group/detection.ts';
import { asEpoch, deriveEpochKeys } from '../../src/group/epoch.ts';

const groupKeys = () => [0, 1, 2].map((e) => deriveEpochKeys(randomBytes(32), asEpoch(e), randomBytes(32)));

test('an author who sends 10,000 messages costs a bounded window of tags', () => {
  const r = new Recognizer();
  const keys = groupKeys();
  const author = randomBytes(32);
  r.expectAuthor('g', keys, author, 0);
  assert.equal(r.size, keys.length * TAG_WINDOW);
  for (let seq = 0; seq < 10_000; seq++) r.expectAuthor('g', keys, author, seq + 1);
  assert.ok(r.size <= keys.length * (TAG_WINDOW + TAG_KEEP_BELOW), `${r.size} tags`);
  const next = r.lookup(messageTag(keys[1]!.tagKey, author, 10_005));
  assert.deepEqual(next && { kind: next.kind, seq: next.kind === 'message' ? next.seq : -1 }, {
    kind: 'message',
    seq: 10_005,
  });
  assert.ok(r.lookup(messageTag(keys[2]!.tagKey, author, 10_000 - 10)), 'recent seqs stay');
  assert.equal(r.lookup(messageTag(keys[0]!.tagKey, author, 100)), undefined, 'old seqs are forgotten');
  r.dropGroup('g');
  assert.equal(r.size, 0);
});

test('gaps (missing seqs) stay expected however far the author goes on; other groups are untouched', () => {
  const r = new Recognizer();
  const keys = groupKeys();
  const other = groupKeys();
  const author = randomBytes(32);
  r.expectAuthor('h', other, author, 0);
  r.expectIntro('h', other, randomBytes(16));
  const before = r.size;
  r.expectAuthor('g', keys, author, 10, [3, 7]);
  for (let seq = 10; seq < 1000; seq++) r.expectAuthor('g', keys, author, seq + 1);
  assert.ok(r.lookup(messageTag(keys[1]!.tagKey, author, 3)));
  assert.ok(r.lookup(messageTag(keys[1]!.tagKey, author, 7)));
  assert.equal(r.lookup(messageTag(keys[1]!.tagKey, author, 5)), undefined);
  r.dropGroup('g');
  assert.equal(r.size, before);
  assert.ok(r.lookupEnvelope(Buffer.concat([messageTag(other[0]!.tagKey, author, 1), randomBytes(100)])));
  assert.equal(r.lookupEnvelope(randomBytes(8)), undefined, 'too short to carry a tag');
  assert.equal(r.lookup(introTag(keys[0]!.tagKey, randomBytes(16))), undefined);
});

test('a fresh recogniser (a profile opened again) recognises the seqs held below the latest, down to TAG_KEEP_BELOW', () => {
  const keys = groupKeys();
  const author = randomBytes(32);
  const live = new Recognizer();
  for (let seq = 0; seq < 200; seq++) live.expectAuthor('g', keys, author, seq + 1);
  const fresh = new Recognizer();
  fresh.expectAuthor('g', keys, author, 200);
  for (const seq of [199, 200 - TAG_KEEP_BELOW, 150]) {
    const tag = messageTag(keys[1]!.tagKey, author, seq);
    assert.ok(live.lookup(tag), `live process holds seq ${seq}`);
    assert.ok(fresh.lookup(tag), `a fresh process holds seq ${seq} too`);
  }
  const old = messageTag(keys[1]!.tagKey, author, 200 - TAG_KEEP_BELOW - 1);
  assert.equal(fresh.lookup(old), undefined, 'older seqs are forgotten by both');
  assert.equal(live.lookup(old), undefined);
  assert.equal(fresh.size, live.size);
});
