/**
 * Relay protocol frames (docs/PROTOCOL.md §Relay protocol). One WebSocket binary message carries
 * one frame: cbor [type, request id, body map]. Client frames are small and capped at
 * MAX_CLIENT_FRAME_BYTES (checked by the WebSocket layer at the frame header, before buffering);
 * relay frames at MAX_RELAY_FRAME_BYTES. Decoding is strict: unknown types, unknown fields,
 * missing fields and non-canonical CBOR are CodecErrors.
 */
import { CodecError, type ErrorCode, UsageError } from '../errors.ts';
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from './cbor.ts';
import { expectArray, expectBytes, expectUint, MapReader } from './schema.ts';

export const PROTOCOL_VERSION = 1;
/**
 * The version whose `receipt` frame carries a C2SP tlog-proof (docs/PROTOCOL.md §8, "Receipts")
 * instead of a v1 receipt; nothing else differs.
 */
export const PROOF_RECEIPT_VERSION = 2;
/** Longest `receipt` frame payload: a v1 receipt is ≤ 512 bytes, a tlog-proof ≤ 12 KiB. */
export const MAX_RECEIPT_BYTES = 12 * 1024;
/**
 * Every version-1 envelope is exactly this long (docs/PROTOCOL.md §6). Defined here, at the wire
 * level, because the relay stores envelopes by size without knowing what is inside them.
 */
export const ENVELOPE_BYTES = 2048;
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;
export const MAX_RELAY_FRAME_BYTES = 2 * 1024 * 1024;
/** Most entries one sync page or live push carries. */
export const MAX_PAGE_ENTRIES = 512;
export const MAX_PROOF_HASHES = 64;
export const MAX_TOKEN_BATCH = 64;
const MAX_NOTE_BYTES = 4096;
const MAX_BLOB_BYTES = 4096;
const MAX_TEXT_BYTES = 1024;

export const FrameType = {
  hello: 1,
  post: 2,
  sync: 3,
  subscribe: 4,
  unsubscribe: 5,
  prove: 6,
  consistency: 7,
  tokenChallenge: 8,
  tokenIssue: 9,
  welcome: 64,
  receipt: 65,
  entries: 66,
  proof: 67,
  consistencyProof: 68,
  challenge: 69,
  tokens: 70,
  ok: 71,
  error: 127,
} as const;

/** An entry as served: the envelope (null when retention pruned it) and when it was accepted. */
export interface WireEntry {
  readonly envelope: Uint8Array | null;
  readonly receivedMs: number;
}

export type ClientFrame =
  | { readonly type: 'hello'; readonly id: number; readonly versions: readonly number[] }
  | {
      readonly type: 'post';
      readonly id: number;
      readonly envelope: Uint8Array;
      readonly token: Uint8Array | null;
    }
  | {
      readonly type: 'sync';
      readonly id: number;
      readonly from: number;
      readonly limit: number;
      readonly verifiedSize: number;
    }
  | { readonly type: 'subscribe'; readonly id: number; readonly from: number; readonly verifiedSize: number }
  | { readonly type: 'unsubscribe'; readonly id: number }
  | { readonly type: 'prove'; readonly id: number; readonly index: number; readonly size: number }
  | { readonly type: 'consistency'; readonly id: number; readonly from: number; readonly to: number }
  | { readonly type: 'tokenChallenge'; readonly id: number }
  | {
      readonly type: 'tokenIssue';
      readonly id: number;
      readonly challenge: Uint8Array;
      readonly solution: Uint8Array;
      readonly blinded: readonly Uint8Array[];
    };

export interface TokenPolicy {
  readonly required: boolean;
  /** Leading zero bits a proof of work for one token batch needs. */
  readonly powDifficulty: number;
  readonly maxBatch: number;
}

export type RelayFrame =
  | {
      readonly type: 'welcome';
      readonly id: number;
      readonly version: number;
      readonly keyBundle: Uint8Array;
      readonly treeSize: number;
      readonly tokens: TokenPolicy;
    }
  | {
      readonly type: 'receipt';
      readonly id: number;
      readonly receipt: Uint8Array;
      readonly duplicate: boolean;
    }
  | {
      readonly type: 'entries';
      readonly id: number;
      /** Index of entries[0]. */
      readonly first: number;
      readonly entries: readonly WireEntry[];
      /** Signed note of a checkpoint whose size ≥ first + entries.length. */
      readonly checkpoint: string;
      /** Size the consistency proof starts from (the client's verified size, or 0). */
      readonly proofFrom: number;
      readonly consistency: readonly Uint8Array[];
      /** True for a push on a subscription, false for a sync page. */
      readonly live: boolean;
    }
  | {
      readonly type: 'proof';
      readonly id: number;
      readonly index: number;
      readonly size: number;
      readonly leafHash: Uint8Array;
      readonly proof: readonly Uint8Array[];
    }
  | {
      readonly type: 'consistencyProof';
      readonly id: number;
      readonly from: number;
      readonly to: number;
      readonly proof: readonly Uint8Array[];
    }
  | { readonly type: 'challenge'; readonly id: number; readonly challenge: Uint8Array }
  | {
      readonly type: 'tokens';
      readonly id: number;
      readonly evaluated: readonly Uint8Array[];
      readonly proof: Uint8Array;
    }
  | { readonly type: 'ok'; readonly id: number }
  | {
      readonly type: 'error';
      readonly id: number;
      readonly code: ErrorCode;
      readonly reason: string;
      readonly message: string;
      readonly retryAfterMs: number | null;
    };

