/**
 * The append-only Merkle tree of RFC 9162 §2.1, kept as a frontier in memory and as perfect-subtree
 * hashes in a pluggable store, so a relay restarts by reading O(log n) hashes instead of rehashing
 * every entry, and serves any historical root or proof from O(log n) stored nodes.
 *
 * Node coordinates follow transparency-dev/merkle: (level, index) is the perfect subtree over leaves
 * [index·2^level, (index+1)·2^level); level 0 holds the leaf hashes. Only perfect subtrees are ever
 * stored: a node on the right edge of a non-power-of-two tree changes as the tree grows, so it is
 * recomputed from the stored perfect nodes below it.
 */
import { assertBytes, InternalError, UsageError } from '../errors.ts';
import { bitLength, largestPowerOfTwoBelow, popCount } from './bits.ts';
import {
  assertSafeCount,
  emptyRoot,
  HASH_BYTES,
  type LogIndex,
  nodeHashUnsafe,
  type TreeSize,
} from './hash.ts';

/** Hash of the perfect subtree at (level, index), covering leaves [index·2^level, (index+1)·2^level). level 0 = leaf hashes. */
export interface NodeHashReader {
  getNode(level: number, index: number): Uint8Array | undefined;
}

export interface NodeHash {
  level: number;
  index: number;
  hash: Uint8Array;
}

/**
 * The compact range [0, size): the roots of the perfect subtrees that make up a tree of `size`
 * leaves, one per set bit of `size`, largest (leftmost) first. It is all the state needed to keep
 * appending and to compute the current root. Treat it as immutable: appendLeaves returns a new one.
 */
export interface Frontier {
  readonly size: TreeSize;
  readonly hashes: readonly Uint8Array[];
}

export interface AppendResult {
  /** The frontier after the batch. */
  readonly frontier: Frontier;
  /**
   * Every perfect-subtree node completed by the batch, level 0 (the leaf hashes themselves)
   * included, in append order. The caller MUST persist them in the same transaction as the leaves
   * (docs/log.md §1): a store that commits leaves without their nodes serves no proof for
   * them after a restart. A store that already keeps leaf hashes with its entries MAY skip level 0,
   * but its getNode(0, i) MUST then return the leaf hash of entry i.
   */
  readonly newNodes: NodeHash[];
  /** Root hash of the tree of frontier.size leaves. */
  readonly root: Buffer;
}

/** The frontier of the empty tree. */
export function emptyFrontier(): Frontier {
  return { size: 0 as TreeSize, hashes: [] };
}

/**
 * Append a batch of leaf hashes. Cost: one node hash per completed subtree (n - 1 for n leaves,
 * so about one per leaf) plus O(log n) for the root; per leaf it allocates only its node records
 * and the hashes it completes.
 *
 * The returned level-0 records reference the caller's leaf hash buffers (no copy); the frontier
 * copies the one leaf it may keep, so the caller may reuse its buffers after persisting.
 * @throws UsageError when frontier is not a valid frontier, leafHashes is not an array of 32-byte
 *   hashes, or the tree would exceed 2^53 - 1 leaves.
 */
export function appendLeaves(frontier: Frontier, leafHashes: readonly Uint8Array[]): AppendResult {
  assertFrontier(frontier);
  if (!Array.isArray(leafHashes)) throw new UsageError('bad-argument', 'leafHashes must be an array');
  for (let i = 0; i < leafHashes.length; i++) {
    const h = leafHashes[i];
    // Checked inline: building the argument name per leaf would allocate on the relay's hot path.
    if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES) assertBytes(`leafHashes[${i}]`, h, HASH_BYTES);
  }
  if (frontier.size + leafHashes.length > Number.MAX_SAFE_INTEGER) {
    throw new UsageError('bad-argument', 'the tree would exceed 2^53 - 1 leaves');
  }

  const stack = frontier.hashes.slice();
  const newNodes: NodeHash[] = [];
  let size = frontier.size as number;
  for (const leaf of leafHashes) {
    newNodes.push({ level: 0, index: size, hash: leaf });
    let hash: Uint8Array = leaf;
    let level = 0;
    // Each trailing 1 bit of the old size is a complete left sibling waiting for this subtree.
    let shifted = size;
    while (shifted % 2 === 1) {
      hash = nodeHashUnsafe(stack.pop()!, hash);
      shifted = (shifted - 1) / 2;
      level++;
      newNodes.push({ level, index: shifted, hash });
    }
    stack.push(hash);
    size++;
  }
  // Only a trailing lone leaf can still be a caller's buffer; keep our own copy of it.
  if (size % 2 === 1 && leafHashes.length > 0)
    stack[stack.length - 1] = Buffer.from(stack[stack.length - 1]!);

  const next: Frontier = { size: size as TreeSize, hashes: stack };
  // The root costs O(log size) node hashes: computed only when read (a client's copy of a relay's
  // tree appends leaf by leaf and never reads it, src/client/sync/log-mirror.ts).
  let root: Buffer | undefined;
  return {
    frontier: next,
    newNodes,
    get root(): Buffer {
      root ??= foldRight(stack);
      return root;
    },
  };
}

