/**
 * The recognizer's map from detection tag to what the tag announces (docs/PROTOCOL.md §7), as an
 * open-addressing hash table in typed arrays: a tag is four 32-bit words, and each slot holds its
 * words, an owner number chosen by the caller, an epoch and a seq. A member holds ~800 tags per
 * author per group and moves ~8 of them per message received (bench/README.md, "Client sync");
 * a `Map` keyed by 16-character strings with an object per tag cost a string, an object and a
 * map entry per tag, all of them surviving long enough for the garbage collector to copy them.
 *
 * Linear probing from the tag's first word, deletion by backward shift (no tombstones, so a long
 * life of inserts and deletes leaves no debris). The first word is a fine hash: the tags we
 * insert are HMAC outputs under keys the relay does not hold, so their slots are uniform and
 * unknown to it; the tags it serves us are only looked up, and a lookup costs at most the length
 * of the run of occupied slots it lands in, which the relay cannot aim at.
 */

/** The owner number of an empty slot. Owners are non-negative. */
const EMPTY = -1;
const MIN_CAPACITY = 1024;

export class TagTable {
  #mask = MIN_CAPACITY - 1;
  /** Four words per slot. */
  #words = new Int32Array(MIN_CAPACITY * 4);
  #owner = new Int32Array(MIN_CAPACITY).fill(EMPTY);
  #epoch = new Float64Array(MIN_CAPACITY);
  #seq = new Float64Array(MIN_CAPACITY);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The slot holding this tag, or -1. */
  find(w0: number, w1: number, w2: number, w3: number): number {
    const words = this.#words;
    const owner = this.#owner;
    const mask = this.#mask;
    for (let s = w0 & mask; ; s = (s + 1) & mask) {
      if (owner[s] === EMPTY) return -1;
      const b = s << 2;
      if (words[b] === w0 && words[b + 1] === w1 && words[b + 2] === w2 && words[b + 3] === w3) return s;
    }
  }

  ownerAt(slot: number): number {
    return this.#owner[slot]!;
  }

  epochAt(slot: number): number {
    return this.#epoch[slot]!;
  }

  seqAt(slot: number): number {
    return this.#seq[slot]!;
  }

  /**
   * Map the tag to (owner, epoch, seq). Returns the owner it had before, or -1 when it was new.
   * `owner` is a non-negative 32-bit integer, `epoch` and `seq` safe integers.
   */
  set(w0: number, w1: number, w2: number, w3: number, owner: number, epoch: number, seq: number): number {
    if ((this.#size + 1) * 2 > this.#owner.length) this.#resize(this.#owner.length * 2);
    const words = this.#words;
    const owners = this.#owner;
    const mask = this.#mask;
    let s = w0 & mask;
    for (; owners[s] !== EMPTY; s = (s + 1) & mask) {
      const b = s << 2;
      if (words[b] === w0 && words[b + 1] === w1 && words[b + 2] === w2 && words[b + 3] === w3) {
        const before = owners[s]!;
        owners[s] = owner;
        this.#epoch[s] = epoch;
        this.#seq[s] = seq;
        return before;
      }
    }
    const b = s << 2;
    words[b] = w0;
    words[b + 1] = w1;
    words[b + 2] = w2;
    words[b + 3] = w3;
    owners[s] = owner;
    this.#epoch[s] = epoch;
    this.#seq[s] = seq;
    this.#size++;
    return EMPTY;
  }

  /** Remove the tag if `owner` holds it (not when another owner took it over); true if removed. */
  deleteOwned(w0: number, w1: number, w2: number, w3: number, owner: number): boolean {
    const s = this.find(w0, w1, w2, w3);
    if (s < 0 || this.#owner[s] !== owner) return false;
    this.#removeAt(s);
    if (this.#size * 8 < this.#owner.length && this.#owner.length > MIN_CAPACITY)
      this.#resize(this.#owner.length / 2);
    return true;
  }

  #removeAt(slot: number): void {
    const words = this.#words;
    const owners = this.#owner;
    const mask = this.#mask;
    owners[slot] = EMPTY;
    this.#size--;
    // Backward shift: move each later entry of the run into the hole when its home slot is not
    // between the hole and it, so every entry stays reachable from its home without tombstones.
    let hole = slot;
    for (let j = (slot + 1) & mask; owners[j] !== EMPTY; j = (j + 1) & mask) {
      const home = words[j << 2]! & mask;
      if (((j - home) & mask) < ((j - hole) & mask)) continue;
      const to = hole << 2;
      const from = j << 2;
      words[to] = words[from]!;
      words[to + 1] = words[from + 1]!;
      words[to + 2] = words[from + 2]!;
      words[to + 3] = words[from + 3]!;
      owners[hole] = owners[j]!;
      this.#epoch[hole] = this.#epoch[j]!;
      this.#seq[hole] = this.#seq[j]!;
      owners[j] = EMPTY;
      hole = j;
    }
  }

  #resize(capacity: number): void {
    const words = this.#words;
    const owners = this.#owner;
    const epochs = this.#epoch;
    const seqs = this.#seq;
    this.#mask = capacity - 1;
    this.#words = new Int32Array(capacity * 4);
    this.#owner = new Int32Array(capacity).fill(EMPTY);
    this.#epoch = new Float64Array(capacity);
    this.#seq = new Float64Array(capacity);
    this.#size = 0;
    for (let s = 0; s < owners.length; s++) {
      const o = owners[s]!;
      if (o === EMPTY) continue;
      const b = s << 2;
      this.set(words[b]!, words[b + 1]!, words[b + 2]!, words[b + 3]!, o, epochs[s]!, seqs[s]!);
    }
  }
}

/** A tag's word `i` (0..3) from its bytes: little-endian, as `wordOfLatin1` reads a string. */
export function wordOfBytes(bytes: Uint8Array, i: number): number {
  const b = i << 2;
  return bytes[b]! | (bytes[b + 1]! << 8) | (bytes[b + 2]! << 16) | (bytes[b + 3]! << 24);
}

/** A tag's word `i` from its bytes as a latin1 string (one character per byte). */
export function wordOfLatin1(s: string, i: number): number {
  const b = i << 2;
  return (
    s.charCodeAt(b) | (s.charCodeAt(b + 1) << 8) | (s.charCodeAt(b + 2) << 16) | (s.charCodeAt(b + 3) << 24)
  );
}
