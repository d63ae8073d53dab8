/**
 * Retention: how long a relay keeps envelope bodies.
 *
 * Pruning drops the BODY of old entries and nothing else: the leaf hash, the index, the receive
 * time, every tree node and every checkpoint stay, so the log remains append-only and every
 * inclusion and consistency proof the relay ever could serve it still can. Readers get the entry
 * with `envelope: null` (a "pruned" marker) and its leaf hash, which is all a client needs to keep
 * verifying the tree. A replay of a pruned envelope still dedups to its original receipt.
 *
 * Policies combine by taking the most aggressive: a body goes when ANY limit says so.
 */
import { UsageError } from '../errors.ts';
import type { LogIndex } from '../log/index.ts';
import type { RelayStorage } from './storage.ts';

export interface RetentionPolicy {
  /** Keep the bodies of at most this many newest entries. */
  readonly maxEntries?: number;
  /** Keep at most this many bytes of bodies (envelopes are fixed-size: a whole number of them). */
  readonly maxBytes?: number;
  /** Drop bodies received more than this many milliseconds ago. */
  readonly maxAgeMs?: number;
}

export interface RetentionOptions {
  /** Clock for maxAgeMs (tests). */
  readonly now?: () => number;
  /** Bodies deleted per transaction, so a large prune never stalls ingest for long (default 4096). */
  readonly chunk?: number;
}

export interface RetentionResult {
  /** Bodies of all entries below this index are gone. */
  readonly prunedBelow: LogIndex;
  /** How many bodies this run dropped. */
  readonly pruned: number;
}

/**
 * Check a policy's fields.
 * @throws UsageError naming the first bad field.
 */
export function assertRetentionPolicy(policy: RetentionPolicy): void {
  if (typeof policy !== 'object' || policy === null)
    throw new UsageError('bad-argument', 'policy must be an object');
  for (const name of ['maxEntries', 'maxBytes', 'maxAgeMs'] as const) {
    const value = policy[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new UsageError('bad-argument', `policy.${name} must be a non-negative integer`);
    }
  }
}

/**
 * The index below which `policy` wants bodies gone, for a log of `size` entries of
 * `envelopeBytes` each. `firstIndexAtOrAfter` answers the age limit (RelayStorage's binary search).
 * Never below `prunedBelow`: pruning only moves forward.
 * @throws UsageError when the policy is malformed.
 */
export async function retentionCutoff(
  policy: RetentionPolicy,
  state: { readonly size: number; readonly prunedBelow: number; readonly envelopeBytes: number },
  firstIndexAtOrAfter: (timeMs: number) => number | Promise<number>,
  nowMs: number,
): Promise<LogIndex> {
  assertRetentionPolicy(policy);
  let cutoff = state.prunedBelow;
  if (policy.maxEntries !== undefined) cutoff = Math.max(cutoff, state.size - policy.maxEntries);
  if (policy.maxBytes !== undefined) {
    cutoff = Math.max(cutoff, state.size - Math.floor(policy.maxBytes / state.envelopeBytes));
  }
  if (policy.maxAgeMs !== undefined) {
    cutoff = Math.max(cutoff, await firstIndexAtOrAfter(nowMs - policy.maxAgeMs));
  }
  return Math.min(cutoff, state.size) as LogIndex;
}

/**
 * Apply a policy once: drop every body it wants gone, in chunks, yielding to the event loop
 * between chunks so the sequencer keeps committing.
 * @throws UsageError when the policy or options are malformed.
 * @throws InternalError when the storage fails.
 */
export async function applyRetention(
  storage: RelayStorage,
  policy: RetentionPolicy,
  options: RetentionOptions = {},
): Promise<RetentionResult> {
  assertRetentionPolicy(policy);
  const chunk = options.chunk ?? 4096;
  if (!Number.isSafeInteger(chunk) || chunk < 1)
    throw new UsageError('bad-argument', 'options.chunk must be a positive integer');
  const now = options.now ?? Date.now;
  const state = await storage.retentionState();
  const cutoff = await retentionCutoff(
    policy,
    { size: state.size, prunedBelow: state.prunedBelow, envelopeBytes: storage.identity.envelopeBytes },
    (timeMs) => storage.firstIndexReceivedAtOrAfter(timeMs),
    now(),
  );
  let prunedBelow = state.prunedBelow as number;
  while (prunedBelow < cutoff) {
    const next = await storage.pruneBodies(cutoff, chunk);
    if (next <= prunedBelow) break;
    prunedBelow = next;
    if (prunedBelow < cutoff) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { prunedBelow: prunedBelow as LogIndex, pruned: prunedBelow - state.prunedBelow };
}

/**
 * Run applyRetention every `intervalMs` until stopped. Runs never overlap. Errors go to
 * `onError` (the relay keeps serving; the next run retries).
 * @returns stop(): resolves once a run in progress has finished.
 * @throws UsageError when the policy or interval is malformed.
 */
export function scheduleRetention(
  storage: RelayStorage,
  policy: RetentionPolicy,
  intervalMs: number,
  onError: (error: unknown) => void,
  options: RetentionOptions = {},
): { stop(): Promise<void> } {
  assertRetentionPolicy(policy);
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
    throw new UsageError('bad-argument', 'intervalMs must be a positive integer');
  }
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running !== undefined) return;
    running = applyRetention(storage, policy, options)
      .then(
        () => undefined,
        (error: unknown) => onError(error),
      )
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  // Retention alone must not keep a process alive.
  timer.unref();
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await running;
    },
  };
}