/**
 * Root hash of the tree a frontier describes (RFC 9162 MTH).
 * @throws UsageError when frontier is not a valid frontier.
 */
export function rootFromFrontier(frontier: Frontier): Buffer {
  assertFrontier(frontier);
  return foldRight(frontier.hashes);
}

/**
 * Rebuild the frontier of a tree of `size` leaves from a store: O(log size) reads, no hashing.
 * @throws UsageError when size is not a safe non-negative integer.
 * @throws InternalError when the store lacks a node it must have (corrupt or truncated store).
 */
export function frontierFromStore(reader: NodeHashReader, size: TreeSize): Frontier {
  assertSafeCount('size', size);
  const hashes: Uint8Array[] = [];
  for (let level = bitLength(size) - 1; level >= 0; level--) {
    const quotient = Math.floor(size / 2 ** level);
    if (quotient % 2 === 1) hashes.push(readNode(reader, level, quotient - 1));
  }
  return { size, hashes };
}

/**
 * Root hash of the tree of the first `size` leaves, for any size up to what the store holds.
 * @throws UsageError when size is not a safe non-negative integer.
 * @throws InternalError when the store lacks a node it must have.
 */
export function rootAt(reader: NodeHashReader, size: TreeSize): Buffer {
  assertSafeCount('size', size);
  if (size === 0) return emptyRoot();
  return Buffer.from(rangeHash(reader, 0, size));
}

/**
 * RFC 9162 §2.1.3.1 PATH(index, D[0:size]): the audit path of a leaf, leaf side first.
 * @throws UsageError unless 0 <= index < size (safe integers).
 * @throws InternalError when the store lacks a node it must have.
 */
export function inclusionProof(reader: NodeHashReader, index: LogIndex, size: TreeSize): Buffer[] {
  assertSafeCount('index', index);
  assertSafeCount('size', size);
  if (index >= size) throw new UsageError('bad-argument', `index ${index} is not below size ${size}`);
  return auditPath(reader, index, size, (start, end) => rangeHash(reader, start, end));
}

/** PATH(index, D[0:size]), leaf side first, with `range` giving MTH of each right-hand range. */
function auditPath(
  reader: NodeHashReader,
  index: number,
  size: number,
  range: (start: number, end: number) => Uint8Array,
): Buffer[] {
  return copyReversed(auditPathTopDown(reader, index, size, range));
}

/** PATH(index, D[0:size]) root side first, holding the reader's (and `range`'s) own buffers. */
function auditPathTopDown(
  reader: NodeHashReader,
  index: number,
  size: number,
  range: (start: number, end: number) => Uint8Array,
): Uint8Array[] {
  const topDown: Uint8Array[] = [];
  let start = 0;
  let width = size;
  let m = index;
  while (width > 1) {
    const k = largestPowerOfTwoBelow(width);
    if (m < k) {
      topDown.push(range(start + k, start + width));
      width = k;
    } else {
      topDown.push(perfectNode(reader, start, k));
      start += k;
      m -= k;
      width -= k;
    }
  }
  return topDown;
}

/**
 * The inclusion proofs of a batch's entries in the tree right after the batch (size = the old
 * size + the batch's), from the nodes {@link batchNodeReader} holds, sharing the hashing between
 * them: a right-hand range of an audit path is either one perfect subtree (read) or a range that
 * ends at `size`, the tree's ragged right edge, which must be hashed — and the same few such ranges
 * (at most one per set bit of size) recur in every proof of the batch. Each is hashed once per
 * batch here instead of once per proof (bench/README.md, "Relay ingest": ~17 node hashes per
 * proof before). prove(index) equals inclusionProof(batchNodeReader(old, newNodes), index, size).
 * @throws UsageError when old is not a valid frontier, or size is not a safe count.
 * @throws (prove) UsageError unless index < size; InternalError 'missing-node' for an index the
 *   nodes cannot prove (one before the batch whose path needs a node below the old frontier).
 */
