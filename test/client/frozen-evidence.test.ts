/**
 * `evidence verify` on a frozen relay's item (src/client/accountability/evidence.ts, docs/log.md
 * §7): a receipt the relay signed (v1, pinned in test/vectors/log/receipt-v1.json, or a v2
 * tlog-proof) and an older, smaller checkpoint it signed. Both signatures and the origin are
 * checked. Untimed, or signed before the receipt (or within the maximum merge delay after it),
 * the item is a claim (when it was served is the reporter's word: an old view replayed by anyone
 * looks the same); a smaller checkpoint whose own signed time is more than the merge delay after
 * the receipt's is proven (docs/log.md §3 "Signed time"). A checkpoint of another key or a
 * tampered receipt makes it invalid.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { verifyBundle } from '../../src/client/accountability/evidence.ts';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { signCheckpoint } from '../../src/log/checkpoint.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../src/log/hash.ts';
import { decodeReceipt } from '../../src/log/receipt.ts';
import { MAX_MERGE_DELAY_MS } from '../../src/log/stored-receipt.ts';
import { formatTlogProof } from '../../src/log/tlog-proof.ts';
import { appendLeaves, emptyFrontier, InMemoryNodeStore, inclusionProof } from '../../src/log/tree.ts';

const vector = JSON.parse(
  readFileSync(new URL('../vectors/log/receipt-v1.json', import.meta.url), 'utf8'),
) as { publicKey: string; origin: string; receipt: string };
/** The vector's key: seed 32 × 0x07 (test data). */
const relay = signingKeyPairFromSeed(Buffer.alloc(32, 7));
const stranger = signingKeyPairFromSeed(Buffer.alloc(32, 8));
const ORIGIN = vector.origin;

function tree(n: number) {
  const leaves = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
  const store = new InMemoryNodeStore();
  const appended = appendLeaves(emptyFrontier(), leaves);
  store.put(appended.newNodes);
  return { root: appended.root, store };
}

function note(size: number, key = relay, timeMs: number | null = null): string {
  return signCheckpoint(
    { origin: ORIGIN, size: size as TreeSize, rootHash: tree(size).root, timeMs },
    ORIGIN,
    key.secretKey,
  );
}

function bundle(receiptHex: string, checkpoint: string): string {
  return JSON.stringify({
    format: 'cwtch-groups-evidence/1',
    generatedAt: new Date(0).toISOString(),
    group: { name: 'g', id: '00' },
    items: [
      {
        kind: 'relay-receipt',
        relay: 'ws://127.0.0.1:1/',
        detail: 'frozen',
        keyBundle: null,
        receipt: {
          receipt: receiptHex,
          checkpoint,
          servedLeaf: '',
          proof: [],
          signingKey: relay.publicKey.toString('hex'),
        },
      },
    ],
  });
}

test('the pinned key is the vector’s', () => {
  assert.equal(relay.publicKey.toString('hex'), vector.publicKey);
});

test('a v1 receipt for index 3 and the relay’s checkpoint of size 3: a claim naming the relay key', () => {
  const [item] = verifyBundle(bundle(vector.receipt, note(3)));
  assert.equal(item!.status, 'claim', item!.summary);
  assert.match(item!.who, /^relay log key ea4a6c63e29c520a$/);
  assert.match(item!.summary, /receipted index 3 \(its log then had at least 4 entries\).*size 3 without it/);
});

test('a v2 receipt (tlog-proof of a size-6 checkpoint) and a served checkpoint of size 4: a claim', () => {
  const { store } = tree(6);
  const proof = formatTlogProof({
    index: 5 as LogIndex,
    proof: inclusionProof(store, 5 as LogIndex, 6 as TreeSize),
    checkpoint: note(6),
  });
  const [item] = verifyBundle(bundle(Buffer.from(proof).toString('hex'), note(4)));
  assert.equal(item!.status, 'claim', item!.summary);
  assert.match(item!.summary, /receipted index 5 \(its log then had at least 6 entries\).*size 4 without it/);
});

test('a served checkpoint by another key, or a tampered receipt, is invalid: nothing the relay signed', () => {
  const [foreign] = verifyBundle(bundle(vector.receipt, note(3, stranger)));
  assert.equal(foreign!.status, 'invalid', foreign!.summary);
  const tampered = Buffer.from(vector.receipt, 'hex');
  tampered[tampered.length - 1]! ^= 1;
  const [forged] = verifyBundle(bundle(tampered.toString('hex'), note(3)));
  assert.equal(forged!.status, 'invalid', forged!.summary);
});

test('a checkpoint that covers the receipted index is not a frozen view', () => {
  const [item] = verifyBundle(bundle(vector.receipt, note(5)));
  assert.doesNotMatch(item!.summary, /frozen/);
});

test('a v2 receipt and a smaller checkpoint signed more than the merge delay later: proven', () => {
  const T = 1_764_806_400_000;
  const { store } = tree(6);
  const receipt = formatTlogProof({
    index: 5 as LogIndex,
    proof: inclusionProof(store, 5 as LogIndex, 6 as TreeSize),
    checkpoint: note(6, relay, T),
  });
  const hex = Buffer.from(receipt).toString('hex');
  const [proven] = verifyBundle(bundle(hex, note(4, relay, T + MAX_MERGE_DELAY_MS + 1)));
  assert.equal(proven!.status, 'proven', proven!.summary);
  assert.match(proven!.summary, /receipted index 5 .* signed a checkpoint of size 4 without it .* later/);
  // Within the delay, before the receipt (a replayed old view), or untimed: claims.
  for (const served of [note(4, relay, T + MAX_MERGE_DELAY_MS), note(4, relay, T - 1), note(4)]) {
    const [item] = verifyBundle(bundle(hex, served));
    assert.equal(item!.status, 'claim', item!.summary);
  }
  // The same pair under another key proves nothing.
  const [foreign] = verifyBundle(bundle(hex, note(4, stranger, T + MAX_MERGE_DELAY_MS + 1)));
  assert.equal(foreign!.status, 'invalid', foreign!.summary);
});

test('a pinned v1 receipt (its signed time) and a timed smaller checkpoint signed later: proven', () => {
  const v1 = decodeReceipt(Buffer.from(vector.receipt, 'hex'));
  const [proven] = verifyBundle(bundle(vector.receipt, note(3, relay, v1.timeMs + MAX_MERGE_DELAY_MS + 1)));
  assert.equal(proven!.status, 'proven', proven!.summary);
  const [early] = verifyBundle(bundle(vector.receipt, note(3, relay, v1.timeMs + 5)));
  assert.equal(early!.status, 'claim', early!.summary);
});
