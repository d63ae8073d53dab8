/**
 * Signed receipts: the relay's promise that an envelope has a place in its log.
 *
 * A receipt is what a relay returns for each accepted post (docs/PROTOCOL.md, "Relay log"): the
 * log origin, the index the envelope was given, its leaf hash and the time the relay accepted
 * it, signed with the relay's Ed25519 log key. Like a Certificate Transparency SCT, it is a
 * promise made before any checkpoint covers the entry: once a signed checkpoint of size > index
 * exists, the relay must be able to prove the leaf at that index, and a checkpoint that proves a
 * different leaf there is offline-verifiable evidence of relay misbehaviour.
 *
 * Wire layout (big-endian, no optional parts, exactly one encoding per receipt):
 *
 *   "cwtch-groups/v1/receipt\n"   24 bytes   domain prefix (also the format's version)
 *   origin length                 u16        1..255
 *   origin                        UTF-8      the log origin, as on the checkpoint's first line
 *   index                         u64        ≤ 2^53 − 1
 *   leaf hash                     32 bytes   SHA-256(0x00 ‖ envelope), RFC 9162 leaf hash
 *   time                          u64        Unix milliseconds, ≤ 2^53 − 1
 *   signature                     64 bytes   Ed25519 over every preceding byte
 *
 * The signature covers the domain prefix, so a receipt signature can never be replayed as a
 * checkpoint (signed-note) signature made with the same key, nor the other way round: a note
 * signed by the relay begins "<origin>\n<decimal size>", and were its origin the receipt's
 * prefix, byte 24 of the note would be an ASCII digit (≥ 0x30), while byte 24 of a receipt is
 * the high byte of an origin length ≤ 255, i.e. 0x00. The 255-byte cap keeps that argument true.
 */
import {
  constantTimeEqual,
  ED25519_PUBLIC_BYTES,
  ED25519_SECRET_BYTES,
  ED25519_SIGNATURE_BYTES,
  sign,
  verify,
} from '../crypto/index.ts';
import { assertBytes, CodecError, InconsistencyError, UsageError, VerifyError } from '../errors.ts';
import { type Checkpoint, parseCheckpoint, verifyCheckpoint } from './checkpoint.ts';
import type { LogIndex, TreeSize } from './hash.ts';
import { MAX_NOTE_BYTES } from './note.ts';
import { MAX_PROOF_HASHES, verifyInclusion } from './proof.ts';

/** Domain prefix of every receipt; the signed message starts with it. */
export const RECEIPT_DOMAIN = 'cwtch-groups/v1/receipt\n';
/** Longest log origin a receipt can carry, in UTF-8 bytes (see the module comment for why). */
export const MAX_RECEIPT_ORIGIN_BYTES = 255;
/** RFC 9162 leaf hashes are SHA-256 outputs. */
export const LEAF_HASH_BYTES = 32;

const textEncoder = new TextEncoder();
// fatal: malformed UTF-8 is a CodecError, never a replacement character; ignoreBOM keeps a BOM
// visible so that origin validation rejects it instead of silently stripping it.
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const PREFIX = textEncoder.encode(RECEIPT_DOMAIN);
const FIXED_BYTES = PREFIX.length + 2 + 8 + LEAF_HASH_BYTES + 8;

/** The signed fields of a receipt. */
export interface ReceiptBody {
  /** The relay's log origin (the first line of its checkpoints). */
  readonly origin: string;
  /** Position of the envelope in the relay's log (0-based). */
  readonly index: LogIndex;
  /** RFC 9162 leaf hash of the envelope: SHA-256(0x00 ‖ envelope). */
  readonly leafHash: Uint8Array;
  /** When the relay accepted the envelope, Unix milliseconds. */
  readonly timeMs: number;
}

/** A receipt with the relay's Ed25519 signature over {@link receiptSignedMessage}. */
export interface Receipt extends ReceiptBody {
  readonly signature: Uint8Array;
}

/**
 * Check that a string can be a log origin in a receipt and a checkpoint: 1..255 UTF-8 bytes,
 * no whitespace, no '+', no control characters (C2SP signed-note key names forbid spaces and
 * '+'; the origin doubles as the note's key name).
 * @throws UsageError naming `name` when it cannot.
 */
