/**
 * The in-memory tier of the SQLite relay's dedup structure (docs/storage.md, "Dedup"): the leaf
 * hashes of the log's newest entries, those not yet merged into the on-disk `leaf_index`, in
 * index order, with an open-addressing hash table over them.
 *
 * Why in memory: a batch's leaf hashes are random, so any on-disk B-tree keyed by them is touched
 * at about one page per row, and every touched page is written to the WAL at each commit
 * (bench/README.md, "Indexes written per row"). Held here, the newest keys cost no page at all;
 * the entries table (written anyway, in index order) is where they are durable, and the tier is
 * rebuilt from it at every open, never persisted. It is bounded (two merge runs), so it is never
 * "all the keys".
 *
 * Leaf hashes are SHA-256 outputs, so their first four bytes are already a uniform hash.
 */
import { HASH_BYTES } from '../log/index.ts';

const EMPTY = 0;

export class RecentLeaves {
  /** Keys, HASH_BYTES each, position p at p * HASH_BYTES. */
  #keys: Uint8Array;
  #count = 0;
  /** Open addressing, linear probing: position + 1, or EMPTY. At most half full. */
  #slots: Int32Array;
  #mask: number;

  constructor(capacity = 1024) {
    const cap = Math.max(16, capacity);
    this.#keys = new Uint8Array(cap * HASH_BYTES);
    this.#slots = new Int32Array(slotCountFor(cap));
    this.#mask = this.#slots.length - 1;
  }

  /** Keys held. */
  get size(): number {
    return this.#count;
  }

  /** Position of `leaf`, or -1. */
  find(leaf: Uint8Array): number {
    const held = this.#slots[this.#slotOf(leaf)]!;
    return held === EMPTY ? -1 : held - 1;
  }

  /** Append `leaf` at position `size`; false (nothing added) when it is already held. */
  add(leaf: Uint8Array): boolean {
    if ((this.#count + 1) * HASH_BYTES > this.#keys.length) this.#grow();
    const keys = this.#keys;
    const slots = this.#slots;
    // One probe finds the key or the empty slot it goes in.
    const slot = this.#slotOf(leaf);
    if (slots[slot] !== EMPTY) return false;
    const pos = this.#count;
    const offset = pos * HASH_BYTES;
    for (let i = 0; i < HASH_BYTES; i++) keys[offset + i] = leaf[i]!;
    this.#count++;
    slots[slot] = pos + 1;
    return true;
  }

  /** The slot that holds `leaf`, or the empty slot where the probe for it ends (linear probing). */
  #slotOf(leaf: Uint8Array): number {
    const keys = this.#keys;
    const slots = this.#slots;
    const mask = this.#mask;
    let slot = prefixOf(leaf, 0) & mask;
    for (;;) {
      const held = slots[slot]!;
      if (held === EMPTY || sameKey(keys, (held - 1) * HASH_BYTES, leaf)) return slot;
      slot = (slot + 1) & mask;
    }
  }

  /** The key at `pos` (a view: valid until the next add, truncate or dropFirst). */
  keyAt(pos: number): Uint8Array {
    return this.#keys.subarray(pos * HASH_BYTES, (pos + 1) * HASH_BYTES);
  }

  /** Forget every key from position `count` on (a batch whose commit failed). */
  truncate(count: number): void {
    if (count >= this.#count) return;
    this.#count = Math.max(0, count);
    this.#rehash();
  }

  /** Forget the first `n` keys (merged into leaf_index); positions shift down by n. */
  dropFirst(n: number): void {
    if (n <= 0) return;
    const from = Math.min(n, this.#count) * HASH_BYTES;
    this.#keys.copyWithin(0, from, this.#count * HASH_BYTES);
    this.#count -= Math.min(n, this.#count);
    // Shrink after a large merge so a burst does not pin its memory.
    const wanted = Math.max(16, this.#count * 2) * HASH_BYTES;
    if (this.#keys.length > 4 * wanted) this.#keys = this.#keys.slice(0, wanted);
    this.#rehash();
  }

  /**
   * Positions `from..to-1` in merge order: by the key's first four bytes, then by position. Any
   * fixed order would do for exactness (the count of keys merged is what is persisted, and the
   * same run sorts the same way after a restart); this one puts a merge slice's keys on
   * neighbouring pages of leaf_index, whose keys are the same bytes in order.
   */
  mergeOrder(from: number, to: number): Uint32Array {
    const n = Math.max(0, to - from);
    const packed = new Float64Array(n);
    // prefix (32 bits) × 2^21 + offset stays below 2^53, exact in a double, when n ≤ 2^21.
    if (n <= 1 << 21) {
      for (let i = 0; i < n; i++) packed[i] = prefixOf(this.#keys, (from + i) * HASH_BYTES) * 2 ** 21 + i;
      packed.sort();
      const order = new Uint32Array(n);
      for (let i = 0; i < n; i++) order[i] = from + (packed[i]! % 2 ** 21);
      return order;
    }
    const order = Uint32Array.from({ length: n }, (_, i) => from + i);
    return order.sort((a, b) => {
      const d = prefixOf(this.#keys, a * HASH_BYTES) - prefixOf(this.#keys, b * HASH_BYTES);
      return d !== 0 ? d : a - b;
    });
  }

  #grow(): void {
    const keys = new Uint8Array(this.#keys.length * 2);
    keys.set(this.#keys.subarray(0, this.#count * HASH_BYTES));
    this.#keys = keys;
    this.#rehash();
  }

  #rehash(): void {
    const wanted = slotCountFor(this.#keys.length / HASH_BYTES);
    if (wanted !== this.#slots.length) {
      this.#slots = new Int32Array(wanted);
      this.#mask = wanted - 1;
    } else this.#slots.fill(EMPTY);
    for (let pos = 0; pos < this.#count; pos++) this.#place(pos);
  }

  #place(pos: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let slot = prefixOf(this.#keys, pos * HASH_BYTES) & mask;
    while (slots[slot] !== EMPTY) slot = (slot + 1) & mask;
    slots[slot] = pos + 1;
  }
}

/** A power of two at least twice the capacity: probes stay short. */
function slotCountFor(capacity: number): number {
  let n = 32;
  while (n < capacity * 2) n *= 2;
  return n;
}

/** The first four bytes of the key at `offset`, as an unsigned 32-bit number. */
function prefixOf(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>>
    0
  );
}

function sameKey(keys: Uint8Array, offset: number, leaf: Uint8Array): boolean {
  for (let i = 0; i < HASH_BYTES; i++) if (keys[offset + i] !== leaf[i]) return false;
  return true;
}