export type Frame = ClientFrame | RelayFrame;

const ERROR_CODES: readonly ErrorCode[] = [
  'codec',
  'verify',
  'inconsistency',
  'usage',
  'pushback',
  'internal',
];

function m(entries: [number, CborValue][]): CborMap {
  return new Map(entries);
}

function bodyOf(f: Frame): CborMap {
  switch (f.type) {
    case 'hello':
      return m([[1, [...f.versions]]]);
    case 'post':
      return m(
        f.token === null
          ? [[1, f.envelope]]
          : [
              [1, f.envelope],
              [2, f.token],
            ],
      );
    case 'sync':
      return m([
        [1, f.from],
        [2, f.limit],
        [3, f.verifiedSize],
      ]);
    case 'subscribe':
      return m([
        [1, f.from],
        [2, f.verifiedSize],
      ]);
    case 'unsubscribe':
    case 'tokenChallenge':
    case 'ok':
      return m([]);
    case 'prove':
      return m([
        [1, f.index],
        [2, f.size],
      ]);
    case 'consistency':
      return m([
        [1, f.from],
        [2, f.to],
      ]);
    case 'tokenIssue':
      return m([
        [1, f.challenge],
        [2, f.solution],
        [3, [...f.blinded]],
      ]);
    case 'welcome':
      return m([
        [1, f.version],
        [2, f.keyBundle],
        [3, f.treeSize],
        [
          4,
          m([
            [1, f.tokens.required],
            [2, f.tokens.powDifficulty],
            [3, f.tokens.maxBatch],
          ]),
        ],
      ]);
    case 'receipt':
      return m([
        [1, f.receipt],
        [2, f.duplicate],
      ]);
    case 'entries':
      return m([
        [1, f.first],
        [2, f.entries.map((e) => [e.envelope, e.receivedMs])],
        [3, f.checkpoint],
        [4, f.proofFrom],
        [5, [...f.consistency]],
        [6, f.live],
      ]);
    case 'proof':
      return m([
        [1, f.index],
        [2, f.size],
        [3, f.leafHash],
        [4, [...f.proof]],
      ]);
    case 'consistencyProof':
      return m([
        [1, f.from],
        [2, f.to],
        [3, [...f.proof]],
      ]);
    case 'challenge':
      return m([[1, f.challenge]]);
    case 'tokens':
      return m([
        [1, [...f.evaluated]],
        [2, f.proof],
      ]);
    case 'error': {
      const e: [number, CborValue][] = [
        [1, f.code],
        [2, f.reason],
        [3, f.message],
      ];
      if (f.retryAfterMs !== null) e.push([4, f.retryAfterMs]);
      return m(e);
    }
  }
}

export function encodeFrame(f: Frame): Uint8Array {
  if (f.type === 'post' && f.token === null && f.envelope instanceof Uint8Array && isUint32(f.id))
    return encodePostFrame(f.id, f.envelope);
  return encodeCbor([FrameType[f.type], f.id, bodyOf(f)]);
}

function isUint32(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= 0xffffffff;
}

/**
 * A post without a token, the frame a client sends most (every message; the relay's ingest
 * bench sends nothing else): the same bytes as the generic encoder (test/wire/frames.test.ts),
 * written into one buffer of the exact size, without the generic encoder's zero-filled buffer,
 * size walk and body map per post.
 */
function encodePostFrame(id: number, envelope: Uint8Array): Buffer {
  // [type, id, {1: envelope}]: array(3), uint, uint, map(1), 1, bytes.
  const { out, at } = frameWithBytes(FrameType.post, id, 1, envelope.length, 0);
  out.set(envelope, at);
  return out;
}

/**
 * A frame [type, id, {1: bytes, …}] of its exact size, written up to the byte string's content:
 * the map has `entries` entries, the first key 1 a byte string of `length`, and `after` bytes
 * follow it (the other entries). Returns the buffer and where the content goes.
 */
