import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CodecError, CwtchError, UsageError } from '../../src/errors.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import {
  decodeFrame,
  encodeFrame,
  encodeReceiptFrame,
  type Frame,
  MAX_RECEIPT_BYTES,
} from '../../src/wire/frames.ts';
import { HOSTILE_BYTES } from './hostile.ts';

const b = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

const SAMPLES: Frame[] = [
  { type: 'hello', id: 0, versions: [1] },
  { type: 'post', id: 1, envelope: b(2048), token: null },
  { type: 'post', id: 2, envelope: b(2048), token: b(100) },
  { type: 'sync', id: 3, from: 10, limit: 256, verifiedSize: 9 },
  { type: 'subscribe', id: 4, from: 0, verifiedSize: 0 },
  { type: 'unsubscribe', id: 5 },
  { type: 'prove', id: 6, index: 3, size: 8 },
  { type: 'consistency', id: 7, from: 3, to: 8 },
  { type: 'tokenChallenge', id: 8 },
  { type: 'tokenIssue', id: 9, challenge: b(80), solution: b(8), blinded: [b(32), b(32, 1)] },
  {
    type: 'welcome',
    id: 0,
    version: 1,
    keyBundle: b(300),
    treeSize: 5,
    tokens: { required: true, powDifficulty: 12, maxBatch: 32 },
  },
  { type: 'receipt', id: 1, receipt: b(170), duplicate: false },
  {
    type: 'entries',
    id: 3,
    first: 10,
    entries: [
      { envelope: b(2048), receivedMs: 1 },
      { envelope: null, receivedMs: 2 },
    ],
    checkpoint: 'origin\n12\nAAAA\n\n— origin sig\n',
    proofFrom: 9,
    consistency: [b(32), b(32, 2)],
    live: false,
  },
  { type: 'proof', id: 6, index: 3, size: 8, leafHash: b(32), proof: [b(32)] },
  { type: 'consistencyProof', id: 7, from: 3, to: 8, proof: [] },
  { type: 'challenge', id: 8, challenge: b(80) },
  { type: 'tokens', id: 9, evaluated: [b(32)], proof: b(64) },
  { type: 'ok', id: 5 },
  { type: 'error', id: 2, code: 'pushback', reason: 'rate-limited', message: 'slow down', retryAfterMs: 250 },
  {
    type: 'error',
    id: 2,
    code: 'codec',
    reason: 'envelope-size',
    message: 'envelope must be 2048 bytes',
    retryAfterMs: null,
  },
];

test('every frame type round-trips byte for byte', () => {
  for (const f of SAMPLES) {
    const bytes = encodeFrame(f);
    const back = decodeFrame(bytes);
    assert.deepEqual(encodeFrame(back), bytes, f.type);
    assert.equal(back.type, f.type);
  }
});

test('unknown types, unknown fields, missing fields and wrong shapes are typed errors', () => {
  const cases: [Uint8Array, string][] = [
    [encodeCbor([99, 0, new Map()]), 'unknown-frame-type'],
    [
      encodeCbor([
        2,
        0,
        new Map<number, number | Uint8Array>([
          [1, b(10)],
          [9, 1],
        ]),
      ]),
      'schema-unknown-field',
    ],
    [encodeCbor([3, 0, new Map([[1, 0]])]), 'schema-missing'],
    [
      encodeCbor([
        3,
        0,
        new Map([
          [1, 0],
          [2, 100000],
          [3, 0],
        ]),
      ]),
      'schema-range',
    ],
    [encodeCbor([1, 0]), 'frame-shape'],
    [
      encodeCbor([
        127,
        0,
        new Map<number, string>([
          [1, 'teapot'],
          [2, 'x'],
          [3, 'y'],
        ]),
      ]),
      'bad-error-code',
    ],
    [
      encodeCbor([
        67,
        0,
        new Map<number, number | Uint8Array | Uint8Array[]>([
          [1, 0],
          [2, 1],
          [3, b(32)],
          [4, [b(31)]],
        ]),
      ]),
      'schema-length',
    ],
  ];
  for (const [bytes, reason] of cases) {
    assert.throws(
      () => decodeFrame(bytes),
      (e: unknown) => e instanceof CodecError && e.reason === reason,
      reason,
    );
  }
  for (const bytes of HOSTILE_BYTES) assert.throws(() => decodeFrame(bytes), CodecError);
});

