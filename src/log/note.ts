/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, and the verifier key
 * string of golang.org/x/mod/sumdb/note ("<name>+<key ID hex>+<base64(0x01 ‖ public key)>").
 *
 * Parsing is strict and canonical: fatal UTF-8 (a byte-order mark stays part of the text), no
 * control character but newline, exactly the line structure of the spec, canonical padded base64,
 * and caps on bytes and signature count checked before any work. The text of a note MUST be
 * ignored until verifyNote (or verifyCheckpoint) has accepted a signature by a trusted key.
 */
import {
  ED25519_PUBLIC_BYTES,
  ED25519_SECRET_BYTES,
  ED25519_SIGNATURE_BYTES,
  sha256,
  sign,
  verify,
} from '../crypto/index.ts';
import { assertBytes, CodecError, UsageError, VerifyError } from '../errors.ts';

/**
 * Cap on a whole note. The spec requires accepting at least 16 signatures; 16 Ed25519 lines with
 * 255-byte key names and a checkpoint body with extensions stay well below it.
 */
export const MAX_NOTE_BYTES = 8192;
/** The spec's minimum; more is refused as malformed (Go's note package stops at 100). */
export const MAX_NOTE_SIGNATURES = 16;
/** Longest key name accepted, in UTF-8 bytes. */
export const MAX_KEY_NAME_BYTES = 255;
/** Signature type identifier of plain Ed25519 note signatures (signed-note §Signature types). */
export const ED25519_SIGNATURE_TYPE = 0x01;

/** One signature line: "— <keyName> base64(keyId ‖ signature)". */
export interface NoteSignature {
  readonly keyName: string;
  /** The uint32 key ID, big-endian on the wire. */
  readonly keyId: number;
  /** The signature bytes after the key ID (64 for Ed25519). */
  readonly signature: Uint8Array;
}