function frameWithBytes(
  type: number,
  id: number,
  entries: number,
  length: number,
  after: number,
): { out: Buffer; at: number } {
  const out = Buffer.allocUnsafe(
    1 + headBytes(type) + headBytes(id) + 1 + 1 + headBytes(length) + length + after,
  );
  let at = writeHead(out, 0, 4, 3);
  at = writeHead(out, at, 0, type);
  at = writeHead(out, at, 0, id);
  at = writeHead(out, at, 5, entries);
  at = writeHead(out, at, 0, 1);
  return { out, at: writeHead(out, at, 2, length) };
}

/** Length of the shortest CBOR head for an argument `value` (< 2^32). */
function headBytes(value: number): number {
  return value < 24 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : 5;
}

function writeHead(out: Buffer, at: number, major: number, value: number): number {
  const mt = major << 5;
  if (value < 24) {
    out[at] = mt | value;
    return at + 1;
  }
  if (value < 0x100) {
    out[at] = mt | 24;
    out[at + 1] = value;
    return at + 2;
  }
  if (value < 0x10000) {
    out[at] = mt | 25;
    out.writeUInt16BE(value, at + 1);
    return at + 3;
  }
  out[at] = mt | 26;
  out.writeUInt32BE(value, at + 1);
  return at + 5;
}

/**
 * The receipt frame, byte for byte what encodeFrame({ type: 'receipt', id, receipt, duplicate })
 * gives, written straight into one buffer of its exact size: the relay answers every post with
 * one, and a version-2 receipt arrives as its tlog-proof text, which is written into the frame as
 * UTF-8 without a Buffer of its own first. ~8 µs per post through the generic encoder (a Map, the
 * size pass, the text's own Buffer) on the bench VM.
 * @throws UsageError when id is not an integer in 0..2^32-1 or the receipt exceeds MAX_RECEIPT_BYTES.
 */
export function encodeReceiptFrame(id: number, receipt: Uint8Array | string, duplicate: boolean): Buffer {
  if (!isUint32(id)) throw new UsageError('bad-argument', 'id must be an integer in 0..2^32-1');
  const length = typeof receipt === 'string' ? Buffer.byteLength(receipt, 'utf8') : receipt.length;
  if (length > MAX_RECEIPT_BYTES)
    throw new UsageError('bad-argument', `a receipt is at most ${MAX_RECEIPT_BYTES} bytes`);
  // [type, id, {1: receipt, 2: duplicate}]: array(3), uint, uint, map(2), 1, bytes, 2, bool.
  let { out, at } = frameWithBytes(FrameType.receipt, id, 2, length, 2);
  if (typeof receipt === 'string') at += out.write(receipt, at, 'utf8');
  else {
    out.set(receipt, at);
    at += length;
  }
  at = writeHead(out, at, 0, 2);
  out[at] = duplicate ? 0xf5 : 0xf4;
  return out;
}

const TYPE_NAMES = new Map<number, keyof typeof FrameType>(
  Object.entries(FrameType).map(([k, v]) => [v, k as keyof typeof FrameType]),
);

function hashes(r: MapReader, key: number, name: string): Uint8Array[] {
  return r.array(key, name, MAX_PROOF_HASHES).map((h) => expectBytes(h, `${r.what}.${name}[]`, 32));
}

/** Limits for decoding frames: envelopes are the largest strings, pages the longest arrays. */
const FRAME_LIMITS = { maxDepth: 6, maxItems: MAX_PAGE_ENTRIES, maxStringBytes: MAX_RELAY_FRAME_BYTES };
const FRAME_VIEW_LIMITS = { ...FRAME_LIMITS, views: true };

/**
 * Decode one frame from untrusted bytes.
 *
 * `views`: byte fields (a page's envelopes) are views into `bytes`, not copies, for a caller that
 * owns `bytes` and never changes them (a received WebSocket message): a page of up to 512 envelopes
 * of 2 KiB is then not copied a second time (bench/README.md, "Client sync").
 * @throws CodecError for anything but one canonical, known, complete frame.
 */
export function decodeFrame(bytes: Uint8Array, views = false): Frame {
  const outer = expectArray(decodeCbor(bytes, views ? FRAME_VIEW_LIMITS : FRAME_LIMITS), 'frame', 3);
  if (outer.length !== 3) throw new CodecError('frame-shape', 'frame: expected [type, id, body]');
  const typeNum = expectUint(outer[0]!, 'frame.type', 255);
  const id = expectUint(outer[1]!, 'frame.id', 0xffffffff);
  const type = TYPE_NAMES.get(typeNum);
  if (type === undefined) throw new CodecError('unknown-frame-type', `frame type ${typeNum} is not known`);
  const r = MapReader.of(outer[2]!, type);
  const frame = decodeBody(type, id, r);
  r.done();
  return frame;
}

