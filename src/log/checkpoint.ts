/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a signed note whose text is the origin
 * line, the decimal tree size, the base64 root hash, and optional extension lines. Plus a compact
 * binary form {origin, size, root, signature} that members embed in group messages to gossip the
 * relay's checkpoints: any member rebuilds the exact signed note from it and re-verifies it.
 */
import { ED25519_SIGNATURE_BYTES } from '../crypto/index.ts';
import { assertBytes, CodecError, UsageError, VerifyError } from '../errors.ts';
import { assertSafeCount, HASH_BYTES, type TreeSize } from './hash.ts';
import {
  decodeBase64,
  formatNote,
  hasControlCharacter,
  noteVerifierKey,
  parseNote,
  type SignedNote,
  signNote,
  verifyNote,
} from './note.ts';

/** Longest origin line accepted, in UTF-8 bytes (the compact form stores its length in one byte). */
export const MAX_ORIGIN_BYTES = 255;
/** Most extension lines accepted; cwtch-groups relays emit one, the signed time. */
export const MAX_EXTENSION_LINES = 16;
/**
 * The signed-time extension line (docs/log.md §3 "Signed time"): this prefix, then the Unix time
 * in milliseconds at which the relay signed the checkpoint, canonical decimal. When present it is
 * the first extension line, and there is only one. Any extension line that starts with
 * SIGNED_TIME_NAME must be exactly this form: a malformed time is refused, never ignored.
 */
export const SIGNED_TIME_NAME = 'cwtch-groups/v1/signed-time-ms';
const SIGNED_TIME_LINE = /^cwtch-groups\/v1\/signed-time-ms (0|[1-9][0-9]{0,15})$/;

export interface Checkpoint {
  /** Unique identity of the log; SHOULD equal the key name of the log's signature. */
  readonly origin: string;
  readonly size: TreeSize;
  /** RFC 9162 root hash of the tree of `size` leaves (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Non-empty extension lines, the signed-time line included (first) when present. */
  readonly extensions: readonly string[];
  /**
   * When the log signed this checkpoint (Unix ms), from its signed-time extension line; null for
   * a checkpoint without one (signed before relays stated their time: it proves no freshness).
   */
  readonly timeMs: number | null;
}

/** A checkpoint parsed from a note whose signatures have not been checked yet. */
export interface ParsedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: SignedNote;
}

/**
 * The relay's checkpoint stripped to what a signature line cannot be rebuilt without: the signed
 * text is rebuilt from origin, size and root, the key ID from the group's pinned relay key.
 */
export interface CompactCheckpoint {
  readonly origin: string;
  readonly size: TreeSize;
  readonly rootHash: Uint8Array;
  /** The 64-byte Ed25519 signature over the checkpoint text. */
  readonly signature: Uint8Array;
  /** The signed time (Unix ms) of a checkpoint with a signed-time line; absent for one without. */
  readonly timeMs?: number;
}

const SIZE_LINE = /^(?:0|[1-9][0-9]{0,15})$/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The note text of a checkpoint: origin, size, root and extension lines, each ending in a newline.
 * @throws UsageError when a field is not valid (see parseCheckpointText for the rules).
 */
export function formatCheckpoint(checkpoint: CheckpointFields): string {
  if (typeof checkpoint !== 'object' || checkpoint === null) {
    throw new UsageError('bad-argument', 'checkpoint must be an object');
  }
  const { origin, size, rootHash } = checkpoint;
  const extensions = withSignedTime(checkpoint);
  if (!isLine(origin, MAX_ORIGIN_BYTES)) {
    throw new UsageError(
      'bad-argument',
      `checkpoint.origin must be one non-empty line of at most ${MAX_ORIGIN_BYTES} bytes`,
    );
  }
  assertSafeCount('checkpoint.size', size);
  assertBytes('checkpoint.rootHash', rootHash, HASH_BYTES);
  if (!Array.isArray(extensions) || extensions.length > MAX_EXTENSION_LINES) {
    throw new UsageError(
      'bad-argument',
      `checkpoint.extensions must be at most ${MAX_EXTENSION_LINES} lines`,
    );
  }
  for (const line of extensions) {
    if (!isLine(line, Number.POSITIVE_INFINITY)) {
      throw new UsageError('bad-argument', 'each checkpoint extension must be one non-empty line');
    }
  }
  const b64 = Buffer.from(rootHash.buffer, rootHash.byteOffset, rootHash.length).toString('base64');
  const text = [origin, String(size), b64, ...extensions].map((l) => `${l}\n`).join('');
  // The signed-time rules (one line, first, canonical) are the parser's: check them once, here.
  try {
    signedTimeOf(extensions);
  } catch (e) {
    if (e instanceof CodecError) throw new UsageError('bad-argument', e.message);
    throw e;
  }
  return text;
}

