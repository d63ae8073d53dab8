import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { generateSigningKeyPair, randomBytes } from '../../src/crypto/index.ts';
import { CwtchError, VerifyError } from '../../src/errors.ts';
import { generateIdentity } from '../../src/identity/identity.ts';
import { keyBundleDigest, openKeyBundle, signKeyBundle } from '../../src/identity/key-bundle.ts';
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';

function makeBundle() {
  const identity = generateIdentity();
  const signed = signKeyBundle(identity, {
    signingKey: generateSigningKeyPair().publicKey,
    tokenKey: randomBytes(32),
    logOrigin: 'relay.example/log',
    createdAtMs: 1_700_000_000_000,
    envelopeSize: 2048,
  });
  return { identity, signed };
}

test('a signed key bundle opens to the same fields and address', () => {
  const { identity, signed } = makeBundle();
  const opened = openKeyBundle(signed.bytes);
  assert.equal(opened.address, identity.address);
  const plain = (b: typeof opened.bundle) => ({
    ...b,
    identityKey: Buffer.from(b.identityKey).toString('hex'),
    signingKey: Buffer.from(b.signingKey).toString('hex'),
    tokenKey: b.tokenKey && Buffer.from(b.tokenKey).toString('hex'),
  });
  assert.deepEqual(plain(opened.bundle), plain(signed.bundle));
  assert.deepEqual(keyBundleDigest(opened), keyBundleDigest(signed));
});

test('property: any single-byte change to a bundle is rejected with a typed error', () => {
  const { signed } = makeBundle();
  fc.assert(
    fc.property(fc.nat({ max: signed.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, d) => {
      const b = Uint8Array.from(signed.bytes);
      b[i] = (b[i]! + d) & 0xff;
      assert.throws(
        () => openKeyBundle(b),
        (e: unknown) => e instanceof CwtchError,
      );
    }),
    { numRuns: 300 },
  );
});

test('a bundle re-signed by another identity under the same address is rejected', () => {
  const { signed } = makeBundle();
  const attacker = generateIdentity();
  const forged = signKeyBundle(attacker, { ...signed.bundle });
  const outer = decodeCbor(forged.bytes) as [Map<number, unknown>, Uint8Array];
  (outer[0] as Map<number, unknown>).set(2, signed.bundle.identityKey);
  const spliced = encodeCbor(outer as never);
  assert.throws(() => openKeyBundle(spliced), VerifyError);
});

test('relays without tokens publish a null token key', () => {
  const identity = generateIdentity();
  const signed = signKeyBundle(identity, {
    signingKey: generateSigningKeyPair().publicKey,
    tokenKey: null,
    logOrigin: 'private relay',
    createdAtMs: 1,
    envelopeSize: 2048,
  });
  assert.equal(openKeyBundle(signed.bytes).bundle.tokenKey, null);
});
