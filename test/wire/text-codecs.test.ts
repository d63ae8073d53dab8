import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CodecError, CwtchError } from '../../src/errors.ts';
import { base32Decode, base32Encode } from '../../src/wire/base32.ts';
import { base64Decode, base64Encode, base64UrlDecode, base64UrlEncode } from '../../src/wire/base64.ts';
import { pad, unpad } from '../../src/wire/padding.ts';

test('base32 RFC 4648 §10 vectors (lower case, unpadded)', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ];
  for (const [plain, encoded] of vectors) {
    assert.equal(base32Encode(Buffer.from(plain)), encoded);
    assert.equal(Buffer.from(base32Decode(encoded)).toString(), plain);
  }
});

test('base32 decoding is strict: alphabet, length, spare bits', () => {
  for (const bad of ['MY', 'm1', 'm', 'mzx', 'mz', 'mzxw6ytboi=', 'mzxw6ytbop']) {
    assert.throws(() => base32Decode(bad), CodecError, bad);
  }
});

test('property: base32 and base64 round-trip and accept only their canonical text', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      assert.deepEqual(base32Decode(base32Encode(bytes)), Uint8Array.from(bytes));
      assert.deepEqual(Uint8Array.from(base64Decode(base64Encode(bytes))), Uint8Array.from(bytes));
      assert.deepEqual(Uint8Array.from(base64UrlDecode(base64UrlEncode(bytes))), Uint8Array.from(bytes));
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (text) => {
      for (const decode of [base32Decode, base64Decode, base64UrlDecode]) {
        try {
          decode(text);
        } catch (e) {
          assert.ok(e instanceof CwtchError && e.code === 'codec');
        }
      }
    }),
  );
});

test('base64 rejects non-canonical spare bits, missing padding and stray characters', () => {
  assert.throws(() => base64Decode('QR=='), CodecError); // 'A' is canonical: 'QQ=='
  assert.throws(() => base64Decode('QQ'), CodecError);
  assert.throws(() => base64Decode('Q Q=='), CodecError);
  assert.throws(() => base64UrlDecode('QR'), CodecError);
  assert.throws(() => base64UrlDecode('QQ=='), CodecError);
});

test('padding: fixed size, strict unpadding', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 63 }), (data) => {
      const block = pad(data, 64);
      assert.equal(block.length, 64);
      assert.deepEqual(Uint8Array.from(unpad(block)), Uint8Array.from(data));
    }),
  );
  assert.throws(() => pad(new Uint8Array(64), 64), /does not fit/);
  assert.throws(() => unpad(new Uint8Array(64)), CodecError);
  const noMarker = new Uint8Array(64);
  noMarker[3] = 0x81;
  assert.throws(() => unpad(noMarker), CodecError);
});