/** What a checkpoint's text is made of (`timeMs`, when given, becomes the signed-time line). */
export interface CheckpointFields {
  readonly origin: string;
  readonly size: TreeSize;
  readonly rootHash: Uint8Array;
  /** Extension lines; the signed-time line among them only when `timeMs` is not given. */
  readonly extensions?: readonly string[];
  readonly timeMs?: number | null;
}

/** The signed-time extension line for `timeMs` (docs/log.md §3 "Signed time"). */
export function signedTimeLine(timeMs: number): string {
  assertSafeCount('timeMs', timeMs);
  return `${SIGNED_TIME_NAME} ${timeMs}`;
}

/** The extension lines of `c`, its `timeMs` (when not null/undefined) as the first one. */
function withSignedTime(c: CheckpointFields): readonly string[] {
  const extensions = c.extensions ?? [];
  if (c.timeMs === undefined || c.timeMs === null) return extensions;
  if (!Array.isArray(extensions)) return extensions;
  // A parsed checkpoint carries both: its lines already hold the time line it was parsed from.
  const line = signedTimeLine(c.timeMs);
  return extensions[0] === line ? extensions : [line, ...extensions];
}

/**
 * The signed time of a checkpoint's extension lines: null without a signed-time line.
 * @throws CodecError 'checkpoint-malformed' when a line starts with SIGNED_TIME_NAME but is not
 *   canonical, when there are two, or when it is not the first extension line.
 */
function signedTimeOf(extensions: readonly string[]): number | null {
  let timeMs: number | null = null;
  extensions.forEach((line, i) => {
    if (!line.startsWith(SIGNED_TIME_NAME)) return;
    const m = SIGNED_TIME_LINE.exec(line);
    if (m === null)
      throw new CodecError('checkpoint-malformed', 'checkpoint signed-time line is not canonical');
    if (timeMs !== null)
      throw new CodecError('checkpoint-malformed', 'checkpoint has more than one signed-time line');
    if (i !== 0)
      throw new CodecError('checkpoint-malformed', 'checkpoint signed-time line must be the first extension');
    const value = Number(m[1]);
    if (!Number.isSafeInteger(value))
      throw new CodecError('checkpoint-malformed', 'checkpoint signed time exceeds 2^53 - 1');
    timeMs = value;
  });
  return timeMs;
}

/**
 * Parse checkpoint note text (the signed body, without signatures). Rules: at least three lines,
 * each non-empty and newline-terminated; origin at most MAX_ORIGIN_BYTES; size in canonical
 * decimal (no sign, no leading zero) up to 2^53 - 1; root in canonical padded base64 of exactly
 * 32 bytes; at most MAX_EXTENSION_LINES extension lines.
 * @throws CodecError when the text breaks a rule.
 */
export function parseCheckpointText(text: string): Checkpoint {
  if (typeof text !== 'string') throw new UsageError('bad-argument', 'checkpoint text must be a string');
  if (!text.endsWith('\n'))
    throw new CodecError('checkpoint-malformed', 'checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3)
    throw new CodecError('checkpoint-malformed', 'checkpoint needs origin, size and root lines');
  if (lines.length > 3 + MAX_EXTENSION_LINES) {
    throw new CodecError(
      'checkpoint-malformed',
      `checkpoint has more than ${MAX_EXTENSION_LINES} extension lines`,
    );
  }
  const [origin, sizeLine, rootLine] = lines as [string, string, string];
  if (origin.length === 0) throw new CodecError('checkpoint-malformed', 'checkpoint origin is empty');
  if (Buffer.byteLength(origin) > MAX_ORIGIN_BYTES) {
    throw new CodecError('checkpoint-malformed', `checkpoint origin exceeds ${MAX_ORIGIN_BYTES} bytes`);
  }
  if (!SIZE_LINE.test(sizeLine)) {
    throw new CodecError('checkpoint-malformed', 'checkpoint size must be canonical decimal');
  }
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size))
    throw new CodecError('checkpoint-malformed', 'checkpoint size exceeds 2^53 - 1');
  const rootHash = decodeBase64(rootLine, 'checkpoint root hash', 'checkpoint-malformed');
  if (rootHash.length !== HASH_BYTES) {
    throw new CodecError('checkpoint-malformed', `checkpoint root hash must be ${HASH_BYTES} bytes`);
  }
  const extensions = lines.slice(3);
  if (extensions.some((l) => l.length === 0)) {
    throw new CodecError('checkpoint-malformed', 'checkpoint extension lines must not be empty');
  }
  return { origin, size: size as TreeSize, rootHash, extensions, timeMs: signedTimeOf(extensions) };
}

