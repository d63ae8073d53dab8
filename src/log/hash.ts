/**
 * RFC 9162 §2.1.1 Merkle tree hashing, and the branded index types of the log.
 *
 * The tree hash is SHA-256 with the RFC's one-byte prefixes (0x00 leaf, 0x01 interior node)
 * rather than a cwtch-groups domain string: the prefixes already separate leaves from nodes, and
 * keeping RFC 9162 byte for byte lets any CT / tlog tool audit a relay's log.
 */
import { SHA256_BYTES, sha256, sha256AfterByte } from '../crypto/index.ts';
import { assertBytes, UsageError } from '../errors.ts';

/** Size in bytes of every hash in the log (leaf, node, root). */
export const HASH_BYTES = SHA256_BYTES;

declare const logIndexBrand: unique symbol;
declare const treeSizeBrand: unique symbol;

/** Zero-based position of a leaf in the log: a safe non-negative integer. */
export type LogIndex = number & { readonly [logIndexBrand]: true };
/** Number of leaves in a tree: a safe non-negative integer. */
export type TreeSize = number & { readonly [treeSizeBrand]: true };

/**
 * @throws UsageError when `value` is not a safe non-negative integer.
 */
export function logIndex(value: number, name = 'index'): LogIndex {
  assertSafeCount(name, value);
  return value as LogIndex;
}

/**
 * @throws UsageError when `value` is not a safe non-negative integer.
 */
export function treeSize(value: number, name = 'size'): TreeSize {
  assertSafeCount(name, value);
  return value as TreeSize;
}

/** Internal: the runtime half of the brands (casts can forge a brand, so boundaries re-check). */
export function assertSafeCount(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageError('bad-argument', `${name} must be a safe non-negative integer`);
  }
}

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** Below this many bytes a leaf is hashed from one scratch buffer (libsodium's short-input path). */
const SHORT_LEAF = 511;
// Single-threaded and synchronous use only: both buffers are overwritten on every call, which keeps
// the append path from allocating a concatenation per hash.
const leafScratch = Buffer.alloc(SHORT_LEAF + 1);
const nodeScratch = Buffer.alloc(1 + 2 * HASH_BYTES);

const EMPTY_ROOT = sha256(new Uint8Array(0));

/** SHA-256 of the empty string: the root of the empty tree (RFC 9162 §2.1.1). A fresh copy each call. */
export function emptyRoot(): Buffer {
  return Buffer.from(EMPTY_ROOT);
}

/**
 * MTH({d(0)}) = SHA-256(0x00 ‖ d(0)).
 * @throws UsageError when data is not a Uint8Array.
 */
export function leafHash(data: Uint8Array): Buffer {
  assertBytes('data', data);
  if (data.length < SHORT_LEAF) {
    leafScratch[0] = LEAF_PREFIX;
    leafScratch.set(data, 1);
    return sha256(leafScratch.subarray(0, data.length + 1));
  }
  return sha256AfterByte(LEAF_PREFIX, data);
}

/**
 * SHA-256(0x01 ‖ left ‖ right).
 * @throws UsageError when left or right is not a 32-byte Uint8Array.
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  assertBytes('left', left, HASH_BYTES);
  assertBytes('right', right, HASH_BYTES);
  return nodeHashUnsafe(left, right);
}

/** nodeHash without argument checks, for loops whose inputs are already known to be 32-byte hashes. */
export function nodeHashUnsafe(left: Uint8Array, right: Uint8Array): Buffer {
  nodeScratch[0] = NODE_PREFIX;
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_BYTES);
  return sha256(nodeScratch);
}
