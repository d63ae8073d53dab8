/**
 * Receipts (src/log/receipt.ts): the canonical layout byte for byte, strict decoding of hostile
 * bytes, signatures that fail on any tampering, and the determinism that lets a relay re-issue
 * the original receipt.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { sha256 } from '../../src/crypto/index.ts';
import { CodecError, InconsistencyError, UsageError, VerifyError } from '../../src/errors.ts';
import {
  appendLeaves,
  emptyFrontier,
  InMemoryNodeStore,
  inclusionProof,
  type LogIndex,
  leafHash,
  rootAt,
  signCheckpoint,
  type TreeSize,
} from '../../src/log/index.ts';
import {
  decodeReceipt,
  decodeReceiptEvidence,
  encodeReceipt,
  encodeReceiptEvidence,
  RECEIPT_DOMAIN,
  type Receipt,
  type ReceiptBody,
  type ReceiptInclusionFailureEvidence,
  type ReceiptNotIncludedEvidence,
  receiptSignedMessage,
  receiptSignerFor,
  signReceipt,
  verifyReceipt,
  verifyReceiptAgainstCheckpoint,
  verifyReceiptNotIncludedEvidence,
} from '../../src/log/receipt.ts';
import { ORIGIN, relayKey } from './fixtures/helpers.ts';

const key = relayKey();
const body: ReceiptBody = {
  origin: ORIGIN,
  index: 258 as LogIndex,
  leafHash: leafHash(Buffer.alloc(2048, 1)),
  timeMs: 1_700_000_000_123,
};

function codecFails(bytes: Uint8Array, reason: string): void {
  assert.throws(
    () => decodeReceipt(bytes),
    (e: unknown) => e instanceof CodecError && e.reason === reason,
    `expected CodecError ${reason}`,
  );
}

test('layout: domain ‖ u16 origin length ‖ origin ‖ u64 index ‖ leaf ‖ u64 time ‖ signature', () => {
  const receipt = signReceipt(body, key.secretKey);
  const bytes = Buffer.from(encodeReceipt(receipt));
  const origin = Buffer.from(ORIGIN);
  const expected = Buffer.concat([
    Buffer.from(RECEIPT_DOMAIN),
    Buffer.from([0, origin.length]),
    origin,
    Buffer.from('0000000000000102', 'hex'),
    Buffer.from(body.leafHash),
    Buffer.from((1_700_000_000_123).toString(16).padStart(16, '0'), 'hex'),
    Buffer.from(receipt.signature),
  ]);
  assert.deepEqual(bytes, expected);
  assert.equal(bytes.length, 24 + 2 + origin.length + 8 + 32 + 8 + 64);
  assert.deepEqual(Buffer.from(receiptSignedMessage(body)), expected.subarray(0, expected.length - 64));
  // The signed message is the encoding minus the signature, and the signature is plain Ed25519.
  assert.equal(verifyReceipt(receipt, key.publicKey), true);
});

test('signing is deterministic: the same body and key give the same bytes (re-issue)', () => {
  const a = encodeReceipt(signReceipt(body, key.secretKey));
  const b = encodeReceipt(signReceipt({ ...body, leafHash: Uint8Array.from(body.leafHash) }, key.secretKey));
  assert.deepEqual(a, b);
});

test('decode → encode is the identity, and any receipt round-trips', () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-z0-9./:_-]{1,255}$/),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      (origin, index, leaf, timeMs) => {
        const receipt = signReceipt(
          { origin, index: index as LogIndex, leafHash: leaf, timeMs },
          key.secretKey,
        );
        const bytes = encodeReceipt(receipt);
        const decoded = decodeReceipt(bytes);
        assert.deepEqual(Buffer.from(encodeReceipt(decoded)), Buffer.from(bytes));
        assert.equal(decoded.origin, origin);
        assert.equal(decoded.index, index);
        assert.equal(decoded.timeMs, timeMs);
        assert.equal(verifyReceipt(decoded, key.publicKey), true);
      },
    ),
    { numRuns: 200 },
  );
  // Non-ASCII origins are fine when they are well-formed and space-free.
  const unicode = signReceipt({ ...body, origin: 'relais.exemple/journal-é' }, key.secretKey);
  assert.equal(decodeReceipt(encodeReceipt(unicode)).origin, 'relais.exemple/journal-é');
});

test('tampering with any field or the signature makes verification false', () => {
  const receipt = signReceipt(body, key.secretKey);
  const tampered: Receipt[] = [
    { ...receipt, origin: `${ORIGIN}x` },
    { ...receipt, index: (receipt.index + 1) as LogIndex },
    { ...receipt, leafHash: sha256(receipt.leafHash) },
    { ...receipt, timeMs: receipt.timeMs + 1 },
    { ...receipt, signature: Uint8Array.from(receipt.signature, (b, i) => (i === 10 ? b ^ 1 : b)) },
  ];
  for (const t of tampered) assert.equal(verifyReceipt(t, key.publicKey), false);
  assert.equal(verifyReceipt(receipt, relayKey(8).publicKey), false, 'another relay key');

  // Every single-bit flip of the encoding is either a CodecError or a receipt that fails to verify.
  const bytes = encodeReceipt(receipt);
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const flipped = Uint8Array.from(bytes);
    flipped[bit >> 3]! ^= 1 << (bit & 7);
    let decoded: Receipt;
    try {
      decoded = decodeReceipt(flipped);
    } catch (e) {
      assert.ok(e instanceof CodecError, `bit ${bit}: ${String(e)}`);
      continue;
    }
    assert.equal(verifyReceipt(decoded, key.publicKey), false, `bit ${bit}`);
  }
});

test('strict decoding: every malformation is a CodecError with a stable reason', () => {
  const good = Buffer.from(encodeReceipt(signReceipt(body, key.secretKey)));
  const originAt = RECEIPT_DOMAIN.length;
  const withOrigin = (origin: Buffer): Buffer => {
    const head = Buffer.alloc(2);
    head.writeUInt16BE(origin.length);
    return Buffer.concat([
      good.subarray(0, originAt),
      head,
      origin,
      good.subarray(originAt + 2 + ORIGIN.length),
    ]);
  };

  codecFails(good.subarray(0, 10), 'receipt-truncated');
  codecFails(good.subarray(0, good.length - 1), 'receipt-truncated');
  codecFails(Buffer.concat([good, Buffer.of(0)]), 'receipt-trailing-bytes');
  codecFails(
    Buffer.concat([Buffer.from('cwtch-groups/v2/receipt\n'), good.subarray(originAt)]),
    'receipt-bad-prefix',
  );
  codecFails(withOrigin(Buffer.alloc(0)), 'receipt-bad-origin');
  codecFails(withOrigin(Buffer.alloc(256, 0x61)), 'receipt-bad-origin');
  codecFails(withOrigin(Buffer.from('has space')), 'receipt-bad-origin');
  codecFails(withOrigin(Buffer.from('a+b')), 'receipt-bad-origin');
  codecFails(withOrigin(Buffer.from('line\nbreak')), 'receipt-bad-origin');
  codecFails(withOrigin(Buffer.from('nul\0')), 'receipt-bad-origin');
  codecFails(withOrigin(Buffer.from([0xef, 0xbb, 0xbf, 0x61])), 'receipt-bad-origin'); // BOM kept, refused
  codecFails(withOrigin(Buffer.from([0xc0, 0xaf])), 'receipt-bad-origin'); // over-long '/'
  codecFails(withOrigin(Buffer.from([0xed, 0xa0, 0x80])), 'receipt-bad-origin'); // UTF-16 surrogate
  codecFails(withOrigin(Buffer.from([0xff])), 'receipt-bad-origin');

  const indexAt = originAt + 2 + ORIGIN.length;
  const bigIndex = Buffer.from(good);
  bigIndex.writeBigUInt64BE(2n ** 53n, indexAt);
  codecFails(bigIndex, 'receipt-integer-too-large');
  const bigTime = Buffer.from(good);
  bigTime.writeBigUInt64BE(2n ** 64n - 1n, indexAt + 8 + 32);
  codecFails(bigTime, 'receipt-integer-too-large');
  const maxIndex = Buffer.from(good);
  maxIndex.writeBigUInt64BE(2n ** 53n - 1n, indexAt);
  assert.equal(decodeReceipt(maxIndex).index, Number.MAX_SAFE_INTEGER);

  // Random bytes never throw anything but CodecError.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      try {
        decodeReceipt(bytes);
      } catch (e) {
        assert.ok(e instanceof CodecError);
      }
    }),
  );
  assert.throws(() => decodeReceipt('nope' as unknown as Uint8Array), UsageError);
});

test('encoding and signing refuse out-of-range fields with UsageError naming the field', () => {
  const bad = (patch: Partial<Record<keyof ReceiptBody, unknown>>, field: string) =>
    assert.throws(
      () => signReceipt({ ...body, ...patch } as ReceiptBody, key.secretKey),
      (e: unknown) => e instanceof UsageError && e.message.includes(field),
    );
  bad({ origin: '' }, 'receipt.origin');
  bad({ origin: 'x'.repeat(256) }, 'receipt.origin');
  bad({ origin: 'a b' }, 'receipt.origin');
  bad({ origin: 'lone\ud800' }, 'receipt.origin');
  bad({ index: -1 }, 'receipt.index');
  bad({ index: 2 ** 53 }, 'receipt.index');
  bad({ index: 1.5 }, 'receipt.index');
  bad({ leafHash: new Uint8Array(31) }, 'receipt.leafHash');
  bad({ timeMs: Number.NaN }, 'receipt.timeMs');
  assert.throws(() => signReceipt(body, new Uint8Array(32)), UsageError);
  const receipt = signReceipt(body, key.secretKey);
  assert.throws(() => verifyReceipt(receipt, new Uint8Array(31)), UsageError);
  assert.throws(() => encodeReceipt({ ...receipt, signature: new Uint8Array(63) }), UsageError);
});

// ---------------------------------------------------------------------------------------------
// Receipts against checkpoints

/** A log of n leaves in memory with a signed checkpoint at `size`. */
function smallLog(n: number) {
  const store = new InMemoryNodeStore();
  const leaves = Array.from({ length: n }, (_, i) => leafHash(Buffer.alloc(64, i + 1)));
  const appended = appendLeaves(emptyFrontier(), leaves);
  store.put(appended.newNodes);
  const note = (size: number, signer = key) =>
    signCheckpoint(
      { origin: ORIGIN, size: size as TreeSize, rootHash: rootAt(store, size as TreeSize) },
      ORIGIN,
      signer.secretKey,
    );
  const proof = (index: number, size: number) => inclusionProof(store, index as LogIndex, size as TreeSize);
  return { store, leaves, note, proof };
}

