/**
 * Post → delivery latency: `subscribers` RelayClient connections subscribed live to a real relay
 * process, while `posters` connections post at a paced total `rate` for `durationMs`. Each
 * envelope carries its post time (performance.now() of this process, float64) and a run id in its
 * first bytes — the relay does not care what the bytes are — so every subscriber measures the
 * latency of every envelope it is pushed: post → relay commit (fsync) → live push → decoded by the
 * subscriber's RelayClient. Posters and subscribers share this process, so the figure includes
 * this process's own event-loop delays (a pessimistic bias).
 *
 * Pacing: a 1 ms timer sends whatever is due by the clock (rate × elapsed), round-robin over the
 * posters; each poster stays under the relay's per-connection rate limit. A post the relay pushes
 * back (pushback/…, e.g. too-many-in-flight during a stall) is sent again after the retry-after it
 * names, doubled on each further refusal (at most 1 s), as a client does; its latency still counts
 * from the first attempt (the time is in the envelope), and only a post still refused
 * GIVE_UP_AFTER_MS after its first attempt is a post error.
 *
 * Missing is counted per subscriber and per post: every post sent must reach every subscriber
 * once; a post that never got in is missing for all of them, a delivery seen twice is counted as
 * a duplicate, not as a second delivery. The missing are told apart by cause: posts given up
 * (× subscribers), subscribers whose connection the relay closed (what they had not seen when
 * it closed), and the rest: deliveries still not seen when the wait for them ended, which waits
 * as long as deliveries keep arriving (up to a minute) and ends after 5 s without one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RelayClient } from '../../src/client/sync/relay-client.ts';
import { randomBytes } from '../../src/crypto/index.ts';
import { CwtchError, PushbackError } from '../../src/errors.ts';
import { ENVELOPE_BYTES } from '../../src/wire/frames.ts';
import { ROOT, removeDir, runNodeScript, tempDir } from '../lib/procs.ts';
import { quantileSorted, sleep } from '../lib/stats.ts';
import { closeClients, connectClients } from './ingest.ts';

export interface LatencyOptions {
  readonly url: string;
  readonly subscribers: number;
  readonly posters: number;
  /** Total posts per second. */
  readonly rate: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Relay CPU ms so far, if known. */
  readonly relayCpuMs?: () => { all: number; main: number };
}

export interface LatencyResult {
  readonly p50: number;
  readonly p99: number;
  /**
   * p99 of the deliveries of posts sent after the first second of the measured window: the
   * steady state, without what a fresh relay (and this process) does in its first seconds.
   */
  readonly p99Settled: number;
  readonly p999: number;
  readonly max: number;
  readonly samples: Float64Array;
  readonly posted: number;
  /** Achieved posting rate over the measured part. */
  readonly postedRate: number;
  /** Deliveries expected (every post sent × every subscriber) but not seen (bounded wait). */
  readonly missing: number;
  /** Of the missing: posts given up × subscribers. */
  readonly missingGivenUp: number;
  /** Subscriber connections the relay closed during the run (each an error to its client). */
  readonly subscribersClosed: number;
  /** Of the missing: deliveries to those subscribers of posts that got in, not seen before the close. */
  readonly missingClosed: number;
  /** Time from the end of posting to the last delivery, ms (how far delivery lagged behind). */
  readonly drainMs: number;
  /** Deliveries of an envelope a subscriber had already been given. */
  readonly duplicates: number;
  /** Posts sent again after a pushback, by reason (each retry once). */
  readonly retries: Record<string, number>;
  readonly postErrors: number;
  /** Post failures by error reason. */
  readonly errorReasons: Record<string, number>;
  /** The 20 slowest 250 ms slices of post time (ms since the first measured post), in time order. */
  readonly worst: { atMs: number; latencyMs: number }[];
  /** Relay CPU during the window, % of one core: all threads, and its main thread. */
  readonly relayCpu: { all: number; main: number } | undefined;
}

/** Where a bench envelope carries its run's id (8 bytes); its post number is at byte 8. */
export const MAGIC_AT = 16;

/**
 * The post number of an envelope this run posted, or undefined for any other entry (another run's,
 * a pruned one, or past `total`).
 */
export function runPostOf(e: Uint8Array | null, runId: Buffer, total: number): number | undefined {
  if (e === null || e.length !== ENVELOPE_BYTES) return undefined;
  const view = Buffer.from(e.buffer, e.byteOffset, e.byteLength);
  if (!view.subarray(MAGIC_AT, MAGIC_AT + 8).equals(runId)) return undefined;
  const seq = view.readUInt32LE(8);
  return seq < total ? seq : undefined;
}
/**
 * How long a post is retried after pushback before it counts as a post error, ms from its first
 * attempt. A client's outbox keeps a refused post until the relay takes it; giving up after 8
 * attempts (~3.5 s of waits, until issue 16) counted a relay that was slow for a few seconds, and
 * said so with pushback, as 50 lost deliveries per post.
 */
