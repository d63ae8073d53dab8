/**
 * Receipt signing on worker threads: a {@link ReceiptSigner} that keeps the ~20 µs Ed25519
 * signature per receipt off the event loop, so the sequencer's main thread only hashes, commits
 * and answers (docs/storage.md, "Receipt signing").
 *
 * - N workers (default {@link defaultSignerThreads}: one fewer than the CPUs, at least one), each
 *   holding the relay's log key, sent once at start in a transferred buffer: in memory only, never
 *   in workerData, a file or a log line. close() wipes the pool's copy and tells each worker to
 *   wipe its own.
 * - One signReceipts call (the bodies of one commit) becomes one message per worker: the bodies
 *   are packed into one ArrayBuffer (48 bytes each) and split into contiguous chunks across the
 *   least-loaded workers; the signatures come back in one transferred ArrayBuffer per chunk.
 *   Workers answer their messages in order and chunks are reassembled by position, so receipts
 *   come back in the order of the bodies.
 * - While no worker is ready (a lazy pool's first batches, or every worker being replaced), a
 *   batch is signed on the calling thread instead of waiting for a worker to start: a worker
 *   start costs 0.3–1.7 s on the 2-core bench VM (more from the sources through tsx), and a relay
 *   that held its first posts' receipts that long refused its posters with too-many-in-flight
 *   meanwhile (bench/README.md, "Post → delivery latency"). The receipts are the same bytes.
 * - A worker that dies (crash, terminate(), out of memory) fails every batch it held with
 *   InternalError 'receipt-signer-failed' and is replaced at once; a replacement that dies before
 *   it is ready is replaced at the next call instead, so a worker that cannot start does not spin.
 *   Nothing is ever resolved without a signature (a worker's, or this thread's while none is
 *   ready): the sequencer hands out no receipt for a failed batch (its entries are durable; a
 *   retried post gets the original receipt). Once a worker has failed to start, batches go to
 *   the workers again (and fail while none can start), so a pool whose workers cannot start
 *   does not start one per batch while it signs here.
 *
 * The worker file is this file's sibling with this file's extension: the compiled relay (dist/,
 * docs/ARCHITECTURE.md "Build") loads receipt-signer-worker.js directly, with no transpiler. Run
 * from the sources (tests, `node --import tsx`), a two-line bootstrap registers tsx inside the
 * worker first, since Node 20 does not carry the parent's loader into a worker.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ED25519_SECRET_BYTES, ED25519_SIGNATURE_BYTES, wipe } from '../crypto/index.ts';
import { assertBytes, InternalError, UsageError } from '../errors.ts';
import {
  assertReceiptOrigin,
  LEAF_HASH_BYTES,
  type Receipt,
  type ReceiptBody,
  signReceipt,
} from '../log/receipt.ts';
import { workerScript } from '../worker-script.ts';
import type { ReceiptSigner } from './sequencer.ts';

/** Bytes of one packed receipt body: f64 index ‖ f64 timeMs ‖ 32-byte leaf hash. */
export const PACKED_BODY_BYTES = 8 + 8 + LEAF_HASH_BYTES;

/** Messages to a worker (see receipt-signer-worker.ts for the protocol). */
export type ToWorker =
  | { readonly type: 'init'; readonly origin: string; readonly secretKey: ArrayBuffer }
  | { readonly type: 'sign'; readonly id: number; readonly count: number; readonly bodies: ArrayBuffer }
  | { readonly type: 'close' };

/** Messages from a worker. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'init-failed'; readonly message: string }
  | { readonly type: 'signed'; readonly id: number; readonly signatures: ArrayBuffer }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/** The workerData of a signing worker (the worker runs only when started with it). */
export const SIGNER_WORKER_ROLE = 'cwtch-groups/receipt-signer';

/** Most worker threads a pool may have. */
export const MAX_SIGNER_THREADS = 64;
/** A batch is split across workers only in chunks of at least this many bodies. */
const MIN_CHUNK = 64;

/** One fewer worker than the machine has CPUs (the event loop keeps one), and at least one. */
export function defaultSignerThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

