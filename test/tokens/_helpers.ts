/** Shared helpers for the token tests: hex, typed-error assertions, a fake clock, vector loading. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { VoprfRng } from '../../src/crypto/voprf.ts';
import { CwtchError, type ErrorCode } from '../../src/errors.ts';

export const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Assert that fn throws a CwtchError with this code (and reason, when given). */
export function throwsCode(fn: () => unknown, code: ErrorCode, reason?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CwtchError, `expected a CwtchError, got ${String(e)}`);
    assert.equal(e.code, code, `code of ${e.reason}: ${e.message}`);
    if (reason !== undefined) assert.equal(e.reason, reason, e.message);
    return true;
  });
}

/** Async counterpart of throwsCode. */
export async function rejectsCode(p: Promise<unknown>, code: ErrorCode, reason?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CwtchError, `expected a CwtchError, got ${String(e)}`);
    assert.equal(e.code, code, `code of ${e.reason}: ${e.message}`);
    if (reason !== undefined) assert.equal(e.reason, reason, e.message);
    return true;
  });
}

/** A clock the test moves by hand: no test depends on wall-clock time. */
export function fakeClock(startMs = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/**
 * An rng that makes noble draw exactly the given scalars, in order. noble maps 48 random bytes
 * r to (r mod (L - 1)) + 1 (little-endian), so feeding s - 1 yields s.
 */
export function scalarRng(scalars: readonly Uint8Array[]): VoprfRng {
  const queue = [...scalars];
  return (length: number) => {
    const s = queue.shift();
    if (s === undefined) throw new Error('scalarRng exhausted');
    let n = 0n;
    for (let i = s.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(s[i]!);
    n -= 1n;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      out[i] = Number(n & 0xffn);
      n >>= 8n;
    }
    return out;
  };
}

/** Read a JSON file under test/vectors/tokens/. Its shape is checked by the caller's accessors. */
export function readVectorFile(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../vectors/tokens/${name}`, import.meta.url), 'utf8'));
}

/** Typed accessors for untrusted JSON: throw on a missing or mistyped field. */
export function field(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null || !(key in obj)) throw new Error(`missing field ${key}`);
  return (obj as Record<string, unknown>)[key];
}

export function str(obj: unknown, key: string): string {
  const v = field(obj, key);
  if (typeof v !== 'string') throw new Error(`field ${key} must be a string`);
  return v;
}

export function hexList(obj: unknown, key: string): Uint8Array[] {
  const v = field(obj, key);
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw new Error(`field ${key} must be a list of hex strings`);
  }
  return v.map(fromHex);
}

export function list(obj: unknown, key: string): unknown[] {
  const v = field(obj, key);
  if (!Array.isArray(v)) throw new Error(`field ${key} must be a list`);
  return v;
}