/**
 * Sign a checkpoint as a signed note (the relay's key name SHOULD equal the origin).
 * @returns the note as a string; its UTF-8 bytes are the wire form.
 * @throws UsageError when a checkpoint field, keyName or secretKey is invalid.
 */
export function signCheckpoint(checkpoint: CheckpointFields, keyName: string, secretKey: Uint8Array): string {
  return signNote(formatCheckpoint(checkpoint), keyName, secretKey);
}

/**
 * Parse a checkpoint note strictly, without verifying signatures. Its content MUST NOT be acted
 * on before verifyCheckpoint accepts it.
 * @throws CodecError when the note or its checkpoint text is malformed.
 */
export function parseCheckpoint(note: string | Uint8Array): ParsedCheckpoint {
  const parsed = parseNote(note);
  return { checkpoint: parseCheckpointText(parsed.text), note: parsed };
}

/**
 * Verify a checkpoint note signed by the log key (keyName, publicKey) and return its content.
 * Signatures by other keys (witnesses, rotated keys) are ignored.
 * @throws CodecError when the note is malformed.
 * @throws VerifyError 'note-not-signed' / 'note-bad-signature' when no valid signature by the key
 *   is present, 'checkpoint-wrong-origin' when options.origin is given and differs.
 * @throws UsageError when keyName or publicKey is invalid.
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  keyName: string,
  publicKey: Uint8Array,
  options: { origin?: string } = {},
): Checkpoint {
  const parsed = parseCheckpoint(note);
  verifyNote(parsed.note, noteVerifierKey(keyName, publicKey));
  assertOrigin(parsed.checkpoint, options.origin);
  return parsed.checkpoint;
}

/**
 * Verify a checkpoint note and keep only what the compact form needs.
 * @throws UsageError when the checkpoint has extension lines other than the signed time (the
 *   compact form cannot carry them).
 * @throws CodecError, VerifyError as verifyCheckpoint.
 */
export function compactCheckpoint(
  note: string | Uint8Array,
  keyName: string,
  publicKey: Uint8Array,
): CompactCheckpoint {
  const parsed = parseCheckpoint(note);
  const { signature } = verifyNote(parsed.note, noteVerifierKey(keyName, publicKey));
  const { origin, size, rootHash, extensions, timeMs } = parsed.checkpoint;
  if (extensions.length > (timeMs === null ? 0 : 1)) {
    throw new UsageError('bad-argument', 'a checkpoint with extension lines has no compact form');
  }
  return {
    origin,
    size,
    rootHash,
    signature: Buffer.from(signature.signature),
    ...(timeMs === null ? {} : { timeMs }),
  };
}

/**
 * Rebuild the signed note of a compact checkpoint (one signature line, by keyName). The result is
 * byte-identical to the relay's note when the relay signed with this key alone.
 * @throws UsageError when a field, keyName or publicKey is invalid.
 */
export function noteFromCompactCheckpoint(
  compact: CompactCheckpoint,
  keyName: string,
  publicKey: Uint8Array,
): string {
  assertCompact(compact);
  const key = noteVerifierKey(keyName, publicKey);
  return formatNote({
    text: formatCheckpoint(compact),
    signatures: [{ keyName: key.keyName, keyId: key.keyId, signature: compact.signature }],
  });
}

/**
 * Verify a compact checkpoint against the log key without going through note text.
 * @throws VerifyError 'note-bad-signature' when the signature does not verify,
 *   'checkpoint-wrong-origin' when options.origin is given and differs.
 * @throws UsageError when a field, keyName or publicKey is invalid.
 */
export function verifyCompactCheckpoint(
  compact: CompactCheckpoint,
  keyName: string,
  publicKey: Uint8Array,
  options: { origin?: string } = {},
): Checkpoint {
  const checkpoint = verifyCheckpoint(
    noteFromCompactCheckpoint(compact, keyName, publicKey),
    keyName,
    publicKey,
  );
  assertOrigin(checkpoint, options.origin);
  return checkpoint;
}

