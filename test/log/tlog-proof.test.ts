/**
 * Receipts as C2SP tlog-proofs (https://c2sp.org/tlog-proof): the text format's rules one by one
 * (header line, optional extra line, index line, base64 hash lines, an empty line, the checkpoint
 * note verbatim), parse → format round trips byte for byte, each malformed variant is refused
 * with a CodecError, verification checks one checkpoint signature per batch and the inclusion
 * proof per entry; and a stored v1 receipt (test/vectors/log/receipt-v1.json) keeps verifying.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { CodecError, VerifyError } from '../../src/errors.ts';
import { signCheckpoint } from '../../src/log/checkpoint.ts';
import { type LogIndex, leafHash, type TreeSize } from '../../src/log/hash.ts';
import { decodeReceipt, verifyReceipt, verifyReceiptAgainstCheckpoint } from '../../src/log/receipt.ts';
import { decodeStoredReceipt, receiptCommitment, verifyStoredReceipt } from '../../src/log/stored-receipt.ts';
import {
  formatTlogProof,
  isTlogProof,
  parseTlogProof,
  TLOG_PROOF_HEADER,
  type TlogProof,
  VerifiedCheckpointCache,
  verifyTlogProof,
} from '../../src/log/tlog-proof.ts';
import { appendLeaves, emptyFrontier, InMemoryNodeStore, inclusionProof } from '../../src/log/tree.ts';
import { loadVector } from './helpers.ts';

const key = signingKeyPairFromSeed(Buffer.alloc(32, 0x51));
const other = signingKeyPairFromSeed(Buffer.alloc(32, 0x52));
const ORIGIN = 'relay.example/log';

/** A log of `n` entries, its signed checkpoint, and the tlog-proof of every entry. */
function log(n: number) {
  const envelopes = Array.from({ length: n }, (_, i) => Buffer.from(`envelope ${i}`));
  const leaves = envelopes.map((e) => leafHash(e));
  const store = new InMemoryNodeStore();
  const appended = appendLeaves(emptyFrontier(), leaves);
  store.put(appended.newNodes);
  const note = signCheckpoint(
    { origin: ORIGIN, size: n as TreeSize, rootHash: appended.root },
    ORIGIN,
    key.secretKey,
  );
  const proofs: TlogProof[] = leaves.map((_, i) => ({
    index: i as LogIndex,
    proof: inclusionProof(store, i as LogIndex, n as TreeSize),
    checkpoint: note,
  }));
  return { envelopes, leaves, note, proofs };
}

const codec =
  (reason = 'tlog-proof-malformed') =>
  (e: unknown) =>
    e instanceof CodecError && e.reason === reason;

test('the text is the header, the index line, one base64 hash per line, an empty line, the note', () => {
  const { note, proofs } = log(5);
  const text = formatTlogProof(proofs[3]!);
  const lines = text.split('\n');
  assert.equal(lines[0], 'c2sp.org/tlog-proof@v1');
  assert.equal(lines[1], 'index 3');
  assert.equal(proofs[3]!.proof.length, 3);
  for (const l of lines.slice(2, 5)) assert.match(l, /^[A-Za-z0-9+/]{43}=$/);
  assert.equal(lines[5], '');
  assert.equal(text.slice(text.indexOf('\n\n') + 2), note, 'the checkpoint is embedded verbatim');
  assert.ok(text.endsWith('\n'));
});

test('parse → format is the identity, for every index of trees of 1..33 entries, with and without extra', () => {
  for (const n of [1, 2, 3, 5, 8, 13, 33]) {
    const { proofs } = log(n);
    for (const p of proofs) {
      for (const variant of [p, { ...p, extra: Buffer.from('age-v1.2.1-darwin-arm64.tar.gz') }]) {
        const text = formatTlogProof(variant);
        const parsed = parseTlogProof(text);
        assert.equal(formatTlogProof(parsed), text);
        assert.equal(formatTlogProof(parseTlogProof(Buffer.from(text))), text, 'bytes as received');
        assert.equal(parsed.index, p.index);
        assert.deepEqual(
          parsed.proof.map((h) => Buffer.from(h)),
          p.proof.map((h) => Buffer.from(h)),
        );
      }
    }
  }
  // A one-entry tree: index 0 and no hash lines at all.
  const one = formatTlogProof(log(1).proofs[0]!);
  assert.ok(one.startsWith(`${TLOG_PROOF_HEADER}\nindex 0\n\n`));
});

