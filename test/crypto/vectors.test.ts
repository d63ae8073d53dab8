// Published vectors for every primitive src/crypto exposes (RFC 8032, RFC 5869,
// draft-irtf-cfrg-xchacha-03 §A.3.1, FIPS 180-2), plus behaviour checks for what has no vector.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import {
  AEAD_TAG_BYTES,
  ARGON2ID_TEST,
  aeadOpen,
  aeadSeal,
  argon2id,
  constantTimeEqual,
  ed25519PublicToX25519,
  ed25519SecretToX25519,
  generateSigningKeyPair,
  HmacSha256Key,
  HmacSha256Latin1,
  hkdfSha256,
  hmacSha256,
  openSealedToIdentity,
  randomBytes,
  sealToIdentity,
  sha3_256,
  sha256,
  sha256AfterByte,
  sign,
  signingKeyPairFromSeed,
  verify,
  wipe,
  x25519,
  x25519PublicFromSecret,
} from '../../src/crypto/index.ts';
import { UsageError } from '../../src/errors.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('SHA-256 of "abc" and of 1,000 bytes (FIPS 180-2)', () => {
  assert.equal(
    sha256(Buffer.from('abc')).toString('hex'),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
  // Long inputs take the node:crypto path; both paths must agree.
  const long = randomBytes(5000);
  assert.deepEqual(sha256(long), sha256(long.subarray(0, 100), long.subarray(100)));
});

test("sha256: one part, joined parts up to 4 KiB or streamed, inside V8's heap or not: the same digests, each in a buffer of its own", () => {
  for (const size of [0, 1, 55, 64, 255, 256, 257, 384, 4095, 4096, 4097, 9000]) {
    const data = randomBytes(size);
    const want = createHash('sha256').update(data).digest();
    assert.deepEqual(sha256(data), want, `one part of ${size}`);
    const cut = size >> 1;
    assert.deepEqual(sha256(data.subarray(0, cut), data.subarray(cut)), want, `two parts of ${size}`);
    assert.deepEqual(sha256(new Uint8Array(0), data, new Uint8Array(0)), want, `padded parts of ${size}`);
    // A small Uint8Array lives inside V8's heap; a view at an offset into a larger buffer.
    assert.deepEqual(sha256(Uint8Array.from(data)), want, `a copy of ${size}`);
    const inside = Buffer.concat([randomBytes(3), data, randomBytes(5)]);
    assert.deepEqual(sha256(inside.subarray(3, 3 + size)), want, `a view of ${size}`);
  }
  // Every byte value comes through the digest's string form (bytes ≥ 0x80 included): 1,000 digests.
  for (let i = 0; i < 1000; i++) {
    const data = randomBytes(i % 97);
    assert.deepEqual(sha256(data), createHash('sha256').update(data).digest());
  }
  // A digest is a fresh buffer of its own, not a slice of a shared one that another call overwrites.
  const a = sha256(Buffer.from('a'));
  const b = sha256(Buffer.from('b'));
  assert.notDeepEqual(a, b);
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, 32);
  assert.deepEqual(a, createHash('sha256').update('a').digest());
});

test('sha256AfterByte: SHA-256 of the byte then the data, at every size its scratch handles', () => {
  // Against node:crypto's streaming hash of the same bytes, across the scratch's first size
  // (4 KiB), its growth, its cap (64 KiB, above which it streams) and back to short inputs, so
  // a grown or reused scratch never leaks an earlier, longer input into a later hash.
  for (const size of [0, 1, 511, 2048, 4095, 4096, 9000, 65_535, 65_536, 200_000, 3, 2048]) {
    const data = randomBytes(size);
    const byte = size % 256;
    const want = createHash('sha256').update(Uint8Array.of(byte)).update(data).digest();
    assert.deepEqual(sha256AfterByte(byte, data), want, `size ${size}`);
  }
  // RFC 6962's leaf hash of the empty leaf: SHA-256(0x00).
  assert.equal(
    sha256AfterByte(0, new Uint8Array(0)).toString('hex'),
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  );
  assert.throws(() => sha256AfterByte(256, new Uint8Array(1)), UsageError);
  assert.throws(() => sha256AfterByte(0, 'text' as unknown as Uint8Array), UsageError);
});

test('SHA3-256 of the empty string (FIPS 202)', () => {
  assert.equal(
    sha3_256(new Uint8Array(0)).toString('hex'),
    'a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a',
  );
});

const RFC8032 = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

for (const v of RFC8032) {
  test(`Ed25519 RFC 8032 ${v.name}: key, signature, verification`, () => {
    const kp = signingKeyPairFromSeed(hex(v.secret));
    assert.equal(kp.publicKey.toString('hex'), v.public);
    const sig = sign(hex(v.message), kp.secretKey);
    assert.equal(sig.toString('hex'), v.signature);
    assert.equal(verify(sig, hex(v.message), kp.publicKey), true);
    const bad = Buffer.from(sig);
    bad[10]! ^= 1;
    assert.equal(verify(bad, hex(v.message), kp.publicKey), false);
    assert.equal(verify(sig, Buffer.concat([hex(v.message), Buffer.of(0)]), kp.publicKey), false);
  });
}

