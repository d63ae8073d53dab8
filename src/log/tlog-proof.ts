/**
 * Receipts that are proofs: the C2SP tlog-proof text format (https://c2sp.org/tlog-proof), a
 * signed checkpoint of the relay's log plus the inclusion proof of one entry in its tree.
 *
 *   c2sp.org/tlog-proof@v1
 *   [extra <base64>]                   omitted when there is no extra data (we send none)
 *   index <decimal>                    no leading zeroes unless 0
 *   <base64 hash>                      zero or more lines: PATH(index, D[0:size]), leaf side first
 *   <empty line>
 *   <the checkpoint note, verbatim>    C2SP tlog-checkpoint, signed note with its signature lines
 *
 * A relay signs one checkpoint per commit batch and hands every post of the batch this proof
 * (docs/PROTOCOL.md, "Receipts"): no signature per post. A client checks the checkpoint signature
 * once per batch ({@link VerifiedCheckpointCache}) and a few hashes per post. Unlike a v1 receipt
 * (src/log/receipt.ts, a promise to include), a proof receipt shows the entry IS in the signed tree.
 *
 * Parsing is strict: the format's rules exactly, canonical padded base64 of 32-byte hashes, index
 * below the checkpoint's size and a proof of exactly the RFC 9162 length for (index, size), caps
 * checked before work, and parse → format gives the same text back, byte for byte.
 */
import { assertBytes, CodecError, UsageError, VerifyError } from '../errors.ts';
import { type Checkpoint, parseCheckpoint, verifyCheckpoint } from './checkpoint.ts';
import { HASH_BYTES, type LogIndex, type TreeSize } from './hash.ts';
import { decodeBase64, MAX_NOTE_BYTES } from './note.ts';
import { inclusionProofLength, MAX_PROOF_HASHES, verifyInclusion } from './proof.ts';

/** The first line of every proof (the format's name and version). */
export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
/** Longest extra data accepted, in bytes (the format leaves it opaque; we never send any). */
export const MAX_TLOG_PROOF_EXTRA_BYTES = 1024;
/** Cap on a whole proof: header, extra, index, 64 hash lines and a checkpoint note. */
export const MAX_TLOG_PROOF_BYTES =
  TLOG_PROOF_HEADER.length +
  1 +
  7 +
  Math.ceil(MAX_TLOG_PROOF_EXTRA_BYTES / 3) * 4 +
  1 +
  23 +
  MAX_PROOF_HASHES * 45 +
  1 +
  MAX_NOTE_BYTES;

const INDEX_LINE = /^index (0|[1-9][0-9]{0,15})$/;
const EXTRA_PREFIX = 'extra ';
// fatal: malformed UTF-8 is refused; ignoreBOM keeps a BOM visible, so the header check refuses it.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A parsed tlog-proof. Its checkpoint is not verified until {@link verifyTlogProof} says so. */
export interface TlogProof {
  readonly index: LogIndex;
  /** RFC 9162 PATH(index, D[0:size]) of the checkpoint's tree, leaf side first. */
  readonly proof: readonly Uint8Array[];
  /** The checkpoint note, verbatim (signature lines included). */
  readonly checkpoint: string;
  /** Opaque, unauthenticated extra data; absent when the line is omitted. */
  readonly extra?: Uint8Array;
}

/** Does `bytes` (a stored or received receipt) start like a tlog-proof rather than a v1 receipt? */
export function isTlogProof(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length <= TLOG_PROOF_HEADER.length) return false;
  for (let i = 0; i < TLOG_PROOF_HEADER.length; i++) {
    if (bytes[i] !== TLOG_PROOF_HEADER.charCodeAt(i)) return false;
  }
  return bytes[TLOG_PROOF_HEADER.length] === 0x0a;
}

/**
 * The text of a proof.
 * @throws UsageError when a field is invalid: index not a safe integer, a hash not 32 bytes, more
 *   than MAX_PROOF_HASHES hashes, empty or oversized extra, or a checkpoint that is not a
 *   well-formed note (CodecError from the note parser is turned into UsageError here: it is the
 *   caller's value).
 */
export function formatTlogProof(p: TlogProof): string {
  if (typeof p !== 'object' || p === null) throw new UsageError('bad-argument', 'proof must be an object');
  if (!Number.isSafeInteger(p.index) || p.index < 0) {
    throw new UsageError('bad-argument', 'proof.index must be an integer in 0..2^53-1');
  }
  if (!Array.isArray(p.proof) || p.proof.length > MAX_PROOF_HASHES) {
    throw new UsageError('bad-argument', `proof.proof must be at most ${MAX_PROOF_HASHES} hashes`);
  }
  if (typeof p.checkpoint !== 'string')
    throw new UsageError('bad-argument', 'proof.checkpoint must be a string');
  const lines = [TLOG_PROOF_HEADER];
  if (p.extra !== undefined) {
    assertBytes('proof.extra', p.extra);
    if (p.extra.length < 1 || p.extra.length > MAX_TLOG_PROOF_EXTRA_BYTES) {
      throw new UsageError('bad-argument', `proof.extra must be 1..${MAX_TLOG_PROOF_EXTRA_BYTES} bytes`);
    }
    lines.push(`${EXTRA_PREFIX}${b64(p.extra)}`);
  }
  lines.push(`index ${p.index}`);
  // The relay formats one proof per post: the hashes are checked inline (an argument name built
  // per hash allocated on that hot path).
  for (let i = 0; i < p.proof.length; i++) {
    const h = p.proof[i];
    if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES)
      assertBytes(`proof.proof[${i}]`, h, HASH_BYTES);
    lines.push(b64(h));
  }
  lines.push('', p.checkpoint);
  return lines.join('\n');
}

