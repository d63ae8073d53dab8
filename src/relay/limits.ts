/**
 * A relay's limits on what one connection, and all of them together, may cost it. Every limit
 * turns into a typed error frame (docs/ERRORS.md), never into an unbounded buffer.
 */
import { UsageError } from '../errors.ts';
import { MAX_PAGE_ENTRIES, MAX_PROOF_HASHES, MAX_RELAY_FRAME_BYTES } from '../wire/frames.ts';

export interface RelayLimits {
  /** Open connections at once; further ones get pushback/too-many-connections and are closed. */
  readonly maxConnections: number;
  /** A connection must send hello within this time. */
  readonly handshakeTimeoutMs: number;
  /**
   * A connection that sends nothing for this long (and is not subscribed) is closed; a
   * subscriber whose catch-up cannot write for this long is dropped as a slow consumer.
   */
  readonly idleTimeoutMs: number;
  /** Requests one connection may have outstanding at once. */
  readonly maxInFlight: number;
  /** Sustained posts per second per connection (token bucket; burst = 2 s worth). */
  readonly postsPerSecond: number;
  /** Sustained requests of any kind per second per connection. */
  readonly requestsPerSecond: number;
  /** Bytes queued to one socket above which the relay stops reading pages into it. */
  readonly highWaterBytes: number;
  /** Bytes queued to one socket above which it is dropped as a slow consumer. */
  readonly maxBufferedBytes: number;
  /** Most entries in one sync page or live push. */
  readonly pageEntries: number;
  /**
   * Bytes queued for output across ALL connections (issue 13 finding 6: without a global bound,
   * connections that send requests and never read grow the relay's memory without limit). Over
   * it, the connections whose queues have made no progress for the longest are cut first.
   */
  readonly maxOutputBytes: number;
  /**
   * Disk quota: envelope bodies the relay holds (entries not pruned by retention × the envelope
   * size). A post that would exceed it is refused with pushback/relay-full (docs/storage.md).
   */
  readonly maxLogBytes: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxConnections: 4096,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60_000,
  maxInFlight: 64,
  postsPerSecond: 500,
  requestsPerSecond: 2000,
  highWaterBytes: 1024 * 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  // The most a frame may carry (about 1 MiB of 2 KiB envelopes): a client stores each page in one
  // transaction, so smaller pages cost every member's sync more commits (src/client/sync/relay-sync.ts
  // SYNC_PAGE_ENTRIES).
  pageEntries: MAX_PAGE_ENTRIES,
  maxOutputBytes: 64 * 1024 * 1024,
  maxLogBytes: 8 * 1024 * 1024 * 1024,
};

/**
 * Upper bound of one encoded `entries` frame of `pageEntries` envelopes: per entry a 2-element
 * array, a byte-string header and a uint64 receive time; plus a checkpoint note (≤ 4 KiB), a full
 * consistency proof and the frame's own fields.
 */
export function maxEntriesFrameBytes(pageEntries: number, envelopeBytes: number): number {
  return pageEntries * (envelopeBytes + 1 + 5 + 9) + 4096 + MAX_PROOF_HASHES * 34 + 128;
}

/**
 * Merge `overrides` over the defaults and check that the limits can work together.
 * @throws UsageError 'bad-argument' naming the limit that is not a positive safe integer, a page
 *   that exceeds the frame limits, or a slow-consumer bound that a well-behaved subscriber could
 *   reach: a catching-up subscriber is sent a page whenever its queue is at or below
 *   highWaterBytes, so maxBufferedBytes MUST leave room for one more page above it, and the
 *   global maxOutputBytes room for two such subscribers; a quota below one envelope.
 */
export function resolveRelayLimits(overrides: Partial<RelayLimits>, envelopeBytes: number): RelayLimits {
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) < 1)
      throw new UsageError('bad-argument', `relay limit ${name} must be a positive integer, got ${value}`);
  }
  const page = maxEntriesFrameBytes(limits.pageEntries, envelopeBytes);
  if (limits.pageEntries > MAX_PAGE_ENTRIES || page > MAX_RELAY_FRAME_BYTES) {
    throw new UsageError(
      'bad-argument',
      `relay limit pageEntries ${limits.pageEntries} makes pages larger than a relay frame may be`,
    );
  }
  if (limits.maxBufferedBytes < limits.highWaterBytes + page) {
    throw new UsageError(
      'bad-argument',
      `relay limit maxBufferedBytes must be at least highWaterBytes + one page (${limits.highWaterBytes + page})`,
    );
  }
  if (limits.maxOutputBytes < 2 * (limits.highWaterBytes + page)) {
    throw new UsageError(
      'bad-argument',
      `relay limit maxOutputBytes must be at least twice highWaterBytes + one page (${2 * (limits.highWaterBytes + page)})`,
    );
  }
  if (limits.maxLogBytes < envelopeBytes) {
    throw new UsageError('bad-argument', `relay limit maxLogBytes must hold one envelope (${envelopeBytes})`);
  }
  return limits;
}

/** A token bucket: `take()` is false when the caller is over its rate. */
export class RateLimiter {
  #tokens: number;
  #last: number;
  constructor(
    private readonly perSecond: number,
    private readonly burst: number = perSecond * 2,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  take(): boolean {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.perSecond);
    this.#last = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until one more request would be allowed. */
  retryAfterMs(): number {
    return Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000);
  }
}
