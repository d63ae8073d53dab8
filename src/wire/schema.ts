/**
 * Typed reading of decoded CBOR. Decoders of untrusted structures go bytes → decodeCbor →
 * `MapReader` → a typed object, naming the structure and field in every error, and insisting
 * that no unknown key is present (an extension is a new version, never a silently ignored key).
 */
import { CodecError } from '../errors.ts';
import type { CborKey, CborMap, CborValue } from './cbor.ts';

/**
 * What an error names: `what`, or `what.field`. Built only for an error: MapReader passes the
 * structure and the field apart, so a field that is what it should be costs no string (every
 * message, frame and record is read through one).
 */
function label(what: string, field: string | undefined): string {
  return field === undefined ? what : `${what}.${field}`;
}

export function expectMap(v: CborValue, what: string): CborMap {
  if (!(v instanceof Map)) throw new CodecError('schema-type', `${what}: expected a map`);
  return v;
}

export function expectArray(v: CborValue, what: string, maxItems: number, field?: string): CborValue[] {
  if (!Array.isArray(v)) throw new CodecError('schema-type', `${label(what, field)}: expected an array`);
  if (v.length > maxItems)
    throw new CodecError('schema-too-many', `${label(what, field)}: more than ${maxItems} items`);
  return v;
}

export function expectBytes(
  v: CborValue,
  what: string,
  length?: number,
  maxLength?: number,
  field?: string,
): Uint8Array {
  if (!(v instanceof Uint8Array))
    throw new CodecError('schema-type', `${label(what, field)}: expected bytes`);
  if (length !== undefined && v.length !== length) {
    throw new CodecError('schema-length', `${label(what, field)}: expected ${length} bytes, got ${v.length}`);
  }
  if (maxLength !== undefined && v.length > maxLength) {
    throw new CodecError('schema-length', `${label(what, field)}: longer than ${maxLength} bytes`);
  }
  return v;
}

export function expectUint(
  v: CborValue,
  what: string,
  max = Number.MAX_SAFE_INTEGER,
  field?: string,
): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new CodecError('schema-type', `${label(what, field)}: expected an unsigned integer`);
  }
  if (v > max) throw new CodecError('schema-range', `${label(what, field)}: ${v} exceeds ${max}`);
  return v;
}

export function expectText(v: CborValue, what: string, maxBytes: number, field?: string): string {
  if (typeof v !== 'string') throw new CodecError('schema-type', `${label(what, field)}: expected text`);
  // A string of n UTF-16 units takes at most 3n UTF-8 bytes: a short one needs no count.
  if (3 * v.length > maxBytes && Buffer.byteLength(v, 'utf8') > maxBytes)
    throw new CodecError('schema-length', `${label(what, field)}: longer than ${maxBytes} bytes`);
  return v;
}

export function expectBool(v: CborValue, what: string, field?: string): boolean {
  if (typeof v !== 'boolean')
    throw new CodecError('schema-type', `${label(what, field)}: expected a boolean`);
  return v;
}

/**
 * Reads the fields of one map; `done()` rejects keys nobody asked for. Every message, frame and
 * record goes through one: a field that is what it should be costs no error text (the expect*
 * functions get the structure and the field apart) and no set entry.
 */
export class MapReader {
  /** The keys read, in order (a dozen at most: a linear search beats a Set's allocation). */
  private readonly seen: CborKey[] = [];
  constructor(
    private readonly map: CborMap,
    readonly what: string,
  ) {}

  static of(v: CborValue, what: string): MapReader {
    return new MapReader(expectMap(v, what), what);
  }

  has(key: CborKey): boolean {
    return this.map.has(key);
  }

  raw(key: CborKey, name: string): CborValue {
    if (!this.map.has(key)) throw new CodecError('schema-missing', `${this.what}: missing field ${name}`);
    this.seen.push(key);
    return this.map.get(key)!;
  }

  optional<T>(key: CborKey, read: (v: CborValue) => T): T | undefined {
    if (!this.map.has(key)) return undefined;
    this.seen.push(key);
    return read(this.map.get(key)!);
  }

  bytes(key: CborKey, name: string, length?: number, maxLength?: number): Uint8Array {
    return expectBytes(this.raw(key, name), this.what, length, maxLength, name);
  }

  uint(key: CborKey, name: string, max?: number): number {
    return expectUint(this.raw(key, name), this.what, max, name);
  }

  text(key: CborKey, name: string, maxBytes: number): string {
    return expectText(this.raw(key, name), this.what, maxBytes, name);
  }

  bool(key: CborKey, name: string): boolean {
    return expectBool(this.raw(key, name), this.what, name);
  }

  array(key: CborKey, name: string, maxItems: number): CborValue[] {
    return expectArray(this.raw(key, name), this.what, maxItems, name);
  }

  done(): void {
    const seen = this.seen;
    for (const k of this.map.keys()) {
      if (!seen.includes(k))
        throw new CodecError('schema-unknown-field', `${this.what}: unknown field ${String(k)}`);
    }
  }
}
