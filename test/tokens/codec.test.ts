/**
 * Untrusted bytes never crash token code: property tests feed random bytes to every decoder and
 * to the relay's and the wallet's entry points, and accept only a result or a CwtchError.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CodecError, CwtchError } from '../../src/errors.ts';
import {
  decodePowChallenge,
  decodeToken,
  encodeToken,
  generateTokenKeyPair,
  POW_CHALLENGE_BYTES,
  TOKEN_BYTES,
  TOKEN_KEY_ID_BYTES,
  TokenIssuer,
  TokenWallet,
} from '../../src/tokens/index.ts';
import { toHex } from './_helpers.ts';

function onlyCwtchErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CwtchError, `not a CwtchError: ${String(e)}`);
  }
}

async function onlyCwtchErrorsAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof CwtchError, `not a CwtchError: ${String(e)}`);
  }
}

/** Byte strings near and at the interesting lengths. */
const bytesAround = (length: number) =>
  fc.oneof(fc.uint8Array({ maxLength: length + 8 }), fc.uint8Array({ minLength: length, maxLength: length }));

describe('token codec', () => {
  it('property: decodeToken accepts exactly 104 bytes, throws CodecError otherwise, and round-trips', () => {
    fc.assert(
      fc.property(bytesAround(TOKEN_BYTES), (bytes) => {
        if (bytes.length !== TOKEN_BYTES) {
          assert.throws(() => decodeToken(bytes), CodecError);
          return;
        }
        assert.equal(toHex(encodeToken(decodeToken(bytes))), toHex(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('property: decodePowChallenge only throws CwtchError', () => {
    fc.assert(
      fc.property(bytesAround(POW_CHALLENGE_BYTES), (bytes) =>
        onlyCwtchErrors(() => decodePowChallenge(bytes)),
      ),
      { numRuns: 500 },
    );
  });
});

describe('relay and wallet entry points on random bytes', () => {
  const issuer = new TokenIssuer({ key: generateTokenKeyPair(), difficulty: 0 });

  it('property: redeeming random bytes, with or without a known key id, is refused', async () => {
    await fc.assert(
      fc.asyncProperty(bytesAround(TOKEN_BYTES), fc.boolean(), async (bytes, withKeyId) => {
        if (withKeyId && bytes.length >= TOKEN_KEY_ID_BYTES) bytes.set(issuer.keyId, 0);
        await assert.rejects(issuer.redeem(bytes), (e: unknown) => e instanceof CwtchError);
      }),
      { numRuns: 200 },
    );
  });

  it('property: issue() on random challenge, solution and blinded elements only throws CwtchError', () => {
    fc.assert(
      fc.property(
        bytesAround(POW_CHALLENGE_BYTES),
        bytesAround(8),
        fc.array(bytesAround(32), { maxLength: 70 }),
        (challenge, solution, blinded) => onlyCwtchErrors(() => issuer.issue(challenge, solution, blinded)),
      ),
      { numRuns: 200 },
    );
  });

  it('property: issue() with a genuine challenge and random elements only throws CwtchError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 1, maxLength: 4 }),
        (blinded) => onlyCwtchErrors(() => issuer.issue(issuer.challenge(), new Uint8Array(8), blinded)),
      ),
      { numRuns: 100 },
    );
  });

  it('property: a wallet finalizing a random response only throws CwtchError and adds nothing', async () => {
    const wallet = new TokenWallet(issuer.publicKey);
    await fc.assert(
      fc.asyncProperty(
        bytesAround(8),
        fc.array(bytesAround(32), { maxLength: 3 }),
        bytesAround(64),
        async (keyId, evaluated, proof) => {
          const request = wallet.createRequest(2);
          await onlyCwtchErrorsAsync(async () => wallet.finalize(request, { keyId, evaluated, proof }));
          assert.equal(wallet.size, 0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('property: the wallet refuses random challenges with a CwtchError or solves them', async () => {
    const wallet = new TokenWallet(issuer.publicKey, { maxDifficulty: 4 });
    const request = wallet.createRequest(1);
    await fc.assert(
      fc.asyncProperty(bytesAround(POW_CHALLENGE_BYTES), async (challenge) =>
        onlyCwtchErrorsAsync(() => wallet.solve(challenge, request)),
      ),
      { numRuns: 100 },
    );
  });
});