export function batchInclusionProver(
  old: Frontier,
  newNodes: readonly NodeHash[],
  size: TreeSize,
): (index: LogIndex) => Buffer[] {
  const paths = batchAuditPathsUnsafe(old, newNodes, size);
  return (index) => copyReversed(paths(index));
}

/**
 * As {@link batchInclusionProver}, but each path is top-down (root side first) and holds the
 * batch's own node buffers, not copies: the same node is the same object in every path of the
 * batch, so a caller that encodes them (the relay's tlog-proof text) can encode each node once
 * per batch. Unsafe: the caller MUST NOT modify or keep a hash past the batch.
 * @throws as batchInclusionProver.
 */
export function batchAuditPathsUnsafe(
  old: Frontier,
  newNodes: readonly NodeHash[],
  size: TreeSize,
): (index: LogIndex) => readonly Uint8Array[] {
  assertSafeCount('size', size);
  const reader = batchNodeReader(old, newNodes);
  const edge = new Map<number, Uint8Array>();
  const range = (start: number, end: number): Uint8Array => {
    if (end !== size) return rangeHash(reader, start, end);
    let hash = edge.get(start);
    if (hash === undefined) {
      hash = rangeHash(reader, start, end);
      edge.set(start, hash);
    }
    return hash;
  };
  return (index) => {
    assertSafeCount('index', index);
    if (index >= size) throw new UsageError('bad-argument', `index ${index} is not below size ${size}`);
    return auditPathTopDown(reader, index, size, range);
  };
}

/**
 * RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]); empty when size1 is 0 or equals size2.
 * @throws UsageError unless 0 <= size1 <= size2 (safe integers).
 * @throws InternalError when the store lacks a node it must have.
 */
export function consistencyProof(reader: NodeHashReader, size1: TreeSize, size2: TreeSize): Buffer[] {
  assertSafeCount('size1', size1);
  assertSafeCount('size2', size2);
  if (size1 > size2) throw new UsageError('bad-argument', `size1 ${size1} is above size2 ${size2}`);
  if (size1 === 0 || size1 === size2) return [];
  const topDown: Uint8Array[] = [];
  let start = 0;
  let width = size2 as number;
  let m = size1 as number;
  // RFC 9162's flag b: true while the old tree is still a left-aligned prefix we can name by its root.
  let oldRootKnown = true;
  while (m !== width) {
    const k = largestPowerOfTwoBelow(width);
    if (m <= k) {
      topDown.push(rangeHash(reader, start + k, start + width));
      width = k;
    } else {
      topDown.push(perfectNode(reader, start, k));
      start += k;
      m -= k;
      width -= k;
      oldRootKnown = false;
    }
  }
  if (!oldRootKnown) topDown.push(rangeHash(reader, start, start + width));
  return copyReversed(topDown);
}

/** A NodeHashReader held in memory (one dense array per level), for clients, tests and tools. */
export class InMemoryNodeStore implements NodeHashReader {
  readonly #levels: Uint8Array[][] = [];

  getNode(level: number, index: number): Uint8Array | undefined {
    return this.#levels[level]?.[index];
  }

  /**
   * Store nodes (e.g. AppendResult.newNodes). Later puts of the same coordinate overwrite.
   * @throws UsageError when a node has a bad level, index or hash length.
   */
  put(nodes: Iterable<NodeHash>): void {
    for (const node of nodes) {
      assertSafeCount('node.level', node.level);
      assertSafeCount('node.index', node.index);
      if (node.level > 63) throw new UsageError('bad-argument', 'node.level must be at most 63');
      assertBytes('node.hash', node.hash, HASH_BYTES);
      let level = this.#levels[node.level];
      if (level === undefined) {
        level = [];
        this.#levels[node.level] = level;
      }
      level[node.index] = node.hash;
    }
  }
}