test('Ed25519 verify: malformed lengths throw a typed error naming the argument', () => {
  const kp = generateSigningKeyPair();
  assert.throws(
    () => verify(new Uint8Array(63), new Uint8Array(1), kp.publicKey),
    (e: unknown) => {
      return e instanceof UsageError && /signature/.test(e.message);
    },
  );
  assert.throws(() => verify(new Uint8Array(64), new Uint8Array(1), new Uint8Array(31)), /publicKey/);
});

test('Ed25519 verify rejects a non-canonical S (S + L) that a lax verifier would accept', () => {
  const v = RFC8032[0]!;
  const sig = hex(v.signature);
  // L = 2^252 + 27742317777372353535851937790883648493, little-endian; S' = S + L.
  const L = hex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
  const s = sig.subarray(32);
  let carry = 0;
  const sPlusL = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) {
    const t = s[i]! + L[i]! + carry;
    sPlusL[i] = t & 0xff;
    carry = t >> 8;
  }
  const malleated = Buffer.concat([sig.subarray(0, 32), sPlusL]);
  assert.equal(verify(malleated, hex(v.message), hex(v.public)), false);
});

/** RFC 4231 test cases 1 and 6: key, data, HMAC-SHA256. */
const RFC4231_CASES: [Buffer, Buffer, string][] = [
  [
    Buffer.alloc(20, 0x0b),
    Buffer.from('Hi There'),
    'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  ],
  [
    Buffer.alloc(131, 0xaa),
    Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
    '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  ],
];

test('HMAC-SHA256 RFC 4231 test cases 1 and 6; the precomputed key gives the same bytes', () => {
  for (const [key, data, mac] of RFC4231_CASES) {
    assert.equal(hmacSha256(key, data).toString('hex'), mac);
    const k = new HmacSha256Key(key);
    assert.equal(k.mac(data).toString('hex'), mac);
    assert.equal(k.mac(data.subarray(0, 3), data.subarray(3)).toString('hex'), mac, 'in parts, reused');
  }
  for (const len of [0, 1, 32, 63, 64, 65, 200]) {
    const key = randomBytes(len);
    const k = new HmacSha256Key(key);
    for (const parts of [[], [randomBytes(5)], [randomBytes(100), randomBytes(0), randomBytes(64)]])
      assert.deepEqual(k.mac(...parts), hmacSha256(key, ...parts), `key of ${len} bytes`);
    // A prefix absorbed once: the MACs of prefix ‖ input, whichever of its methods computes them.
    for (const prefixLen of [0, 1, 63, 64, 75, 200]) {
      const prefix = randomBytes(prefixLen);
      const p = new HmacSha256Key(key, prefix);
      for (const input of [randomBytes(0), randomBytes(34), randomBytes(100)]) {
        const want = hmacSha256(key, prefix, input);
        assert.deepEqual(p.macOne(input), want, `key ${len}, prefix ${prefixLen}`);
        assert.deepEqual(p.mac(input.subarray(0, 3), input.subarray(3)), want);
      }
    }
  }
});

test('HmacSha256Latin1: RFC 4231 cases 1 and 6, and the same bytes as hmacSha256 for keys and inputs of several lengths', () => {
  for (const [key, data, mac] of RFC4231_CASES) {
    const k = new HmacSha256Latin1(key, data.length);
    k.input.set(data);
    assert.equal(Buffer.from(k.macLatin1(), 'latin1').toString('hex'), mac);
  }
  for (const keyLen of [0, 1, 32, 63, 64, 65, 200]) {
    const key = randomBytes(keyLen);
    for (const inputLen of [0, 1, 43, 55, 56, 64, 119, 120, 300]) {
      const k = new HmacSha256Latin1(key, inputLen);
      assert.equal(k.input.length, inputLen);
      // Reused: each MAC depends only on the input written for it.
      for (let round = 0; round < 3; round++) {
        const input = randomBytes(inputLen);
        k.input.set(input);
        const want = hmacSha256(key, input);
        assert.equal(k.macLatin1(), want.toString('latin1'), `key ${keyLen}, input ${inputLen}`);
      }
    }
  }
  assert.throws(() => new HmacSha256Latin1(randomBytes(32), -1), UsageError);
  // wipe zeroes the key's padded blocks (and the input): the MAC after it is no longer the key's.
  const key = randomBytes(32);
  const w = new HmacSha256Latin1(key, 4);
  w.input.set([1, 2, 3, 4]);
  const before = w.macLatin1();
  w.wipe();
  assert.notEqual(w.macLatin1(), before);
});

test('HKDF-SHA256 RFC 5869 test cases 1 and 3', () => {
  const okm1 = hkdfSha256(
    hex('0b'.repeat(22)),
    hex('000102030405060708090a0b0c'),
    hex('f0f1f2f3f4f5f6f7f8f9'),
    42,
  );
  assert.equal(
    okm1.toString('hex'),
    '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  );
  const okm3 = hkdfSha256(hex('0b'.repeat(22)), new Uint8Array(0), new Uint8Array(0), 42);
  assert.equal(
    okm3.toString('hex'),
    '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  );
});

test('XChaCha20-Poly1305 draft-irtf-cfrg-xchacha-03 §A.3.1', () => {
  const plaintext = Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const ad = hex('50515253c0c1c2c3c4c5c6c7');
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
  const expected = hex(
    `bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e
     c0875924c1c7987947deafd8780acf49`,
  );
  const sealed = aeadSeal(key, nonce, plaintext, ad);
  assert.equal(sealed.toString('hex'), expected.toString('hex'));
  assert.deepEqual(aeadOpen(key, nonce, sealed, ad), plaintext);
  // Any change to ciphertext, tag, nonce or associated data fails to open.
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - AEAD_TAG_BYTES - 1]! ^= 0x80;
  assert.equal(aeadOpen(key, nonce, flipped, ad), null);
  assert.equal(aeadOpen(key, nonce, sealed, hex('50515253c0c1c2c3c4c5c6c8')), null);
  assert.equal(aeadOpen(key, Buffer.alloc(24), sealed, ad), null);
  assert.equal(aeadOpen(key, nonce, sealed.subarray(0, 10), ad), null);
});

test('X25519 RFC 7748 §6.1 Diffie-Hellman', () => {
  const aliceSecret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bobSecret = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const alicePublic = x25519PublicFromSecret(aliceSecret);
  const bobPublic = x25519PublicFromSecret(bobSecret);
  assert.equal(
    alicePublic.toString('hex'),
    '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  );
  assert.equal(bobPublic.toString('hex'), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  assert.equal(x25519(aliceSecret, bobPublic)!.toString('hex'), shared);
  assert.equal(x25519(bobSecret, alicePublic)!.toString('hex'), shared);
  // A low-order point yields the all-zero secret, which libsodium refuses: null, not a zero key.
  assert.equal(x25519(aliceSecret, new Uint8Array(32)), null);
});

test('Ed25519 → X25519 conversion agrees between public and secret halves', () => {
  const kp = generateSigningKeyPair();
  const xs = ed25519SecretToX25519(kp.secretKey);
  assert.deepEqual(x25519PublicFromSecret(xs), ed25519PublicToX25519(kp.publicKey));
});

test('sealed boxes open only for their recipient and detect tampering', () => {
  const alice = generateSigningKeyPair();
  const bob = generateSigningKeyPair();
  const sealed = sealToIdentity(Buffer.from('invite for alice'), alice.publicKey);
  assert.deepEqual(openSealedToIdentity(sealed, alice), Buffer.from('invite for alice'));
  assert.equal(openSealedToIdentity(sealed, bob), null);
  const tampered = Buffer.from(sealed);
  tampered[5]! ^= 1;
  assert.equal(openSealedToIdentity(tampered, alice), null);
  assert.equal(openSealedToIdentity(sealed.subarray(0, 47), alice), null);
});

test('constant-time equality and wiping', () => {
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('ab')), false);
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  const secret = randomBytes(32);
  wipe(secret);
  assert.deepEqual(secret, Buffer.alloc(32));
  // Both ways a buffer is zeroed (in place up to 64 bytes, libsodium above), a view only within
  // its bounds, and nothing to do for null or empty.
  for (const size of [1, 64, 65, 4096]) {
    const onHeap = new Uint8Array(size).fill(7);
    wipe(onHeap);
    assert.ok(
      onHeap.every((b) => b === 0),
      `${size} bytes`,
    );
  }
  const outer = Buffer.alloc(200, 9);
  wipe(outer.subarray(10, 42), outer.subarray(100, 180));
  assert.ok(outer.subarray(10, 42).every((b) => b === 0) && outer.subarray(100, 180).every((b) => b === 0));
  assert.ok(outer.subarray(0, 10).every((b) => b === 9) && outer.subarray(42, 100).every((b) => b === 9));
  assert.ok(outer.subarray(180).every((b) => b === 9));
  wipe(null, undefined, new Uint8Array(0));
});

test('Argon2id (libsodium) agrees with an independent implementation (@noble/hashes)', async () => {
  const salt = Buffer.from('0123456789abcdef');
  const ours = await argon2id(Buffer.from('correct horse'), salt, { opsLimit: 2, memLimitBytes: 64 * 1024 });
  const reference = nobleArgon2id(Buffer.from('correct horse'), salt, { t: 2, m: 64, p: 1, dkLen: 32 });
  assert.equal(ours.toString('hex'), Buffer.from(reference).toString('hex'));
  const other = await argon2id(Buffer.from('correct horsf'), salt, ARGON2ID_TEST);
  assert.notDeepEqual(other, ours);
  await assert.rejects(argon2id(Buffer.from('x'), Buffer.alloc(8), ARGON2ID_TEST), /salt/);
});
