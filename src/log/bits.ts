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

/**
 * 2^i for i in [0, 53], read instead of computed: `2 ** i` with a variable exponent is a call into
 * Math.pow, and a relay computes one per level of every audit path it builds (~1% of its main
 * thread under ingest, bench/README.md "Relay ingest", s28).
 */
const POWERS_OF_TWO: readonly number[] = Array.from({ length: 54 }, (_, i) => 2 ** i);

/** The largest power of two strictly below n, for n >= 2 (RFC 9162's k). */
export function largestPowerOfTwoBelow(n: number): number {
  return POWERS_OF_TWO[bitLength(n - 1) - 1]!;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && POWERS_OF_TWO[bitLength(n) - 1] === n;
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