/** Bytes of one hash line of a proof: a newline and 44 characters of padded base64. */
const HASH_LINE_BYTES = 45;
const PROOF_HEAD = Buffer.from(`${TLOG_PROOF_HEADER}\nindex `, 'latin1');

/**
 * The tlog-proofs of one commit batch, as the UTF-8 bytes a receipt frame carries: `paths(index)`
 * gives PATH(index, D[0:size]) root side first (src/log/tree.ts batchAuditPathsUnsafe), and
 * `checkpoint` is the batch's signed note. Each call returns exactly the UTF-8 encoding of
 * formatTlogProof({ index, proof: the path leaf side first, checkpoint })
 * (test/log/batch-tlog-proof.test.ts compares them). A batch's paths share most of their nodes (a
 * node of level k is in the path of 2^k entries, the right edge in all): each node is encoded once
 * per batch, and so is the checkpoint, and each proof is one buffer the pieces are copied into,
 * with no string built per post (a relay formats one per post, and the strings of a thousand
 * posts in flight were a large share of its garbage: bench/README.md, "Relay ingest").
 * @throws UsageError when checkpoint is not a string, or (per call) when a path is longer than
 *   MAX_PROOF_HASHES or holds a value that is not a 32-byte hash.
 */
export function batchTlogProofEncoder(
  paths: (index: LogIndex) => readonly Uint8Array[],
  checkpoint: string,
): (index: LogIndex) => Buffer {
  if (typeof paths !== 'function') throw new UsageError('bad-argument', 'paths must be a function');
  if (typeof checkpoint !== 'string') throw new UsageError('bad-argument', 'checkpoint must be a string');
  const encoded = new Map<Uint8Array, Buffer>();
  const tail = Buffer.from(`\n\n${checkpoint}`, 'utf8');
  return (index) => {
    const path = paths(index);
    if (path.length > MAX_PROOF_HASHES) {
      throw new UsageError('bad-argument', `a proof must be at most ${MAX_PROOF_HASHES} hashes`);
    }
    const digits = String(index);
    const out = Buffer.allocUnsafe(
      PROOF_HEAD.length + digits.length + path.length * HASH_LINE_BYTES + tail.length,
    );
    let at = PROOF_HEAD.copy(out, 0);
    at += out.write(digits, at, 'latin1');
    for (let i = path.length - 1; i >= 0; i--) {
      const h = path[i]!;
      let line = encoded.get(h);
      if (line === undefined) {
        if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES) assertBytes('proof hash', h, HASH_BYTES);
        line = Buffer.from(`\n${b64(h)}`, 'latin1');
        encoded.set(h, line);
      }
      at += line.copy(out, at);
    }
    tail.copy(out, at);
    return out;
  };
}

/**
 * Strictly parse a tlog-proof (string, or UTF-8 bytes as received). Checks the format's rules,
 * the embedded checkpoint note's syntax (not its signature), index < the checkpoint's size and
 * the proof's length for (index, size); and that formatting the result gives back the input.
 * @throws CodecError 'tlog-proof-malformed' (or the note/checkpoint parser's reason) on any
 *   deviation.
 */