function receiptFor(index: number, leaf: Uint8Array): Receipt {
  return signReceipt(
    { origin: ORIGIN, index: index as LogIndex, leafHash: leaf, timeMs: 1000 },
    key.secretKey,
  );
}

test('verifyReceiptAgainstCheckpoint: included, and not yet covered', () => {
  const log = smallLog(10);
  const r = receiptFor(3, log.leaves[3]!);
  assert.equal(verifyReceiptAgainstCheckpoint(r, key.publicKey, log.note(10), log.proof(3, 10)), 'included');
  assert.equal(verifyReceiptAgainstCheckpoint(r, key.publicKey, log.note(4), log.proof(3, 4)), 'included');
  assert.equal(verifyReceiptAgainstCheckpoint(r, key.publicKey, log.note(3), []), 'not-yet-covered');
});

test('a checkpoint holding another leaf at a receipted index is a proven breach, checkable offline', () => {
  const log = smallLog(10);
  // The relay promised leaf X at index 3, but its signed tree holds leaves[3] there.
  const promised = receiptFor(3, leafHash(Buffer.from('the envelope the member posted')));
  const note = log.note(10);
  const proof = log.proof(3, 10);
  let evidence: ReceiptInclusionFailureEvidence | undefined;
  assert.throws(
    () => verifyReceiptAgainstCheckpoint(promised, key.publicKey, note, proof, log.leaves[3]),
    (e: unknown) => {
      assert.ok(e instanceof InconsistencyError);
      assert.equal(e.reason, 'receipt-not-included');
      assert.equal(e.code, 'inconsistency');
      evidence = e.evidence as ReceiptInclusionFailureEvidence;
      return true;
    },
  );
  assert.ok(evidence?.notIncluded);
  assert.equal(evidence.kind, 'receipt-inclusion-failure');
  assert.deepEqual(Buffer.from(evidence.receipt), Buffer.from(encodeReceipt(promised)));
  assert.equal(evidence.checkpoint, note);

  // A third party with only the relay key (no group key, no envelope) checks it, also after JSON.
  const proven = evidence.notIncluded;
  const checked = verifyReceiptNotIncludedEvidence(proven, key.publicKey);
  assert.equal(checked.receipt.index, 3);
  assert.equal(checked.checkpoint.size, 10);
  const text = encodeReceiptEvidence(proven);
  const decoded = decodeReceiptEvidence(text);
  assert.equal(encodeReceiptEvidence(decoded), text);
  verifyReceiptNotIncludedEvidence(decoded, key.publicKey);

  // Evidence that proves nothing is refused.
  const refused = (e: ReceiptNotIncludedEvidence, publicKey = key.publicKey) =>
    assert.throws(() => verifyReceiptNotIncludedEvidence(e, publicKey), VerifyError);
  refused(proven, relayKey(8).publicKey);
  refused({ ...proven, leafHash: promised.leafHash });
  refused({ ...proven, leafHash: log.leaves[4]! });
  refused({ ...proven, proof: [sha256(proven.proof[0]!), ...proven.proof.slice(1)] });
  refused({ ...proven, checkpoint: log.note(3) });
  refused({ ...proven, checkpoint: log.note(10, relayKey(8)) });
  const forged = Buffer.from(proven.receipt);
  forged[forged.length - 1]! ^= 1;
  refused({ ...proven, receipt: forged });
  assert.throws(() => decodeReceiptEvidence(text.replace('"kind"', '"kind" ')), CodecError);
  assert.throws(() => decodeReceiptEvidence(`${text} `), CodecError);
  assert.throws(() => decodeReceiptEvidence('{"type":1}'), CodecError);
});

