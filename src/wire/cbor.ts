/**
 * Deterministic CBOR (RFC 8949 §4.2.1, "core deterministic encoding") over a deliberately small
 * data model: safe integers, byte strings, text strings, arrays, maps with integer or text keys,
 * booleans and null. No floats, tags, undefined or indefinite lengths: a protocol that never
 * needs them must not accept them, because every extra accepted form is a malleability.
 *
 * The decoder is for untrusted bytes: it accepts only the one canonical encoding of each value
 * (shortest heads, map keys strictly ascending in bytewise order of their encodings, fatal
 * UTF-8), rejects trailing bytes, and checks lengths and counts against caps before allocating.
 * Every failure is a CodecError; decode → encode returns the input bytes exactly.
 */
import { CodecError, UsageError } from '../errors.ts';

export type CborKey = number | string;
export type CborValue = number | Uint8Array | string | boolean | null | CborValue[] | CborMap;
export type CborMap = Map<CborKey, CborValue>;

export interface DecodeLimits {
  /** Deepest nesting of arrays/maps accepted. */
  readonly maxDepth: number;
  /** Most items in one array or entries in one map. */
  readonly maxItems: number;
  /** Longest byte or text string, in bytes. */
  readonly maxStringBytes: number;
  /**
   * Byte strings as views into the input (subarray), not copies. Only for input that nobody
   * wipes or reuses while the decoded value lives: a received frame, a fresh plaintext copy.
   */
  readonly views?: boolean;
}

export const DEFAULT_LIMITS: DecodeLimits = { maxDepth: 8, maxItems: 256, maxStringBytes: 1 << 20 };