test('property: random bytes and mutated frames only ever produce a CodecError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeFrame(bytes);
      } catch (e) {
        assert.ok(e instanceof CwtchError && e.code === 'codec', String(e));
      }
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.constantFrom(...SAMPLES), fc.nat(), fc.integer({ min: 1, max: 255 }), (f, at, d) => {
      const bytes = Uint8Array.from(encodeFrame(f));
      bytes[at % bytes.length] = (bytes[at % bytes.length]! + d) & 0xff;
      try {
        decodeFrame(bytes);
      } catch (e) {
        assert.ok(e instanceof CwtchError && e.code === 'codec', String(e));
      }
    }),
    { numRuns: 3000 },
  );
});

test("decoding with views (a received message the caller owns) gives the copying decoder's frames and errors, byte strings as views (property)", () => {
  for (const f of SAMPLES) {
    const bytes = Buffer.from(encodeFrame(f));
    const owned = decodeFrame(bytes, true);
    assert.deepEqual(encodeFrame(owned), encodeFrame(decodeFrame(bytes)), f.type);
    if (owned.type === 'post') {
      // A view into the message, not a copy: one allocation and copy fewer per post.
      assert.equal(owned.envelope.buffer, bytes.buffer);
      assert.deepEqual(Buffer.from(owned.envelope), Buffer.from(b(2048)));
    }
  }
  fc.assert(
    fc.property(fc.constantFrom(...SAMPLES), fc.nat(), fc.integer({ min: 0, max: 255 }), (f, at, d) => {
      const bytes = Uint8Array.from(encodeFrame(f));
      bytes[at % bytes.length] = (bytes[at % bytes.length]! + d) & 0xff;
      const outcome = (decode: (x: Uint8Array) => Frame): string => {
        try {
          return `ok ${Buffer.from(encodeFrame(decode(Uint8Array.from(bytes)))).toString('hex')}`;
        } catch (e) {
          assert.ok(e instanceof CwtchError && e.code === 'codec', String(e));
          return `error ${e.reason}`;
        }
      };
      assert.equal(
        outcome((x) => decodeFrame(x, true)),
        outcome((x) => decodeFrame(x)),
      );
    }),
    { numRuns: 3000 },
  );
});

test("the relay's receipt frame encoder gives encodeFrame's bytes, for binary and text receipts (property)", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 0xffffffff })),
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.string({ unit: 'binary', maxLength: 1200 }),
        fc.uint8Array({ minLength: MAX_RECEIPT_BYTES - 2, maxLength: MAX_RECEIPT_BYTES }),
      ),
      fc.boolean(),
      (id, receipt, duplicate) => {
        const bytes = typeof receipt === 'string' ? Buffer.from(receipt, 'utf8') : receipt;
        if (bytes.length > MAX_RECEIPT_BYTES) return;
        const expected = encodeFrame({ type: 'receipt', id, receipt: bytes, duplicate });
        assert.deepEqual(new Uint8Array(encodeReceiptFrame(id, receipt, duplicate)), expected);
      },
    ),
    { numRuns: 500 },
  );
  for (const [id, receipt] of [
    [-1, b(1)],
    [2 ** 32, b(1)],
    [1.5, b(1)],
    [1, b(MAX_RECEIPT_BYTES + 1)],
    [1, 'x'.repeat(MAX_RECEIPT_BYTES + 1)],
  ] as const) {
    assert.throws(() => encodeReceiptFrame(id, receipt, false), UsageError);
  }
});

test("a post without a token, encoded by the fast path, gives the generic CBOR encoder's bytes and decodes back (property)", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 0xffffffff })),
      fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 2040, maxLength: 2100 })),
      (id, envelope) => {
        const frame: Frame = { type: 'post', id, envelope, token: null };
        const encoded = encodeFrame(frame);
        // The generic encoder's bytes for the same frame: [type, id, {1: envelope}].
        assert.deepEqual(new Uint8Array(encoded), encodeCbor([2, id, new Map([[1, envelope]])]));
        assert.deepEqual(decodeFrame(encoded), frame);
      },
    ),
    { numRuns: 300 },
  );
});