function decodeBody(type: keyof typeof FrameType, id: number, r: MapReader): Frame {
  switch (type) {
    case 'hello':
      return {
        type,
        id,
        versions: r.array(1, 'versions', 16).map((v) => expectUint(v, 'hello.versions[]', 0xffff)),
      };
    case 'post':
      return {
        type,
        id,
        envelope: r.bytes(1, 'envelope', undefined, MAX_BLOB_BYTES),
        token: r.optional(2, (v) => expectBytes(v, 'post.token', undefined, 256)) ?? null,
      };
    case 'sync':
      return {
        type,
        id,
        from: r.uint(1, 'from'),
        limit: r.uint(2, 'limit', MAX_PAGE_ENTRIES),
        verifiedSize: r.uint(3, 'verifiedSize'),
      };
    case 'subscribe':
      return { type, id, from: r.uint(1, 'from'), verifiedSize: r.uint(2, 'verifiedSize') };
    case 'unsubscribe':
    case 'tokenChallenge':
    case 'ok':
      return { type, id };
    case 'prove':
      return { type, id, index: r.uint(1, 'index'), size: r.uint(2, 'size') };
    case 'consistency':
      return { type, id, from: r.uint(1, 'from'), to: r.uint(2, 'to') };
    case 'tokenIssue':
      return {
        type,
        id,
        challenge: r.bytes(1, 'challenge', undefined, 256),
        solution: r.bytes(2, 'solution', undefined, 64),
        blinded: r
          .array(3, 'blinded', MAX_TOKEN_BATCH)
          .map((b) => expectBytes(b, 'tokenIssue.blinded[]', undefined, 64)),
      };
    case 'welcome': {
      const t = MapReader.of(r.raw(4, 'tokens'), 'welcome.tokens');
      const tokens = {
        required: t.bool(1, 'required'),
        powDifficulty: t.uint(2, 'powDifficulty', 64),
        maxBatch: t.uint(3, 'maxBatch', MAX_TOKEN_BATCH),
      };
      t.done();
      return {
        type,
        id,
        version: r.uint(1, 'version', 0xffff),
        keyBundle: r.bytes(2, 'keyBundle', undefined, MAX_BLOB_BYTES),
        treeSize: r.uint(3, 'treeSize'),
        tokens,
      };
    }
    case 'receipt':
      return {
        type,
        id,
        receipt: r.bytes(1, 'receipt', undefined, MAX_RECEIPT_BYTES),
        duplicate: r.bool(2, 'duplicate'),
      };
    case 'entries': {
      const entries = r.array(2, 'entries', MAX_PAGE_ENTRIES).map((e) => {
        const pair = expectArray(e, 'entries.entries[]', 2);
        if (pair.length !== 2)
          throw new CodecError('frame-shape', 'entries: each entry is [envelope, receivedMs]');
        const env = pair[0]!;
        return {
          envelope: env === null ? null : expectBytes(env, 'entries.envelope', undefined, MAX_BLOB_BYTES),
          receivedMs: expectUint(pair[1]!, 'entries.receivedMs'),
        };
      });
      return {
        type,
        id,
        first: r.uint(1, 'first'),
        entries,
        checkpoint: r.text(3, 'checkpoint', MAX_NOTE_BYTES),
        proofFrom: r.uint(4, 'proofFrom'),
        consistency: hashes(r, 5, 'consistency'),
        live: r.bool(6, 'live'),
      };
    }
    case 'proof':
      return {
        type,
        id,
        index: r.uint(1, 'index'),
        size: r.uint(2, 'size'),
        leafHash: r.bytes(3, 'leafHash', 32),
        proof: hashes(r, 4, 'proof'),
      };
    case 'consistencyProof':
      return { type, id, from: r.uint(1, 'from'), to: r.uint(2, 'to'), proof: hashes(r, 3, 'proof') };
    case 'challenge':
      return { type, id, challenge: r.bytes(1, 'challenge', undefined, 256) };
    case 'tokens':
      return {
        type,
        id,
        evaluated: r
          .array(1, 'evaluated', MAX_TOKEN_BATCH)
          .map((b) => expectBytes(b, 'tokens.evaluated[]', undefined, 64)),
        proof: r.bytes(2, 'proof', undefined, 256),
      };
    case 'error': {
      const code = r.text(1, 'code', 32);
      if (!ERROR_CODES.includes(code as ErrorCode))
        throw new CodecError('bad-error-code', `unknown error code ${code}`);
      return {
        type,
        id,
        code: code as ErrorCode,
        reason: r.text(2, 'reason', 64),
        message: r.text(3, 'message', MAX_TEXT_BYTES),
        retryAfterMs: r.optional(4, (v) => expectUint(v, 'error.retryAfterMs')) ?? null,
      };
    }
  }
}

export function isClientFrame(f: Frame): f is ClientFrame {
  return FrameType[f.type] < 64;
}
