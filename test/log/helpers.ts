/** Shared fixtures of the log tests: vector loading, small logs, a huge sparse log, bit flips. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCwtchError } from '../../src/errors.ts';
import {
  appendLeaves,
  emptyFrontier,
  type Frontier,
  InMemoryNodeStore,
  leafHash,
  type NodeHashReader,
  nodeHash,
} from '../../src/log/index.ts';
import { refLeafData } from './rfc9162-reference.ts';

export const VECTORS = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'vectors', 'log');

export function loadVector<T>(relative: string): T {
  return JSON.parse(readFileSync(join(VECTORS, relative), 'utf8')) as T;
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');
export const b64 = (s: string): Buffer => Buffer.from(s, 'base64');

export interface TestLog {
  store: InMemoryNodeStore;
  frontier: Frontier;
  leafHashes: Buffer[];
}

/** A log of n leaves refLeafData(0..n-1), appended in batches of the given sizes (then one batch). */
export function buildLog(n: number, batches: readonly number[] = []): TestLog {
  const leafHashes = Array.from({ length: n }, (_, i) => leafHash(refLeafData(i)));
  const store = new InMemoryNodeStore();
  let frontier = emptyFrontier();
  let at = 0;
  for (const b of [...batches, n]) {
    const take = Math.min(b, n - at);
    const r = appendLeaves(frontier, leafHashes.slice(at, at + take));
    store.put(r.newNodes);
    frontier = r.frontier;
    at += take;
    if (at === n) break;
  }
  return { store, frontier, leafHashes };
}

/** s with every code unit below U+0020 replaced (note text forbids them; fuzzers produce them). */
export function withoutControls(s: string, replacement = ''): string {
  let out = '';
  for (const ch of s) out += ch.charCodeAt(0) < 0x20 ? replacement : ch;
  return out;
}

/** Flip bit `bit` (0 = least significant of byte 0) of a copy. */
export function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(bytes);
  out[Math.floor(bit / 8)]! ^= 1 << (bit % 8);
  return out;
}

/**
 * Flip bit `bit` of a safe integer (0..52) without 32-bit truncation. The result may exceed
 * MAX_SAFE_INTEGER only if bit 53 were set, which never happens here.
 */
export function flipNumberBit(n: number, bit: number): number {
  const p = 2 ** bit;
  return Math.floor(n / p) % 2 === 1 ? n - p : n + p;
}

/** Run fn; assert it returned false or threw one of the allowed CwtchError codes. */
export function assertRejected(fn: () => boolean, codes: readonly string[] = ['codec', 'usage']): void {
  let result: boolean;
  try {
    result = fn();
  } catch (e) {
    assert.ok(isCwtchError(e), `threw a non-CwtchError: ${String(e)}`);
    assert.ok(codes.includes(e.code), `threw code ${e.code}, allowed ${codes.join(', ')}`);
    return;
  }
  assert.equal(result, false);
}

/**
 * A consistent RFC 9162 tree of up to 2^53 - 1 leaves held in O(specials · depth) memory: every
 * leaf is the same filler hash except a few "special" leaves, so perfect subtrees without a
 * special leaf share one hash per level and only subtrees over special leaves are computed.
 * It exercises sizes far beyond 2^32, where 32-bit bit operators would go wrong.
 */
export class SparseTree implements NodeHashReader {
  readonly #filler: Buffer[] = [];
  readonly #specials: Map<number, Buffer>;
  readonly #memo = new Map<string, Buffer>();
  readonly reads: [number, number][] = [];

  constructor(specials: Iterable<number>) {
    this.#specials = new Map([...specials].map((i) => [i, leafHash(Buffer.from(`special ${i}`))]));
    this.#filler.push(leafHash(Buffer.from('filler')));
    for (let l = 1; l <= 53; l++) this.#filler.push(nodeHash(this.#filler[l - 1]!, this.#filler[l - 1]!));
  }

  leaf(index: number): Buffer {
    return this.#specials.get(index) ?? this.#filler[0]!;
  }

  getNode(level: number, index: number): Uint8Array | undefined {
    this.reads.push([level, index]);
    return this.#node(level, index);
  }

  #node(level: number, index: number): Buffer {
    const start = index * 2 ** level;
    const end = start + 2 ** level;
    let hasSpecial = false;
    for (const s of this.#specials.keys()) if (s >= start && s < end) hasSpecial = true;
    if (!hasSpecial) return this.#filler[level]!;
    if (level === 0) return this.#specials.get(index)!;
    const key = `${level}/${index}`;
    let h = this.#memo.get(key);
    if (h === undefined) {
      h = nodeHash(this.#node(level - 1, 2 * index), this.#node(level - 1, 2 * index + 1));
      this.#memo.set(key, h);
    }
    return h;
  }
}
