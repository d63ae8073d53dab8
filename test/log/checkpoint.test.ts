/**
 * C2SP tlog-checkpoint: a real sum.golang.org checkpoint, strict parsing of every line, the
 * compact binary form, and hostile input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { CodecError, isCwtchError, UsageError, VerifyError } from '../../src/errors.ts';
import {
  compactCheckpoint,
  decodeCompactCheckpoint,
  encodeCompactCheckpoint,
  formatCheckpoint,
  MAX_EXTENSION_LINES,
  noteFromCompactCheckpoint,
  parseCheckpoint,
  parseCheckpointText,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  type TreeSize,
  treeSize,
  verifyCheckpoint,
  verifyCompactCheckpoint,
} from '../../src/log/index.ts';
import { b64, flipBit, loadVector, withoutControls } from './helpers.ts';

interface SumdbVector {
  vkey: string;
  keyName: string;
  checkpoint: { note: string; origin: string; size: number; rootHash: string };
}

const sumdb = loadVector<SumdbVector>('checkpoint-sumdb.json');
const sumdbKey = parseVerifierKey(sumdb.vkey);

const relay = signingKeyPairFromSeed(Buffer.alloc(32, 0x42));
const ORIGIN = 'relay.example/log';
const root = Buffer.alloc(32, 0xab);
const codec = (e: unknown) => e instanceof CodecError;

test('sum.golang.org checkpoint: verifies with the published key and parses to its fields', () => {
  const cp = verifyCheckpoint(sumdb.checkpoint.note, sumdb.keyName, sumdbKey.publicKey);
  assert.equal(cp.origin, sumdb.checkpoint.origin);
  assert.equal(cp.size, sumdb.checkpoint.size);
  assert.deepEqual(cp.rootHash, b64(sumdb.checkpoint.rootHash));
  assert.deepEqual(cp.extensions, []);
  assert.deepEqual(
    verifyCheckpoint(Buffer.from(sumdb.checkpoint.note), sumdb.keyName, sumdbKey.publicKey),
    cp,
  );
  assert.throws(
    () => verifyCheckpoint(sumdb.checkpoint.note, sumdb.keyName, sumdbKey.publicKey, { origin: 'other' }),
    (e: unknown) => e instanceof VerifyError && e.reason === 'checkpoint-wrong-origin',
  );
});

test('sum.golang.org checkpoint: changing any bit of the signed text breaks the signature', () => {
  const note = Buffer.from(sumdb.checkpoint.note);
  const textBytes = Buffer.byteLength(
    `${sumdb.checkpoint.origin}\n${sumdb.checkpoint.size}\n${sumdb.checkpoint.rootHash}\n`,
  );
  for (let bit = 0; bit < textBytes * 8; bit++) {
    const mutated = flipBit(note, bit);
    assert.throws(
      () => verifyCheckpoint(mutated, sumdb.keyName, sumdbKey.publicKey),
      (e: unknown) => isCwtchError(e) && (e.code === 'codec' || e.code === 'verify'),
      `bit ${bit}`,
    );
  }
});

test('sum.golang.org checkpoint: compact form rebuilds the exact note', () => {
  const compact = compactCheckpoint(sumdb.checkpoint.note, sumdb.keyName, sumdbKey.publicKey);
  assert.equal(compact.signature.length, 64);
  const bytes = encodeCompactCheckpoint(compact);
  assert.equal(bytes.length, 1 + sumdb.checkpoint.origin.length + 8 + 32 + 64);
  const decoded = decodeCompactCheckpoint(bytes);
  assert.deepEqual(decoded, compact);
  assert.equal(noteFromCompactCheckpoint(decoded, sumdb.keyName, sumdbKey.publicKey), sumdb.checkpoint.note);
  assert.equal(
    verifyCompactCheckpoint(decoded, sumdb.keyName, sumdbKey.publicKey).size,
    sumdb.checkpoint.size,
  );
  const forged = { ...decoded, size: treeSize(decoded.size + 1) };
  assert.throws(() => verifyCompactCheckpoint(forged, sumdb.keyName, sumdbKey.publicKey), VerifyError);
});

interface ExampleVector {
  seedHex: string;
  keyName: string;
  vkey: string;
  origin: string;
  size: number;
  rootHashHex: string;
  note: string;
  compactHex: string;
}

test('docs/log.md example: signing is deterministic and every form matches the pinned bytes', () => {
  const ex = loadVector<ExampleVector>('checkpoint-example.json');
  const keys = signingKeyPairFromSeed(Buffer.from(ex.seedHex, 'hex'));
  const key = parseVerifierKey(ex.vkey);
  assert.deepEqual(key.publicKey, keys.publicKey);
  const cp = { origin: ex.origin, size: treeSize(ex.size), rootHash: Buffer.from(ex.rootHashHex, 'hex') };
  assert.equal(signCheckpoint(cp, ex.keyName, keys.secretKey), ex.note);
  const compact = compactCheckpoint(ex.note, ex.keyName, key.publicKey);
  assert.equal(encodeCompactCheckpoint(compact).toString('hex'), ex.compactHex);
  assert.equal(
    noteFromCompactCheckpoint(
      decodeCompactCheckpoint(Buffer.from(ex.compactHex, 'hex')),
      ex.keyName,
      key.publicKey,
    ),
    ex.note,
  );
});

test('signCheckpoint writes the C2SP layout and verifyCheckpoint reads it back', () => {
  const note = signCheckpoint(
    { origin: ORIGIN, size: treeSize(20852163), rootHash: root },
    ORIGIN,
    relay.secretKey,
  );
  const lines = note.split('\n');
  assert.deepEqual(lines.slice(0, 4), [ORIGIN, '20852163', root.toString('base64'), '']);
  assert.match(lines[4]!, /^— relay\.example\/log [A-Za-z0-9+/]{91}=$/);
  assert.equal(lines[5], '');
  assert.equal(lines.length, 6);
  const cp = verifyCheckpoint(note, ORIGIN, relay.publicKey, { origin: ORIGIN });
  assert.equal(cp.size, 20852163);
  assert.deepEqual(parseCheckpoint(note).checkpoint, cp);
});

test('extension lines are signed, kept in order, and have no compact form', () => {
  const note = signCheckpoint(
    { origin: ORIGIN, size: treeSize(3), rootHash: root, extensions: ['ext one', 'ext two'] },
    ORIGIN,
    relay.secretKey,
  );
  assert.deepEqual(verifyCheckpoint(note, ORIGIN, relay.publicKey).extensions, ['ext one', 'ext two']);
  assert.throws(() => compactCheckpoint(note, ORIGIN, relay.publicKey), UsageError);
  const tooMany = Array.from({ length: MAX_EXTENSION_LINES + 1 }, (_, i) => `e${i}`);
  assert.throws(
    () => formatCheckpoint({ origin: ORIGIN, size: treeSize(1), rootHash: root, extensions: tooMany }),
    UsageError,
  );
  assert.throws(
    () => formatCheckpoint({ origin: ORIGIN, size: treeSize(1), rootHash: root, extensions: [''] }),
    UsageError,
  );
});

test('only the log key counts: other keys are ignored, forged ones refused', () => {
  const witness = signingKeyPairFromSeed(Buffer.alloc(32, 0x17));
  const note = signCheckpoint({ origin: ORIGIN, size: treeSize(9), rootHash: root }, ORIGIN, relay.secretKey);
  const text = parseCheckpoint(note).note.text;
  const witnessLine = signNote(text, 'witness.example', witness.secretKey).split('\n\n')[1]!;
  const cosigned = `${note}${witnessLine}`;
  assert.equal(verifyCheckpoint(cosigned, ORIGIN, relay.publicKey).size, 9);
  assert.equal(verifyCheckpoint(cosigned, 'witness.example', witness.publicKey).size, 9);
  assert.throws(
    () => verifyCheckpoint(note, ORIGIN, witness.publicKey),
    (e: unknown) => e instanceof VerifyError && e.reason === 'note-not-signed',
  );
  // Another key's signature under the relay's name and key ID: a known key whose signature fails.
  const relayBlob = b64(note.split('\n\n')[1]!.trim().split(' ')[2]!);
  const impostorBlob = b64(signNote(text, ORIGIN, witness.secretKey).split('\n\n')[1]!.trim().split(' ')[2]!);
  const forgedBlob = Buffer.concat([relayBlob.subarray(0, 4), impostorBlob.subarray(4)]);
  assert.throws(
    () =>
      verifyCheckpoint(`${text}\n— ${ORIGIN} ${forgedBlob.toString('base64')}\n`, ORIGIN, relay.publicKey),
    (e: unknown) => e instanceof VerifyError && e.reason === 'note-bad-signature',
  );
});

test('strict checkpoint text: size, root and line structure have exactly one accepted form', () => {
  const r = root.toString('base64');
  const good = `${ORIGIN}\n7\n${r}\n`;
  assert.equal(parseCheckpointText(good).size, 7);
  assert.equal(parseCheckpointText(`${ORIGIN}\n0\n${r}\n`).size, 0);
  assert.equal(parseCheckpointText(`${ORIGIN}\n9007199254740991\n${r}\n`).size, Number.MAX_SAFE_INTEGER);
  const bad = [
    `${ORIGIN}\n07\n${r}\n`,
    `${ORIGIN}\n00\n${r}\n`,
    `${ORIGIN}\n+7\n${r}\n`,
    `${ORIGIN}\n-7\n${r}\n`,
    `${ORIGIN}\n 7\n${r}\n`,
    `${ORIGIN}\n7 \n${r}\n`,
    `${ORIGIN}\n7.0\n${r}\n`,
    `${ORIGIN}\n1e3\n${r}\n`,
    `${ORIGIN}\n0x10\n${r}\n`,
    `${ORIGIN}\n٣\n${r}\n`,
    `${ORIGIN}\n9007199254740992\n${r}\n`,
    `${ORIGIN}\n18446744073709551615\n${r}\n`,
    `${ORIGIN}\n\n${r}\n`,
    `${ORIGIN}\n7\n${r.slice(0, -1)}\n`,
    `${ORIGIN}\n7\n${r.slice(0, -1)}8\n`,
    `${ORIGIN}\n7\n${Buffer.alloc(31).toString('base64')}\n`,
    `${ORIGIN}\n7\n${Buffer.alloc(33).toString('base64')}\n`,
    `${ORIGIN}\n7\n${Buffer.alloc(32, 0xfb).toString('base64url')}=\n`,
    `${ORIGIN}\n7\n ${r}\n`,
    `${ORIGIN}\n7\n${r}`,
    `${ORIGIN}\n7\n`,
    `\n7\n${r}\n`,
    `${ORIGIN}\n7\n${r}\n\n`,
    `${ORIGIN}\n7\n${r}\next\n\n`,
    `${'o'.repeat(256)}\n7\n${r}\n`,
    `${ORIGIN}\n7\n${r}\n${'e\n'.repeat(MAX_EXTENSION_LINES + 1)}`,
  ];
  for (const text of bad) assert.throws(() => parseCheckpointText(text), codec, JSON.stringify(text));
  assert.equal(parseCheckpointText(`${'o'.repeat(255)}\n7\n${r}\n`).origin.length, 255);
});

test('strict checkpoint notes: CR, an empty extension line, a note that is not a checkpoint', () => {
  const note = signCheckpoint({ origin: ORIGIN, size: treeSize(5), rootHash: root }, ORIGIN, relay.secretKey);
  assert.throws(() => parseCheckpoint(note.replace('\n', '\r\n')), codec);
  const withEmptyExt = note.replace('\n\n', '\n\next\n\n');
  assert.throws(() => parseCheckpoint(withEmptyExt), codec);
  const prose = signNote('hello\nworld\n', ORIGIN, relay.secretKey);
  assert.throws(() => verifyCheckpoint(prose, ORIGIN, relay.publicKey), codec);
});

test('formatCheckpoint and the compact form refuse invalid fields with UsageError', () => {
  const ok = { origin: ORIGIN, size: treeSize(1), rootHash: root };
  assert.throws(() => formatCheckpoint({ ...ok, origin: '' }), UsageError);
  assert.throws(() => formatCheckpoint({ ...ok, origin: 'a\nb' }), UsageError);
  assert.throws(() => formatCheckpoint({ ...ok, origin: 'o'.repeat(256) }), UsageError);
  assert.throws(() => formatCheckpoint({ ...ok, size: -1 as TreeSize }), UsageError);
  assert.throws(() => formatCheckpoint({ ...ok, rootHash: new Uint8Array(31) }), UsageError);
  assert.throws(() => signCheckpoint(ok, 'bad name', relay.secretKey), UsageError);
  assert.throws(() => encodeCompactCheckpoint({ ...ok, signature: new Uint8Array(63) }), UsageError);
});

test('compact decoding is strict: exact length, origin, size range', () => {
  const note = signCheckpoint(
    { origin: ORIGIN, size: treeSize(77), rootHash: root },
    ORIGIN,
    relay.secretKey,
  );
  const bytes = encodeCompactCheckpoint(compactCheckpoint(note, ORIGIN, relay.publicKey));
  assert.equal(noteFromCompactCheckpoint(decodeCompactCheckpoint(bytes), ORIGIN, relay.publicKey), note);
  const sizeAt = 1 + ORIGIN.length;
  const withSize = (n: bigint) => {
    const b = Buffer.from(bytes);
    b.writeBigUInt64BE(n, sizeAt);
    return b;
  };
  assert.equal(
    decodeCompactCheckpoint(withSize(BigInt(Number.MAX_SAFE_INTEGER))).size,
    Number.MAX_SAFE_INTEGER,
  );
  const bad: Uint8Array[] = [
    new Uint8Array(0),
    bytes.subarray(0, bytes.length - 1),
    Buffer.concat([bytes, Buffer.of(0)]),
    Buffer.concat([Buffer.of(0), bytes.subarray(1)]),
    Buffer.concat([Buffer.of(bytes[0]! + 1), bytes.subarray(1)]),
    withSize(2n ** 53n),
    withSize(2n ** 64n - 1n),
    (() => {
      const b = Buffer.from(bytes);
      b[3] = 0x0a;
      return b;
    })(),
    (() => {
      const b = Buffer.from(bytes);
      b[3] = 0xff;
      return b;
    })(),
  ];
  for (const b of bad) assert.throws(() => decodeCompactCheckpoint(b), codec);
  assert.throws(() => decodeCompactCheckpoint('x' as never), UsageError);
});

test('property: any valid checkpoint round-trips through note and compact forms', () => {
  const originArb = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 60 })
    .map((s) => withoutControls(s, 'x'))
    .filter((s) => s.length > 0 && Buffer.byteLength(s) <= 255);
  fc.assert(
    fc.property(
      originArb,
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (origin, n, rootHash) => {
        const note = signCheckpoint(
          { origin, size: treeSize(n), rootHash },
          'relay.example',
          relay.secretKey,
        );
        const cp = verifyCheckpoint(note, 'relay.example', relay.publicKey, { origin });
        assert.equal(cp.size, n);
        assert.deepEqual(Buffer.from(cp.rootHash), Buffer.from(rootHash));
        const compact = decodeCompactCheckpoint(
          encodeCompactCheckpoint(compactCheckpoint(note, 'relay.example', relay.publicKey)),
        );
        assert.equal(noteFromCompactCheckpoint(compact, 'relay.example', relay.publicKey), note);
      },
    ),
    { numRuns: 200 },
  );
});

test('property: random bytes fed to the parsers never throw anything but a CwtchError', () => {
  const note = Buffer.from(
    signCheckpoint({ origin: ORIGIN, size: treeSize(12), rootHash: root }, ORIGIN, relay.secretKey),
  );
  const mutated = fc.tuple(fc.nat(note.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
    const b = Buffer.from(note);
    b[at]! ^= xor;
    return b;
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 400 }),
        mutated,
        fc.string().map((s) => Buffer.from(s)),
      ),
      (bytes) => {
        for (const fn of [
          () => parseCheckpoint(bytes),
          () => parseCheckpoint(bytes.toString('latin1')),
          () => verifyCheckpoint(bytes, ORIGIN, relay.publicKey),
          () => decodeCompactCheckpoint(bytes),
        ]) {
          try {
            fn();
          } catch (e) {
            assert.ok(isCwtchError(e) && e.code !== 'internal' && e.code !== 'usage', String(e));
          }
        }
      },
    ),
    { numRuns: 2000 },
  );
});
