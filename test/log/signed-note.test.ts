/**
 * C2SP signed-note: Go's golang.org/x/mod/sumdb/note vectors (byte-exact signing, verifier keys,
 * malformed notes), the spec's rules on unknown keys, and strict decoding of hostile input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/index.ts';
import { CodecError, isCwtchError, UsageError, VerifyError } from '../../src/errors.ts';
import {
  ed25519KeyId,
  formatNote,
  formatVerifierKey,
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  noteVerifierKey,
  parseNote,
  parseVerifierKey,
  signNote,
  verifyNote,
} from '../../src/log/index.ts';
import { hex, loadVector, withoutControls } from './helpers.ts';

interface GoNoteVectors {
  text: string;
  peter: { vkey: string; skey: string; keyId: string; signedNote: string; signatureLine: string };
  enoch: { vkey: string; keyId: string; signatureLine: string };
  badVerifierKeys: { vkey: string; desc: string }[];
  badNotes: { note?: string; noteHex?: string; desc: string }[];
}

const go = loadVector<GoNoteVectors>('signed-note-go.json');
const peter = parseVerifierKey(go.peter.vkey);
const enoch = parseVerifierKey(go.enoch.vkey);
// PRIVATE+KEY+<name>+<hash>+<base64>, and the base64 may itself contain '+'.
const peterSeed = Buffer.from(go.peter.skey.split('+').slice(4).join('+'), 'base64').subarray(1);
const peterKeys = signingKeyPairFromSeed(peterSeed);

const codec = (reason?: string) => (e: unknown) =>
  e instanceof CodecError && (reason === undefined || e.reason === reason);

test('Go vectors: verifier keys parse, key IDs match, and format back to the same string', () => {
  assert.equal(peter.keyName, 'PeterNeumann');
  assert.equal(peter.keyId, Number.parseInt(go.peter.keyId, 16));
  assert.equal(enoch.keyId, Number.parseInt(go.enoch.keyId, 16));
  assert.equal(ed25519KeyId('PeterNeumann', peter.publicKey), peter.keyId);
  assert.equal(formatVerifierKey(peter), go.peter.vkey);
  assert.equal(formatVerifierKey(enoch), go.enoch.vkey);
  // The private key string of the vector holds the seed of the same key pair.
  assert.deepEqual(peterKeys.publicKey, peter.publicKey);
});

test('Go TestSign: signing the vector text reproduces the published note byte for byte', () => {
  assert.equal(signNote(go.text, 'PeterNeumann', peterKeys.secretKey), go.peter.signedNote);
});

test('Go TestOpen: a known signature verifies and unknown ones are ignored', () => {
  const both = `${go.text}\n${go.peter.signatureLine}${go.enoch.signatureLine}`;
  const parsed = parseNote(both);
  assert.equal(parsed.text, go.text);
  assert.equal(parsed.signatures.length, 2);
  assert.equal(verifyNote(both, peter).signature.keyName, 'PeterNeumann');
  assert.equal(verifyNote(both, enoch).signature.keyName, 'EnochRoot');
  assert.equal(formatNote(parsed), both);

  const stranger = noteVerifierKey('Stranger', signingKeyPairFromSeed(Buffer.alloc(32, 7)).publicKey);
  assert.throws(
    () => verifyNote(both, stranger),
    (e: unknown) => e instanceof VerifyError && e.reason === 'note-not-signed',
  );
  // Same name as a known key but another key ID: an unknown key, ignored.
  const lookalike = go.peter.signatureLine.replace('x08g', 'xxxx');
  assert.throws(
    () => verifyNote(`${go.text}\n${lookalike}`, peter),
    (e: unknown) => (e as VerifyError).reason === 'note-not-signed',
  );
  assert.equal(
    verifyNote(`${go.text}\n${lookalike}${go.peter.signatureLine}`, peter).signature.keyId,
    peter.keyId,
  );
});

test('Go TestOpen: a bad signature by a known key rejects the whole note', () => {
  const line = go.peter.signatureLine;
  const corrupted = `${go.text}\n${line.slice(0, 60)}ABCD${line.slice(60)}`;
  assert.throws(
    () => verifyNote(corrupted, peter),
    (e: unknown) => e instanceof VerifyError && e.reason === 'note-bad-signature',
  );
  // Duplicated good signatures and unverifiable ones from other keys still verify.
  const enochLine = go.enoch.signatureLine;
  const crowded = `${go.text}\n${line}${line}${enochLine}${enochLine}${enochLine.slice(0, 60)}ABCD${enochLine.slice(60)}`;
  assert.equal(verifyNote(crowded, peter).note.signatures.length, 5);
  assert.throws(() => verifyNote(crowded, enoch), VerifyError);
});

test('Go TestOpen: malformed notes are CodecErrors', () => {
  for (const bad of go.badNotes) {
    const input = bad.noteHex === undefined ? bad.note! : hex(bad.noteHex);
    assert.throws(() => parseNote(input), CodecError, bad.desc);
    assert.throws(() => verifyNote(input, peter), CodecError, bad.desc);
  }
});

test('Go TestNewVerifier: every mangling of a verifier key is refused', () => {
  const vkey = go.peter.vkey;
  for (let i = 0; i <= vkey.length; i++) {
    for (let j = i + 1; j <= vkey.length; j++) {
      if (i === 0 && j === vkey.length) continue;
      assert.throws(() => parseVerifierKey(vkey.slice(i, j)), CodecError, vkey.slice(i, j));
    }
  }
  for (let i = 0; i < vkey.length; i++) {
    const mangled = vkey.slice(0, i) + String.fromCharCode(vkey.charCodeAt(i) + 1) + vkey.slice(i + 1);
    assert.throws(() => parseVerifierKey(mangled), CodecError, mangled);
  }
  for (const bad of go.badVerifierKeys) assert.throws(() => parseVerifierKey(bad.vkey), CodecError, bad.desc);
  assert.throws(() => parseVerifierKey(vkey.replace('c74f20a3', 'C74F20A3')), codec('vkey-malformed'));
  assert.throws(() => parseVerifierKey(42 as never), UsageError);
});

test('signature count: 16 are accepted, 17 are malformed', () => {
  const sixteen = `${go.text}\n${go.peter.signatureLine.repeat(MAX_NOTE_SIGNATURES)}`;
  assert.equal(verifyNote(sixteen, peter).note.signatures.length, 16);
  const seventeen = `${go.text}\n${go.peter.signatureLine.repeat(MAX_NOTE_SIGNATURES + 1)}`;
  assert.throws(() => parseNote(seventeen), codec('note-too-many-signatures'));
});

test('strict decoding: size cap, CR, BOM, lone surrogates, overlong UTF-8, non-canonical base64', () => {
  const note = go.peter.signedNote;
  const line = go.peter.signatureLine;
  const big = `${'x'.repeat(MAX_NOTE_BYTES)}\n\n${line}`;
  assert.throws(() => parseNote(big), codec('note-too-large'));
  assert.throws(() => parseNote(Buffer.from(big)), codec('note-too-large'));
  assert.throws(() => parseNote(note.replaceAll('\n', '\r\n')), codec('note-control-character'));
  assert.throws(() => parseNote(`\ud800${note}`), codec('note-not-utf8'));
  assert.throws(
    () => parseNote(Buffer.concat([Buffer.from([0xc0, 0xaf]), Buffer.from(note)])),
    codec('note-not-utf8'),
  );
  // A byte-order mark is kept as text, so it is not silently dropped before verification.
  const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(note)]);
  assert.equal(parseNote(withBom).text, `\ufeff${go.text}`);
  assert.throws(() => verifyNote(withBom, peter), VerifyError);
  // The signature ends "AM=": "AN=" decodes to the same bytes but is not canonical.
  assert.ok(line.endsWith('AM=\n'));
  assert.throws(() => parseNote(`${go.text}\n${line.replace('AM=\n', 'AN=\n')}`), codec('note-malformed'));
  assert.throws(() => parseNote(`${go.text}\n${line.replace('AM=\n', 'AM\n')}`), codec('note-malformed'));
  assert.throws(() => parseNote(`${go.text}\n${line.replace('— ', '- ')}`), codec('note-malformed'));
  assert.throws(() => parseNote(`${go.text}\n${line.replace('— ', '—  ')}`), codec('note-malformed'));
  assert.throws(
    () => parseNote(`${go.text}\n${line.replace('PeterNeumann', 'Peter+Neumann')}`),
    codec('note-malformed'),
  );
  assert.throws(
    () => parseNote(`${go.text}\n${line.replace('PeterNeumann', 'Peter\u00a0Neumann')}`),
    codec(),
  );
  assert.throws(() => parseNote(`${go.text}\n— PeterNeumann AAAAAA==\n`), codec('note-malformed'));
  assert.throws(() => parseNote(123 as never), UsageError);
});

test('signNote and formatNote refuse what they could not produce as a valid note', () => {
  const sk = peterKeys.secretKey;
  assert.throws(() => signNote('no newline', 'k', sk), UsageError);
  assert.throws(() => signNote('', 'k', sk), UsageError);
  assert.throws(() => signNote('tab\there\n', 'k', sk), UsageError);
  assert.throws(() => signNote('ok\n', 'a b', sk), UsageError);
  assert.throws(() => signNote('ok\n', 'a+b', sk), UsageError);
  assert.throws(() => signNote('ok\n', 'x'.repeat(256), sk), UsageError);
  assert.throws(() => signNote('ok\n', 'k', sk.subarray(0, 32)), UsageError);
  assert.throws(() => formatNote({ text: 'ok\n', signatures: [] }), UsageError);
  assert.throws(() => noteVerifierKey('k', new Uint8Array(31)), UsageError);
  assert.throws(() => verifyNote(go.peter.signedNote, { ...peter, keyId: peter.keyId ^ 1 }), UsageError);
});

test('property: signed notes round-trip through parse, format and verify', () => {
  const keys = signingKeyPairFromSeed(Buffer.alloc(32, 1));
  const lineChar = fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => withoutControls(s, ''));
  fc.assert(
    fc.property(fc.array(lineChar, { minLength: 1, maxLength: 6 }), (lines) => {
      const text = `${lines.join('\n')}\n`;
      const note = signNote(text, 'example.com/log', keys.secretKey);
      const parsed = parseNote(note);
      assert.equal(parsed.text, text);
      assert.equal(formatNote(parsed), note);
      verifyNote(Buffer.from(note), noteVerifierKey('example.com/log', keys.publicKey));
    }),
    { numRuns: 200 },
  );
});

test('property: hostile bytes and mutations of a valid note only ever throw CwtchErrors', () => {
  const valid = Buffer.from(`${go.text}\n${go.peter.signatureLine}${go.enoch.signatureLine}`);
  const mutated = fc
    .tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 }), fc.nat(valid.length))
    .map(([at, xor, cut]) => {
      const b = Buffer.from(valid);
      b[at]! ^= xor;
      return b.subarray(0, Math.max(cut, at + 1));
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated), (bytes) => {
      try {
        verifyNote(bytes, peter);
      } catch (e) {
        assert.ok(isCwtchError(e) && (e.code === 'codec' || e.code === 'verify'), String(e));
      }
    }),
    { numRuns: 2000 },
  );
});
