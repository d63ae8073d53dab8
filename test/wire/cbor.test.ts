import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode as cborgEncode, rfc8949EncodeOptions } from 'cborg';
import fc from 'fast-check';
import { CodecError, CwtchError } from '../../src/errors.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { HOSTILE_BYTES } from './hostile.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

// RFC 8949 Appendix A examples within our data model.
const APPENDIX_A: [CborValue, string][] = [
  [0, '00'],
  [1, '01'],
  [10, '0a'],
  [23, '17'],
  [24, '1818'],
  [25, '1819'],
  [100, '1864'],
  [1000, '1903e8'],
  [1000000, '1a000f4240'],
  [1000000000000, '1b000000e8d4a51000'],
  [-1, '20'],
  [-10, '29'],
  [-100, '3863'],
  [-1000, '3903e7'],
  [false, 'f4'],
  [true, 'f5'],
  [null, 'f6'],
  [new Uint8Array(0), '40'],
  [Uint8Array.of(1, 2, 3, 4), '4401020304'],
  ['', '60'],
  ['a', '6161'],
  ['IETF', '6449455446'],
  ['"\\', '62225c'],
  ['\u00fc', '62c3bc'],
  ['\u6c34', '63e6b0b4'],
  ['\ud800\udd51', '64f0908591'],
  [[], '80'],
  [[1, 2, 3], '83010203'],
  [[1, [2, 3], [4, 5]], '8301820203820405'],
  [new Map(), 'a0'],
  [
    new Map([
      [1, 2],
      [3, 4],
    ]),
    'a201020304',
  ],
  [
    new Map<string, CborValue>([
      ['a', 1],
      ['b', [2, 3]],
    ]),
    'a26161016162820203',
  ],
];

test('RFC 8949 Appendix A examples encode and decode exactly', () => {
  for (const [value, expected] of APPENDIX_A) {
    assert.equal(hex(encodeCbor(value)), expected, `encode ${expected}`);
    assert.deepEqual(decodeCbor(unhex(expected)), value, `decode ${expected}`);
  }
});

test('map keys are sorted bytewise by their encoding (RFC 8949 §4.2.1), not by length first', () => {
  // 10 encodes as 0a, 100 as 1864, -1 as 20, "z" as 617a, "aa" as 626161.
  const m = new Map<string | number, CborValue>([
    ['aa', 0],
    ['z', 0],
    [-1, 0],
    [100, 0],
    [10, 0],
  ]);
  assert.equal(hex(encodeCbor(m)), 'a50a001864002000617a0062616100');
  // Built in that order already (written as it iterates), or in order but for its last key.
  const ordered = new Map<string | number, CborValue>([...m].reverse());
  assert.equal(hex(encodeCbor(ordered)), 'a50a001864002000617a0062616100');
  const lastOut = new Map<string | number, CborValue>([
    [10, 0],
    [100, 0],
    [-1, 0],
    ['aa', 0],
    ['z', 0],
  ]);
  assert.equal(hex(encodeCbor(lastOut)), 'a50a001864002000617a0062616100');
});

test('integers of five and nine bytes, up to the largest safe one, written big-endian', () => {
  for (const [value, expected] of [
    [0xffff_ffff, '1affffffff'],
    [0x1_0000_0000, '1b0000000100000000'],
    [1_733_500_000_123, '1b000001939ca6d77b'],
    [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    [-0x1_0000_0001, '3b0000000100000000'],
    [-Number.MAX_SAFE_INTEGER, '3b001ffffffffffffe'],
  ] as const) {
    assert.equal(hex(encodeCbor(value)), expected, String(value));
    assert.equal(decodeCbor(unhex(expected)), value);
  }
});

const NON_CANONICAL: [string, string, string][] = [
  ['1817', 'cbor-non-canonical', 'uint 23 in two bytes'],
  ['190017', 'cbor-non-canonical', 'uint in three bytes'],
  ['1a0000ffff', 'cbor-non-canonical', 'uint in five bytes'],
  ['1b00000000ffffffff', 'cbor-non-canonical', 'uint in nine bytes'],
  ['5801ff', 'cbor-non-canonical', 'short byte string with long length'],
  ['a202000100', 'cbor-unsorted-map', 'unsorted keys'],
  ['a201000100', 'cbor-unsorted-map', 'duplicate keys'],
  ['0000', 'cbor-trailing-bytes', 'trailing bytes'],
  ['5f41014102ff', 'cbor-indefinite', 'indefinite bytes'],
  ['fa3f800000', 'cbor-unsupported', 'float32'],
  ['c11a514b67b0', 'cbor-unsupported', 'tag 1'],
  ['f7', 'cbor-unsupported', 'undefined'],
  ['62c328', 'cbor-bad-utf8', 'invalid UTF-8'],
  ['1b0020000000000000', 'cbor-integer-too-large', '2^53'],
  ['a1f600', 'cbor-bad-key', 'null key'],
  ['830102', 'cbor-truncated', 'truncated array'],
];

test('non-canonical and unsupported encodings are rejected with a typed reason', () => {
  for (const [bytes, reason, what] of NON_CANONICAL) {
    assert.throws(
      () => decodeCbor(unhex(bytes)),
      (e: unknown) => e instanceof CodecError && e.reason === reason,
      `${what} (${bytes}) should fail with ${reason}`,
    );
  }
});

test('caps on depth, item count and string length are checked before allocating', () => {
  assert.throws(
    () => decodeCbor(unhex('9b0000000100000000')),
    (e: unknown) => e instanceof CodecError,
  );
  assert.throws(
    () => decodeCbor(new Uint8Array(20).fill(0x81), { maxDepth: 8, maxItems: 10, maxStringBytes: 10 }),
    (e: unknown) => e instanceof CodecError && e.reason === 'cbor-too-deep',
  );
  assert.throws(
    () => decodeCbor(unhex(`4b${'00'.repeat(11)}`), { maxDepth: 8, maxItems: 10, maxStringBytes: 10 }),
    (e: unknown) => e instanceof CodecError && e.reason === 'cbor-too-long',
  );
});

test('hostile inputs only ever produce a CodecError', () => {
  for (const bytes of HOSTILE_BYTES) {
    try {
      decodeCbor(bytes);
    } catch (e) {
      assert.ok(e instanceof CodecError, `unexpected ${String(e)} for ${hex(bytes)}`);
    }
  }
});

const key = fc.oneof(fc.integer({ min: -1000, max: 100000 }), fc.string({ maxLength: 8 }));
const value: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    fc.integer(),
    fc.uint8Array({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.uniqueArray(fc.tuple(key, tie('v')), { maxLength: 5, selector: ([k]) => k }).map((e) => new Map(e)),
  ),
})).v;

