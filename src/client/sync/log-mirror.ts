/**
 * The client's own copy of a relay's Merkle tree (docs/THREAT-MODEL.md §2, "What a client asks").
 *
 * Every member downloads every entry of the log, so it can hash the tree itself: with the leaf
 * hashes of [0, size) it knows the root at any size up to `size` and any consistency proof
 * between two of them. That lets a client check a checkpoint another member gossiped, and the
 * consistency of its last verified checkpoint with the relay's newest, without asking the relay
 * anything that depends on which envelopes it could open, and resume from a rounded position.
 *
 * Stored in the sealed profile (record kind `mirror`, docs/profile.md): the leaf hashes in chunks
 * of MIRROR_CHUNK_LEAVES, the frontier, and the perfect subtrees of level ≥ MIRROR_CHUNK_LEVEL
 * (the summit), so a root or proof reads O(log n) nodes and hashes at most one chunk per node.
 * The copy is contiguous from leaf 0. An entry served without its envelope (withheld or pruned)
 * stops it there (`missing-entry`) until the relay serves that entry with its body: the copy then
 * grows again. Entries served that the relay's checkpoints do not hold cut it back and stop it for
 * good (`contradiction`). While stopped short of the cursor, the client resumes from exact
 * positions (relay-sync.ts).
 */
import { assertBytes, InternalError } from '../../errors.ts';
import { nodeHashUnsafe, type TreeSize } from '../../log/hash.ts';
import {
  appendLeaves,
  consistencyProof,
  type Frontier,
  frontierFromStore,
  type NodeHashReader,
  rootAt,
} from '../../log/tree.ts';
import {
  MIRROR_CHUNK_LEAVES,
  MIRROR_CHUNK_LEVEL,
  MIRROR_MAX_LEAVES,
  type MirrorStop,
  mirrorLeavesKind,
  mirrorStateKind,
  type RecordStore,
  readRecord,
  writeRecord,
} from '../store/record-kinds.ts';

const HASH = 32;

/**
 * One chunk's leaf hashes back to back in one buffer, not one Buffer per leaf: a first sync keeps
 * up to 64 pages of leaves between saves, and as separate buffers they outlived the young
 * generation, which the collector paid for on every envelope scanned (bench/README.md, "Client
 * sync" (a)).
 */
class LeafChunk {
  readonly bytes = Buffer.alloc(MIRROR_CHUNK_LEAVES * HASH);
  length = 0;

  /** A chunk holding the stored leaves `b` (at most a chunk of 32-byte hashes: mirrorLeavesKind). */
  static of(b: Uint8Array | undefined): LeafChunk {
    const chunk = new LeafChunk();
    if (b !== undefined) {
      chunk.bytes.set(b);
      chunk.length = b.length / HASH;
    }
    return chunk;
  }

  /** The leaf at `i` (a view), or undefined past the end. */
  at(i: number): Uint8Array | undefined {
    return i < this.length ? this.bytes.subarray(i * HASH, (i + 1) * HASH) : undefined;
  }

  push(leaf: Uint8Array): void {
    this.bytes.set(leaf, this.length * HASH);
    this.length++;
  }

  /** The held leaves, as stored. */
  get filled(): Uint8Array {
    return this.bytes.subarray(0, this.length * HASH);
  }
}

export class LogMirror {
  readonly url: string;
  #frontier: Frontier;
  #stop: MirrorStop;
  /** summit[k][i]: the perfect subtree of level MIRROR_CHUNK_LEVEL + k at index i. */
  #summit: Uint8Array[][];
  /** Loaded chunks of leaf hashes; the dirty ones are written by save(). */
  readonly #chunks = new Map<number, LeafChunk>();
  readonly #dirty = new Set<number>();
  #stateDirty = false;

  private constructor(url: string, frontier: Frontier, stop: MirrorStop, summit: Uint8Array[][]) {
    this.url = url;
    this.#frontier = frontier;
    this.#stop = stop;
    this.#summit = summit;
  }

  /** The stored copy of the relay at `url`, or an empty one. */
  static load(store: RecordStore, url: string): LogMirror {
    const s = readRecord(store, mirrorStateKind, `state ${url}`);
    if (s === undefined) return new LogMirror(url, { size: 0 as TreeSize, hashes: [] }, 'none', []);
    const summit = s.summit.map((b) => {
      const out: Uint8Array[] = [];
      for (let i = 0; i < b.length; i += HASH) out.push(b.subarray(i, i + HASH));
      return out;
    });
    return new LogMirror(url, { size: s.size as TreeSize, hashes: [...s.frontier] }, s.stop, summit);
  }

  /** Leaves [0, size) are held. */
  get size(): number {
    return this.#frontier.size;
  }

  /** The copy cannot grow now: it waits for the entry at `size`, or stays stopped, or is full. */
  get stopped(): boolean {
    return this.#stop !== 'none' || this.size >= MIRROR_MAX_LEAVES;
  }