test('the extra line comes second, as "extra <base64>", and is omitted when there is none', () => {
  const p = log(4).proofs[2]!;
  const text = formatTlogProof({ ...p, extra: Buffer.from('hi') });
  assert.equal(text.split('\n')[1], 'extra aGk=');
  assert.equal(text.split('\n')[2], 'index 2');
  assert.ok(!formatTlogProof(p).includes('extra'));
});

test('malformed variants are refused with a CodecError', () => {
  const { proofs } = log(6);
  const good = formatTlogProof(proofs[4]!);
  const [header, index, h1, h2] = good.split('\n') as [string, string, string, string];
  const rest = good.slice(good.indexOf('\n\n'));
  const body = (lines: string[]) => `${lines.join('\n')}${rest}`;
  const cases: [string, string][] = [
    ['wrong header', body(['c2sp.org/tlog-proof@v2', index, h1, h2])],
    ['header with a trailing space', body([`${header} `, index, h1, h2])],
    ['no header', body([index, h1, h2])],
    ['index with a leading zero', body([header, 'index 04', h1, h2])],
    ['index with two spaces', body([header, 'index  4', h1, h2])],
    ['index with a sign', body([header, 'index +4', h1, h2])],
    ['index in hex', body([header, 'index 0x4', h1, h2])],
    ['no index line', body([header, h1, h2])],
    ['index beyond the checkpoint', body([header, 'index 6', h1, h2])],
    ['index above 2^53', body([header, 'index 9007199254740993', h1, h2])],
    ['extra after the index', body([header, index, 'extra aGk=', h1, h2])],
    ['extra without data', body([header, 'extra ', index, h1, h2])],
    ['extra in non-canonical base64', body([header, 'extra aGl=', index, h1, h2])],
    ['a hash without padding', body([header, index, h1.replace(/=$/, ''), h2])],
    ['a hash in base64url', body([header, index, h1.replace(/\+/g, '-').replace(/\//g, '_'), h2])],
    ['a 31-byte hash', body([header, index, Buffer.alloc(31, 1).toString('base64'), h2])],
    ['a 33-byte hash', body([header, index, Buffer.alloc(33, 1).toString('base64'), h2])],
    ['one hash too few', body([header, index, h1])],
    ['one hash too many', body([header, index, h1, h2, h2])],
    ['an empty hash line (two empty lines)', `${header}\n${index}\n${h1}\n${h2}\n${rest}`],
    ['no empty line before the checkpoint', `${header}\n${index}\n${h1}\n${h2}\n${rest.slice(2)}`],
    ['CRLF line ends', good.replace(/\n/g, '\r\n')],
    ['a leading byte-order mark', `\ufeff${good}`],
    ['trailing bytes after the note', `${good}x`],
    ['a truncated note', good.slice(0, -10)],
    ['a lone surrogate', good.replace('index 4', 'index 4\ud800')],
  ];
  for (const [what, text] of cases) {
    assert.throws(
      () => parseTlogProof(text),
      (e: unknown) => e instanceof CodecError,
      what,
    );
  }
  assert.throws(() => parseTlogProof(Buffer.from([0xc3, 0x28])), codec(), 'invalid UTF-8 bytes');
  assert.throws(() => parseTlogProof('x'.repeat(20_000)), codec(), 'over the size cap');
});

test('arbitrary text never parses to something that formats differently, and never throws anything but CodecError', () => {
  const good = formatTlogProof(log(7).proofs[5]!);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.string({ maxLength: 3 }), (at, s) => {
      const text = good.slice(0, at) + s + good.slice(at + 1);
      try {
        assert.equal(formatTlogProof(parseTlogProof(text)), text);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

test('verification: one checkpoint signature per batch, a few hashes per entry', () => {
  const { envelopes, proofs, note } = log(9);
  const cache = new VerifiedCheckpointCache();
  const first = verifyTlogProof(proofs[0]!, leafHash(envelopes[0]!), ORIGIN, key.publicKey, cache);
  assert.equal(first.size, 9);
  for (let i = 1; i < 9; i++) {
    const text = formatTlogProof(proofs[i]!);
    const cp = verifyTlogProof(parseTlogProof(text), leafHash(envelopes[i]!), ORIGIN, key.publicKey, cache);
    assert.equal(cp, first, 'the cached checkpoint: its signature was checked once for the batch');
  }
  assert.ok(isTlogProof(Buffer.from(formatTlogProof(proofs[0]!))));
  assert.ok(note.length > 0);
});

test('a proof for another entry, a tampered hash, another key or another origin does not verify', () => {
  const { envelopes, proofs } = log(9);
  const p = proofs[6]!;
  assert.throws(
    () => verifyTlogProof(p, leafHash(envelopes[5]!), ORIGIN, key.publicKey),
    (e: unknown) => e instanceof VerifyError && e.reason === 'tlog-proof-not-included',
  );
  const tampered = { ...p, proof: p.proof.map((h, i) => (i === 1 ? Buffer.alloc(32, 9) : h)) };
  assert.throws(
    () => verifyTlogProof(tampered, leafHash(envelopes[6]!), ORIGIN, key.publicKey),
    (e: unknown) => e instanceof VerifyError && e.reason === 'tlog-proof-not-included',
  );
  assert.throws(
    () => verifyTlogProof(p, leafHash(envelopes[6]!), ORIGIN, other.publicKey),
    (e: unknown) => e instanceof VerifyError,
  );
  assert.throws(
    () => verifyTlogProof(p, leafHash(envelopes[6]!), 'relay.example/other', key.publicKey),
    (e: unknown) => e instanceof VerifyError,
  );
});

interface V1Vector {
  publicKey: string;
  origin: string;
  envelope: string;
  index: number;
  timeMs: number;
  receipt: string;
  checkpoint: string;
  inclusionProof: string[];
}

test('a stored v1 receipt (a per-post signed promise) keeps verifying, beside the new format', () => {
  const v = loadVector<V1Vector>('receipt-v1.json');
  const bytes = Buffer.from(v.receipt, 'hex');
  const publicKey = Buffer.from(v.publicKey, 'hex');
  const stored = decodeStoredReceipt(bytes);
  assert.equal(stored.version, 1);
  const receipt = decodeReceipt(bytes);
  assert.equal(receipt.origin, v.origin);
  assert.equal(receipt.index, v.index);
  assert.equal(receipt.timeMs, v.timeMs);
  assert.deepEqual(Buffer.from(receipt.leafHash), leafHash(Buffer.from(v.envelope, 'hex')));
  assert.equal(verifyReceipt(receipt, publicKey), true);
  assert.equal(
    verifyReceiptAgainstCheckpoint(
      receipt,
      publicKey,
      v.checkpoint,
      v.inclusionProof.map((h) => Buffer.from(h, 'hex')),
    ),
    'included',
  );
  assert.deepEqual(receiptCommitment(stored), { origin: v.origin, index: 3, size: 4, timeMs: v.timeMs });
  // Through the either-version verifier too (what clients call on stored receipts).
  assert.deepEqual(
    verifyStoredReceipt(stored, publicKey, {
      origin: v.origin,
      leafHash: leafHash(Buffer.from(v.envelope, 'hex')),
    }),
    receiptCommitment(stored),
  );
  // One bit flipped in the signature: the old verifier still refuses it.
  const bad = Buffer.from(bytes);
  bad[bad.length - 1]! ^= 1;
  assert.equal(verifyReceipt(decodeReceipt(bad), publicKey), false);
  // The new format is told apart by its first line.
  const v2 = decodeStoredReceipt(Buffer.from(formatTlogProof(log(5).proofs[2]!)));
  assert.equal(v2.version, 2);
  const c2 = receiptCommitment(v2);
  assert.deepEqual([c2.index, c2.size], [2, 5]);
  assert.throws(() => decodeStoredReceipt(Buffer.from('neither\n')), codec('receipt-unknown-format'));
});