/**
 * The nodes a writer holds right after appending a batch, as a reader: the old frontier's perfect
 * subtrees plus the batch's new nodes. It answers every node that an inclusion proof of a batch
 * entry in the tree after the batch needs, with no storage read: a left sibling on the path of a
 * leaf at or past the old size is either one of the old frontier's subtrees (an aligned block
 * left of the leaf cannot lie strictly inside one, since the block's parent would then hold the
 * leaf) or a subtree the batch completed; every right sibling lies in the batch. So the relay
 * builds each post's proof against the batch's checkpoint at commit (docs/log.md §7).
 * @throws UsageError when old is not a valid frontier.
 */
export function batchNodeReader(old: Frontier, newNodes: readonly NodeHash[]): NodeHashReader {
  assertFrontier(old);
  // One map per level: (level, index) pairs have no exact single-number key up to 2^53 leaves.
  const levels: Map<number, Uint8Array>[] = [];
  const put = (level: number, index: number, hash: Uint8Array): void => {
    let m = levels[level];
    if (m === undefined) {
      m = new Map();
      levels[level] = m;
    }
    m.set(index, hash);
  };
  let h = 0;
  for (let level = bitLength(old.size) - 1; level >= 0; level--) {
    const quotient = Math.floor(old.size / 2 ** level);
    if (quotient % 2 === 1) put(level, quotient - 1, old.hashes[h++]!);
  }
  for (const n of newNodes) put(n.level, n.index, n.hash);
  return { getNode: (level, index) => levels[level]?.get(index) };
}

function assertFrontier(frontier: Frontier): void {
  if (typeof frontier !== 'object' || frontier === null || !Array.isArray(frontier.hashes)) {
    throw new UsageError('bad-argument', 'frontier must be { size, hashes[] }');
  }
  assertSafeCount('frontier.size', frontier.size);
  if (frontier.hashes.length !== popCount(frontier.size)) {
    throw new UsageError(
      'bad-argument',
      `frontier.hashes must hold ${popCount(frontier.size)} hashes for size ${frontier.size}`,
    );
  }
  for (let i = 0; i < frontier.hashes.length; i++) {
    assertBytes(`frontier.hashes[${i}]`, frontier.hashes[i], HASH_BYTES);
  }
}

/** Proof hashes may be the store's own buffers: hand out copies so a caller cannot corrupt the store. */
function copyReversed(topDown: readonly Uint8Array[]): Buffer[] {
  const out: Buffer[] = new Array(topDown.length);
  for (let i = 0; i < topDown.length; i++) out[i] = Buffer.from(topDown[topDown.length - 1 - i]!);
  return out;
}

function foldRight(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return emptyRoot();
  let acc = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHashUnsafe(hashes[i]!, acc);
  return Buffer.from(acc);
}

function readNode(reader: NodeHashReader, level: number, index: number): Uint8Array {
  const hash = reader.getNode(level, index);
  if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
    throw new InternalError(
      'missing-node',
      `the node store has no 32-byte hash at level ${level}, index ${index}`,
    );
  }
  return hash;
}

/** The stored perfect subtree of `width` (a power of two) leaves starting at leaf `start`. */
function perfectNode(reader: NodeHashReader, start: number, width: number): Uint8Array {
  return readNode(reader, bitLength(width) - 1, start / width);
}

/**
 * MTH(D[start:end]) for a range whose start is a multiple of the largest power of two <= its
 * width, which every range of PATH and SUBPROOF is: the range then splits, left to right, into
 * aligned perfect subtrees of decreasing size, one per set bit of the width, and RFC 9162's MTH
 * is their right fold.
 */
function rangeHash(reader: NodeHashReader, start: number, end: number): Uint8Array {
  let remaining = end - start;
  // Most ranges of an audit path are one perfect subtree: read it, with no array of parts.
  const top = 2 ** (bitLength(remaining) - 1);
  if (top === remaining) {
    if (start % top !== 0) throw new InternalError('unaligned-range', `range at ${start} is not aligned`);
    return perfectNode(reader, start, top);
  }
  const parts: Uint8Array[] = [];
  while (remaining > 0) {
    const width = 2 ** (bitLength(remaining) - 1);
    if (start % width !== 0) throw new InternalError('unaligned-range', `range at ${start} is not aligned`);
    parts.push(perfectNode(reader, start, width));
    start += width;
    remaining -= width;
  }
  let acc = parts[parts.length - 1]!;
  for (let i = parts.length - 2; i >= 0; i--) acc = nodeHashUnsafe(parts[i]!, acc);
  return acc;
}