export function assertReceiptOrigin(name: string, origin: unknown): asserts origin is string {
  if (typeof origin !== 'string') throw new UsageError('bad-argument', `${name} must be a string`);
  const bytes = textEncoder.encode(origin).length;
  if (bytes < 1 || bytes > MAX_RECEIPT_ORIGIN_BYTES) {
    throw new UsageError('bad-argument', `${name} must be 1..${MAX_RECEIPT_ORIGIN_BYTES} UTF-8 bytes`);
  }
  if (!isValidOrigin(origin)) {
    throw new UsageError('bad-argument', `${name} must not contain whitespace, '+' or control characters`);
  }
}

function isValidOrigin(origin: string): boolean {
  // \s covers Unicode spaces (and U+FEFF); \p{Cc} the C0/C1 controls; \p{Cs} lone surrogates,
  // which UTF-8 cannot encode (TextEncoder would silently substitute U+FFFD and the signed
  // bytes would no longer match the string).
  return !/[\s+\p{Cc}\p{Cs}]/u.test(origin);
}

function assertU53(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('bad-argument', `${name} must be an integer in 0..2^53-1`);
  }
}

function assertBody(body: ReceiptBody): void {
  if (typeof body !== 'object' || body === null)
    throw new UsageError('bad-argument', 'receipt must be an object');
  assertReceiptOrigin('receipt.origin', body.origin);
  assertU53('receipt.index', body.index);
  assertBytes('receipt.leafHash', body.leafHash, LEAF_HASH_BYTES);
  assertU53('receipt.timeMs', body.timeMs);
}

/** Write the unsigned part (prefix … time) into a fresh buffer with room for `extra` bytes. */
function encodeBody(body: ReceiptBody, extra: number): Uint8Array {
  const origin = textEncoder.encode(body.origin);
  const out = new Uint8Array(FIXED_BYTES + origin.length + extra);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = 0;
  out.set(PREFIX, at);
  at += PREFIX.length;
  view.setUint16(at, origin.length);
  at += 2;
  out.set(origin, at);
  at += origin.length;
  view.setBigUint64(at, BigInt(body.index));
  at += 8;
  out.set(body.leafHash, at);
  at += LEAF_HASH_BYTES;
  view.setBigUint64(at, BigInt(body.timeMs));
  return out;
}

/**
 * The exact bytes the relay signs: the encoding of `body` without the signature.
 * @throws UsageError when a field is out of range (names the field).
 */
export function receiptSignedMessage(body: ReceiptBody): Uint8Array {
  assertBody(body);
  return encodeBody(body, 0);
}

/**
 * Sign a receipt body with the relay's 64-byte libsodium Ed25519 secret key. Ed25519 is
 * deterministic, so signing the same body with the same key always gives the same receipt:
 * that is how a relay re-issues the original receipt for a replayed envelope without storing
 * signatures.
 * @throws UsageError when a field or the key is malformed.
 */
export function signReceipt(body: ReceiptBody, secretKey: Uint8Array): Receipt {
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  const signature = sign(receiptSignedMessage(body), secretKey);
  return {
    origin: body.origin,
    index: body.index,
    leafHash: Uint8Array.from(body.leafHash),
    timeMs: body.timeMs,
    signature: Uint8Array.from(signature),
  };
}

/**
 * A signer bound to one origin and key, for a relay's ingest path: the origin is validated and
 * encoded once, and each receipt costs one buffer, two integer writes and the Ed25519 signature
 * (which is ~90% of the time; see bench/relay-storage.ts). Produces exactly what
 * {@link signReceipt} produces.
 * @throws UsageError when origin or secretKey is malformed (at creation), or when a field passed
 *   to the returned function is out of range.
 */
export function receiptSignerFor(
  origin: string,
  secretKey: Uint8Array,
): (index: LogIndex, leafHash: Uint8Array, timeMs: number) => Receipt {
  assertReceiptOrigin('origin', origin);
  assertBytes('secretKey', secretKey, ED25519_SECRET_BYTES);
  const key = Uint8Array.from(secretKey);
  const head = encodeBody(
    { origin, index: 0 as LogIndex, leafHash: new Uint8Array(LEAF_HASH_BYTES), timeMs: 0 },
    0,
  );
  const tailAt = head.length - 8 - LEAF_HASH_BYTES - 8;
  return (index, leafHash, timeMs) => {
    assertU53('receipt.index', index);
    assertBytes('receipt.leafHash', leafHash, LEAF_HASH_BYTES);
    assertU53('receipt.timeMs', timeMs);
    const message = Buffer.allocUnsafe(head.length);
    message.set(head.subarray(0, tailAt), 0);
    writeU53(message, tailAt, index);
    message.set(leafHash, tailAt + 8);
    writeU53(message, tailAt + 8 + LEAF_HASH_BYTES, timeMs);
    return {
      origin,
      index,
      leafHash: Uint8Array.from(leafHash),
      timeMs,
      signature: Uint8Array.from(sign(message, key)),
    };
  };
}