const MT_UINT = 0;
const MT_NEGINT = 1;
const MT_BYTES = 2;
const MT_TEXT = 3;
const MT_ARRAY = 4;
const MT_MAP = 5;
const MT_SIMPLE = 7;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private buf: Uint8Array;
  private len = 0;

  /** `capacity`: the exact encoded size when known (encodedSize), so nothing is regrown or copied. */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  head(major: number, value: number): void {
    // Only the bytes this head takes: the writer is sized exactly (encodedSize), and asking for 9
    // when the last item's head takes 1 regrew a full buffer at its very end (double the size, a
    // copy, then a sliced copy: every 1 MiB sync page a relay served).
    this.ensure(headSize(value));
    const mt = major << 5;
    if (value < 24) {
      this.buf[this.len++] = mt | value;
    } else if (value < 0x100) {
      this.buf[this.len++] = mt | 24;
      this.buf[this.len++] = value;
    } else if (value < 0x10000) {
      this.buf[this.len++] = mt | 25;
      this.buf[this.len++] = value >>> 8;
      this.buf[this.len++] = value & 0xff;
    } else if (value < 0x100000000) {
      this.buf[this.len++] = mt | 26;
      this.#u32(value);
    } else {
      // A safe integer (writeValue checks): its high half is below 2^21. Written byte by byte, no
      // DataView or BigInt per head (every message's millisecond timestamp is one).
      this.buf[this.len++] = mt | 27;
      this.#u32(Math.floor(value / 0x100000000));
      this.#u32(value >>> 0);
    }
  }

  #u32(value: number): void {
    const b = this.buf;
    b[this.len++] = value >>> 24;
    b[this.len++] = (value >>> 16) & 0xff;
    b[this.len++] = (value >>> 8) & 0xff;
    b[this.len++] = value & 0xff;
  }

  /** An ASCII string's bytes (one per character), written in place: no encoder call, no copy. */
  ascii(v: string): void {
    this.ensure(v.length);
    const b = this.buf;
    for (let i = 0; i < v.length; i++) b[this.len++] = v.charCodeAt(i);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  result(): Uint8Array {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

/** Bytes of a head (major type and argument) in its shortest form. */
function headSize(value: number): number {
  if (value < 24) return 1;
  if (value < 0x100) return 2;
  if (value < 0x10000) return 3;
  if (value < 0x100000000) return 5;
  return 9;
}

/** UTF-8 length of `s` as TextEncoder writes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * The size writeValue will produce for `v`, computed first so the writer allocates once: growing
 * by doubling from 256 bytes and copying the result cost a relay ~5 times each page's size in
 * short-lived buffers (a 0.5 MiB sync page: 256 B … 1 MiB, then a 0.5 MiB copy), garbage that
 * held its memory far above the output budget under a flood of syncs (test/relay/
 * memory-budget-process.test.ts). Values writeValue refuses count 0 here: it throws on them.
 */
function encodedSize(v: CborValue, depth: number): number {
  if (depth > 64) return 0;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? headSize(v >= 0 ? v : -1 - v) : 0;
  if (v instanceof Uint8Array) return headSize(v.length) + v.length;
  if (typeof v === 'string') {
    const n = utf8Length(v);
    return headSize(n) + n;
  }
  if (typeof v === 'boolean' || v === null) return 1;
  if (Array.isArray(v)) {
    let n = headSize(v.length);
    for (const item of v) n += encodedSize(item, depth + 1);
    return n;
  }
  if (v instanceof Map) {
    let n = headSize(v.size);
    for (const [k, val] of v) n += encodedSize(k, depth + 1) + encodedSize(val, depth + 1);
    return n;
  }
  return 0;
}

/** Encoded map keys 0..23 (one byte each): every map of the protocol is keyed by small integers. */
const SMALL_KEYS: readonly Uint8Array[] = Array.from({ length: 24 }, (_, k) => Uint8Array.of(k));

/**
 * Encoded text keys, kept once encoded: the profile's records are maps keyed by text (docs/
 * profile.md), a few dozen distinct keys written over and over — a group's summary and frontier
 * once per group per sync page — and each key cost a 256-byte writer and a TextEncoder call.
 * Bounded: keys longer than TEXT_KEY_CACHED chars, or past TEXT_KEYS_KEPT distinct ones (a map
 * of someone else's keys re-encoded), are encoded each time as before. The bytes are only copied
 * out (Writer.bytes), never written to.
 */
const textKeys = new Map<string, Uint8Array>();
const TEXT_KEYS_KEPT = 1024;
const TEXT_KEY_CACHED = 64;

function encodeKey(key: CborKey): Uint8Array {
  if (typeof key === 'number' && key >= 0 && key < 24 && Number.isInteger(key)) return SMALL_KEYS[key]!;
  if (typeof key === 'string') {
    const kept = textKeys.get(key);
    if (kept !== undefined) return kept;
  }
  const w = new Writer(typeof key === 'string' ? 9 + 3 * key.length : 9);
  writeValue(w, key, 0);
  const encoded = w.result();
  if (typeof key === 'string' && key.length <= TEXT_KEY_CACHED && textKeys.size < TEXT_KEYS_KEPT)
    textKeys.set(key, encoded);
  return encoded;
}

/** compareBytes of buf[aStart, aEnd) and buf[bStart, bEnd). */
function compareRanges(buf: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = buf[aStart + i]! - buf[bStart + i]!;
    if (d !== 0) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Whether the map's encoded keys ascend strictly as it iterates (the deterministic order), every
 * key an integer or a string. False sends the map to the sorting path, which also refuses keys of
 * other types; equal keys cannot occur (a Map's keys are distinct, and so are their encodings).
 */
function inKeyOrder(v: Map<CborKey, CborValue>): boolean {
  let prev: Uint8Array | null = null;
  for (const k of v.keys()) {
    if (typeof k !== 'string' && !(typeof k === 'number' && Number.isSafeInteger(k))) return false;
    const key = encodeKey(k);
    if (prev !== null && compareBytes(prev, key) >= 0) return false;
    prev = key;
  }
  return true;
}

function writeValue(w: Writer, v: CborValue, depth: number): void {
  if (depth > 64) throw new UsageError('cbor-too-deep', 'value nests too deeply to encode');
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new UsageError('cbor-not-integer', `cannot encode ${v}: only safe integers`);
    if (v >= 0) w.head(MT_UINT, v);
    else w.head(MT_NEGINT, -1 - v);
  } else if (v instanceof Uint8Array) {
    w.head(MT_BYTES, v.length);
    w.bytes(v);
  } else if (typeof v === 'string') {
    // utf8Length counts one byte per character only when every character is ASCII.
    if (utf8Length(v) === v.length) {
      w.head(MT_TEXT, v.length);
      w.ascii(v);
    } else {
      const b = textEncoder.encode(v);
      w.head(MT_TEXT, b.length);
      w.bytes(b);
    }
  } else if (typeof v === 'boolean') {
    w.byte(v ? 0xf5 : 0xf4);
  } else if (v === null) {
    w.byte(0xf6);
  } else if (Array.isArray(v)) {
    w.head(MT_ARRAY, v.length);
    for (const item of v) writeValue(w, item, depth + 1);
  } else if (v instanceof Map) {
    // Nearly every map is built in key order (the protocol's small integer keys, the records'
    // fields): written as it iterates, without sorting; the others are sorted first.
    if (inKeyOrder(v)) {
      w.head(MT_MAP, v.size);
      for (const [k, val] of v) {
        w.bytes(encodeKey(k));
        writeValue(w, val, depth + 1);
      }
      return;
    }
    const entries = [...v.entries()].map(([k, val]) => {
      if (typeof k !== 'string' && !(typeof k === 'number' && Number.isSafeInteger(k))) {
        throw new UsageError('cbor-bad-key', 'map keys must be integers or strings');
      }
      return { k: encodeKey(k), val };
    });
    entries.sort((a, b) => compareBytes(a.k, b.k));
    w.head(MT_MAP, entries.length);
    for (const e of entries) {
      w.bytes(e.k);
      writeValue(w, e.val, depth + 1);
    }
  } else {
    throw new UsageError('cbor-bad-value', `cannot encode a value of type ${typeof v}`);
  }
}

/** Encode in RFC 8949 §4.2.1 deterministic form. @throws UsageError for values outside the model. */
export function encodeCbor(value: CborValue): Uint8Array {
  const w = new Writer(Math.max(1, encodedSize(value, 0)));
  writeValue(w, value, 0);
  return w.result();
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly limits: DecodeLimits,
  ) {}

  fail(reason: string, message: string): never {
    throw new CodecError(reason, `cbor: ${message} at byte ${this.pos}`);
  }

  need(n: number): void {
    if (this.buf.length - this.pos < n)
      this.fail('cbor-truncated', `input ends early (need ${n} more bytes)`);
  }

  /** Four bytes, big-endian, as an unsigned number (the caller checked they are there). */
  #u32(): number {
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** Read an argument and insist it was written in its shortest form. */
  argument(info: number): number {
    if (info < 24) return info;
    if (info === 24) {
      this.need(1);
      const v = this.buf[this.pos++]!;
      if (v < 24) this.fail('cbor-non-canonical', 'integer head is longer than needed');
      return v;
    }
    if (info === 25) {
      this.need(2);
      const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
      this.pos += 2;
      if (v < 0x100) this.fail('cbor-non-canonical', 'integer head is longer than needed');
      return v;
    }
    // Four and eight bytes read as 32-bit halves, no DataView or BigInt (every message's
    // millisecond timestamp takes eight).
    if (info === 26) {
      this.need(4);
      const v = this.#u32();
      if (v < 0x10000) this.fail('cbor-non-canonical', 'integer head is longer than needed');
      return v;
    }
    if (info === 27) {
      this.need(8);
      const hi = this.#u32();
      const lo = this.#u32();
      if (hi === 0) this.fail('cbor-non-canonical', 'integer head is longer than needed');
      // 2^53 - 1 is 0x1fffff:ffffffff: any higher half above 0x1fffff is past it.
      if (hi > 0x1f_ffff) this.fail('cbor-integer-too-large', 'integer exceeds 2^53-1');
      return hi * 0x1_0000_0000 + lo;
    }
    if (info === 31) return this.fail('cbor-indefinite', 'indefinite lengths are not accepted');
    return this.fail('cbor-reserved', `reserved additional information ${info}`);
  }

  value(depth: number): CborValue {
    this.need(1);
    const initial = this.buf[this.pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case MT_UINT:
        return this.argument(info);
      case MT_NEGINT: {
        const n = this.argument(info);
        // -1 - n must stay a safe integer: n ≤ 2^53 - 2.
        if (n > Number.MAX_SAFE_INTEGER - 1) this.fail('cbor-integer-too-large', 'integer below -(2^53-1)');
        return -1 - n;
      }
      case MT_BYTES: {
        const n = this.argument(info);
        if (n > this.limits.maxStringBytes)
          this.fail('cbor-too-long', `byte string of ${n} bytes exceeds cap`);
        this.need(n);
        if (this.limits.views === true) {
          const view = this.buf.subarray(this.pos, this.pos + n);
          this.pos += n;
          return view;
        }
        // By default a fresh copy, never a view: callers wipe the input (decrypted secrets) after
        // decoding, and Buffer#slice would alias it.
        const out = new Uint8Array(n);
        out.set(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        return out;
      }
      case MT_TEXT: {
        const n = this.argument(info);
        if (n > this.limits.maxStringBytes) this.fail('cbor-too-long', `text of ${n} bytes exceeds cap`);
        this.need(n);
        const raw = this.buf.subarray(this.pos, this.pos + n);
        let s: string;
        try {
          s = textDecoder.decode(raw);
        } catch {
          return this.fail('cbor-bad-utf8', 'text string is not valid UTF-8');
        }
        this.pos += n;
        return s;
      }
      case MT_ARRAY: {
        const n = this.argument(info);
        if (depth >= this.limits.maxDepth) this.fail('cbor-too-deep', 'nesting exceeds cap');
        if (n > this.limits.maxItems) this.fail('cbor-too-many-items', `array of ${n} items exceeds cap`);
        // Each item takes at least one byte: reject impossible counts before allocating.
        this.need(n);
        const out: CborValue[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case MT_MAP: {
        const n = this.argument(info);
        if (depth >= this.limits.maxDepth) this.fail('cbor-too-deep', 'nesting exceeds cap');
        if (n > this.limits.maxItems) this.fail('cbor-too-many-items', `map of ${n} entries exceeds cap`);
        this.need(2 * n);
        const out: CborMap = new Map();
        // The previous key's encoding, compared in place (no view per key).
        let prevStart = -1;
        let prevEnd = -1;
        for (let i = 0; i < n; i++) {
          const keyStart = this.pos;
          const key = this.value(depth + 1);
          if (typeof key !== 'string' && typeof key !== 'number') {
            this.fail('cbor-bad-key', 'map keys must be integers or text');
          }
          if (prevStart >= 0 && compareRanges(this.buf, prevStart, prevEnd, keyStart, this.pos) >= 0) {
            this.fail('cbor-unsorted-map', 'map keys are duplicated or not in canonical order');
          }
          prevStart = keyStart;
          prevEnd = this.pos;
          out.set(key, this.value(depth + 1));
        }
        return out;
      }
      case MT_SIMPLE:
        if (initial === 0xf4) return false;
        if (initial === 0xf5) return true;
        if (initial === 0xf6) return null;
        return this.fail(
          'cbor-unsupported',
          `simple value or float 0x${initial.toString(16)} is not accepted`,
        );
      default:
        return this.fail('cbor-unsupported', 'tags are not accepted');
    }
  }
}

/**
 * Decode exactly one canonical CBOR value that spans all of `bytes`.
 * @throws CodecError on any non-canonical, unsupported, oversize, truncated or trailing input.
 */
export function decodeCbor(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_LIMITS): CborValue {
  if (!(bytes instanceof Uint8Array)) throw new UsageError('bad-argument', 'bytes must be a Uint8Array');
  const r = new Reader(bytes, limits);
  const v = r.value(0);
  if (r.pos !== bytes.length) r.fail('cbor-trailing-bytes', `${bytes.length - r.pos} bytes after the value`);
  return v;
}
