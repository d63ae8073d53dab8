/** Small statistics and formatting helpers shared by the benchmark suite. */

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Sort a copy of the first `count` values of a Float64Array. */
export function sortedCopy(values: Float64Array, count = values.length): Float64Array {
  return values.slice(0, count).sort();
}

/** 12345.6 → "12,346"; small values keep 2–3 significant digits. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  if (abs >= 100) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wall-clock milliseconds since an arbitrary origin (monotonic). */
export function now(): number {
  return performance.now();
}

/**
 * Call fn repeatedly for about `ms` milliseconds (after `warmup` calls) and return calls per second
 * times opsPerCall. Bounded in time: at most `ms` plus one call.
 */
export function opsPerSecond(fn: () => void, ms: number, opsPerCall = 1, warmup = 20): number {
  for (let i = 0; i < warmup; i++) fn();
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    // Batches of calls between clock reads keep the clock out of the figure for cheap ops.
    for (let i = 0; i < 64; i++) fn();
    calls += 64;
    elapsed = performance.now() - start;
  }
  return (calls * opsPerCall * 1000) / elapsed;
}

/** Wait for a promise at most `ms` (the timer does not keep the process alive afterwards). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