/** Big-endian u64 of a safe integer without BigInt (hot path). */
function writeU53(out: Buffer, at: number, value: number): void {
  out.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  out.writeUInt32BE(value % 0x1_0000_0000, at + 4);
}

/**
 * Check a receipt's signature under the relay's public key.
 * @returns false when the well-formed receipt does not verify (tampered, other key).
 * @throws UsageError when the receipt or key is malformed (wrong lengths, bad origin).
 */
export function verifyReceipt(receipt: Receipt, publicKey: Uint8Array): boolean {
  assertBytes('publicKey', publicKey, ED25519_PUBLIC_BYTES);
  assertBytes('receipt.signature', receipt?.signature, ED25519_SIGNATURE_BYTES);
  return verify(receipt.signature, receiptSignedMessage(receipt), publicKey);
}

/**
 * Canonical encoding of a signed receipt (see the module comment for the layout).
 * @throws UsageError when a field is out of range.
 */
export function encodeReceipt(receipt: Receipt): Uint8Array {
  assertBody(receipt);
  assertBytes('receipt.signature', receipt.signature, ED25519_SIGNATURE_BYTES);
  const out = encodeBody(receipt, ED25519_SIGNATURE_BYTES);
  out.set(receipt.signature, out.length - ED25519_SIGNATURE_BYTES);
  return out;
}

/**
 * Strictly decode a receipt from untrusted bytes. Accepts exactly the bytes
 * {@link encodeReceipt} produces: decode → encode is the identity. Does not check the
 * signature (use {@link verifyReceipt}).
 * @throws CodecError on any malformation: wrong prefix, origin length out of range, invalid
 *   UTF-8 or forbidden characters in the origin, integers above 2^53 − 1, truncation or
 *   trailing bytes.
 */