test('property: decode(encode(v)) = v, and re-encoding gives the same bytes', () => {
  fc.assert(
    fc.property(value, (v) => {
      const bytes = encodeCbor(v);
      const back = decodeCbor(bytes, { maxDepth: 64, maxItems: 256, maxStringBytes: 1 << 20 });
      assert.deepEqual(back, v);
      assert.deepEqual(encodeCbor(back), bytes);
    }),
    { numRuns: 500 },
  );
});

// The relay encodes a sync page (~0.5 MiB) per request: a writer that grew by doubling and then
// copied its result made ~5 times that in garbage per page (src/wire/cbor.ts encodedSize).
test('property: an encoding is one buffer of exactly its size (sized first, never regrown or copied)', () => {
  fc.assert(
    fc.property(fc.oneof(value, fc.string({ unit: 'binary', maxLength: 20 })), (v) => {
      const bytes = encodeCbor(v);
      assert.equal(bytes.buffer.byteLength, bytes.length);
      assert.equal(bytes.byteOffset, 0);
    }),
    { numRuns: 500 },
  );
  // Count the buffers the encoder creates for a page: the global it resolves at call time is
  // swapped for a counting proxy (restored before any assertion).
  const envelopes = Array.from({ length: 256 }, () => new Uint8Array(2048));
  const RealUint8Array = globalThis.Uint8Array;
  let created = 0;
  globalThis.Uint8Array = new Proxy(RealUint8Array, {
    construct(target, args) {
      created++;
      return Reflect.construct(target, args);
    },
  });
  // A page of envelopes, and one ending in heads of one and five bytes (a relay's sync page ends
  // in a few small fields): the last items fit the exact size as the first ones do.
  const pages: CborValue[] = [
    [2, 7, new Map<number, CborValue>([[0, envelopes]])],
    [
      2,
      7,
      new Map<number, CborValue>([
        [0, envelopes],
        [1, 100_000],
        [2, []],
        [3, false],
        [4, 5],
      ]),
    ],
  ];
  const encoded: Uint8Array[] = [];
  const counts: number[] = [];
  try {
    for (const p of pages) {
      created = 0;
      encoded.push(encodeCbor(p));
      counts.push(created);
    }
  } finally {
    globalThis.Uint8Array = RealUint8Array;
  }
  assert.deepEqual(counts, [1, 1], 'one buffer for the whole page');
  for (const page of encoded) assert.equal(page.buffer.byteLength, page.length);
});

function toCborgModel(v: CborValue): unknown {
  if (Array.isArray(v)) return v.map(toCborgModel);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, toCborgModel(x)]));
  return v;
}

test('property: our deterministic encoding equals cborg with RFC 8949 options (independent oracle)', () => {
  fc.assert(
    fc.property(value, (v) => {
      assert.equal(hex(encodeCbor(v)), hex(cborgEncode(toCborgModel(v), rfc8949EncodeOptions)));
    }),
    { numRuns: 500 },
  );
});

test('property: random bytes never throw anything but CodecError, and anything accepted is canonical', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        const v = decodeCbor(bytes);
        assert.deepEqual(encodeCbor(v), bytes);
      } catch (e) {
        assert.ok(e instanceof CwtchError && e.code === 'codec', String(e));
      }
    }),
    { numRuns: 5000 },
  );
});

test('property: mutating one byte of a canonical encoding never yields a different accepted encoding of the same value', () => {
  fc.assert(
    fc.property(value, fc.nat(), fc.integer({ min: 1, max: 255 }), (v, at, delta) => {
      const bytes = encodeCbor(v);
      const mutated = Uint8Array.from(bytes);
      const i = at % mutated.length;
      mutated[i] = (mutated[i]! + delta) & 0xff;
      try {
        const w = decodeCbor(mutated, { maxDepth: 64, maxItems: 256, maxStringBytes: 1 << 20 });
        assert.notDeepEqual(encodeCbor(w), bytes);
      } catch (e) {
        assert.ok(e instanceof CodecError);
      }
    }),
    { numRuns: 500 },
  );
});

test('decoded byte strings are copies: wiping the input (a decrypted secret) leaves them intact', () => {
  const secret = Buffer.from(encodeCbor([Uint8Array.of(1, 2, 3, 4)]));
  const [decoded] = decodeCbor(secret) as [Uint8Array];
  secret.fill(0);
  assert.deepEqual(decoded, Uint8Array.of(1, 2, 3, 4));
});
