/**
 * Typed reading of decoded CBOR. Decoders of untrusted structures go bytes → decodeCbor →
 * `MapReader` → a typed object, naming the structure and field in every error, and insisting
 * that no unknown key is present (an extension is a new version, never a silently ignored key).
 */
import { CodecError } from '../errors.ts';
import type { CborKey, CborMap, CborValue } from './cbor.ts';

export function expectMap(v: CborValue, what: string): CborMap {
  if (!(v instanceof Map)) throw new CodecError('schema-type', `${what}: expected a map`);
  return v;
}

export function expectArray(v: CborValue, what: string, maxItems: number): CborValue[] {
  if (!Array.isArray(v)) throw new CodecError('schema-type', `${what}: expected an array`);
  if (v.length > maxItems) throw new CodecError('schema-too-many', `${what}: more than ${maxItems} items`);
  return v;
}

export function expectBytes(v: CborValue, what: string, length?: number, maxLength?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new CodecError('schema-type', `${what}: expected bytes`);
  if (length !== undefined && v.length !== length) {
    throw new CodecError('schema-length', `${what}: expected ${length} bytes, got ${v.length}`);
  }
  if (maxLength !== undefined && v.length > maxLength) {
    throw new CodecError('schema-length', `${what}: longer than ${maxLength} bytes`);
  }
  return v;
}

export function expectUint(v: CborValue, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new CodecError('schema-type', `${what}: expected an unsigned integer`);
  }
  if (v > max) throw new CodecError('schema-range', `${what}: ${v} exceeds ${max}`);
  return v;
}

export function expectText(v: CborValue, what: string, maxBytes: number): string {
  if (typeof v !== 'string') throw new CodecError('schema-type', `${what}: expected text`);
  if (Buffer.byteLength(v, 'utf8') > maxBytes)
    throw new CodecError('schema-length', `${what}: longer than ${maxBytes} bytes`);
  return v;
}

export function expectBool(v: CborValue, what: string): boolean {
  if (typeof v !== 'boolean') throw new CodecError('schema-type', `${what}: expected a boolean`);
  return v;
}

/**
 * Reads the fields of one map; `done()` rejects keys nobody asked for. Every message, frame and
 * record goes through one: a field that is what it should be costs no error text and no set entry
 * (the checks are made inline; the expect* functions only throw, with the same messages).
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
    const v = this.raw(key, name);
    if (
      v instanceof Uint8Array &&
      (length === undefined || v.length === length) &&
      (maxLength === undefined || v.length <= maxLength)
    )
      return v;
    return expectBytes(v, `${this.what}.${name}`, length, maxLength);
  }

  uint(key: CborKey, name: string, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key, name);
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max) return v;
    return expectUint(v, `${this.what}.${name}`, max);
  }

  text(key: CborKey, name: string, maxBytes: number): string {
    const v = this.raw(key, name);
    // A string of n UTF-16 units takes at most 3n UTF-8 bytes: short ones need no count.
    if (typeof v === 'string' && (3 * v.length <= maxBytes || Buffer.byteLength(v, 'utf8') <= maxBytes))
      return v;
    return expectText(v, `${this.what}.${name}`, maxBytes);
  }

  bool(key: CborKey, name: string): boolean {
    const v = this.raw(key, name);
    if (typeof v === 'boolean') return v;
    return expectBool(v, `${this.what}.${name}`);
  }

  array(key: CborKey, name: string, maxItems: number): CborValue[] {
    const v = this.raw(key, name);
    if (Array.isArray(v) && v.length <= maxItems) return v;
    return expectArray(v, `${this.what}.${name}`, maxItems);
  }

  done(): void {
    const seen = this.seen;
    for (const k of this.map.keys()) {
      if (!seen.includes(k))
        throw new CodecError('schema-unknown-field', `${this.what}: unknown field ${String(k)}`);
    }
  }
}
