/**
 * Fixed-size padding (src/wire/padding.ts): unpad is strict — exactly one 0x80 marker followed
 * only by zeros — whatever the block's length, type (Buffer or a view at an offset) or content.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from '../../src/crypto/index.ts';
import { CodecError } from '../../src/errors.ts';
import { pad, unpad } from '../../src/wire/padding.ts';

/** The rule as written: the last non-zero byte is 0x80, and what precedes it is the data. */
function reference(block: Uint8Array): Uint8Array | null {
  let i = block.length - 1;
  while (i >= 0 && block[i] === 0) i--;
  if (i < 0 || block[i] !== 0x80) return null;
  return block.subarray(0, i);
}

function outcome(block: Uint8Array): Uint8Array | 'bad-padding' {
  try {
    return unpad(block);
  } catch (e) {
    assert.ok(e instanceof CodecError, String(e));
    return e.reason as 'bad-padding';
  }
}

test('unpad returns what pad padded, for every length up to a block and across the 4 KiB chunks', () => {
  for (const size of [1, 2, 64, 2048, 4096, 4097, 9000]) {
    for (const length of [0, 1, size >> 1, size - 2, size - 1].filter((n) => n >= 0 && n < size)) {
      const data = randomBytes(length);
      const out = unpad(pad(data, size));
      assert.deepEqual(Buffer.from(out), Buffer.from(data), `size ${size}, length ${length}`);
    }
  }
});

test('unpad agrees with the rule on malformed blocks: no marker, a byte after it, 0x80 in the data', () => {
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array(2048),
    Uint8Array.of(0x80),
    Uint8Array.of(1, 2, 3),
    Uint8Array.of(0x80, 0, 0, 1),
    Uint8Array.of(0x80, 0x80, 0, 0),
    Uint8Array.of(5, 0x80, 0, 7, 0, 0),
  ];
  // A stray byte after the marker, in each 4 KiB chunk of a long block.
  for (const at of [1, 4095, 4096, 4097, 8191, 8999]) {
    const b = Buffer.from(pad(randomBytes(10), 9000));
    b[at] = 1;
    cases.push(b);
  }
  // Random blocks, mostly padding, some with 0x80 bytes and noise after them.
  for (let i = 0; i < 500; i++) {
    const b = Buffer.from(pad(randomBytes(i % 50), 64 + (i % 7)));
    if (i % 3 === 0) b[b.length - 1 - (i % 5)] = i % 2 === 0 ? 0x80 : 9;
    cases.push(b);
  }
  for (const block of cases) {
    const want = reference(block);
    const got = outcome(block);
    if (want === null) assert.equal(got, 'bad-padding', `block ${Buffer.from(block).toString('hex')}`);
    else assert.deepEqual(Buffer.from(got as Uint8Array), Buffer.from(want));
  }
});

test('unpad of a Uint8Array view at an offset returns a view of the same memory', () => {
  const backing = new Uint8Array(100).fill(7);
  const padded = pad(Uint8Array.of(1, 2, 3), 40);
  backing.set(padded, 30);
  const view = backing.subarray(30, 70);
  const out = unpad(view);
  assert.deepEqual([...out], [1, 2, 3]);
  assert.equal(out.buffer, backing.buffer);
  assert.equal(out.byteOffset, 30);
});