export function parseTlogProof(input: string | Uint8Array): TlogProof {
  const fail = (what: string): never => {
    throw new CodecError('tlog-proof-malformed', `tlog-proof: ${what}`);
  };
  let text: string;
  if (input instanceof Uint8Array) {
    if (input.length > MAX_TLOG_PROOF_BYTES) fail(`longer than ${MAX_TLOG_PROOF_BYTES} bytes`);
    try {
      text = strictUtf8.decode(input);
    } catch {
      return fail('not valid UTF-8');
    }
  } else if (typeof input === 'string') {
    // UTF-16 length <= UTF-8 length: the first test refuses huge strings before measuring them.
    if (input.length > MAX_TLOG_PROOF_BYTES || Buffer.byteLength(input) > MAX_TLOG_PROOF_BYTES) {
      fail(`longer than ${MAX_TLOG_PROOF_BYTES} bytes`);
    }
    if (/\p{Surrogate}/u.test(input)) fail('not valid UTF-8 (a lone surrogate)');
    text = input;
  } else {
    throw new UsageError('bad-argument', 'proof must be a string or a Uint8Array');
  }
  const blank = text.indexOf('\n\n');
  if (blank < 0) return fail('no empty line before the checkpoint');
  const head = text.slice(0, blank).split('\n');
  const checkpoint = text.slice(blank + 2);
  if (head[0] !== TLOG_PROOF_HEADER) fail(`the first line must be ${TLOG_PROOF_HEADER}`);
  let at = 1;
  let extra: Uint8Array | undefined;
  if (head[at]?.startsWith(EXTRA_PREFIX)) {
    extra = decodeBase64(head[at]!.slice(EXTRA_PREFIX.length), 'tlog-proof extra', 'tlog-proof-malformed');
    if (extra.length < 1 || extra.length > MAX_TLOG_PROOF_EXTRA_BYTES) {
      fail(`extra data must be 1..${MAX_TLOG_PROOF_EXTRA_BYTES} bytes`);
    }
    at++;
  }
  const indexLine = head[at] ?? '';
  const m = INDEX_LINE.exec(indexLine);
  if (m === null) return fail('expected "index <decimal>" with no leading zeroes');
  const index = Number(m[1]);
  if (!Number.isSafeInteger(index)) fail('index exceeds 2^53 - 1');
  at++;
  const hashLines = head.slice(at);
  if (hashLines.length > MAX_PROOF_HASHES) fail(`more than ${MAX_PROOF_HASHES} proof hashes`);
  const proof = hashLines.map((line, i) => {
    if (line.length === 0) fail(`proof line ${i} is empty`);
    const h = decodeBase64(line, `tlog-proof hash ${i}`, 'tlog-proof-malformed');
    if (h.length !== HASH_BYTES) fail(`proof hash ${i} is ${h.length} bytes, not ${HASH_BYTES}`);
    return h;
  });
  const size = parseCheckpoint(checkpoint).checkpoint.size;
  if (index >= size) fail(`index ${index} is not below the checkpoint's size ${size}`);
  const expected = inclusionProofLength(index as LogIndex, size);
  if (proof.length !== expected) {
    fail(`index ${index} in a tree of size ${size} needs ${expected} proof hashes, got ${proof.length}`);
  }
  const parsed: TlogProof = {
    index: index as LogIndex,
    proof,
    checkpoint,
    ...(extra === undefined ? {} : { extra }),
  };
  if (formatTlogProof(parsed) !== text) fail('not in canonical form');
  return parsed;
}

/**
 * Checkpoints already verified under one log key, so a client checks one signature per batch and
 * not per post: the proofs of one batch embed the same note, byte for byte. Bounded (oldest out).
 */
export class VerifiedCheckpointCache {
  readonly #max: number;
  readonly #byNote = new Map<string, Checkpoint>();

  constructor(max = 64) {
    if (!Number.isSafeInteger(max) || max < 1)
      throw new UsageError('bad-argument', 'max must be a positive integer');
    this.#max = max;
  }

  /**
   * The checkpoint of `note`, verified under (origin, publicKey) once.
   * @throws as verifyCheckpoint (CodecError, VerifyError 'note-not-signed' / 'note-bad-signature'
   *   / 'checkpoint-wrong-origin').
   */
  verify(note: string, origin: string, publicKey: Uint8Array): Checkpoint {
    const key = `${origin}\n${Buffer.from(publicKey).toString('hex')}\n${note}`;
    const hit = this.#byNote.get(key);
    if (hit !== undefined) return hit;
    const checkpoint = verifyCheckpoint(note, origin, publicKey, { origin });
    if (this.#byNote.size >= this.#max) {
      const oldest = this.#byNote.keys().next().value;
      if (oldest !== undefined) this.#byNote.delete(oldest);
    }
    this.#byNote.set(key, checkpoint);
    return checkpoint;
  }
}

/**
 * Verify a proof receipt for the entry whose RFC 9162 leaf hash is `leafHash`: the checkpoint is
 * the relay's (signed by its log key, key name = origin) and the proof places the leaf at
 * p.index in that checkpoint's tree.
 * @returns the verified checkpoint.
 * @throws VerifyError 'tlog-proof-not-included' when the well-formed proof does not lead to the
 *   checkpoint's root for this leaf; the checkpoint's errors as {@link VerifiedCheckpointCache.verify}.
 * @throws CodecError when the proof is malformed; UsageError on wrong argument types.
 */
export function verifyTlogProof(
  p: TlogProof,
  leafHash: Uint8Array,
  origin: string,
  publicKey: Uint8Array,
  cache: VerifiedCheckpointCache = new VerifiedCheckpointCache(1),
): Checkpoint {
  assertBytes('leafHash', leafHash, HASH_BYTES);
  const checkpoint = cache.verify(p.checkpoint, origin, publicKey);
  if (!verifyInclusion(leafHash, p.index, checkpoint.size as TreeSize, p.proof, checkpoint.rootHash)) {
    throw new VerifyError(
      'tlog-proof-not-included',
      `the proof does not place this entry at index ${p.index} of the checkpoint of size ${checkpoint.size}`,
    );
  }
  return checkpoint;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
