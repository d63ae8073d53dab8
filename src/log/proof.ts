/**
 * Verification of inclusion and consistency proofs, written as RFC 9162 §2.1.3.2 and §2.1.4.2
 * state them so a reviewer can read one against the other.
 *
 * Convention (STYLE.md practice 2): a proof statement that is malformed — a hash that is not 32
 * bytes, an index not below the size, size1 above size2, a proof whose length does not match
 * its sizes — throws a CodecError naming the argument; arguments of the wrong type throw
 * UsageError; a well-formed proof that does not verify returns false (or, from the …OrThrow
 * variants, throws a VerifyError carrying the whole statement as evidence).
 */
import { constantTimeEqual } from '../crypto/index.ts';
import { CodecError, UsageError, VerifyError } from '../errors.ts';
import { isPowerOfTwo } from './bits.ts';
import {
  assertSafeCount,
  emptyRoot,
  HASH_BYTES,
  type LogIndex,
  nodeHashUnsafe,
  type TreeSize,
} from './hash.ts';

/**
 * No proof over a tree of at most 2^53 - 1 leaves has more hashes than this; decoders MAY reject
 * longer lists before allocating.
 */
export const MAX_PROOF_HASHES = 64;

/** What an inclusion VerifyError carries, so the statement can be handed on and rechecked. */
export interface InclusionStatement {
  readonly leafHash: Uint8Array;
  readonly index: number;
  readonly size: number;
  readonly proof: readonly Uint8Array[];
  readonly root: Uint8Array;
}

/** What a consistency VerifyError carries. */
export interface ConsistencyStatement {
  readonly size1: number;
  readonly size2: number;
  readonly proof: readonly Uint8Array[];
  readonly root1: Uint8Array;
  readonly root2: Uint8Array;
}

/**
 * The root an inclusion proof implies for `leafHash` at `index` in a tree of `size` leaves
 * (RFC 9162 §2.1.3.2 steps 1-4). Comparing it to a trusted root is the caller's job.
 * @throws UsageError when an argument has the wrong type.
 * @throws CodecError when a hash is not 32 bytes, index >= size, or the proof length does not
 *   match (index, size).
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: LogIndex,
  size: TreeSize,
  proof: readonly Uint8Array[],
): Buffer {
  assertHash('leafHash', leafHash);
  assertSafeCount('index', index);
  assertSafeCount('size', size);
  if (index >= size) throw new CodecError('index-out-of-range', `index ${index} is not below size ${size}`);
  assertProof(proof, inclusionPathLength(index, size), `index ${index} in a tree of size ${size}`);

  let fn = index as number;
  let sn = size - 1;
  let r: Uint8Array = leafHash;
  for (const p of proof) {
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHashUnsafe(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = fn / 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHashUnsafe(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // assertProof fixed the length to the one that drives sn to 0, the RFC's final check.
  return Buffer.from(r);
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size` leaves whose
 * root is `root`?
 * @returns false when the well-formed proof does not verify.
 * @throws UsageError when an argument has the wrong type.
 * @throws CodecError when a hash is not 32 bytes, index >= size, or the proof length does not match.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: LogIndex,
  size: TreeSize,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  assertHash('root', root);
  return constantTimeEqual(rootFromInclusionProof(leafHash, index, size, proof), root);
}

/**
 * verifyInclusion that throws instead of returning false.
 * @throws VerifyError (reason 'inclusion-proof-failed', evidence: InclusionStatement) when the
 *   well-formed proof does not verify; otherwise as verifyInclusion.
 */
export function verifyInclusionOrThrow(
  leafHash: Uint8Array,
  index: LogIndex,
  size: TreeSize,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  if (verifyInclusion(leafHash, index, size, proof, root)) return;
  const evidence: InclusionStatement = { leafHash, index, size, proof, root };
  throw new VerifyError(
    'inclusion-proof-failed',
    `the inclusion proof for index ${index} does not lead to the root of size ${size}`,
    { evidence },
  );
}

/**
 * RFC 9162 §2.1.4.2: is the tree of `size2` leaves with root `root2` an append-only extension of
 * the tree of `size1` leaves with root `root1`? Trivial cases: size1 = size2 needs an empty proof
 * and equal roots; size1 = 0 needs an empty proof and root1 equal to the empty-tree root.
 * @returns false when the well-formed proof does not verify.
 * @throws UsageError when an argument has the wrong type.
 * @throws CodecError when a hash is not 32 bytes, size1 > size2, or the proof length does not
 *   match (size1, size2).
 */
export function verifyConsistency(
  size1: TreeSize,
  size2: TreeSize,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  assertSafeCount('size1', size1);
  assertSafeCount('size2', size2);
  assertHash('root1', root1);
  assertHash('root2', root2);
  if (size1 > size2) throw new CodecError('size-order', `size1 ${size1} is above size2 ${size2}`);
  assertProof(proof, consistencyPathLength(size1, size2), `sizes ${size1} to ${size2}`);

  if (size1 === 0) {
    const empty = emptyRoot();
    return constantTimeEqual(root1, empty) && (size2 > 0 || constantTimeEqual(root2, empty));
  }
  if (size1 === size2) return constantTimeEqual(root1, root2);
  const { fr, sr } = consistencyRoots(size1, size2, proof, root1);
  return constantTimeEqual(fr, root1) && constantTimeEqual(sr, root2);
}