const GIVE_UP_AFTER_MS = 30_000;
/** Posts sent this long into the measured window or later count for {@link LatencyResult.p99Settled}. */
const SETTLED_AFTER_MS = 1000;

export async function runLatency(opts: LatencyOptions): Promise<LatencyResult> {
  const runId = randomBytes(8);
  const total = Math.round((opts.rate * (opts.warmupMs + opts.durationMs)) / 1000);
  const warmupPosts = Math.round((opts.rate * opts.warmupMs) / 1000);
  const measured = total - warmupPosts;
  const capacity = measured * opts.subscribers;
  const samples = new Float64Array(capacity);
  let count = 0;
  /** The same latencies, for posts sent from SETTLED_AFTER_MS into the measured window on. */
  const settled = new Float64Array(capacity);
  let settledCount = 0;
  /** Post time (this process's clock) from which a delivery counts as settled. */
  let settledFrom = Number.POSITIVE_INFINITY;
  let delivered = 0;
  let duplicates = 0;
  /** Per subscriber, one byte per post sequence number: seen or not. */
  const seen = Array.from({ length: opts.subscribers }, () => new Uint8Array(total));
  /** Post time of each measured envelope, and its slowest delivery. */
  const postTimes = new Float64Array(measured);
  const slowest = new Float64Array(measured);

  const subscribers = await connectClients(opts.url, opts.subscribers);
  /** Per subscriber: deliveries seen when the relay closed its connection (-1: still open). */
  const seenAtClose = new Array<number>(opts.subscribers).fill(-1);
  const seenCount = new Array<number>(opts.subscribers).fill(0);
  let lastDelivery = 0;
  const posters: RelayClient[] = [];
  try {
    posters.push(...(await connectClients(opts.url, opts.posters)));
    for (const [s, sub] of subscribers.entries()) {
      const seenHere = seen[s]!;
      sub.onClose(() => {
        seenAtClose[s] = seenCount[s]!;
      });
      sub.onEntries((frame) => {
        const t = performance.now();
        lastDelivery = t;
        for (const entry of frame.entries) {
          const seq = runPostOf(entry.envelope, runId, total);
          if (seq === undefined) continue;
          if (seenHere[seq] === 1) {
            duplicates++;
            continue;
          }
          seenHere[seq] = 1;
          seenCount[s]!++;
          delivered++;
          if (seq >= warmupPosts && count < capacity) {
            // The poster's clock at posting, little-endian in the envelope's first 8 bytes.
            const e = entry.envelope!;
            const postedAt = Buffer.from(e.buffer, e.byteOffset, 8).readDoubleLE(0);
            const latency = t - postedAt;
            samples[count++] = latency;
            if (postedAt >= settledFrom) settled[settledCount++] = latency;
            const i = seq - warmupPosts;
            if (i < measured) {
              postTimes[i] = postedAt;
              if (latency > slowest[i]!) slowest[i] = latency;
            }
          }
        }
      });
    }
    // Subscribe everyone at the head before the first post.
    const head = Math.max(...subscribers.map((s) => s.treeSizeAtWelcome), posters[0]!.treeSizeAtWelcome);
    await Promise.all(
      subscribers.map((s) => s.request({ type: 'subscribe', from: head, verifiedSize: 0 }, 'entries')),
    );

    const base = randomBytes(ENVELOPE_BYTES);
    runId.copy(base, MAGIC_AT);
    let sent = 0;
    let receipts = 0;
    let postErrors = 0;
    const errorReasons: Record<string, number> = {};
    const retries: Record<string, number> = {};
    const post = (poster: RelayClient, e: Buffer, attempt: number, firstAt = performance.now()): void => {
      poster.request({ type: 'post', envelope: e, token: null }, 'receipt').then(
        () => {
          receipts++;
        },
        (error: unknown) => {
          if (error instanceof PushbackError && performance.now() - firstAt < GIVE_UP_AFTER_MS) {
            retries[error.reason] = (retries[error.reason] ?? 0) + 1;
            // The relay's retry-after, doubled on each further refusal of this post (up to 1 s), as
            // the ingest bench's clients do.
            const wait = Math.min(1000, Math.max(1, error.retryAfterMs) * 2 ** Math.min(attempt, 10));
            setTimeout(() => post(poster, e, attempt + 1, firstAt), wait);
            return;
          }
          postErrors++;
          const reason = error instanceof CwtchError ? error.reason : String(error).slice(0, 60);
          errorReasons[reason] = (errorReasons[reason] ?? 0) + 1;
        },
      );
    };
    const start = performance.now();
    let measureStart = 0;
    let measureEnd = 0;
    let relay0: { all: number; main: number } | undefined;
    let relay1: { all: number; main: number } | undefined;
    const deadline = start + opts.warmupMs + opts.durationMs + 5000;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const t = performance.now();
        const due = Math.min(total, Math.floor(((t - start) * opts.rate) / 1000));
        while (sent < due) {
          if (sent === warmupPosts) {
            measureStart = performance.now();
            settledFrom = measureStart + SETTLED_AFTER_MS;
            relay0 = opts.relayCpuMs?.();
          }
          const e = Buffer.allocUnsafe(ENVELOPE_BYTES);
          base.copy(e);
          e.writeUInt32LE(sent, 8);
          e.writeDoubleLE(performance.now(), 0);
          const poster = posters[sent % posters.length]!;
          sent++;
          post(poster, e, 0);
        }
        if (sent >= total || t > deadline) {
          measureEnd = performance.now();
          relay1 = opts.relayCpuMs?.();
          resolve();
        } else setTimeout(tick, 1);
      };
      tick();
    });
    // Let the last posts be answered and their deliveries arrive: as long as deliveries keep
    // coming (a lagging relay is slow, not lossy), up to a minute; 5 s without one ends the wait.
    const expected = sent * opts.subscribers;
    for (let waited = 0; receipts + postErrors < sent && waited < GIVE_UP_AFTER_MS + 10_000; waited += 20)
      await sleep(20);
    const postingEnded = performance.now();
    for (
      let waited = 0;
      delivered < expected &&
      waited < 60_000 &&
      performance.now() - Math.max(lastDelivery, postingEnded) < 5000;
      waited += 20
    )
      await sleep(20);
    const accepted = sent - postErrors;
    let subscribersClosed = 0;
    let missingClosed = 0;
    for (const n of seenAtClose) {
      if (n < 0) continue;
      subscribersClosed++;
      missingClosed += Math.max(0, accepted - n);
    }

    const sorted = samples.slice(0, count).sort();
    const sortedSettled = settled.slice(0, settledCount).sort();
    // The slowest delivery per 250 ms of post time, for the 20 slowest such slices: whether the
    // tail is a few periodic stalls or spread evenly.
    const slices = new Map<number, number>();
    for (let i = 0; i < measured; i++) {
      const slice = Math.floor((postTimes[i]! - measureStart) / 250);
      if (slowest[i]! > (slices.get(slice) ?? 0)) slices.set(slice, slowest[i]!);
    }
    const worst = [...slices.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .sort((a, b) => a[0] - b[0])
      .map(([slice, latency]) => ({ atMs: slice * 250, latencyMs: Number(latency.toFixed(1)) }));
    const elapsed = measureEnd - measureStart;
    return {
      p50: quantileSorted(sorted, 0.5),
      p99: quantileSorted(sorted, 0.99),
      p99Settled: quantileSorted(sortedSettled, 0.99),
      p999: quantileSorted(sorted, 0.999),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      samples: sorted,
      posted: sent,
      postedRate: ((sent - warmupPosts) * 1000) / elapsed,
      missing: expected - delivered,
      missingGivenUp: postErrors * opts.subscribers,
      subscribersClosed,
      missingClosed,
      drainMs: Math.max(0, lastDelivery - measureEnd),
      duplicates,
      retries,
      postErrors,
      errorReasons,
      worst,
      relayCpu:
        relay0 === undefined || relay1 === undefined
          ? undefined
          : {
              all: ((relay1.all - relay0.all) * 100) / elapsed,
              main: ((relay1.main - relay0.main) * 100) / elapsed,
            },
    };
  } finally {
    await closeClients([...subscribers, ...posters]);
  }
}

/**
 * {@link runLatency} in a fresh child process (bench/lib/latency-client.ts) against the relay of
 * process `relayPid`: the clients measured start as a user's do, not in the bench process after
 * the sections before it.
 */
export async function runLatencyProcess(
  options: Omit<LatencyOptions, 'relayCpuMs'>,
  relayPid: number,
): Promise<LatencyResult> {
  const dir = tempDir('latency-client');
  try {
    const samplesFile = join(dir, 'samples.f64');
    const r = await runNodeScript(
      join(ROOT, 'bench/lib/latency-client.ts'),
      [JSON.stringify(options), String(relayPid), samplesFile],
      {},
      300_000,
    );
    if (r.code !== 0) throw new Error(`latency-client failed (${r.code}): ${r.stderr.slice(-3000)}`);
    const rest = JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<LatencyResult, 'samples'>;
    const bytes = readFileSync(samplesFile);
    const samples = new Float64Array(bytes.byteLength / 8);
    new Uint8Array(samples.buffer).set(bytes);
    return { ...rest, samples };
  } finally {
    removeDir(dir);
  }
}