export function decodeReceipt(bytes: Uint8Array): Receipt {
  assertBytes('bytes', bytes);
  // Prefix and origin length first: the exact length of the rest depends on them.
  if (bytes.length < PREFIX.length + 2) {
    throw new CodecError('receipt-truncated', `a receipt cannot be ${bytes.length} bytes long`);
  }
  for (let i = 0; i < PREFIX.length; i++) {
    if (bytes[i] !== PREFIX[i]) throw new CodecError('receipt-bad-prefix', 'not a cwtch-groups v1 receipt');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = PREFIX.length;
  const originLength = view.getUint16(at);
  at += 2;
  if (originLength < 1 || originLength > MAX_RECEIPT_ORIGIN_BYTES) {
    throw new CodecError('receipt-bad-origin', `receipt origin length ${originLength} is outside 1..255`);
  }
  const expected = FIXED_BYTES + originLength + ED25519_SIGNATURE_BYTES;
  if (bytes.length !== expected) {
    throw new CodecError(
      bytes.length < expected ? 'receipt-truncated' : 'receipt-trailing-bytes',
      `receipt with a ${originLength}-byte origin must be ${expected} bytes, got ${bytes.length}`,
    );
  }
  let origin: string;
  try {
    origin = textDecoder.decode(bytes.subarray(at, at + originLength));
  } catch (cause) {
    throw new CodecError('receipt-bad-origin', 'receipt origin is not valid UTF-8', { cause });
  }
  if (!isValidOrigin(origin)) {
    throw new CodecError(
      'receipt-bad-origin',
      "receipt origin contains whitespace, '+' or control characters",
    );
  }
  at += originLength;
  const index = readU53(view, at, 'index') as LogIndex;
  at += 8;
  // Copies into plain Uint8Arrays: Buffer#slice would alias the caller's (network) buffer.
  const leafHash = new Uint8Array(bytes.subarray(at, at + LEAF_HASH_BYTES));
  at += LEAF_HASH_BYTES;
  const timeMs = readU53(view, at, 'time');
  at += 8;
  const signature = new Uint8Array(bytes.subarray(at, at + ED25519_SIGNATURE_BYTES));
  return { origin, index, leafHash, timeMs, signature };
}

function readU53(view: DataView, at: number, what: string): number {
  const value = view.getBigUint64(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CodecError('receipt-integer-too-large', `receipt ${what} exceeds 2^53 - 1`);
  }
  return Number(value);
}

// ---------------------------------------------------------------------------------------------
// Receipts against checkpoints: the relay's promise meets its signed tree.

/**
 * Offline-verifiable proof that a relay broke a receipt: the relay signed `receipt` (leaf L at
 * index i) and signed `checkpoint` (size > i), and `proof` shows that the checkpoint's tree holds
 * a DIFFERENT leaf, `leafHash`, at index i. Both statements are signed by the relay key, and by
 * collision resistance of SHA-256 a tree cannot hold two leaves at one index, so anyone holding
 * the relay's public key (and nothing else: no group key, no envelope) can check it with
 * {@link verifyReceiptNotIncludedEvidence}.
 */
export interface ReceiptNotIncludedEvidence {
  readonly kind: 'receipt-not-included';
  /** The encoded signed receipt ({@link encodeReceipt}). */
  readonly receipt: Uint8Array;
  /** The signed checkpoint note (C2SP tlog-checkpoint) of a size above the receipt's index. */
  readonly checkpoint: string;
  /** The leaf hash the checkpoint's tree has at the receipt's index. */
  readonly leafHash: Uint8Array;
  /** RFC 9162 inclusion proof of leafHash at the receipt's index in the checkpoint's tree. */
  readonly proof: readonly Uint8Array[];
}

/**
 * What {@link verifyReceiptAgainstCheckpoint} throws (inside an InconsistencyError) when the
 * checkpoint covers the receipt's index but the proof does not show the receipt's leaf there.
 * A failed proof alone does not prove misbehaviour (anyone can write a bad proof, so accepting it
 * as proof would let a member frame an honest relay): it is kept so the relay can be asked to
 * answer for it with a valid proof. `notIncluded` is present when the failure IS proven.
 */
export interface ReceiptInclusionFailureEvidence {
  readonly kind: 'receipt-inclusion-failure';
  readonly receipt: Uint8Array;
  readonly checkpoint: string;
  readonly proof: readonly Uint8Array[];
  readonly notIncluded?: ReceiptNotIncludedEvidence;
}

/** The outcome when no misbehaviour is found. */
export type ReceiptCheck =
  /** The checkpoint's tree holds the receipt's leaf at its index. */
  | 'included'
  /** The checkpoint is too small to cover the receipt's index yet: ask again with a newer one. */
  | 'not-yet-covered';

/**
 * Check a receipt against a checkpoint of the same relay and an inclusion proof for the receipt's
 * index, as a client does once a checkpoint covers the index it was promised. The relay's key
 * name for checkpoint notes is its origin (docs/log.md).
 *
 * @param relayKey the relay's 32-byte Ed25519 log public key.
 * @param checkpointNote the relay's signed checkpoint note.
 * @param inclusionProof the relay's inclusion proof for receipt.index in the checkpoint's tree.
 * @param leafHashAtIndex optional: the leaf the relay serves at receipt.index (its entry's leaf
 *   hash). When the proof verifies for it and it differs from the receipt's leaf, the failure is
 *   a proven breach (evidence.notIncluded).
 * @returns 'included', or 'not-yet-covered' when the checkpoint's size ≤ receipt.index.
 * @throws InconsistencyError reason 'receipt-not-included' (proven: evidence.notIncluded is a
 *   {@link ReceiptNotIncludedEvidence}) or 'inclusion-proof-failed' (not proven: a wrong or
 *   malformed proof), evidence {@link ReceiptInclusionFailureEvidence}.
 * @throws VerifyError 'receipt-bad-signature' when the receipt is not signed by relayKey (nothing
 *   the relay can be held to); 'note-not-signed' / 'note-bad-signature' from the checkpoint;
 *   'checkpoint-wrong-origin' when the checkpoint is of another log.
 * @throws CodecError when the checkpoint note is malformed.
 * @throws UsageError when an argument has the wrong type or length.
 */
export function verifyReceiptAgainstCheckpoint(
  receipt: Receipt,
  relayKey: Uint8Array,
  checkpointNote: string,
  inclusionProof: readonly Uint8Array[],
  leafHashAtIndex?: Uint8Array,
): ReceiptCheck {
  assertBytes('relayKey', relayKey, ED25519_PUBLIC_BYTES);
  if (!verifyReceipt(receipt, relayKey)) {
    throw new VerifyError('receipt-bad-signature', 'the receipt is not signed by this relay key');
  }
  if (!Array.isArray(inclusionProof)) throw new UsageError('bad-argument', 'inclusionProof must be an array');
  if (leafHashAtIndex !== undefined) assertBytes('leafHashAtIndex', leafHashAtIndex, LEAF_HASH_BYTES);
  const checkpoint = verifyCheckpoint(checkpointNote, receipt.origin, relayKey, { origin: receipt.origin });
  if (checkpoint.size <= receipt.index) return 'not-yet-covered';

  if (proofLeadsTo(receipt.leafHash, receipt.index, checkpoint.size, inclusionProof, checkpoint.rootHash)) {
    return 'included';
  }
  const encoded = encodeReceipt(receipt);
  let notIncluded: ReceiptNotIncludedEvidence | undefined;
  if (
    leafHashAtIndex !== undefined &&
    !constantTimeEqual(leafHashAtIndex, receipt.leafHash) &&
    proofLeadsTo(leafHashAtIndex, receipt.index, checkpoint.size, inclusionProof, checkpoint.rootHash)
  ) {
    notIncluded = {
      kind: 'receipt-not-included',
      receipt: encoded,
      checkpoint: checkpointNote,
      leafHash: Uint8Array.from(leafHashAtIndex),
      proof: inclusionProof.map((h) => Uint8Array.from(h)),
    };
  }
  const evidence: ReceiptInclusionFailureEvidence = {
    kind: 'receipt-inclusion-failure',
    receipt: encoded,
    checkpoint: checkpointNote,
    proof: inclusionProof.map((h) => Uint8Array.from(h)),
    ...(notIncluded === undefined ? {} : { notIncluded }),
  };
  throw new InconsistencyError(
    notIncluded === undefined ? 'inclusion-proof-failed' : 'receipt-not-included',
    notIncluded === undefined
      ? `the relay's proof does not show the receipted leaf at index ${receipt.index} of its checkpoint of size ${checkpoint.size}`
      : `the relay's checkpoint of size ${checkpoint.size} holds another leaf at receipted index ${receipt.index}`,
    evidence,
  );
}

/**
 * Check receipt-not-included evidence offline with the relay's public key alone.
 * @returns the receipt and checkpoint the relay signed that contradict each other.
 * @throws VerifyError 'evidence-not-a-breach' when the evidence proves nothing (receipt not
 *   signed by the key, checkpoint too small, same leaf, proof that does not verify), or the
 *   checkpoint's note errors ('note-not-signed', 'note-bad-signature', 'checkpoint-wrong-origin').
 * @throws CodecError when the receipt, note or proof is malformed.
 * @throws UsageError when evidence or relayKey is not of the expected shape.
 */
export function verifyReceiptNotIncludedEvidence(
  evidence: ReceiptNotIncludedEvidence,
  relayKey: Uint8Array,
): { receipt: Receipt; checkpoint: Checkpoint } {
  if (typeof evidence !== 'object' || evidence === null || evidence.kind !== 'receipt-not-included') {
    throw new UsageError('bad-argument', 'evidence must be receipt-not-included evidence');
  }
  assertBytes('relayKey', relayKey, ED25519_PUBLIC_BYTES);
  assertBytes('evidence.leafHash', evidence.leafHash, LEAF_HASH_BYTES);
  if (!Array.isArray(evidence.proof)) throw new UsageError('bad-argument', 'evidence.proof must be an array');
  const receipt = decodeReceipt(evidence.receipt);
  const notABreach = (why: string): never => {
    throw new VerifyError('evidence-not-a-breach', `the evidence does not prove a broken receipt: ${why}`);
  };
  if (!verifyReceipt(receipt, relayKey)) notABreach('the receipt is not signed by this key');
  const checkpoint = verifyCheckpoint(evidence.checkpoint, receipt.origin, relayKey, {
    origin: receipt.origin,
  });
  if (checkpoint.size <= receipt.index) notABreach('the checkpoint does not cover the receipted index');
  if (constantTimeEqual(evidence.leafHash, receipt.leafHash))
    notABreach('the leaf at the index is the receipted one');
  if (
    !verifyInclusion(evidence.leafHash, receipt.index, checkpoint.size, evidence.proof, checkpoint.rootHash)
  ) {
    notABreach('the proof does not place the other leaf at the receipted index');
  }
  return { receipt, checkpoint };
}

/** Does `proof` lead from `leaf` at `index` to `root`? A malformed proof simply does not. */
function proofLeadsTo(
  leaf: Uint8Array,
  index: LogIndex,
  size: TreeSize,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    return verifyInclusion(leaf, index, size, proof, root);
  } catch (e) {
    // Wrong proof length or hash size is the relay failing to prove, not a caller error.
    if (e instanceof CodecError) return false;
    throw e;
  }
}

