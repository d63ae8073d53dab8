/**
 * A naive Merkle tree straight from RFC 9162 §2.1 (MTH, PATH, PROOF/SUBPROOF), recursive and
 * quadratic, with no storage or frontier. The property tests compare the fast tree against it;
 * the vector generator uses it to classify mutated proofs. Deliberately shares nothing with
 * src/log except SHA-256.
 */
import { createHash } from 'node:crypto';

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Largest power of two smaller than n (n > 1). */
function kOf(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function refLeafHash(data: Uint8Array): Buffer {
  return sha256(Uint8Array.of(0), data);
}

export function refNodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(Uint8Array.of(1), left, right);
}

/** MTH(D[n]) over leaf hashes (the leaves are already hashed with refLeafHash). */
export function refRoot(leafHashes: readonly Uint8Array[]): Buffer {
  const n = leafHashes.length;
  if (n === 0) return sha256();
  if (n === 1) return Buffer.from(leafHashes[0]!);
  const k = kOf(n);
  return refNodeHash(refRoot(leafHashes.slice(0, k)), refRoot(leafHashes.slice(k)));
}

/** PATH(m, D[n]). */
export function refInclusionProof(m: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  const n = leafHashes.length;
  if (n <= 1) return [];
  const k = kOf(n);
  if (m < k) return [...refInclusionProof(m, leafHashes.slice(0, k)), refRoot(leafHashes.slice(k))];
  return [...refInclusionProof(m - k, leafHashes.slice(k)), refRoot(leafHashes.slice(0, k))];
}

function subproof(m: number, leafHashes: readonly Uint8Array[], b: boolean): Buffer[] {
  const n = leafHashes.length;
  if (m === n) return b ? [] : [refRoot(leafHashes)];
  const k = kOf(n);
  if (m <= k) return [...subproof(m, leafHashes.slice(0, k), b), refRoot(leafHashes.slice(k))];
  return [...subproof(m - k, leafHashes.slice(k), false), refRoot(leafHashes.slice(0, k))];
}

/** PROOF(m, D[n]); empty for m = 0 (RFC 9162 leaves it undefined; every verifier takes it as empty). */
export function refConsistencyProof(m: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  if (m === 0) return [];
  return subproof(m, leafHashes, true);
}

/** Leaf data i of a deterministic test log. */
export function refLeafData(i: number): Buffer {
  return Buffer.from(`leaf ${i}`);
}
