/**
 * src/tokens/pow.ts: challenge encoding, stateless authentication, the work check bound to one
 * batch, expiry and replay with a fake clock, and the bounded replay set.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CodecError, PushbackError } from '../../src/errors.ts';
import {
  checkPowSolution,
  createPowChallenge,
  decodePowChallenge,
  encodePowChallenge,
  isAuthenticPowChallenge,
  leadingZeroBits,
  POW_CHALLENGE_BYTES,
  PowVerifier,
  powBatchDigest,
  solvePow,
  solvePowAsync,
} from '../../src/tokens/pow.ts';
import { fakeClock, throwsCode, toHex } from './_helpers.ts';

const secret = new Uint8Array(32).fill(7);
const batchA = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
const batchB = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(3)];

describe('pow challenge codec', () => {
  it('encodes to 73 bytes and decodes back to the same bytes', () => {
    const bytes = createPowChallenge(secret, { difficulty: 12, expiresAtMs: 1_700_000_000_000 });
    assert.equal(bytes.length, POW_CHALLENGE_BYTES);
    const c = decodePowChallenge(bytes);
    assert.equal(c.difficulty, 12);
    assert.equal(c.expiresAtMs, 1_700_000_000_000);
    assert.equal(toHex(encodePowChallenge(c)), toHex(bytes));
  });

  it('refuses wrong lengths, out-of-range difficulty and expiry', () => {
    const bytes = createPowChallenge(secret, { difficulty: 1, expiresAtMs: 5 });
    throwsCode(() => decodePowChallenge(bytes.subarray(1)), 'codec', 'pow-challenge-length');
    throwsCode(() => decodePowChallenge(new Uint8Array(74)), 'codec', 'pow-challenge-length');
    const hard = Uint8Array.from(bytes);
    hard[32] = 65;
    throwsCode(() => decodePowChallenge(hard), 'codec', 'pow-difficulty-range');
    const far = Uint8Array.from(bytes);
    far.fill(0xff, 33, 41);
    throwsCode(() => decodePowChallenge(far), 'codec', 'pow-expiry-range');
    throwsCode(() => decodePowChallenge('x' as unknown as Uint8Array), 'usage');
  });

  it('property: decoding random bytes returns a challenge or throws CodecError, and round-trips', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ minLength: 73, maxLength: 73 })),
        (bytes) => {
          let decoded: ReturnType<typeof decodePowChallenge>;
          try {
            decoded = decodePowChallenge(bytes);
          } catch (e) {
            assert.ok(e instanceof CodecError, String(e));
            return;
          }
          assert.equal(toHex(encodePowChallenge(decoded)), toHex(bytes));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('pow work', () => {
  it('counts leading zero bits', () => {
    assert.equal(leadingZeroBits(Uint8Array.of(0x80)), 0);
    assert.equal(leadingZeroBits(Uint8Array.of(0x01)), 7);
    assert.equal(leadingZeroBits(Uint8Array.of(0, 0x10)), 11);
    assert.equal(leadingZeroBits(new Uint8Array(4)), 32);
  });

  it('a solution meets its difficulty and is bound to its batch', () => {
    // Fixed nonce: the scenario is deterministic, so "fails for batch B" is a fact, not a 2^-12 chance.
    const challenge = createPowChallenge(secret, {
      difficulty: 12,
      expiresAtMs: 1,
      nonce: new Uint8Array(32),
    });
    const digestA = powBatchDigest(batchA);
    const solution = solvePow(challenge, digestA);
    assert.ok(checkPowSolution(challenge, digestA, solution));
    assert.equal(checkPowSolution(challenge, powBatchDigest(batchB), solution), false);
  });

  it('difficulty 0 needs no work', () => {
    const challenge = createPowChallenge(secret, { difficulty: 0, expiresAtMs: 1 });
    assert.equal(toHex(solvePow(challenge, powBatchDigest(batchA))), '0000000000000000');
  });

  it('the async solver finds the same first solution and can be aborted', async () => {
    const challenge = createPowChallenge(secret, {
      difficulty: 10,
      expiresAtMs: 1,
      nonce: new Uint8Array(32),
    });
    const digest = powBatchDigest(batchA);
    assert.equal(
      toHex(await solvePowAsync(challenge, digest, { chunk: 64 })),
      toHex(solvePow(challenge, digest)),
    );
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(solvePowAsync(challenge, digest, { signal: controller.signal }), {
      reason: 'aborted',
    });
  });

  it('gives up after maxAttempts with a PushbackError', () => {
    const challenge = createPowChallenge(secret, { difficulty: 64, expiresAtMs: 1 });
    throwsCode(
      () => solvePow(challenge, powBatchDigest(batchA), { maxAttempts: 100 }),
      'pushback',
      'pow-exhausted',
    );
  });

  it('batch digests refuse elements that are not 32 bytes', () => {
    throwsCode(() => powBatchDigest([new Uint8Array(31)]), 'codec', 'token-bad-element');
  });
});

describe('PowVerifier', () => {
  function setup(opts: { difficulty?: number; capacity?: number; ttlMs?: number } = {}) {
    const clock = fakeClock();
    const verifier = new PowVerifier({
      difficulty: opts.difficulty ?? 4,
      ttlMs: opts.ttlMs ?? 60_000,
      replayCapacity: opts.capacity ?? 100,
      now: clock.now,
    });
    const solved = (batch = batchA) => {
      const challenge = verifier.challenge();
      const digest = powBatchDigest(batch);
      return { challenge, digest, solution: solvePow(challenge, digest) };
    };
    return { clock, verifier, solved };
  }

  it('accepts a fresh solution once, then refuses the replay', () => {
    const { verifier, solved } = setup();
    const { challenge, digest, solution } = solved();
    verifier.verify(challenge, digest, solution);
    throwsCode(() => verifier.verify(challenge, digest, solution), 'verify', 'pow-challenge-replayed');
  });

  it('refuses a forged challenge: another secret, or a lowered difficulty byte', () => {
    const { verifier, solved } = setup({ difficulty: 4 });
    const foreign = createPowChallenge(new Uint8Array(32).fill(9), {
      difficulty: 4,
      expiresAtMs: Date.now() * 2,
    });
    const digest = powBatchDigest(batchA);
    throwsCode(
      () => verifier.verify(foreign, digest, solvePow(foreign, digest)),
      'verify',
      'pow-challenge-forged',
    );

    const { challenge } = solved();
    const easier = Uint8Array.from(challenge);
    easier[32] = 0; // claim difficulty 0: the MAC no longer matches
    throwsCode(() => verifier.verify(easier, digest, new Uint8Array(8)), 'verify', 'pow-challenge-forged');
  });

  it('refuses an expired challenge (fake clock)', () => {
    const { clock, verifier, solved } = setup({ ttlMs: 1000 });
    const { challenge, digest, solution } = solved();
    clock.advance(1000);
    const copy = solved();
    verifier.verify(copy.challenge, copy.digest, copy.solution); // at expiry: still accepted
    clock.advance(1);
    throwsCode(() => verifier.verify(challenge, digest, solution), 'verify', 'pow-challenge-expired');
  });

  it('refuses a challenge below the current difficulty after a raise', () => {
    const { verifier, solved } = setup({ difficulty: 2 });
    const { challenge, digest, solution } = solved();
    verifier.setDifficulty(8);
    throwsCode(() => verifier.verify(challenge, digest, solution), 'verify', 'pow-difficulty-too-low');
  });

  it('refuses a solution for another batch or one that misses the difficulty', () => {
    const { verifier } = setup({ difficulty: 16 });
    const challenge = verifier.challenge();
    // Find a counter that fails for batch A: the first one whose hash misses 16 zero bits.
    const digest = powBatchDigest(batchA);
    const miss = new Uint8Array(8);
    for (let i = 0; checkPowSolution(challenge, digest, miss); i++) miss[7] = i;
    throwsCode(() => verifier.verify(challenge, digest, miss), 'verify', 'pow-insufficient');
    throwsCode(() => verifier.verify(challenge, digest, new Uint8Array(7)), 'codec', 'pow-solution-length');
  });

  it('bounds the replay set: pushback while full of live entries, room again once they expire', () => {
    const { clock, verifier, solved } = setup({ capacity: 3, ttlMs: 1000 });
    for (let i = 0; i < 3; i++) {
      const s = solved();
      verifier.verify(s.challenge, s.digest, s.solution);
      clock.advance(10);
    }
    assert.equal(verifier.rememberedCount, 3);
    const s = solved();
    assert.throws(
      () => verifier.verify(s.challenge, s.digest, s.solution),
      (e: unknown) =>
        e instanceof PushbackError && e.reason === 'pow-replay-cache-full' && e.retryAfterMs > 0,
    );
    // Entries expire at +1000, +1010, +1020 and s at +1030; at +1015 the first two are gone.
    clock.advance(985);
    verifier.verify(s.challenge, s.digest, s.solution);
    assert.equal(verifier.rememberedCount, 2);
  });

  it('authenticates only its own challenges', () => {
    const c = createPowChallenge(secret, { difficulty: 3, expiresAtMs: 9 });
    assert.ok(isAuthenticPowChallenge(secret, c));
    assert.equal(isAuthenticPowChallenge(new Uint8Array(32), c), false);
  });
});