export interface SignedNote {
  /** The signed text, ending in a newline, without the blank separator line. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A trusted Ed25519 note key. */
export interface NoteVerifierKey {
  readonly keyName: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

const EM_DASH_PREFIX = '\u2014 ';
const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as text instead of silently dropping it: the bytes signed and
// the string returned must be the same.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Surrogate}/u;
const SPACE_OR_PLUS = /[\p{White_Space}+]/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The Ed25519 key ID: the first 4 bytes, big-endian, of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key).
 * @throws UsageError when keyName is not a valid key name or publicKey is not 32 bytes.
 */
export function ed25519KeyId(keyName: string, publicKey: Uint8Array): number {
  assertKeyName(keyName);
  assertBytes('publicKey', publicKey, ED25519_PUBLIC_BYTES);
  return keyIdUnsafe(keyName, publicKey);
}

/**
 * @throws UsageError when keyName is not a valid key name or publicKey is not 32 bytes.
 */
export function noteVerifierKey(keyName: string, publicKey: Uint8Array): NoteVerifierKey {
  return { keyName, keyId: ed25519KeyId(keyName, publicKey), publicKey: Buffer.from(publicKey) };
}

/**
 * "<name>+<8 lower-case hex digits>+<base64(0x01 ‖ public key)>", as golang.org/x/mod/sumdb/note.
 * @throws UsageError when the key is not a valid Ed25519 note key.
 */
export function formatVerifierKey(key: NoteVerifierKey): string {
  const checked = noteVerifierKey(key.keyName, key.publicKey);
  if (checked.keyId !== key.keyId)
    throw new UsageError('bad-argument', 'key.keyId does not match name and key');
  const material = Buffer.concat([Uint8Array.of(ED25519_SIGNATURE_TYPE), checked.publicKey]);
  return `${key.keyName}+${hex8(checked.keyId)}+${material.toString('base64')}`;
}

/**
 * Parse a verifier key string. Only canonical forms are accepted: lower-case hex, canonical
 * base64, signature type 0x01 and a key ID that matches the name and key.
 * @throws CodecError when vkey is malformed or its key ID does not match.
 */
export function parseVerifierKey(vkey: string): NoteVerifierKey {
  if (typeof vkey !== 'string') throw new UsageError('bad-argument', 'vkey must be a string');
  if (vkey.length > MAX_KEY_NAME_BYTES + 64)
    throw new CodecError('vkey-malformed', 'verifier key is too long');
  const first = vkey.indexOf('+');
  const second = vkey.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw new CodecError('vkey-malformed', 'verifier key must be name+hash+key');
  const keyName = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  const material = decodeBase64(vkey.slice(second + 1), 'verifier key material', 'vkey-malformed');
  if (!isKeyName(keyName)) throw new CodecError('vkey-malformed', 'verifier key has an invalid key name');
  if (!/^[0-9a-f]{8}$/.test(idHex))
    throw new CodecError('vkey-malformed', 'verifier key hash must be 8 lower-case hex digits');
  if (material.length !== 1 + ED25519_PUBLIC_BYTES || material[0] !== ED25519_SIGNATURE_TYPE) {
    throw new CodecError('vkey-unsupported', 'verifier key is not an Ed25519 (type 0x01) key');
  }
  const publicKey = material.subarray(1);
  const keyId = keyIdUnsafe(keyName, publicKey);
  if (keyId !== Number.parseInt(idHex, 16)) {
    throw new CodecError('vkey-hash-mismatch', 'verifier key hash does not match its name and key');
  }
  return { keyName, keyId, publicKey: Buffer.from(publicKey) };
}

/**
 * Parse a signed note without verifying it (structure only).
 * @throws UsageError when input is neither a string nor a Uint8Array.
 * @throws CodecError when the note is too large, not UTF-8, contains a control character, or does
 *   not follow the signed-note line structure.
 */
export function parseNote(input: string | Uint8Array): SignedNote {
  const text = decodeNoteInput(input);
  if (hasControlCharacter(text))
    throw new CodecError('note-control-character', 'note contains a control character');
  if (!text.endsWith('\n')) throw new CodecError('note-malformed', 'note must end with a newline');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw new CodecError('note-malformed', 'note has no blank line before its signatures');
  const body = text.slice(0, split + 1);
  const lines = text.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) {
    throw new CodecError('note-too-many-signatures', `note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  }
  const signatures = lines.map(parseSignatureLine);
  return { text: body, signatures };
}

/**
 * The note as text: body, blank line, one line per signature.
 * @throws UsageError when the note text or a signature is not well-formed.
 */
export function formatNote(note: SignedNote): string {
  assertNoteText(note.text);
  if (!Array.isArray(note.signatures) || note.signatures.length === 0) {
    throw new UsageError('bad-argument', 'note.signatures must be a non-empty array');
  }
  if (note.signatures.length > MAX_NOTE_SIGNATURES) {
    throw new UsageError('bad-argument', `a note carries at most ${MAX_NOTE_SIGNATURES} signatures`);
  }
  let out = `${note.text}\n`;
  for (const s of note.signatures) {
    assertKeyName(s.keyName);
    if (!Number.isInteger(s.keyId) || s.keyId < 0 || s.keyId > 0xffffffff) {
      throw new UsageError('bad-argument', 'signature keyId must be a uint32');
    }
    assertBytes('signature.signature', s.signature);
    if (s.signature.length === 0)
      throw new UsageError('bad-argument', 'signature.signature must not be empty');
    const blob = Buffer.alloc(4 + s.signature.length);
    blob.writeUInt32BE(s.keyId, 0);
    blob.set(s.signature, 4);
    out += `${EM_DASH_PREFIX}${s.keyName} ${blob.toString('base64')}\n`;
  }
  if (Buffer.byteLength(out) > MAX_NOTE_BYTES)
    throw new UsageError('bad-argument', 'note exceeds MAX_NOTE_BYTES');
  return out;
}

/**
 * Sign `text` with an Ed25519 key and return the signed note (one signature line).
 * @throws UsageError when text is not valid note text (non-empty, ending in a newline, no control
 *   character but newline), keyName is not a valid key name, or secretKey is not 64 bytes.
 */
export function signNote(text: string, keyName: string, secretKey: Uint8Array): string {
  assertNoteText(text);
  assertKeyName(keyName);
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  const publicKey = secretKey.subarray(ED25519_SECRET_BYTES - ED25519_PUBLIC_BYTES);
  const signature = sign(utf8.encode(text), secretKey);
  return formatNote({ text, signatures: [{ keyName, keyId: keyIdUnsafe(keyName, publicKey), signature }] });
}

/**
 * Verify a note against one trusted key. Signatures by other keys are ignored, as the spec
 * requires; every signature that names this key (same name and key ID) must verify.
 * @returns the parsed note and the signature that verified.
 * @throws CodecError when the note is malformed.
 * @throws VerifyError reason 'note-bad-signature' when a signature naming the key does not verify,
 *   'note-not-signed' when no signature names the key.
 */
export function verifyNote(
  input: string | Uint8Array | SignedNote,
  key: NoteVerifierKey,
): { note: SignedNote; signature: NoteSignature } {
  assertVerifierKey(key);
  const note = typeof input === 'string' || input instanceof Uint8Array ? parseNote(input) : input;
  const message = utf8.encode(note.text);
  let found: NoteSignature | undefined;
  for (const s of note.signatures) {
    if (s.keyName !== key.keyName || s.keyId !== key.keyId) continue;
    if (s.signature.length !== ED25519_SIGNATURE_BYTES || !verify(s.signature, message, key.publicKey)) {
      throw new VerifyError('note-bad-signature', `the signature by ${key.keyName} does not verify`);
    }
    found ??= s;
  }
  if (found === undefined)
    throw new VerifyError('note-not-signed', `the note is not signed by ${key.keyName}`);
  return { note, signature: found };
}

/** Internal: the key ID without argument checks. */
export function keyIdUnsafe(keyName: string, publicKey: Uint8Array): number {
  const digest = sha256(utf8.encode(keyName), Uint8Array.of(0x0a, ED25519_SIGNATURE_TYPE), publicKey);
  return digest.readUInt32BE(0);
}

/** Internal: key names are non-empty, at most MAX_KEY_NAME_BYTES, without spaces, '+' or controls. */
export function isKeyName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    Buffer.byteLength(name) <= MAX_KEY_NAME_BYTES &&
    !SPACE_OR_PLUS.test(name) &&
    !hasControlCharacter(name) &&
    !LONE_SURROGATE.test(name)
  );
}

/** Internal: strict RFC 4648 §4 base64 with padding, canonical (decode then encode is identity). */
export function decodeBase64(text: string, what: string, reason: string): Buffer {
  if (!BASE64.test(text)) throw new CodecError(reason, `${what} is not padded standard base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw new CodecError(reason, `${what} is not canonical base64`);
  return bytes;
}

/** Internal: the note as a string after the byte cap, UTF-8 and surrogate checks. */
export function decodeNoteInput(input: string | Uint8Array): string {
  if (input instanceof Uint8Array) {
    if (input.length > MAX_NOTE_BYTES)
      throw new CodecError('note-too-large', `note exceeds ${MAX_NOTE_BYTES} bytes`);
    try {
      return strictUtf8.decode(input);
    } catch (cause) {
      throw new CodecError('note-not-utf8', 'note is not valid UTF-8', { cause });
    }
  }
  if (typeof input !== 'string')
    throw new UsageError('bad-argument', 'note must be a string or a Uint8Array');
  // UTF-16 length <= UTF-8 length, so the first test refuses huge strings before measuring them.
  if (input.length > MAX_NOTE_BYTES || Buffer.byteLength(input) > MAX_NOTE_BYTES) {
    throw new CodecError('note-too-large', `note exceeds ${MAX_NOTE_BYTES} bytes`);
  }
  if (LONE_SURROGATE.test(input)) throw new CodecError('note-not-utf8', 'note contains a lone surrogate');
  return input;
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(EM_DASH_PREFIX)) {
    throw new CodecError('note-malformed', 'signature line must start with an em dash and a space');
  }
  const rest = line.slice(EM_DASH_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw new CodecError('note-malformed', 'signature line must be "— <name> <signature>"');
  const keyName = rest.slice(0, space);
  if (!isKeyName(keyName)) throw new CodecError('note-malformed', 'signature line has an invalid key name');
  const blob = decodeBase64(rest.slice(space + 1), 'note signature', 'note-malformed');
  if (blob.length <= 4) throw new CodecError('note-malformed', 'note signature is shorter than a key ID');
  return { keyName, keyId: blob.readUInt32BE(0), signature: blob.subarray(4) };
}

function assertKeyName(name: unknown): asserts name is string {
  if (!isKeyName(name)) {
    throw new UsageError(
      'bad-argument',
      `keyName must be 1..${MAX_KEY_NAME_BYTES} bytes without spaces, '+' or control characters`,
    );
  }
}

function assertNoteText(text: unknown): asserts text is string {
  if (typeof text !== 'string' || text.length === 0 || !text.endsWith('\n')) {
    throw new UsageError('bad-argument', 'note text must be a non-empty string ending in a newline');
  }
  if (hasControlCharacter(text) || LONE_SURROGATE.test(text)) {
    throw new UsageError('bad-argument', 'note text must be UTF-8 without control characters but newline');
  }
}

function assertVerifierKey(key: NoteVerifierKey): void {
  if (typeof key !== 'object' || key === null)
    throw new UsageError('bad-argument', 'key must be a NoteVerifierKey');
  assertKeyName(key.keyName);
  assertBytes('key.publicKey', key.publicKey, ED25519_PUBLIC_BYTES);
  if (key.keyId !== keyIdUnsafe(key.keyName, key.publicKey)) {
    throw new UsageError('bad-argument', 'key.keyId does not match key.keyName and key.publicKey');
  }
}

/** Internal: any code unit below U+0020 other than newline (signed-note §Format). */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return true;
  }
  return false;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
