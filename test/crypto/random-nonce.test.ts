import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomNonce } from '../../src/crypto/index.ts';
import { CwtchError } from '../../src/errors.ts';

test('nonces from the pool never repeat, across many refills of its buffer', () => {
  // 24-byte nonces, as the profile's rows and the envelopes take them: 20,000 of them cross the
  // 4 KiB buffer's refill more than a hundred times, at a boundary that does not divide it.
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const n = randomNonce(24);
    assert.equal(n.length, 24);
    seen.add(n.toString('hex'));
  }
  assert.equal(seen.size, 20_000);
  // Each byte is handed out once: two nonces drawn in turn do not share a byte run.
  const a = randomNonce(64);
  const b = randomNonce(64);
  assert.notDeepEqual(a, b);
  assert.ok(!a.some((_, i) => i <= 56 && b.subarray(0, 8).equals(a.subarray(i, i + 8))));
});

test('a nonce of a length outside 1..64 is refused with a typed error', () => {
  for (const bad of [0, -1, 65, 1.5, Number.NaN])
    assert.throws(
      () => randomNonce(bad),
      (e: unknown) => e instanceof CwtchError && e.reason === 'bad-argument',
    );
});