  /** Why it does not grow (see MirrorStop), `none` when it does. */
  get stop(): MirrorStop {
    return this.#stop;
  }

  /** The leaf hash of entry `index`, or undefined when not held. */
  leaf(store: RecordStore, index: number): Uint8Array | undefined {
    if (index >= this.size) return undefined;
    return this.#chunk(store, Math.floor(index / MIRROR_CHUNK_LEAVES)).at(index % MIRROR_CHUNK_LEAVES);
  }

  /**
   * Append the leaf hash of entry `size` (null: served without its body, the copy waits there).
   * A copy waiting for that entry takes it when it comes with its body.
   */
  append(store: RecordStore, leaf: Uint8Array | null): void {
    if (leaf !== null && this.#stop === 'missing-entry') this.#stop = 'none';
    if (this.stopped) return;
    if (leaf === null) {
      this.#stop = 'missing-entry';
      this.#stateDirty = true;
      return;
    }
    const chunkIndex = Math.floor(this.size / MIRROR_CHUNK_LEAVES);
    const chunk = this.#chunk(store, chunkIndex);
    const r = appendLeaves(this.#frontier, [leaf]);
    for (const n of r.newNodes) {
      if (n.level === 0) chunk.push(n.hash);
      else if (n.level >= MIRROR_CHUNK_LEVEL) {
        const k = n.level - MIRROR_CHUNK_LEVEL;
        this.#summit[k] ??= [];
        this.#summit[k]![n.index] = n.hash;
      }
    }
    this.#frontier = r.frontier;
    this.#dirty.add(chunkIndex);
    this.#stateDirty = true;
  }

  /** How many more leaves append() would take now: 0 while stopped, else up to MIRROR_MAX_LEAVES. */
  get room(): number {
    return this.stopped ? 0 : MIRROR_MAX_LEAVES - this.size;
  }

  /**
   * Append the leaf hashes of entries [size, size + leaves.length), at most `room` of them: the
   * same tree as append() per leaf (test/client/log-mirror.test.ts compares the roots), folded
   * here for a page's run with no per-node records: only the nodes the copy keeps (leaves in
   * their chunk, perfect subtrees of level ≥ MIRROR_CHUNK_LEVEL in the summit) are stored. It runs
   * for every envelope a sync scans, ours or not (bench/README.md, "Client sync" (a)).
   * The last leaf may stay in the frontier: pass buffers nobody else writes to (leafHash's).
   */
  appendMany(store: RecordStore, leaves: readonly Uint8Array[]): void {
    const take = Math.min(leaves.length, this.room);
    if (take === 0) return;
    const stack = this.#frontier.hashes.slice();
    let size: number = this.#frontier.size;
    let chunkIndex = -1;
    let chunk: LeafChunk | undefined;
    for (let i = 0; i < take; i++) {
      const leaf = leaves[i]!;
      // Checked inline: the argument's name is built only for a bad one.
      if (!(leaf instanceof Uint8Array) || leaf.length !== HASH) assertBytes(`leaves[${i}]`, leaf, HASH);
      const c = Math.floor(size / MIRROR_CHUNK_LEAVES);
      if (c !== chunkIndex) {
        chunk = this.#chunk(store, c);
        chunkIndex = c;
        this.#dirty.add(c);
      }
      chunk!.push(leaf);
      // Each trailing 1 bit of the size is a complete left sibling waiting for this subtree.
      let hash = leaf;
      let level = 0;
      let index = size;
      while (index % 2 === 1) {
        hash = nodeHashUnsafe(stack.pop()!, hash);
        index = (index - 1) / 2;
        level++;
        if (level >= MIRROR_CHUNK_LEVEL) {
          const k = level - MIRROR_CHUNK_LEVEL;
          this.#summit[k] ??= [];
          this.#summit[k]![index] = hash;
        }
      }
      stack.push(hash);
      size++;
    }
    this.#frontier = { size: size as TreeSize, hashes: stack };
    this.#stateDirty = true;
  }

  /**
   * The relay served the entry at `index` with its body outside a page of the copy (a withheld
   * entry asked again): when the copy waits for that very entry it may grow again, and the next
   * catch-up, resuming below `size`, appends it with every check of a page. True when it did.
   */
  entryServed(index: number): boolean {
    if (this.#stop !== 'missing-entry' || index !== this.size) return false;
    this.#stop = 'none';
    this.#stateDirty = true;
    return true;
  }

  /** Stop the copy where it is for good (the relay served entries its checkpoints do not hold). */
  stopForGood(): void {
    this.#stop = 'contradiction';
    this.#stateDirty = true;
  }

  /** Root of the tree of the first `size` leaves; `size` must be at most this.size. */
  rootAt(store: RecordStore, size: number): Buffer {
    this.#require(size);
    return rootAt(this.#reader(store), size as TreeSize);
  }

  /** RFC 9162 consistency proof from `size1` to `size2`, both at most this.size. */
  consistencyProof(store: RecordStore, size1: number, size2: number): Buffer[] {
    this.#require(size2);
    return consistencyProof(this.#reader(store), size1 as TreeSize, size2 as TreeSize);
  }

  /**
   * Forget every leaf from `size` on (entries the relay served that its checkpoint does not
   * cover): the copy goes back to a size whose root a signed checkpoint confirmed.
   */
  truncate(store: RecordStore, size: number): void {
    if (size >= this.size) return;
    const frontier = frontierFromStore(this.#reader(store), size as TreeSize);
    const keepChunk = Math.floor(size / MIRROR_CHUNK_LEAVES);
    const chunk = this.#chunk(store, keepChunk);
    chunk.length = size % MIRROR_CHUNK_LEAVES;
    for (const c of [...this.#chunks.keys()]) if (c > keepChunk) this.#chunks.set(c, LeafChunk.of(undefined));
    for (let c = keepChunk; c <= Math.floor((this.size - 1) / MIRROR_CHUNK_LEAVES); c++) this.#dirty.add(c);
    this.#summit = this.#summit.map((level, k) =>
      level.slice(0, Math.floor(size / 2 ** (MIRROR_CHUNK_LEVEL + k))),
    );
    this.#frontier = frontier;
    // The entry the copy waited for is no longer at its end; a contradiction stays.
    if (this.#stop === 'missing-entry') this.#stop = 'none';
    this.#stateDirty = true;
  }

  /** Write what changed (call inside the transaction that saves the relay's cursor). */
  save(store: RecordStore): void {
    for (const c of this.#dirty) {
      // A copy: the chunk goes on growing in place after the write.
      const leaves = Buffer.from(this.#chunks.get(c)?.filled ?? []);
      writeRecord(store, mirrorLeavesKind, `leaves ${this.url} ${c}`, leaves);
    }
    if (this.#stateDirty || this.#dirty.size > 0) {
      writeRecord(store, mirrorStateKind, `state ${this.url}`, {
        size: this.size,
        stop: this.#stop,
        frontier: this.#frontier.hashes,
        summit: this.#summit.map((level) => Buffer.concat(level)),
      });
    }
    this.#dirty.clear();
    this.#stateDirty = false;
    // Written chunks are read back on demand: a first sync of a long log holds one chunk at a time.
    const current = Math.floor(this.size / MIRROR_CHUNK_LEAVES);
    for (const c of [...this.#chunks.keys()]) if (c !== current) this.#chunks.delete(c);
  }

  #require(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size)
      throw new InternalError('mirror-short', `the local log copy holds ${this.size} leaves, not ${size}`);
  }

  #chunk(store: RecordStore, c: number): LeafChunk {
    let chunk = this.#chunks.get(c);
    if (chunk === undefined) {
      chunk = LeafChunk.of(readRecord(store, mirrorLeavesKind, `leaves ${this.url} ${c}`));
      this.#chunks.set(c, chunk);
    }
    return chunk;
  }

  /** Perfect subtrees: the summit above chunk level, hashed from one chunk's leaves below it. */
  #reader(store: RecordStore): NodeHashReader {
    return {
      getNode: (level, index) => {
        if (level >= MIRROR_CHUNK_LEVEL) return this.#summit[level - MIRROR_CHUNK_LEVEL]?.[index];
        const width = 2 ** level;
        const start = index * width;
        if (start + width > this.size) return undefined;
        const chunk = this.#chunk(store, Math.floor(start / MIRROR_CHUNK_LEAVES));
        const from = start % MIRROR_CHUNK_LEAVES;
        if (from + width > chunk.length) return undefined;
        let row: Uint8Array[] = [];
        for (let i = from; i < from + width; i++) row.push(chunk.at(i)!);
        while (row.length > 1) {
          const up: Uint8Array[] = [];
          for (let i = 0; i < row.length; i += 2) up.push(nodeHashUnsafe(row[i]!, row[i + 1]!));
          row = up;
        }
        return row[0];
      },
    };
  }
}

/** Resume positions are multiples of at least this many entries (one default page). */
export const MIN_RESUME_BUCKET = 256;
/** A log of n entries rounds positions to 2^(bitLength(n) − RESUME_BUCKET_BITS): n/256 to n/128. */
export const RESUME_BUCKET_BITS = 8;

/**
 * The position a connection resumes from: `size` rounded down to a bucket that grows with the
 * log, so that every profile whose last sync ended in the same bucket sends the same number
 * (docs/THREAT-MODEL.md §2). The entries between it and the cursor are fetched again and only
 * compared with the local copy.
 */
export function resumeStart(size: number): number {
  const bits = size === 0 ? 0 : Math.floor(Math.log2(size)) + 1;
  const bucket = Math.max(MIN_RESUME_BUCKET, 2 ** Math.max(0, bits - RESUME_BUCKET_BITS));
  return Math.floor(size / bucket) * bucket;
}