export interface ReceiptSignerPoolOptions {
  /** The relay's log origin: every body signed must carry it. */
  readonly origin: string;
  /** The relay's 64-byte Ed25519 log secret key (copied; the caller keeps and wipes its own). */
  readonly secretKey: Uint8Array;
  /** Worker threads, 1..64 (default {@link defaultSignerThreads}). */
  readonly threads?: number;
  /** Told when a worker dies unexpectedly (it is replaced); defaults to process.emitWarning. */
  readonly onWorkerExit?: (error: InternalError) => void;
  /**
   * Start the workers with the first batch instead of in start(). An idle relay then holds no
   * worker isolate (~12 MB each, issue 15's idle RSS goal); the batches that come before a
   * worker is ready are signed on the calling thread, and once a worker has failed to start, the
   * batches sent to it fail (InternalError 'receipt-signer-failed') instead of start().
   */
  readonly lazy?: boolean;
}

interface Request {
  readonly count: number;
  readonly resolve: (signatures: Uint8Array) => void;
  readonly reject: (error: unknown) => void;
}

interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  /** Requests sent to the current worker and not answered, by id (answered in id order). */
  readonly pending: Map<number, Request>;
  /** Bodies in pending: the load the scheduler balances. */
  load: number;
  /** Why the current worker failed, when it said so before exiting. */
  failure: unknown;
  /** The last worker of this slot exited before it was ready (until one is ready again). */
  startFailed: boolean;
}

/**
 * A pool of worker threads signing receipts for one relay log. Create with
 * {@link ReceiptSignerPool.start}; close() when done.
 */
export class ReceiptSignerPool implements ReceiptSigner {
  readonly #origin: string;
  readonly #secretKey: Uint8Array;
  readonly #slots: Slot[];
  readonly #onWorkerExit: (error: InternalError) => void;
  #nextId = 0;
  /** Every chunk sent and not answered: close() lets them finish. */
  readonly #inflight = new Set<Promise<Uint8Array>>();
  #closing: Promise<void> | undefined;

