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

test('inside lagHeld the held epochs move at its end, to the same tags a call per message leaves', () => {
  const keys = groupKeys();
  const held = 2; // keys[1] and keys[2] are held epochs, keys[0] the readable one
  const author = randomBytes(32);
  const live = new Recognizer();
  const lagged = new Recognizer();
  for (const r of [live, lagged]) r.expectAuthor('g', keys, author, 0);
  for (let seq = 0; seq < 300; seq++) live.expectAuthor('g', keys, author, seq + 1, [], held);
  let flushed = false;
  lagged.lagHeld(() => {
    for (let seq = 0; seq < 300; seq++) lagged.expectAuthor('g', keys, author, seq + 1, [], held);
    assert.ok(lagged.lookup(messageTag(keys[0]!.tagKey, author, 300 + TAG_WINDOW - 1)), 'readable: at once');
    assert.equal(lagged.lookup(messageTag(keys[1]!.tagKey, author, 300)), undefined, 'held: not yet');
    flushed = lagged.flushHeld();
    assert.ok(lagged.lookup(messageTag(keys[1]!.tagKey, author, 300)), 'held: after flushHeld');
    assert.equal(lagged.flushHeld(), false, 'nothing left to flush');
    for (let seq = 300; seq < 400; seq++) lagged.expectAuthor('g', keys, author, seq + 1, [], held);
  });
  for (let seq = 300; seq < 400; seq++) live.expectAuthor('g', keys, author, seq + 1, [], held);
  assert.ok(flushed);
  assert.equal(lagged.size, live.size, 'the same number of tags at the end');
  for (const k of keys)
    for (let seq = 400 - TAG_KEEP_BELOW - 2; seq < 400 + TAG_WINDOW + 2; seq++) {
      const tag = messageTag(k.tagKey, author, seq);
      assert.equal(Boolean(lagged.lookup(tag)), Boolean(live.lookup(tag)), `epoch ${k.epoch} seq ${seq}`);
    }
});

test('a lagHeld that throws drops what it deferred; the next call outside it catches the held epochs up', () => {
  const keys = groupKeys();
  const author = randomBytes(32);
  const r = new Recognizer();
  r.expectAuthor('g', keys, author, 0);
  assert.throws(() =>
    r.lagHeld(() => {
      for (let seq = 0; seq < 100; seq++) r.expectAuthor('g', keys, author, seq + 1, [], 1);
      throw new Error('rolled back');
    }),
  );
  assert.equal(r.lookup(messageTag(keys[2]!.tagKey, author, 100)), undefined, 'deferred, then dropped');
  r.expectAuthor('g', keys, author, 101);
  for (let seq = 101 - TAG_KEEP_BELOW; seq < 101 + TAG_WINDOW; seq++)
    assert.ok(r.lookup(messageTag(keys[2]!.tagKey, author, seq)), `held seq ${seq}`);
});

test('what a lookup returns names its own group, author, epoch and seq, also once dropped groups have left their places to others', () => {
  const r = new Recognizer();
  const keysOf = new Map(['g', 'h', 'i'].map((g) => [g, groupKeys()]));
  const authors = [randomBytes(32), randomBytes(32)];
  const nonce = randomBytes(16);
  const fill = (g: string) => {
    for (const a of authors) r.expectAuthor(g, keysOf.get(g)!, a, 5);
    r.expectIntro(g, keysOf.get(g)!, nonce);
  };
  fill('g');
  fill('h');
  const one = r.size / 2;
  r.dropGroup('g');
  assert.equal(r.size, one);
  fill('i'); // takes the windows and intros 'g' left
  r.expectIntro('i', keysOf.get('i')!, nonce); // expected twice: still one tag per epoch
  assert.equal(r.size, 2 * one);
  for (const g of ['g', 'h', 'i'])
    for (const k of keysOf.get(g)!) {
      const intro = r.lookup(introTag(k.tagKey, nonce));
      const message = r.lookup(messageTag(k.tagKey, authors[1]!, 7));
      if (g === 'g') {
        assert.equal(intro, undefined);
        assert.equal(message, undefined);
        continue;
      }
      assert.deepEqual(intro, { kind: 'intro', groupKey: g, epoch: k.epoch, nonce });
      assert.deepEqual(message, {
        kind: 'message',
        groupKey: g,
        epoch: k.epoch,
        author: Uint8Array.from(authors[1]!),
        seq: 7,
      });
    }
  r.dropGroup('h');
  r.dropGroup('i');
  assert.equal(r.size, 0);
});