const EVIDENCE_TYPE = 'cwtch-groups/receipt-evidence/v1';
/** Cap on encoded evidence: a note, a receipt, a proof and JSON overhead. */
export const MAX_RECEIPT_EVIDENCE_BYTES = MAX_NOTE_BYTES + 1024 + MAX_PROOF_HASHES * 48;

/**
 * Receipt-not-included evidence as JSON text (bytes in base64), to hand to someone else.
 * @throws UsageError when the evidence is not of the expected shape.
 */
export function encodeReceiptEvidence(evidence: ReceiptNotIncludedEvidence): string {
  if (typeof evidence !== 'object' || evidence === null || evidence.kind !== 'receipt-not-included') {
    throw new UsageError('bad-argument', 'evidence must be receipt-not-included evidence');
  }
  assertBytes('evidence.receipt', evidence.receipt);
  assertBytes('evidence.leafHash', evidence.leafHash, LEAF_HASH_BYTES);
  if (typeof evidence.checkpoint !== 'string')
    throw new UsageError('bad-argument', 'evidence.checkpoint must be a string');
  if (!Array.isArray(evidence.proof)) throw new UsageError('bad-argument', 'evidence.proof must be an array');
  return JSON.stringify({
    type: EVIDENCE_TYPE,
    kind: evidence.kind,
    receipt: b64(evidence.receipt),
    checkpoint: evidence.checkpoint,
    leafHash: b64(evidence.leafHash),
    proof: evidence.proof.map((h, i) => {
      assertBytes(`evidence.proof[${i}]`, h, LEAF_HASH_BYTES);
      return b64(h);
    }),
  });
}

