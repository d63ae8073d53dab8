/**
 * The signed-time extension line of checkpoints (docs/log.md §3 "Signed time"): the pinned
 * vector, parsing rules (one canonical line, first among the extensions, refused when malformed
 * or repeated), old untimed checkpoints still parsing and verifying, the compact form with and
 * without the time, and the proof rule of a broken receipt (docs/log.md §7).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { CodecError, UsageError } from '../../src/errors.ts';
import {
  compactCheckpoint,
  decodeCompactCheckpoint,
  encodeCompactCheckpoint,
  formatCheckpoint,
  noteFromCompactCheckpoint,
  parseCheckpointText,
  parseVerifierKey,
  SIGNED_TIME_NAME,
  signCheckpoint,
  signedTimeLine,
  signNote,
  treeSize,
  verifyCheckpoint,
  verifyCompactCheckpoint,
} from '../../src/log/index.ts';
import {
  MAX_MERGE_DELAY_MS,
  provesBrokenReceipt,
  type ReceiptCommitment,
} from '../../src/log/stored-receipt.ts';
import { loadVector } from './helpers.ts';

interface TimedVector {
  seedHex: string;
  keyName: string;
  vkey: string;
  origin: string;
  size: number;
  rootHashHex: string;
  timeMs: number;
  note: string;
  compactHex: string;
}

const ORIGIN = 'relay.example/log';
const ROOT_B64 = Buffer.alloc(32, 0xab).toString('base64');
const relay = signingKeyPairFromSeed(Buffer.alloc(32, 0x42));
const malformed = (e: unknown) => e instanceof CodecError && e.reason === 'checkpoint-malformed';
const text = (...extensions: string[]) =>
  [ORIGIN, '8', ROOT_B64, ...extensions].map((l) => `${l}\n`).join('');

test('pinned vector: the timed checkpoint signs, verifies, compacts and rebuilds byte for byte', () => {
  const v = loadVector<TimedVector>('checkpoint-timed.json');
  const keys = signingKeyPairFromSeed(Buffer.from(v.seedHex, 'hex'));
  const key = parseVerifierKey(v.vkey);
  const fields = {
    origin: v.origin,
    size: treeSize(v.size),
    rootHash: Buffer.from(v.rootHashHex, 'hex'),
    timeMs: v.timeMs,
  };
  assert.equal(signCheckpoint(fields, v.keyName, keys.secretKey), v.note);
  const cp = verifyCheckpoint(v.note, v.keyName, key.publicKey, { origin: v.origin });
  assert.equal(cp.timeMs, v.timeMs);
  assert.deepEqual(cp.extensions, [`${SIGNED_TIME_NAME} ${v.timeMs}`]);
  assert.ok(v.note.includes(`\ncwtch-groups/v1/signed-time-ms ${v.timeMs}\n\n`), 'the documented line');
  const compact = compactCheckpoint(v.note, v.keyName, key.publicKey);
  assert.equal(compact.timeMs, v.timeMs);
  assert.equal(encodeCompactCheckpoint(compact).toString('hex'), v.compactHex);
  const decoded = decodeCompactCheckpoint(Buffer.from(v.compactHex, 'hex'));
  assert.equal(noteFromCompactCheckpoint(decoded, v.keyName, key.publicKey), v.note);
  assert.equal(verifyCompactCheckpoint(decoded, v.keyName, key.publicKey).timeMs, v.timeMs);
  // Without its time the compact form rebuilds another text: the signature no longer holds.
  const { timeMs: _dropped, ...untimed } = decoded;
  assert.throws(() => verifyCompactCheckpoint(untimed, v.keyName, key.publicKey));
});

test('an old checkpoint without the line still parses and verifies, with no signed time', () => {
  const old = loadVector<TimedVector>('checkpoint-example.json');
  const key = parseVerifierKey(old.vkey);
  const cp = verifyCheckpoint(old.note, old.keyName, key.publicKey);
  assert.equal(cp.timeMs, null);
  assert.deepEqual(cp.extensions, []);
  const compact = compactCheckpoint(old.note, old.keyName, key.publicKey);
  assert.equal('timeMs' in compact, false);
  assert.equal(encodeCompactCheckpoint(compact).toString('hex'), old.compactHex);
  // Other (foreign) extension lines stay opaque and leave the time unset.
  assert.equal(parseCheckpointText(text('example.org/witness something')).timeMs, null);
});

test('the time line: canonical decimal, first, once; anything else under its name is refused', () => {
  assert.equal(parseCheckpointText(text(`${SIGNED_TIME_NAME} 0`)).timeMs, 0);
  assert.equal(
    parseCheckpointText(text(`${SIGNED_TIME_NAME} ${Number.MAX_SAFE_INTEGER}`)).timeMs,
    Number.MAX_SAFE_INTEGER,
  );
  assert.equal(parseCheckpointText(text(`${SIGNED_TIME_NAME} 5`, 'other ext')).timeMs, 5);
  const bad = [
    `${SIGNED_TIME_NAME} 01`, // leading zero
    `${SIGNED_TIME_NAME} -1`,
    `${SIGNED_TIME_NAME} +1`,
    `${SIGNED_TIME_NAME} 1.5`,
    `${SIGNED_TIME_NAME} 1e3`,
    `${SIGNED_TIME_NAME}  1`, // two spaces
    `${SIGNED_TIME_NAME} 1 `, // trailing space
    `${SIGNED_TIME_NAME}`, // no value
    `${SIGNED_TIME_NAME} `,
    `${SIGNED_TIME_NAME}=1`,
    `${SIGNED_TIME_NAME}x 1`,
    `${SIGNED_TIME_NAME} 9007199254740992`, // 2^53
    `${SIGNED_TIME_NAME} 99999999999999999`, // 17 digits
    `${SIGNED_TIME_NAME} ١٢`, // non-ASCII digits
  ];
  for (const line of bad) assert.throws(() => parseCheckpointText(text(line)), malformed, line);
  // Duplicate, even with the same value; and not first.
  assert.throws(() => parseCheckpointText(text(`${SIGNED_TIME_NAME} 5`, `${SIGNED_TIME_NAME} 5`)), malformed);
  assert.throws(() => parseCheckpointText(text(`${SIGNED_TIME_NAME} 5`, `${SIGNED_TIME_NAME} 6`)), malformed);
  assert.throws(() => parseCheckpointText(text('other ext', `${SIGNED_TIME_NAME} 5`)), malformed);
  // A signed note whose time line is malformed is refused before any signature work.
  // (signed as a plain note: formatCheckpoint itself refuses to write it)
  const note = signNote(text(`${SIGNED_TIME_NAME} 07`), ORIGIN, relay.secretKey);
  assert.throws(() => verifyCheckpoint(note, ORIGIN, relay.publicKey), malformed);
});

test('formatting: the time becomes the first line; a second or malformed one is the caller’s error', () => {
  const base = { origin: ORIGIN, size: treeSize(8), rootHash: Buffer.alloc(32, 0xab) };
  assert.equal(formatCheckpoint({ ...base, timeMs: 7 }), text(signedTimeLine(7)));
  assert.equal(formatCheckpoint({ ...base, timeMs: 7, extensions: ['x y'] }), text(signedTimeLine(7), 'x y'));
  assert.equal(formatCheckpoint({ ...base, timeMs: null }), text());
  // Round trip: a parsed checkpoint (timeMs and its line both present) formats to the same text.
  const t = text(signedTimeLine(7), 'x y');
  assert.equal(formatCheckpoint(parseCheckpointText(t)), t);
  const usage = (e: unknown) => e instanceof UsageError;
  assert.throws(() => formatCheckpoint({ ...base, timeMs: 7, extensions: [signedTimeLine(8)] }), usage);
  assert.throws(() => formatCheckpoint({ ...base, extensions: [`${SIGNED_TIME_NAME} 01`] }), usage);
  assert.throws(() => formatCheckpoint({ ...base, timeMs: -1 }), usage);
  assert.throws(() => formatCheckpoint({ ...base, timeMs: 1.5 }), usage);
});

test('compact form: the time is an optional trailing u64, strictly bounded', () => {
  const note = signCheckpoint(
    { origin: ORIGIN, size: treeSize(3), rootHash: Buffer.alloc(32, 1), timeMs: 123 },
    ORIGIN,
    relay.secretKey,
  );
  const bytes = encodeCompactCheckpoint(compactCheckpoint(note, ORIGIN, relay.publicKey));
  assert.equal(bytes.length, 1 + ORIGIN.length + 8 + 32 + 64 + 8);
  assert.equal(noteFromCompactCheckpoint(decodeCompactCheckpoint(bytes), ORIGIN, relay.publicKey), note);
  const compactMalformed = (e: unknown) =>
    e instanceof CodecError && e.reason === 'compact-checkpoint-malformed';
  const tooBig = Buffer.from(bytes);
  tooBig.writeBigUInt64BE(BigInt(Number.MAX_SAFE_INTEGER) + 1n, bytes.length - 8);
  assert.throws(() => decodeCompactCheckpoint(tooBig), compactMalformed);
  for (const cut of [1, 4, 7, 9])
    assert.throws(() => decodeCompactCheckpoint(bytes.subarray(0, bytes.length - cut)), compactMalformed);
  assert.throws(() => decodeCompactCheckpoint(Buffer.concat([bytes, Buffer.alloc(1)])), compactMalformed);
  // A checkpoint with another extension besides the time has no compact form.
  const other = signCheckpoint(
    { origin: ORIGIN, size: treeSize(3), rootHash: Buffer.alloc(32, 1), timeMs: 1, extensions: ['x'] },
    ORIGIN,
    relay.secretKey,
  );
  assert.throws(() => compactCheckpoint(other, ORIGIN, relay.publicKey), UsageError);
});

test('a broken receipt is proven only by a smaller checkpoint signed more than the merge delay later', () => {
  const receipt: ReceiptCommitment = { origin: ORIGIN, index: 9 as never, size: 10, timeMs: 1_000_000 };
  const cp = (size: number, timeMs: number | null) =>
    parseCheckpointText(
      formatCheckpoint({ origin: ORIGIN, size: treeSize(size), rootHash: Buffer.alloc(32), timeMs }),
    );
  const late = 1_000_000 + MAX_MERGE_DELAY_MS + 1;
  assert.equal(provesBrokenReceipt(receipt, cp(9, late)), true);
  assert.equal(provesBrokenReceipt(receipt, cp(0, late)), true);
  assert.equal(provesBrokenReceipt(receipt, cp(10, late)), false, 'covers the index');
  assert.equal(provesBrokenReceipt(receipt, cp(9, late - 1)), false, 'within the merge delay');
  assert.equal(provesBrokenReceipt(receipt, cp(9, 999_000)), false, 'signed before the receipt: a replay');
  assert.equal(provesBrokenReceipt(receipt, cp(9, null)), false, 'an untimed checkpoint proves no time');
  assert.equal(provesBrokenReceipt({ ...receipt, timeMs: null }, cp(9, late)), false, 'an untimed receipt');
});