/**
 * Internal (evidence.ts): when size1 is not a power of two, the proof alone determines both the
 * old and the new root. If it leads to root2, the old root it leads to is the root the size2 tree
 * really has at size1, collision resistance aside; a signed size1 checkpoint with another root
 * is then a provable fork. Returns that prefix root, or null when the proof does not lead to
 * root2 or size1 is a power of two (the proof then takes root1 on trust and proves nothing about
 * another one).
 * @throws as verifyConsistency for malformed input.
 */
export function prefixRootFromConsistencyProof(
  size1: TreeSize,
  size2: TreeSize,
  proof: readonly Uint8Array[],
  root2: Uint8Array,
): Buffer | null {
  assertSafeCount('size1', size1);
  assertSafeCount('size2', size2);
  assertHash('root2', root2);
  if (size1 > size2) throw new CodecError('size-order', `size1 ${size1} is above size2 ${size2}`);
  assertProof(proof, consistencyPathLength(size1, size2), `sizes ${size1} to ${size2}`);
  if (size1 === 0 || size1 === size2 || isPowerOfTwo(size1)) return null;
  const { fr, sr } = consistencyRoots(size1, size2, proof, undefined);
  return constantTimeEqual(sr, root2) ? Buffer.from(fr) : null;
}

/**
 * RFC 9162 §2.1.4.2 steps 2-6 for 0 < size1 < size2 on a proof of checked length: the old and
 * new roots the path leads to. root1 seeds the path when size1 is a power of two.
 */
function consistencyRoots(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array | undefined,
): { fr: Uint8Array; sr: Uint8Array } {
  // Step 2: a power-of-two old tree is itself a node of the new one, so its root seeds the path.
  const path = isPowerOfTwo(size1) ? [root1!, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHashUnsafe(c, fr);
      sr = nodeHashUnsafe(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = fn / 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHashUnsafe(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return { fr, sr };
}

/**
 * verifyConsistency that throws instead of returning false.
 * @throws VerifyError (reason 'consistency-proof-failed', evidence: ConsistencyStatement) when
 *   the well-formed proof does not verify; otherwise as verifyConsistency.
 */
export function verifyConsistencyOrThrow(
  size1: TreeSize,
  size2: TreeSize,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  if (verifyConsistency(size1, size2, proof, root1, root2)) return;
  const evidence: ConsistencyStatement = { size1, size2, proof, root1, root2 };
  throw new VerifyError(
    'consistency-proof-failed',
    `the consistency proof from size ${size1} to size ${size2} does not verify`,
    { evidence },
  );
}

/**
 * Number of hashes in PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), without hashing: lets a decoder
 * refuse a proof of the wrong length before any work.
 * @throws UsageError unless 0 <= index < size (safe integers).
 */
export function inclusionProofLength(index: LogIndex, size: TreeSize): number {
  assertSafeCount('index', index);
  assertSafeCount('size', size);
  if (index >= size) throw new UsageError('bad-argument', `index ${index} is not below size ${size}`);
  return inclusionPathLength(index, size);
}

/** Number of hashes in PATH(index, D[0:size]): the RFC 9162 verifier's loop count, without hashing. */
function inclusionPathLength(index: number, size: number): number {
  let fn = index;
  let sn = size - 1;
  let count = 0;
  while (sn > 0) {
    count++;
    if (fn % 2 === 1 || fn === sn) {
      while (fn % 2 === 0 && fn !== 0) {
        fn = fn / 2;
        sn = Math.floor(sn / 2);
      }
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return count;
}

/** Number of hashes in PROOF(size1, D[0:size2]) as sent (without the prepended root1). */
function consistencyPathLength(size1: number, size2: number): number {
  if (size1 === 0 || size1 === size2) return 0;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let count = 1; // the seed hash, supplied or prepended
  while (sn > 0) {
    count++;
    if (fn % 2 === 1 || fn === sn) {
      while (fn % 2 === 0 && fn !== 0) {
        fn = fn / 2;
        sn = Math.floor(sn / 2);
      }
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return isPowerOfTwo(size1) ? count - 1 : count;
}

function assertHash(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new UsageError('bad-argument', `${name} must be a Uint8Array`);
  if (value.length !== HASH_BYTES) {
    throw new CodecError('bad-hash-length', `${name} must be ${HASH_BYTES} bytes, got ${value.length}`);
  }
}

function assertProof(proof: unknown, expected: number, what: string): asserts proof is readonly Uint8Array[] {
  if (!Array.isArray(proof)) throw new UsageError('bad-argument', 'proof must be an array of hashes');
  if (proof.length !== expected) {
    throw new CodecError(
      'bad-proof-length',
      `proof has ${proof.length} hashes but ${what} needs ${expected}`,
    );
  }
  for (let i = 0; i < proof.length; i++) assertHash(`proof[${i}]`, proof[i]);
}