/**
 * Strict inverse of {@link encodeReceiptEvidence}: exact keys in order, canonical base64, bounded
 * sizes, a receipt that decodes. Does not verify: pass the result to
 * {@link verifyReceiptNotIncludedEvidence}.
 * @throws CodecError 'receipt-evidence-malformed' when the text is not canonical evidence.
 */
export function decodeReceiptEvidence(text: string): ReceiptNotIncludedEvidence {
  if (typeof text !== 'string') throw new UsageError('bad-argument', 'evidence text must be a string');
  const fail = (what: string, cause?: unknown): never => {
    throw new CodecError('receipt-evidence-malformed', `receipt evidence: ${what}`, { cause });
  };
  if (text.length > MAX_RECEIPT_EVIDENCE_BYTES) fail('too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    fail('not JSON', cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not an object');
  const o = value as Record<string, unknown>;
  if (o.type !== EVIDENCE_TYPE || o.kind !== 'receipt-not-included') fail(`type must be ${EVIDENCE_TYPE}`);
  const bytes = (v: unknown, name: string): Buffer => {
    if (typeof v !== 'string') return fail(`${name} must be base64`);
    const out = Buffer.from(v, 'base64');
    if (out.toString('base64') !== v) fail(`${name} is not canonical base64`);
    return out;
  };
  if (typeof o.checkpoint !== 'string' || o.checkpoint.length > MAX_NOTE_BYTES)
    fail('checkpoint must be a note');
  if (!Array.isArray(o.proof) || o.proof.length > MAX_PROOF_HASHES) fail('proof must be a list of hashes');
  const evidence: ReceiptNotIncludedEvidence = {
    kind: 'receipt-not-included',
    receipt: bytes(o.receipt, 'receipt'),
    checkpoint: o.checkpoint as string,
    leafHash: bytes(o.leafHash, 'leafHash'),
    proof: (o.proof as unknown[]).map((h, i) => bytes(h, `proof[${i}]`)),
  };
  if (
    evidence.leafHash.length !== LEAF_HASH_BYTES ||
    evidence.proof.some((h) => h.length !== LEAF_HASH_BYTES)
  ) {
    fail('hashes must be 32 bytes');
  }
  decodeReceipt(evidence.receipt);
  parseCheckpoint(evidence.checkpoint);
  if (encodeReceiptEvidence(evidence) !== text) fail('not in canonical form');
  return evidence;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
