/**
 * Tree-size arithmetic (src/log/bits.ts) past 32 bits: the largest power of two below n (RFC 9162's
 * k) and the power-of-two test, against a reference written with BigInt, at the edges of every
 * bit length up to 2^53 - 1.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPowerOfTwo, largestPowerOfTwoBelow } from '../../src/log/bits.ts';

function kReference(n: number): number {
  let k = 1n;
  while (k * 2n < BigInt(n)) k *= 2n;
  return Number(k);
}

const edges: number[] = [];
for (let bits = 1; bits <= 53; bits++) {
  const p = 2 ** bits;
  for (const n of [p - 1, p, p + 1]) if (n >= 2 && n <= Number.MAX_SAFE_INTEGER) edges.push(n);
}

test('largestPowerOfTwoBelow is the largest power of two strictly below n, up to 2^53 - 1', () => {
  for (const n of edges) assert.equal(largestPowerOfTwoBelow(n), kReference(n), `n = ${n}`);
});

test('isPowerOfTwo holds exactly for the powers of two, up to 2^53 - 1', () => {
  assert.equal(isPowerOfTwo(0), false);
  assert.equal(isPowerOfTwo(1), true);
  for (const n of edges) assert.equal(isPowerOfTwo(n), (BigInt(n) & (BigInt(n) - 1n)) === 0n, `n = ${n}`);
});
