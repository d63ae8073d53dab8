/**
 * The recognizer's tag table (src/client/sync/tag-table.ts): an open-addressing hash table whose
 * deletions shift entries back. Checked against a Map through long random lives of inserts and
 * deletes, with tags made to collide in their home slots so that runs form and wrap around the
 * end of the table, through growth and shrinkage.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TagTable, wordOfBytes, wordOfLatin1 } from '../../src/client/sync/tag-table.ts';
import { randomBytes } from '../../src/crypto/index.ts';

type Tag = [number, number, number, number];
const keyOf = (t: Tag) => t.join(',');

function randomTag(homeBits: number): Tag {
  const b = randomBytes(16);
  const t = [0, 1, 2, 3].map((i) => wordOfBytes(b, i)) as Tag;
  // Few distinct home slots (and slots near the table's end): long runs that wrap around.
  if (homeBits < 32) t[0] = (t[0] & ~((1 << 10) - 1)) | ((1023 - (t[0] & ((1 << homeBits) - 1))) & 1023);
  return t;
}

function checkAgainst(
  table: TagTable,
  reference: Map<string, { tag: Tag; owner: number; seq: number }>,
): void {
  assert.equal(table.size, reference.size);
  for (const { tag, owner, seq } of reference.values()) {
    const slot = table.find(...tag);
    assert.ok(slot >= 0, `tag ${keyOf(tag)} is found`);
    assert.equal(table.ownerAt(slot), owner);
    assert.equal(table.seqAt(slot), seq);
    assert.equal(table.epochAt(slot), seq * 3);
  }
}

for (const homeBits of [32, 4]) {
  test(`a long life of inserts and deletes agrees with a Map (${homeBits === 32 ? 'uniform tags' : 'tags sharing 16 home slots'})`, () => {
    const table = new TagTable();
    const reference = new Map<string, { tag: Tag; owner: number; seq: number }>();
    const live: Tag[] = [];
    let seq = 0;
    // Grow to ~6,000 entries (the table doubles several times), churn, then shrink to a few.
    for (let step = 0; step < 30_000; step++) {
      const phase = step < 10_000 ? 0.8 : step < 20_000 ? 0.5 : 0.2;
      if (live.length === 0 || Math.random() < phase) {
        const tag = randomTag(homeBits);
        const owner = 2 * (step % 50);
        seq++;
        assert.equal(table.set(...tag, owner, seq * 3, seq), -1, 'a new tag had no owner');
        reference.set(keyOf(tag), { tag, owner, seq });
        live.push(tag);
      } else {
        const i = Math.floor(Math.random() * live.length);
        const tag = live[i]!;
        live[i] = live[live.length - 1]!;
        live.pop();
        const entry = reference.get(keyOf(tag))!;
        assert.equal(table.deleteOwned(...tag, entry.owner + 2), false, 'another owner cannot remove it');
        assert.equal(table.deleteOwned(...tag, entry.owner), true);
        assert.equal(table.deleteOwned(...tag, entry.owner), false, 'removed once');
        reference.delete(keyOf(tag));
        assert.equal(table.find(...tag), -1);
      }
      if (step % 2_500 === 0) checkAgainst(table, reference);
    }
    checkAgainst(table, reference);
    for (let i = 0; i < 200; i++)
      assert.equal(table.find(...randomTag(homeBits)), -1, 'an absent tag is not found');
  });
}

test('setting a present tag replaces its owner, epoch and seq and says whose it was', () => {
  const table = new TagTable();
  const tag = randomTag(32);
  assert.equal(table.set(...tag, 4, 1, 2), -1);
  assert.equal(table.set(...tag, 6, 7, 8), 4);
  assert.equal(table.size, 1);
  const slot = table.find(...tag);
  assert.deepEqual([table.ownerAt(slot), table.epochAt(slot), table.seqAt(slot)], [6, 7, 8]);
});

test('a tag read from its bytes and from its latin1 string gives the same words', () => {
  for (let i = 0; i < 100; i++) {
    const bytes = randomBytes(32);
    const s = bytes.toString('latin1');
    for (let w = 0; w < 4; w++) {
      assert.equal(wordOfBytes(bytes, w), wordOfLatin1(s, w));
      assert.equal(wordOfBytes(bytes, w), bytes.readInt32LE(4 * w));
    }
  }
});
