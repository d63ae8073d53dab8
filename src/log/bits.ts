/**
 * Bit arithmetic on tree sizes up to 2^53 - 1. JavaScript's bitwise operators truncate to 32 bits,
 * so a log past 4 294 967 295 entries would silently get wrong proofs if these used `>>` or `&`.
 * Internal to src/log; not re-exported.
 */

const TWO_32 = 0x1_0000_0000;

/** Number of bits needed to write n (0 for 0). */
export function bitLength(n: number): number {
  if (n < TWO_32) return 32 - Math.clz32(n);
  return 64 - Math.clz32(Math.floor(n / TWO_32));
}

/** The largest power of two strictly below n, for n >= 2 (RFC 9162's k). */
export function largestPowerOfTwoBelow(n: number): number {
  return 2 ** (bitLength(n - 1) - 1);
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** (bitLength(n) - 1) === n;
}

/** Number of set bits: the number of perfect subtrees in a tree of n leaves. */
export function popCount(n: number): number {
  let count = 0;
  while (n > 0) {
    if (n % 2 === 1) count++;
    n = Math.floor(n / 2);
  }
  return count;
}
