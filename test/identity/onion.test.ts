import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { CodecError, CwtchError, VerifyError } from '../../src/errors.ts';
import { generateIdentity, identityFromSeed, identitySeed } from '../../src/identity/identity.ts';
import { onionAddressOf, publicKeyOfOnionAddress } from '../../src/identity/onion.ts';

// Tor's own test suite (src/test/test_hs_common.c, test_build_address) builds this address from
// the RFC 8032 TEST 1 public key.
const TOR_VECTOR = {
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  address: '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid',
};

test('onion address of the Tor test vector key', () => {
  assert.equal(onionAddressOf(Buffer.from(TOR_VECTOR.publicKey, 'hex')), TOR_VECTOR.address);
  assert.equal(
    Buffer.from(publicKeyOfOnionAddress(TOR_VECTOR.address)).toString('hex'),
    TOR_VECTOR.publicKey,
  );
  assert.equal(
    Buffer.from(publicKeyOfOnionAddress(`${TOR_VECTOR.address.toUpperCase()}.onion`)).toString('hex'),
    TOR_VECTOR.publicKey,
  );
  const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
  assert.equal(identityFromSeed(seed).address, TOR_VECTOR.address);
  assert.deepEqual(identityFromSeed(seed).keyPair.publicKey, signingKeyPairFromSeed(seed).publicKey);
});

test('bad onion addresses give precise typed errors', () => {
  const a = TOR_VECTOR.address;
  const cases: [string, string][] = [
    [`${a.slice(0, 20)}${a[20] === 'a' ? 'b' : 'a'}${a.slice(21)}`, 'onion-checksum'], // one key character off
    [`${a.slice(0, -1)}e`, 'onion-version'], // the last character carries the version's low bits
    [a.slice(1), 'onion-malformed'],
    [`${a}x`, 'onion-malformed'],
    [`${a.slice(0, 10)}1${a.slice(11)}`, 'base32-character'],
    [`${a.slice(0, -2)}aa`, 'onion-version'],
    ['', 'onion-malformed'],
  ];
  for (const [text, reason] of cases) {
    assert.throws(
      () => publicKeyOfOnionAddress(text),
      (e: unknown) => e instanceof CwtchError && e.reason === reason,
      `${text} → ${reason}`,
    );
  }
  assert.throws(
    () => publicKeyOfOnionAddress(`${a.slice(0, 5)}${a[5] === 'a' ? 'b' : 'a'}${a.slice(6)}`),
    VerifyError,
  );
  assert.throws(() => onionAddressOf(new Uint8Array(31)), CodecError);
});

test('property: every identity round-trips through its address and seed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
      const id = identityFromSeed(seed);
      assert.equal(id.address.length, 56);
      assert.deepEqual(
        Uint8Array.from(publicKeyOfOnionAddress(id.address)),
        Uint8Array.from(id.keyPair.publicKey),
      );
      assert.deepEqual(Uint8Array.from(identitySeed(id)), Uint8Array.from(seed));
    }),
    { numRuns: 200 },
  );
  const fresh = generateIdentity();
  assert.deepEqual(publicKeyOfOnionAddress(fresh.address), Uint8Array.from(fresh.keyPair.publicKey));
});

test('property: random text never throws anything but a CwtchError', () => {
  fc.assert(
    fc.property(fc.string({ minLength: 50, maxLength: 64 }), (text) => {
      try {
        publicKeyOfOnionAddress(text);
      } catch (e) {
        assert.ok(e instanceof CwtchError);
      }
    }),
  );
});