  private constructor(
    origin: string,
    secretKey: Uint8Array,
    threads: number,
    onWorkerExit: (e: InternalError) => void,
  ) {
    this.#origin = origin;
    // Its own ArrayBuffer (off the JS heap, never moved by the GC), wiped on close.
    this.#secretKey = new Uint8Array(new ArrayBuffer(ED25519_SECRET_BYTES));
    this.#secretKey.set(secretKey);
    this.#onWorkerExit = onWorkerExit;
    this.#slots = Array.from({ length: threads }, () => ({
      worker: undefined,
      ready: false,
      pending: new Map(),
      load: 0,
      failure: undefined,
      startFailed: false,
    }));
  }

  /**
   * Start the workers and wait until each holds the key.
   * @throws UsageError 'bad-argument' when the origin, key or thread count is malformed.
   * @throws InternalError 'receipt-signer-failed' when a worker cannot start (the others are
   *   stopped and the key wiped).
   */
  static async start(options: ReceiptSignerPoolOptions): Promise<ReceiptSignerPool> {
    if (typeof options !== 'object' || options === null)
      throw new UsageError('bad-argument', 'options must be an object');
    assertReceiptOrigin('options.origin', options.origin);
    assertBytes('options.secretKey', options.secretKey, ED25519_SECRET_BYTES);
    const threads = options.threads ?? defaultSignerThreads();
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > MAX_SIGNER_THREADS) {
      throw new UsageError('bad-argument', `options.threads must be an integer in 1..${MAX_SIGNER_THREADS}`);
    }
    const onWorkerExit =
      options.onWorkerExit ??
      ((error: InternalError) =>
        process.emitWarning(`receipt signer worker died: ${error.message}`, 'CwtchRelayWarning'));
    const pool = new ReceiptSignerPool(options.origin, options.secretKey, threads, onWorkerExit);
    if (options.lazy === true) return pool;
    try {
      await Promise.all(pool.#slots.map((slot) => pool.#spawn(slot)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /**
   * Start the workers of a lazy pool now, without waiting for them, so that their start-up (a
   * new isolate, module loading: ~100 ms of CPU compiled, ~330 ms from the sources) is done
   * before the first batch instead of during it. The relay calls it when its first client
   * connects (docs/storage.md, "Receipt signing"). Does nothing once the workers are started or
   * have failed to start, or after close().
   */
  warm(): void {
    if (this.#closing !== undefined) return;
    for (const slot of this.#slots)
      if (slot.worker === undefined && !slot.startFailed) void this.#spawn(slot).catch(() => {});
  }

  /** Worker threads in the pool. */
  get threads(): number {
    return this.#slots.length;
  }

  /** Workers that hold the key and take batches (diagnostics and tests). */
  get readyThreads(): number {
    return this.#slots.filter((slot) => slot.ready).length;
  }

  /** The current worker threads (diagnostics and tests; a dead one is replaced by a new object). */
  get workers(): readonly Worker[] {
    return this.#slots.flatMap((slot) => (slot.worker === undefined ? [] : [slot.worker]));
  }

  /**
   * Sign receipt bodies on the workers. Resolves with one receipt per body, in order, each
   * holding a worker's signature; never with an unsigned receipt.
   * @throws (rejects) UsageError 'bad-argument' when a body is malformed or of another origin;
   *   'receipt-signer-closed' after close().
   * @throws (rejects) InternalError 'receipt-signer-failed' when a worker died or failed while
   *   holding the batch (the pool replaces it; the call may be retried).
   */
  async signReceipts(bodies: readonly ReceiptBody[]): Promise<Receipt[]> {
    if (this.#closing !== undefined)
      throw new UsageError('receipt-signer-closed', 'the receipt signer is closed');
    if (!Array.isArray(bodies)) throw new UsageError('bad-argument', 'bodies must be an array');
    const n = bodies.length;
    if (n === 0) return [];
    const origin = this.#origin;
    for (let i = 0; i < n; i++) {
      const b = bodies[i]!;
      if (typeof b !== 'object' || b === null || b.origin !== origin) {
        throw new UsageError('bad-argument', `bodies[${i}] is not a receipt body of ${origin}`);
      }
      if (!isU53(b.index) || !isU53(b.timeMs)) {
        throw new UsageError('bad-argument', `bodies[${i}].index and .timeMs must be integers in 0..2^53-1`);
      }
      assertBytes(`bodies[${i}].leafHash`, b.leafHash, LEAF_HASH_BYTES);
    }
    if (!this.#slots.some((slot) => slot.ready || slot.startFailed)) {
      // No worker can sign yet: start them, and sign this batch here rather than wait for them.
      this.warm();
      return bodies.map((b) => signReceipt(b, this.#secretKey));
    }
    const packed = new ArrayBuffer(n * PACKED_BODY_BYTES);
    const view = new DataView(packed);
    const bytes = new Uint8Array(packed);
    for (let i = 0; i < n; i++) {
      const b = bodies[i]!;
      const at = i * PACKED_BODY_BYTES;
      view.setFloat64(at, b.index);
      view.setFloat64(at + 8, b.timeMs);
      bytes.set(b.leafHash, at + 16);
    }

    // Contiguous chunks, one per worker, to the least-loaded workers first.
    const chunks = Math.min(this.#slots.length, Math.ceil(n / MIN_CHUNK));
    const targets = [...this.#slots].sort((a, b) => a.load - b.load).slice(0, chunks);
    const size = Math.ceil(n / chunks);
    const parts: Promise<Uint8Array>[] = [];
    for (let c = 0; c < chunks; c++) {
      const from = c * size;
      const count = Math.min(size, n - from);
      const chunk =
        chunks === 1 ? packed : packed.slice(from * PACKED_BODY_BYTES, (from + count) * PACKED_BODY_BYTES);
      parts.push(this.#send(targets[c]!, chunk, count));
    }
    const signed = await Promise.all(parts);

    const out: Receipt[] = new Array(n);
    let i = 0;
    for (const signatures of signed) {
      for (let at = 0; at < signatures.length; at += ED25519_SIGNATURE_BYTES, i++) {
        const b = bodies[i]!;
        out[i] = {
          origin,
          index: b.index,
          leafHash: Uint8Array.from(b.leafHash),
          timeMs: b.timeMs,
          signature: signatures.slice(at, at + ED25519_SIGNATURE_BYTES),
        };
      }
    }
    if (i !== n) throw new InternalError('receipt-signer-failed', `the workers signed ${i} of ${n} receipts`);
    return out;
  }

  /**
   * Let the workers finish the batches they hold, have each wipe its key and exit, and wipe the
   * pool's copy. Later calls to signReceipts reject with UsageError 'receipt-signer-closed'.
   * Idempotent. Close the sequencer first: it waits for the receipts of its last commits.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#inflight);
      await Promise.all(this.#slots.map((slot) => this.#stop(slot)));
      wipe(this.#secretKey);
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  /** Send a chunk to a slot's worker (starting a replacement first when it has none). */
  #send(slot: Slot, bodies: ArrayBuffer, count: number): Promise<Uint8Array> {
    if (slot.worker === undefined) void this.#spawn(slot).catch(() => {});
    const worker = slot.worker!;
    const id = this.#nextId++;
    const signed = new Promise<Uint8Array>((resolve, reject) => {
      slot.pending.set(id, { count, resolve, reject });
      slot.load += count;
      worker.ref();
      const message: ToWorker = { type: 'sign', id, count, bodies };
      worker.postMessage(message, [bodies]);
    });
    this.#inflight.add(signed);
    const done = (): void => {
      this.#inflight.delete(signed);
    };
    signed.then(done, done);
    return signed;
  }

  /** Start a worker in the slot and hand it the key; resolves once it is ready. */
  #spawn(slot: Slot): Promise<void> {
    const { script, eval: isEval } = workerScript(import.meta.url, 'receipt-signer-worker');
    const worker = new Worker(script, { eval: isEval, execArgv: [], workerData: SIGNER_WORKER_ROLE });
    slot.worker = worker;
    slot.ready = false;
    slot.failure = undefined;
    const key = new ArrayBuffer(ED25519_SECRET_BYTES);
    new Uint8Array(key).set(this.#secretKey);
    const init: ToWorker = { type: 'init', origin: this.#origin, secretKey: key };
    worker.postMessage(init, [key]);

    return new Promise<void>((resolve, reject) => {
      const startFailed = (why: string, cause?: unknown): void =>
        reject(
          new InternalError('receipt-signer-failed', `a receipt signer worker did not start: ${why}`, {
            cause,
          }),
        );
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            slot.ready = true;
            slot.startFailed = false;
            // Not while closing: #stop holds a reference until the worker has exited, and a worker
            // that becomes ready after that must not let the process's event loop end under it.
            if (slot.pending.size === 0 && this.#closing === undefined) worker.unref();
            resolve();
            return;
          case 'init-failed':
            slot.failure = new Error(message.message);
            startFailed(message.message);
            void worker.terminate();
            return;
          case 'signed':
          case 'failed': {
            const request = slot.pending.get(message.id);
            if (request === undefined) return;
            slot.pending.delete(message.id);
            slot.load -= request.count;
            if (slot.pending.size === 0 && slot.ready && this.#closing === undefined) worker.unref();
            if (message.type === 'failed') {
              request.reject(
                new InternalError(
                  'receipt-signer-failed',
                  `a receipt signer worker failed: ${message.message}`,
                ),
              );
            } else if (message.signatures.byteLength !== request.count * ED25519_SIGNATURE_BYTES) {
              request.reject(
                new InternalError('receipt-signer-failed', 'a receipt signer worker answered short'),
              );
            } else {
              request.resolve(new Uint8Array(message.signatures));
            }
            return;
          }
        }
      });
      worker.on('error', (error) => {
        slot.failure = error;
      });
      worker.on('exit', (code) => {
        if (slot.worker !== worker) return;
        const wasReady = slot.ready;
        slot.worker = undefined;
        slot.ready = false;
        if (!wasReady) {
          slot.startFailed = this.#closing === undefined;
          startFailed(`exit code ${code}`, slot.failure);
        }
        const expected = this.#closing !== undefined && slot.pending.size === 0;
        if (expected) return;
        const error = new InternalError(
          'receipt-signer-failed',
          `a receipt signer worker exited (code ${code}) holding ${slot.pending.size} batch(es)`,
          { cause: slot.failure },
        );
        const failed = [...slot.pending.values()];
        slot.pending.clear();
        slot.load = 0;
        for (const request of failed) request.reject(error);
        if (wasReady || failed.length > 0) this.#onWorkerExit(error);
        // Replace at once a worker that had been working; one that never started is replaced at
        // the next call instead, so a worker that cannot start does not restart in a loop.
        if (wasReady && this.#closing === undefined) void this.#spawn(slot).catch(() => {});
      });
    });
  }

  /** Ask the slot's worker to wipe its key and exit; resolves once it has exited. */
  async #stop(slot: Slot): Promise<void> {
    const worker = slot.worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    const close: ToWorker = { type: 'close' };
    worker.postMessage(close);
    await exited;
  }
}

function isU53(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