test('a proof that merely fails is an unproven inconsistency: kept as evidence, not as proof', () => {
  const log = smallLog(10);
  const r = receiptFor(3, log.leaves[3]!);
  const failing = (proof: readonly Uint8Array[], leafAt?: Uint8Array) =>
    assert.throws(
      () => verifyReceiptAgainstCheckpoint(r, key.publicKey, log.note(10), proof, leafAt),
      (e: unknown) => {
        assert.ok(e instanceof InconsistencyError);
        assert.equal(e.reason, 'inclusion-proof-failed');
        const evidence = e.evidence as ReceiptInclusionFailureEvidence;
        assert.equal(evidence.notIncluded, undefined);
        assert.equal(evidence.proof.length, proof.length);
        return true;
      },
    );
  const good = log.proof(3, 10);
  failing([sha256(good[0]!), ...good.slice(1)]);
  failing(good.slice(1), log.leaves[3]); // wrong length: malformed proofs fail, they do not throw CodecError
  failing([...good, good[0]!]);
  failing(log.proof(4, 10), log.leaves[4]); // a valid proof of another index proves nothing here
});

test('receipts or checkpoints not signed by the relay key are VerifyErrors, not accusations', () => {
  const log = smallLog(10);
  const r = receiptFor(3, log.leaves[3]!);
  const other = relayKey(8);
  assert.throws(
    () => verifyReceiptAgainstCheckpoint(r, other.publicKey, log.note(10), log.proof(3, 10)),
    (e: unknown) => e instanceof VerifyError && e.reason === 'receipt-bad-signature',
  );
  assert.throws(
    () => verifyReceiptAgainstCheckpoint(r, key.publicKey, log.note(10, other), log.proof(3, 10)),
    (e: unknown) => e instanceof VerifyError,
  );
  const foreign = signCheckpoint(
    { origin: 'other.relay/log', size: 10 as TreeSize, rootHash: rootAt(log.store, 10 as TreeSize) },
    'other.relay/log',
    key.secretKey,
  );
  assert.throws(
    () => verifyReceiptAgainstCheckpoint(r, key.publicKey, foreign, log.proof(3, 10)),
    (e: unknown) => e instanceof VerifyError,
  );
  assert.throws(() => verifyReceiptAgainstCheckpoint(r, key.publicKey, 'not a note', []), CodecError);
  assert.throws(() => verifyReceiptAgainstCheckpoint(r, new Uint8Array(3), log.note(10), []), UsageError);
  assert.throws(
    () => verifyReceiptAgainstCheckpoint(r, key.publicKey, log.note(10), log.proof(3, 10), new Uint8Array(5)),
    UsageError,
  );
});

test('receiptSignerFor produces exactly what signReceipt produces', () => {
  const fast = receiptSignerFor(ORIGIN, key.secretKey);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      (index, leaf, timeMs) => {
        const a = fast(index as LogIndex, leaf, timeMs);
        const b = signReceipt(
          { origin: ORIGIN, index: index as LogIndex, leafHash: leaf, timeMs },
          key.secretKey,
        );
        assert.deepEqual(Buffer.from(encodeReceipt(a)), Buffer.from(encodeReceipt(b)));
      },
    ),
    { numRuns: 100 },
  );
  assert.throws(() => fast(-1 as LogIndex, new Uint8Array(32), 0), UsageError);
  assert.throws(() => receiptSignerFor('bad origin', key.secretKey), UsageError);
});