/**
 * Binary form: u8 origin length (1..255) ‖ origin (UTF-8) ‖ u64 big-endian size ‖ 32-byte root ‖
 * 64-byte signature, then, for a checkpoint with a signed time, u64 big-endian time in ms. At
 * most 368 bytes. The origin length fixes where the signature ends, so the two forms never meet.
 * @throws UsageError when a field is invalid.
 */
export function encodeCompactCheckpoint(compact: CompactCheckpoint): Buffer {
  assertCompact(compact);
  const origin = utf8.encode(compact.origin);
  const timed = compact.timeMs !== undefined;
  const out = Buffer.alloc(1 + origin.length + 8 + HASH_BYTES + ED25519_SIGNATURE_BYTES + (timed ? 8 : 0));
  let at = out.writeUInt8(origin.length, 0);
  out.set(origin, at);
  at += origin.length;
  at = out.writeBigUInt64BE(BigInt(compact.size), at);
  out.set(compact.rootHash, at);
  out.set(compact.signature, at + HASH_BYTES);
  if (timed) out.writeBigUInt64BE(BigInt(compact.timeMs!), at + HASH_BYTES + ED25519_SIGNATURE_BYTES);
  return out;
}

/**
 * Strict inverse of encodeCompactCheckpoint: exact length (with or without the time), valid
 * origin line, size and time <= 2^53 - 1.
 * @throws CodecError when the bytes are not a canonical compact checkpoint.
 */
export function decodeCompactCheckpoint(bytes: Uint8Array): CompactCheckpoint {
  assertBytes('bytes', bytes);
  const fail = (what: string): never => {
    throw new CodecError('compact-checkpoint-malformed', `compact checkpoint: ${what}`);
  };
  if (bytes.length < 1) fail('empty');
  const originLength = bytes[0]!;
  if (originLength === 0) fail('empty origin');
  const expected = 1 + originLength + 8 + HASH_BYTES + ED25519_SIGNATURE_BYTES;
  if (bytes.length !== expected && bytes.length !== expected + 8)
    fail(`${bytes.length} bytes, expected ${expected} (or ${expected + 8} with a signed time)`);
  let origin = '';
  try {
    origin = strictUtf8.decode(bytes.subarray(1, 1 + originLength));
  } catch {
    fail('origin is not UTF-8');
  }
  if (!isLine(origin, MAX_ORIGIN_BYTES)) fail('origin is not a valid origin line');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const size = view.readBigUInt64BE(1 + originLength);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) fail('size exceeds 2^53 - 1');
  const at = 1 + originLength + 8;
  const sigEnd = at + HASH_BYTES + ED25519_SIGNATURE_BYTES;
  let timeMs: number | undefined;
  if (bytes.length > sigEnd) {
    const t = view.readBigUInt64BE(sigEnd);
    if (t > BigInt(Number.MAX_SAFE_INTEGER)) fail('time exceeds 2^53 - 1');
    timeMs = Number(t);
  }
  return {
    origin,
    size: Number(size) as TreeSize,
    rootHash: Buffer.from(bytes.subarray(at, at + HASH_BYTES)),
    signature: Buffer.from(bytes.subarray(at + HASH_BYTES, sigEnd)),
    ...(timeMs === undefined ? {} : { timeMs }),
  };
}

function assertOrigin(checkpoint: Checkpoint, origin: string | undefined): void {
  if (origin !== undefined && checkpoint.origin !== origin) {
    throw new VerifyError('checkpoint-wrong-origin', `checkpoint origin is not ${origin}`);
  }
}

function assertCompact(compact: CompactCheckpoint): void {
  if (typeof compact !== 'object' || compact === null) {
    throw new UsageError('bad-argument', 'compact must be a CompactCheckpoint');
  }
  if (!isLine(compact.origin, MAX_ORIGIN_BYTES)) {
    throw new UsageError(
      'bad-argument',
      `compact.origin must be one non-empty line of at most ${MAX_ORIGIN_BYTES} bytes`,
    );
  }
  assertSafeCount('compact.size', compact.size);
  assertBytes('compact.rootHash', compact.rootHash, HASH_BYTES);
  assertBytes('compact.signature', compact.signature, ED25519_SIGNATURE_BYTES);
  if (compact.timeMs !== undefined) assertSafeCount('compact.timeMs', compact.timeMs);
}

/** One non-empty line of note text: no newline, no control character, bounded UTF-8 length. */
function isLine(value: unknown, maxBytes: number): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    !value.includes('\n') &&
    !hasControlCharacter(value) &&
    Buffer.byteLength(value) <= maxBytes
  );
}
